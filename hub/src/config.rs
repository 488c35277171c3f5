//! Command-line flags and environment variables: what the operator can set,
//! including the original deployment's variable names.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

pub use crate::store::StoreLocation;

/// synced-folder hub: holds every file, its history and the audit log, and
/// serves agents (v1 API, WebSocket) and the original REST clients.
#[derive(Debug, Parser)]
#[command(
    name = "sf-hub",
    version,
    about,
    long_about = None,
    after_help = "Environment only (never a flag, so secrets stay out of `ps`):\n  \
                  SF_HUB_BOOTSTRAP_TOKEN  a token (sft_…) added as the write token `bootstrap` \
                  if the hub does not know it; changing it replaces the old one.\n\n\
                  On its first start without any token the hub makes `default` and writes it \
                  to <data-dir>/agent-token (mode 0600): give agents --token-file with it."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage access tokens (on the same --database-url / --data-dir as the
    /// server; works while the hub runs).
    Token {
        #[command(subcommand)]
        action: TokenCommand,
    },
    /// Check the chunk store against the database: every chunk read and
    /// hashed, every referenced chunk present, the change feed unbroken.
    /// Safe while the hub runs. Exits 1 when something is damaged or
    /// missing.
    Check {
        /// Move damaged chunks to `<data-dir>/damaged/`, record lost chunks
        /// for the hub to ask agents for, and remove orphaned chunks and
        /// temp files older than --chunk-grace.
        #[arg(long)]
        repair: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token and print it (once: the hub keeps only its hash).
    Create {
        /// A name to recognise it by, e.g. the device it is for.
        name: String,
        /// Read-only: the agent using it receives changes but sends none.
        #[arg(long)]
        read_only: bool,
    },
    /// Show every token: name, scope, created, last used, revoked.
    List,
    /// Revoke the token called NAME, at once (open connections too).
    Revoke { name: String },
    /// Print a new random token without storing it, e.g. for
    /// SF_HUB_BOOTSTRAP_TOKEN.
    Generate,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// Address for the API. Default 127.0.0.1:8080; when unset, SERVER_HOST
    /// and SERVER_PORT (the original deployment's variables) are honoured.
    #[arg(long, env = "SF_LISTEN")]
    pub listen: Option<SocketAddr>,

    /// Address for Prometheus metrics (served at /metrics). Default
    /// 127.0.0.1:8000; when unset, METRICS_HOST and METRICS_PORT are honoured.
    #[arg(long, env = "SF_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Where chunks (and, by default, the SQLite database) are kept.
    /// Default ./data; when unset, STORAGE_DIR is honoured.
    #[arg(long, env = "SF_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,

    /// Where chunks are kept: `local` (the data directory) or
    /// `s3://BUCKET[/PREFIX]`, an S3-compatible bucket that several hubs may
    /// share, reached with AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY (an http:// endpoint is allowed). The bucket
    /// must exist.
    #[arg(long, env = "SF_STORE", default_value = "local", global = true)]
    pub store: StoreLocation,

    /// The S3 endpoint of an s3:// --store (MinIO, Garage, Ceph RGW, R2);
    /// unset: AWS. http:// is accepted (a server on the same host or network).
    #[arg(long, env = "AWS_ENDPOINT_URL", global = true)]
    pub s3_endpoint: Option<String>,

    /// The region of an s3:// --store (default us-east-1).
    #[arg(long, env = "AWS_REGION", global = true)]
    pub s3_region: Option<String>,

    /// The credentials of an s3:// --store: from the environment only
    /// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), never flags.
    #[arg(skip)]
    pub s3_access_key_id: Option<String>,
    #[arg(skip)]
    pub s3_secret_access_key: Option<SecretValue>,

    /// sqlite://… or postgres://…. Default: SQLite at `<data-dir>/hub.db`, or
    /// PostgreSQL when POSTGRES_HOST is set (with POSTGRES_PORT, POSTGRES_DB,
    /// POSTGRES_USER, POSTGRES_PASSWORD).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,

    /// Serve without authentication: anyone who can connect may read and
    /// change everything. Accepted only when --listen is a loopback address.
    #[arg(long)]
    pub no_auth: bool,

    /// A token value (sft_…) added as the write token `bootstrap` if the hub
    /// does not know it: for deployments that provision without a shell.
    /// Only from the environment (SF_HUB_BOOTSTRAP_TOKEN), never a flag, so
    /// it does not show in `ps`.
    #[arg(skip)]
    pub bootstrap_token: Option<SecretValue>,

    /// Serve HTTPS and wss:// with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "SF_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "SF_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// A client must send a request's headers within this time, and a TLS
    /// handshake must finish within it; a keep-alive connection idle for
    /// this long is closed.
    #[arg(long, env = "SF_HEADER_TIMEOUT", default_value = "15s", value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// Slowest accepted request body, in bytes per second (after a grace
    /// period of --header-timeout); a slower upload is cut off. 0 turns it off.
    #[arg(long, env = "SF_MIN_BODY_RATE", default_value = "1KiB", value_parser = parse_size)]
    pub min_body_rate: u64,

    /// Most connections served at once; more are answered 503 and closed.
    #[arg(long, env = "SF_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// Most connections from one address at once; more get 503. Behind a
    /// reverse proxy every client shares the proxy's address: raise it, or
    /// 0 for no per-address cap.
    #[arg(long, env = "SF_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: usize,

    /// A client that reads nothing of an answer for this long is cut off.
    #[arg(long, env = "SF_SEND_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub send_timeout: Duration,

    /// Most WebSocket clients at once; more get 503.
    #[arg(long, env = "SF_MAX_WEBSOCKETS", default_value_t = 512)]
    pub max_websockets: usize,

    /// Largest file accepted, e.g. 500MiB, 20GiB or a byte count; larger
    /// uploads and commits get 413.
    #[arg(long, env = "SF_MAX_FILE_SIZE", default_value = "16GiB", value_parser = parse_size)]
    pub max_file_size: u64,

    /// How long to keep retrying the database at start-up before giving up.
    #[arg(long, env = "SF_DATABASE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub database_timeout: Duration,

    /// Stored chunks that no version references (uploads never committed)
    /// are removed once their last upload or use is this old, e.g. 24h.
    #[arg(long, env = "SF_CHUNK_GRACE", default_value = "24h", value_parser = parse_duration)]
    pub chunk_grace: Duration,

    /// How often unreferenced chunks are looked for (see --chunk-grace);
    /// 0 turns garbage collection off.
    #[arg(long, env = "SF_GC_INTERVAL", default_value = "1h", value_parser = parse_duration)]
    pub gc_interval: Duration,

    /// Most bytes the chunk store may hold, e.g. 500GiB; a new chunk or a
    /// legacy upload that does not fit gets 507. Unset: no limit.
    #[arg(long, env = "SF_MAX_STORE_BYTES", value_parser = parse_size)]
    pub max_store_bytes: Option<u64>,
}

/// Every environment variable the hub reads, so that whoever starts it as a
/// child process (the tests, the benches) can clear them all and no setting
/// of the caller's environment leaks in. A test in this module checks that
/// every `env = …` of [`Cli`] and every variable read in `src/` is listed.
pub const ENV_VARS: &[&str] = &[
    // The `env = …` of the flags in [`Settings`].
    "SF_LISTEN",
    "SF_METRICS_LISTEN",
    "SF_DATA_DIR",
    "SF_STORE",
    "DATABASE_URL",
    "SF_TLS_CERT",
    "SF_TLS_KEY",
    "SF_HEADER_TIMEOUT",
    "SF_MIN_BODY_RATE",
    "SF_MAX_CONNECTIONS",
    "SF_MAX_CONNECTIONS_PER_IP",
    "SF_SEND_TIMEOUT",
    "SF_MAX_WEBSOCKETS",
    "SF_MAX_FILE_SIZE",
    "SF_DATABASE_TIMEOUT",
    "SF_CHUNK_GRACE",
    "SF_GC_INTERVAL",
    "SF_MAX_STORE_BYTES",
    // From the environment only (never a flag: it is a secret).
    "SF_HUB_BOOTSTRAP_TOKEN",
    // The original deployment's variables, honoured when the flags are unset.
    "SERVER_HOST",
    "SERVER_PORT",
    "METRICS_HOST",
    "METRICS_PORT",
    "STORAGE_DIR",
    "POSTGRES_HOST",
    "POSTGRES_PORT",
    "POSTGRES_DB",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    // The S3 client's settings (with --store s3://…), read by object_store
    // (which honours every AWS_* variable; these are the usual ones).
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ALLOW_HTTP",
    // The log filter (`info` when unset).
    "RUST_LOG",
];

/// A secret setting: its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretValue(pub String);

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("(redacted)")
    }
}

