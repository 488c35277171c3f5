//! Command line and environment, including the original client's variable
//! names (`SERVER_URL`, `SYNC_DIR`, `SCAN_INTERVAL`).
//!
//! `--hub` (`SERVER_URL`) takes several hubs, comma-separated or repeated;
//! each URL is checked as the command line is read.
//!
//! The hub's token is taken from a file (`--token-file`, `SF_TOKEN_FILE`) or
//! from `SF_TOKEN`, never as a command-line value: `ps` shows arguments to
//! every user of the machine.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::credentials::{self, CredentialsError, HubAccess, Token};
use crate::hub_client::BadHubUrl;

/// synced-folder agent: keeps one local folder in sync with a hub.
#[derive(Debug, Parser)]
#[command(name = "sf-agent", version, about, long_about = None, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: Settings,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print what is synced, pending, in conflict, and the last error, from
    /// local state alone (the hub is not contacted).
    Status {
        /// The synced folder.
        #[arg(long, env = "SYNC_DIR")]
        dir: PathBuf,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// The hub's URL, http://HOST:PORT or https://HOST:PORT. Several
    /// hubs sharing one database may be given, comma-separated or with
    /// --hub again: the agent syncs through the first, and when the one
    /// it uses stops answering (connection refused, reset or timed out,
    /// HTTP 502/503/504) moves on to the next and carries on from its last
    /// applied change. --ca-cert applies to every one.
    #[arg(
        long,
        env = "SERVER_URL",
        value_name = "URL",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8080",
        value_parser = parse_hub_url
    )]
    pub hub: Vec<String>,

    /// The folder to keep in sync (created state lives in `<dir>/.sf`).
    #[arg(long, env = "SYNC_DIR")]
    pub dir: Option<PathBuf>,

    /// This agent's name: the origin of its commits and of its conflict
    /// copies. Default: the host name.
    #[arg(long, env = "SF_AGENT_NAME")]
    pub name: Option<String>,

    /// Seconds between full scans: default 60 while file events work, 3 with
    /// --poll.
    #[arg(long, env = "SCAN_INTERVAL")]
    pub scan_interval: Option<u64>,

    /// Do not watch for file events; scan every SCAN_INTERVAL seconds instead
    /// (for network file systems).
    #[arg(long)]
    pub poll: bool,

    /// Milliseconds a changed file must be quiet before it is pushed.
    #[arg(long, env = "SF_DEBOUNCE_MS", default_value_t = 150)]
    pub debounce_ms: u64,

    /// Where the agent remembers which folders it synced, so a vanished
    /// folder marker is noticed. Default: $XDG_STATE_HOME/sf-agent or
    /// ~/.local/state/sf-agent.
    #[arg(long, env = "SF_AGENT_HOME")]
    pub state_home: Option<PathBuf>,

    /// A file holding the hub's access token: one made with `sf-hub token
    /// create NAME`, or the hub's `<data-dir>/agent-token`. Read once at start.
    /// The token itself may instead be given in the SF_TOKEN environment
    /// variable; it is never accepted as an argument, where `ps` would show
    /// it. Without a token the agent works only with a hub run with
    /// --no-auth.
    #[arg(long, env = "SF_TOKEN_FILE", value_name = "PATH")]
    pub token_file: Option<PathBuf>,

    /// The value of SF_TOKEN, read when the command line is parsed.
    #[arg(skip = EnvToken::read())]
    pub token_env: EnvToken,

    /// A PEM file of CA certificates to trust for an https:// hub, in
    /// addition to the system's trust store (a private or self-signed CA).
    #[arg(long, env = "SF_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

/// The `SF_TOKEN` environment variable's value; `Debug` never shows it.
#[derive(Clone, Default)]
pub struct EnvToken(Option<String>);

impl EnvToken {
    /// `SF_TOKEN`, if set and not blank (compose passes unset variables
    /// as empty strings).
    pub fn read() -> Self {
        Self::new(std::env::var("SF_TOKEN").ok())
    }

    pub fn new(value: Option<String>) -> Self {
        Self(value.filter(|v| !v.trim().is_empty()))
    }
}

impl std::fmt::Debug for EnvToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(_) => f.write_str("EnvToken(…(redacted))"),
            None => f.write_str("EnvToken(None)"),
        }
    }
}

