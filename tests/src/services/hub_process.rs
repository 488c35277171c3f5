//! `sf-hub` run with exactly the environment and arguments a test gives
//! (a compose service's variables, a PostgreSQL URL), on
//! `sf-test-support`'s [`HubChild`], its token registered for the
//! convergence helpers.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::process::Command;

use sf_test_support::{HubChild, LogFile};

use crate::bins::binary;
use crate::hub_queries::http_client;

/// The token a hub started with `env` and `args` knows: its bootstrap token,
/// or the first-start token in its data dir.
fn hub_token(env: &BTreeMap<String, String>, args: &[OsString]) -> Option<String> {
    if let Some(token) = env.get("SF_HUB_BOOTSTRAP_TOKEN") {
        return Some(token.trim().to_owned());
    }
    let from_args = args
        .windows(2)
        .find(|pair| pair[0] == "--data-dir")
        .map(|pair| std::path::PathBuf::from(&pair[1]));
    let data_dir = from_args.or_else(|| {
        env.get("SF_DATA_DIR")
            .or_else(|| env.get("STORAGE_DIR"))
            .map(std::path::PathBuf::from)
    })?;
    std::fs::read_to_string(data_dir.join("agent-token"))
        .ok()
        .map(|t| t.trim().to_owned())
}

/// `sf-hub` run with exactly the environment and arguments given (nothing
/// of the caller's environment leaks in), unlike [`crate::Hub`] which
/// always runs on SQLite.
pub struct HubProcess {
    child: HubChild,
    // Last: the log outlives the child, whose drop prints its tail.
    _home: tempfile::TempDir,
}

impl HubProcess {
    /// Starts the hub with `env` (plus `RUST_LOG` if absent: the start-up
    /// line is read from the log) and `args`, and waits until `/readyz`
    /// answers 200.
    pub async fn start(env: &BTreeMap<String, String>, args: &[OsString]) -> Result<Self, String> {
        let home = tempfile::Builder::new()
            .prefix("sf-e2e-hub-process-")
            .tempdir()
            .map_err(|e| format!("a folder for the hub's log: {e}"))?;
        let log = LogFile::new(home.path().join("sf-hub.log"));
        let mut command = Command::new(binary("sf-hub"));
        command.env_clear().envs(env).args(args);
        let rust_log = match env.get("RUST_LOG") {
            // The start-up line is an info line of sf_hub.
            Some(level) => format!("{level},sf_hub=info"),
            None => std::env::var("SF_E2E_RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
        };
        command
            .env("RUST_LOG", rust_log)
            .current_dir(home.path())
            .stdin(std::process::Stdio::null());
        eprintln!("sf-hub (environment: {:?})", env.keys());
        let child = HubChild::start(command, log, &http_client())
            .await
            .map_err(|e| e.to_string())?;
        eprintln!(
            "sf-hub pid {} ready at {}: {}",
            child.pid(),
            child.url(),
            child.ready()
        );
        if let Some(token) = hub_token(env, args) {
            crate::tokens::register(child.url(), &token);
        }
        Ok(HubProcess { child, _home: home })
    }

    /// `http://127.0.0.1:<api port>`.
    pub fn url(&self) -> &str {
        self.child.url()
    }

    /// The metrics listener, `127.0.0.1:<port>` (scrape `/metrics`).
    pub fn metrics_addr(&self) -> SocketAddr {
        self.child.metrics_addr()
    }

    /// The first `/readyz` answer (`{"status":"ready","database":…}`).
    pub fn ready(&self) -> &serde_json::Value {
        self.child.ready()
    }

    pub fn log(&self) -> String {
        self.child.log().read()
    }
}