impl From<String> for SecretValue {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl Settings {
    /// Settings for tests and embedding: everything on defaults, data in `data_dir`.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: None,
            metrics_listen: None,
            data_dir: Some(data_dir.into()),
            store: StoreLocation::Local,
            s3_endpoint: None,
            s3_region: None,
            s3_access_key_id: None,
            s3_secret_access_key: None,
            database_url: None,
            max_file_size: parse_size("16GiB").expect("valid default"),
            database_timeout: Duration::from_secs(30),
            chunk_grace: Duration::from_secs(24 * 3600),
            gc_interval: Duration::from_secs(3600),
            max_store_bytes: None,
            no_auth: false,
            bootstrap_token: None,
            tls_cert: None,
            tls_key: None,
            header_timeout: Duration::from_secs(15),
            min_body_rate: 1024,
            max_connections: 1024,
            max_connections_per_ip: 256,
            send_timeout: Duration::from_secs(30),
            max_websockets: 512,
        }
    }

    /// Reads the settings that come from the environment only (secrets,
    /// which `ps` would show as flags).
    pub fn read_secrets_from_env(&mut self) {
        let env_nonempty = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        self.bootstrap_token = env_nonempty("SF_HUB_BOOTSTRAP_TOKEN").map(Into::into);
        self.s3_access_key_id = env_nonempty("AWS_ACCESS_KEY_ID");
        self.s3_secret_access_key = env_nonempty("AWS_SECRET_ACCESS_KEY").map(Into::into);
    }

    /// How to reach an s3:// --store.
    pub fn bucket_access(&self) -> crate::store::BucketAccess {
        crate::store::BucketAccess {
            endpoint: self.s3_endpoint.clone(),
            region: self.s3_region.clone(),
            access_key_id: self.s3_access_key_id.clone(),
            secret_access_key: self.s3_secret_access_key.as_ref().map(|s| s.0.clone()),
        }
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, String> {
        resolve_addr(self.listen, "SERVER_HOST", "SERVER_PORT", 8080)
    }

    pub fn metrics_addr(&self) -> Result<SocketAddr, String> {
        resolve_addr(self.metrics_listen, "METRICS_HOST", "METRICS_PORT", 8000)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .or_else(|| env_nonempty("STORAGE_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("./data"))
    }

    /// The database URL: the flag, then POSTGRES_*, then SQLite in the data dir.
    pub fn database_url(&self) -> String {
        if let Some(url) = &self.database_url {
            return url.clone();
        }
        if let Some(host) = env_nonempty("POSTGRES_HOST") {
            let port = env_nonempty("POSTGRES_PORT").unwrap_or_else(|| "5432".into());
            let db = env_nonempty("POSTGRES_DB").unwrap_or_else(|| "postgres".into());
            let user = env_nonempty("POSTGRES_USER").unwrap_or_else(|| "postgres".into());
            let password = env_nonempty("POSTGRES_PASSWORD")
                .map(|p| format!(":{}", percent_encode(&p)))
                .unwrap_or_default();
            return format!(
                "postgres://{}{password}@{host}:{port}/{db}",
                percent_encode(&user)
            );
        }
        let path = self.data_dir().join("hub.db");
        format!("sqlite://{}?mode=rwc", path.display())
    }
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn resolve_addr(
    explicit: Option<SocketAddr>,
    host_var: &str,
    port_var: &str,
    default_port: u16,
) -> Result<SocketAddr, String> {
    if let Some(addr) = explicit {
        return Ok(addr);
    }
    let host = env_nonempty(host_var).unwrap_or_else(|| "127.0.0.1".into());
    let port = match env_nonempty(port_var) {
        Some(p) => p
            .trim()
            .parse::<u16>()
            .map_err(|_| format!("{port_var}={p:?} is not a port number"))?,
        None => default_port,
    };
    let joined = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    joined
        .parse()
        .map_err(|_| format!("{host_var}={host:?} is not an IP address"))
}

/// Percent-encodes the characters that would break a URL's user-info part.
fn percent_encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Parses `123`, `10KiB`, `500MiB`, `16GiB`, `1TiB` (also KB/MB/GB as powers of 1000).
pub fn parse_size(raw: &str) -> Result<u64, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{raw:?} is not a size such as 500MiB or 16GiB"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        other => {
            return Err(format!(
                "unknown size unit {other:?}: use B, KiB, MiB, GiB or TiB"
            ));
        }
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{raw:?} is too large"))
}

/// Parses `30s`, `2m`, `500ms` or plain seconds.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let bad = || format!("{raw:?} is not a duration such as 30s, 2m, 24h or 500ms");
    if let Some(ms) = raw.strip_suffix("ms") {
        return ms
            .trim()
            .parse()
            .map(Duration::from_millis)
            .map_err(|_| bad());
    }
    if let Some(m) = raw.strip_suffix('m') {
        return m
            .trim()
            .parse::<u64>()
            .map(|m| Duration::from_secs(m * 60))
            .map_err(|_| bad());
    }
    if let Some(h) = raw.strip_suffix('h') {
        return h
            .trim()
            .parse::<u64>()
            .ok()
            .and_then(|h| h.checked_mul(3600))
            .map(Duration::from_secs)
            .ok_or_else(bad);
    }
    let secs = raw.strip_suffix('s').unwrap_or(raw);
    secs.trim()
        .parse()
        .map(Duration::from_secs)
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("123").unwrap(), 123);
        assert_eq!(parse_size("16GiB").unwrap(), 16 << 30);
        assert_eq!(parse_size("500 MiB").unwrap(), 500 << 20);
        assert_eq!(parse_size("2MB").unwrap(), 2_000_000);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86_400));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let mut settings = Settings::with_data_dir("/data");
        settings.bootstrap_token = Some("sft_supersecret".to_owned().into());
        assert!(!format!("{settings:?}").contains("supersecret"));
    }

    #[test]
    fn env_vars_lists_every_env_attribute() {
        use clap::CommandFactory;
        fn walk(command: &clap::Command, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                if let Some(name) = arg.get_env().map(|n| n.to_string_lossy())
                    && !ENV_VARS.contains(&name.as_ref())
                {
                    missing.push(format!("{} (--{})", name, arg.get_id()));
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), &mut missing);
        assert!(missing.is_empty(), "not in ENV_VARS: {missing:?}");
        let mut sorted = ENV_VARS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ENV_VARS.len(), "ENV_VARS lists a name twice");
    }

    /// The variables read by name outside clap (`env::var("…")`,
    /// `env_nonempty("…")`, the `resolve_addr` fallbacks): the source is
    /// scanned, so a new one cannot be forgotten in [`ENV_VARS`].
    #[test]
    fn env_vars_lists_every_variable_read_in_src() {
        fn rust_files(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    rust_files(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(path);
                }
            }
        }
        let is_name = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        };
        let mut files = Vec::new();
        rust_files(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        let mut read = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            for line in text.lines() {
                for call in ["env::var(\"", "env::var_os(\"", "env_nonempty(\""] {
                    for (i, _) in line.match_indices(call) {
                        let rest = &line[i + call.len()..];
                        let name = rest.split('"').next().filter(|n| is_name(n));
                        read.extend(name.map(str::to_owned));
                    }
                }
                if line.contains("resolve_addr(self.") {
                    let names = line.split('"').skip(1).step_by(2);
                    read.extend(names.filter(|n| is_name(n)).map(str::to_owned));
                }
            }
        }
        assert!(
            ["POSTGRES_HOST", "SERVER_PORT", "SF_HUB_BOOTSTRAP_TOKEN"]
                .iter()
                .all(|known| read.iter().any(|name| name == known)),
            "the scan found too little: {read:?}"
        );
        let missing: Vec<String> = read
            .into_iter()
            .filter(|name| !ENV_VARS.contains(&name.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "read in src/ but not in ENV_VARS: {missing:?}"
        );
    }

    #[test]
    fn user_info_is_encoded() {
        assert_eq!(percent_encode("p@ss:w/rd"), "p%40ss%3Aw%2Frd");
    }
}