impl Settings {
    /// The token and the extra CA certificates, read from their files.
    pub fn access(&self) -> Result<HubAccess, CredentialsError> {
        let token = match (&self.token_file, &self.token_env.0) {
            (Some(_), Some(_)) => return Err(CredentialsError::TwoTokens),
            (Some(path), None) => Some(Token::from_file(path)?),
            (None, Some(value)) => Some(Token::from_env_value(value)?),
            (None, None) => None,
        };
        let extra_roots = match &self.ca_cert {
            Some(path) => credentials::load_ca_certs(path)?,
            None => Vec::new(),
        };
        Ok(HubAccess { token, extra_roots })
    }

    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(host_name)
    }

    pub fn scan_interval(&self, watching: bool) -> Duration {
        let default = if watching { 60 } else { 3 };
        Duration::from_secs(self.scan_interval.unwrap_or(default).max(1))
    }

    pub fn state_home(&self) -> PathBuf {
        if let Some(home) = &self.state_home {
            return home.clone();
        }
        if let Some(xdg) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(xdg).join("sf-agent");
        }
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
        home.join(".local").join("state").join("sf-agent")
    }
}

/// One `--hub` value, checked when the command line is read so that a
/// mistyped URL is reported before anything starts.
fn parse_hub_url(raw: &str) -> Result<String, BadHubUrl> {
    crate::hub_client::normalize_hub_url(raw)
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "agent".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Settings, clap::Error> {
        let mut all = vec!["sf-agent"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).map(|cli| cli.run)
    }

    #[test]
    fn a_token_is_never_taken_from_the_command_line() {
        for args in [
            &["--token", "sft_x"][..],
            &["--sf-token", "sft_x"],
            &["--token-env", "sft_x"],
            &["sft_x"],
        ] {
            assert!(parse(args).is_err(), "{args:?} was accepted");
        }
    }

    #[test]
    fn several_hubs_are_taken_comma_separated_or_repeated() {
        let hubs = |args: &[&str]| parse(args).map(|s| s.hub);
        assert_eq!(hubs(&[]).unwrap(), ["http://127.0.0.1:8080"]);
        assert_eq!(hubs(&["--hub", "http://a:1/"]).unwrap(), ["http://a:1"]);
        let both = ["http://a:1", "https://b"];
        assert_eq!(hubs(&["--hub", "http://a:1,https://b/"]).unwrap(), both);
        assert_eq!(hubs(&["--hub", "http://a:1, https://b"]).unwrap(), both);
        assert_eq!(
            hubs(&["--hub", "http://a:1", "--hub", "https://b"]).unwrap(),
            both
        );
    }

    #[test]
    fn a_bad_hub_url_is_named_with_what_to_do() {
        for (args, wrong) in [
            (
                &["--hub", "hub.lan:8080"][..],
                "does not start with http://",
            ),
            (&["--hub", "http://a:1,"], "is empty (a stray comma?)"),
            (
                &["--hub", "http://a:1", "--hub", "http://b/sf"],
                "has a path",
            ),
        ] {
            let err = parse(args).unwrap_err().to_string();
            assert!(err.contains(wrong), "{args:?}: {err}");
            assert!(err.contains("http://host[:port]"), "{args:?}: {err}");
        }
    }

    #[test]
    fn access_reads_the_token_from_one_place_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "sft_from_file\n").unwrap();
        let file_arg = file.to_str().unwrap();

        let mut settings = parse(&["--token-file", file_arg]).unwrap();
        settings.token_env = EnvToken::new(None);
        let access = settings.access().unwrap();
        let token = access.token.expect("a token");
        assert_eq!(
            token.source(),
            &credentials::TokenSource::File(file.clone())
        );
        assert_eq!(
            token.header_value().to_str().unwrap(),
            "Bearer sft_from_file"
        );

        settings.token_env = EnvToken::new(Some("sft_from_env".into()));
        assert!(matches!(
            settings.access(),
            Err(CredentialsError::TwoTokens)
        ));

        settings.token_file = None;
        let token = settings.access().unwrap().token.expect("a token");
        assert_eq!(token.source(), &credentials::TokenSource::Env);
        assert!(!format!("{settings:?}").contains("sft_from_env"));

        // Blank SF_TOKEN (compose passes unset variables as "") is no token.
        settings.token_env = EnvToken::new(Some("  ".into()));
        assert!(settings.access().unwrap().token.is_none());

        // A missing CA file is an error that names it.
        settings.ca_cert = Some(dir.path().join("ca.pem"));
        let err = settings.access().unwrap_err();
        assert!(err.to_string().contains("ca.pem"), "{err}");
    }
}
