//! Command line and environment, including the original client's variable
//! names (`SERVER_URL`, `SYNC_DIR`, `SCAN_INTERVAL`), and the config file
//! (`crate::config_file`) below them.
//!
//! `--hub` (`SERVER_URL`) takes several hubs, comma-separated or repeated;
//! each URL is checked as the command line is read.
//!
//! The hub's token is taken from a file (`--token-file`, `SF_TOKEN_FILE`) or
//! from `SF_TOKEN`, never as a command-line value: `ps` shows arguments to
//! every user of the machine.
//!
//! [`Cli::load`] reads all three: a flag wins over its environment
//! variable, which wins over the config file, which wins over the flag's
//! default (clap says where each value came from).

use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};

pub use crate::commands::args::{Command, FolderArgs, HubArgs, Keep};
use crate::config_file::{ConfigFileError, FileConfig};
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

/// Why the command line, environment and config file give no settings.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A usage error, or `--help`/`--version`: clap prints and exits.
    #[error(transparent)]
    Usage(#[from] clap::Error),
    #[error(transparent)]
    ConfigFile(#[from] ConfigFileError),
}

impl Cli {
    /// The command line of this process, its environment, and the config
    /// file (`--config`, or the default one when it exists).
    pub fn load() -> Result<Cli, LoadError> {
        Self::load_from(Cli::command(), std::env::args_os())
    }

    /// [`Cli::load`] from `args`, parsed by `command` (tests give another
    /// variable to an argument, so that setting it races no other test).
    pub fn load_from<I, T>(command: clap::Command, args: I) -> Result<Cli, LoadError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = command.try_get_matches_from(args)?;
        let mut cli = Cli::from_arg_matches(&matches)?;
        let sub = matches.subcommand().map(|(_, sub)| sub);
        match (&mut cli.command, sub) {
            (None, _) => cli.run.merge_file(&matches)?,
            (Some(Command::InstallService { settings, .. }), Some(sub)) => {
                settings.merge_file(sub)?;
            }
            (Some(Command::History { at, .. } | Command::Restore { at, .. }), Some(sub)) => {
                at.merge_file(sub)?;
            }
            (
                Some(
                    Command::Status { at }
                    | Command::Conflicts { at, .. }
                    | Command::Trash { at, .. },
                ),
                Some(sub),
            ) => {
                at.merge_file(sub)?;
            }
            (Some(_), None) => unreachable!("clap parsed a subcommand without its matches"),
        }
        Ok(cli)
    }
}

/// Whether the argument `id` was given on the command line or by its
/// environment variable: then the config file does not change it.
pub(crate) fn given(matches: &ArgMatches, id: &str) -> bool {
    matches!(
        matches.value_source(id),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// The config file, with the same keys as these flags in snake_case
    /// (`token_file = "…"`). Default: $XDG_CONFIG_HOME/synced-folder/agent.toml
    /// or ~/.config/synced-folder/agent.toml, if it exists. Flags and
    /// environment variables win over it.
    #[arg(long, env = "SF_AGENT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

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

    /// No desktop notification when a conflict copy is made or the agent
    /// stops on an error (config: `notify = false`).
    #[arg(long)]
    pub no_notify: bool,

    /// The config file read, if any, and which settings the command line or
    /// the environment gave (for `install-service`).
    #[arg(skip)]
    pub origin: Origin,
}

/// Where [`Settings`] came from, beyond their values.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The config file that was read; `None` when there was none.
    pub file: Option<PathBuf>,
    /// The ids of the settings given by a flag or an environment variable.
    pub given: Vec<&'static str>,
}

/// Every setting a config file may give, by clap id (= config key).
const SETTING_IDS: [&str; 10] = [
    "hub",
    "dir",
    "name",
    "scan_interval",
    "poll",
    "debounce_ms",
    "state_home",
    "token_file",
    "ca_cert",
    "no_notify",
];

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

impl EnvToken {
    /// Whether `SF_TOKEN` holds a token.
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }
}

/// The token (from `token_file` or `SF_TOKEN`) and the extra CA
/// certificates (`ca_cert`), read from their files.
pub(crate) fn read_access(
    token_file: Option<&std::path::Path>,
    token_env: &EnvToken,
    ca_cert: Option<&std::path::Path>,
) -> Result<HubAccess, CredentialsError> {
    let token = match (token_file, &token_env.0) {
        (Some(_), Some(_)) => return Err(CredentialsError::TwoTokens),
        (Some(path), None) => Some(Token::from_file(path)?),
        (None, Some(value)) => Some(Token::from_env_value(value)?),
        (None, None) => None,
    };
    let extra_roots = match ca_cert {
        Some(path) => credentials::load_ca_certs(path)?,
        None => Vec::new(),
    };
    Ok(HubAccess { token, extra_roots })
}

impl Settings {
    /// The token and the extra CA certificates, read from their files.
    pub fn access(&self) -> Result<HubAccess, CredentialsError> {
        read_access(
            self.token_file.as_deref(),
            &self.token_env,
            self.ca_cert.as_deref(),
        )
    }

    /// Whether desktop notifications are on (`--no-notify`, `notify`).
    pub fn notify(&self) -> bool {
        !self.no_notify
    }

    /// Reads the config file (`--config`, or the default one) and takes
    /// from it each setting `matches` did not get from a flag or an
    /// environment variable.
    fn merge_file(&mut self, matches: &ArgMatches) -> Result<(), ConfigFileError> {
        let file = FileConfig::load(self.config.as_deref())?;
        self.apply(matches, file);
        Ok(())
    }

    /// Takes from `file` each setting `matches` did not get from a flag or
    /// an environment variable.
    pub(crate) fn apply(&mut self, matches: &ArgMatches, file: FileConfig) {
        let from_file = |id: &str| !given(matches, id);
        if from_file("hub")
            && let Some(hub) = file.hub
        {
            self.hub = hub;
        }
        fn take<T>(to: &mut Option<T>, value: Option<T>, ok: bool) {
            if ok && value.is_some() {
                *to = value;
            }
        }
        take(&mut self.dir, file.dir, from_file("dir"));
        take(&mut self.name, file.name, from_file("name"));
        take(
            &mut self.scan_interval,
            file.scan_interval,
            from_file("scan_interval"),
        );
        take(
            &mut self.state_home,
            file.state_home,
            from_file("state_home"),
        );
        take(
            &mut self.token_file,
            file.token_file,
            from_file("token_file"),
        );
        take(&mut self.ca_cert, file.ca_cert, from_file("ca_cert"));
        if from_file("poll")
            && let Some(poll) = file.poll
        {
            self.poll = poll;
        }
        if from_file("debounce_ms")
            && let Some(ms) = file.debounce_ms
        {
            self.debounce_ms = ms;
        }
        if from_file("no_notify")
            && let Some(notify) = file.notify
        {
            self.no_notify = !notify;
        }
        self.origin = Origin {
            file: file.path,
            given: SETTING_IDS
                .into_iter()
                .filter(|id| given(matches, id))
                .collect(),
        };
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

pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "agent".to_owned())
}

#[cfg(test)]
mod tests;
