//! The `sf-hub` binary as the scenarios' hub (SQLite in its data dir): on
//! `sf-test-support`'s [`HubChild`], with the harness's log file and token
//! registry, SIGKILL, and a restart on the same data dir and port so that
//! running agents reconnect.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sf_test_support::{HubChild, LogFile, PROCESS_DEADLINE};

use crate::bins::binary;
use crate::hub_queries::http_client;
use crate::sandbox::{child_rust_log, keep_if_asked, log_lines_on_failure};

/// The `sf-hub` binary as a child process (SQLite in its data dir).
pub struct Hub {
    data_dir: PathBuf,
    home: tempfile::TempDir,
    log: LogFile,
    child: Option<HubChild>,
    port: u16,
    url: String,
    http: reqwest::Client,
    options: HubOptions,
}

/// How a [`Hub`] is started beyond its defaults.
#[derive(Debug, Clone, Default)]
pub struct HubOptions {
    /// More `sf-hub` arguments, e.g. `--tls-cert` or `--header-timeout`.
    pub args: Vec<String>,
    /// Set when the hub serves TLS: the PEM CA certificate that signed its
    /// certificate (issued for `localhost`); the hub's URL is then
    /// `https://localhost:PORT`.
    pub tls_ca_pem: Option<String>,
    /// Environment variables for the hub (the caller's own never reach
    /// it), e.g. an S3 store's `SF_STORE` and `AWS_*`. With
    /// `SF_HUB_BOOTSTRAP_TOKEN` that token is the hub's [`Hub::token`]
    /// (hubs sharing a database make no first-start token but the first).
    pub env: Vec<(String, String)>,
}

/// The variable whose token a hub adds at start.
const BOOTSTRAP_VAR: &str = "SF_HUB_BOOTSTRAP_TOKEN";

impl Hub {
    /// Starts a hub on `data_dir`, API and metrics on free ports of
    /// 127.0.0.1, and waits until `/readyz` answers.
    pub async fn start(data_dir: &Path) -> Hub {
        Self::start_with(data_dir, HubOptions::default()).await
    }

    /// [`Hub::start`] with more arguments, or over TLS.
    pub async fn start_with(data_dir: &Path, options: HubOptions) -> Hub {
        fs::create_dir_all(data_dir).expect("create the hub's data dir");
        let home = tempfile::Builder::new()
            .prefix("sf-e2e-hub-log-")
            .tempdir()
            .expect("a folder for the hub's log");
        let log = LogFile::new(home.path().join("sf-hub.log"));
        let mut hub = Hub {
            data_dir: data_dir.to_path_buf(),
            home,
            log,
            child: None,
            port: 0,
            url: String::new(),
            http: {
                // Every helper's client trusts the hub's private CA from now on.
                if let Some(pem) = &options.tls_ca_pem {
                    crate::tokens::trust_ca(pem);
                }
                http_client()
            },
            options,
        };
        if let Err(err) = hub.launch("127.0.0.1:0").await {
            panic!("{err}");
        }
        hub
    }

    /// `http://127.0.0.1:<port>`: stays the same across restarts.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>/metrics` of the running hub (the metrics
    /// port changes on a restart).
    pub fn metrics_url(&self) -> String {
        self.child
            .as_ref()
            .expect("the hub is not running")
            .metrics_url()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The hub's first-start write token file, which agents get as
    /// `--token-file`.
    pub fn token_file(&self) -> PathBuf {
        self.data_dir.join("agent-token")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(HubChild::pid)
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        self.log.read()
    }

    /// The write token the hub made on its first start, or its
    /// `SF_HUB_BOOTSTRAP_TOKEN` when [`HubOptions::env`] sets one.
    pub fn token(&self) -> String {
        self.read_token().unwrap_or_else(|e| panic!("{e}"))
    }

    fn read_token(&self) -> Result<String, String> {
        if let Some((_, token)) = self.options.env.iter().find(|(k, _)| k == BOOTSTRAP_VAR) {
            return Ok(token.trim().to_owned());
        }
        // Made by the hub's first start, before it serves; kept across restarts.
        fs::read_to_string(self.token_file())
            .map(|token| token.trim().to_owned())
            .map_err(|e| format!("cannot read the hub's first-start token: {e}"))
    }

    /// SIGKILL (what `Child::kill` sends on Unix): no shutdown code runs.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.pid();
            let status = child
                .sigkill()
                .map_or("it had exited".to_owned(), |s| s.to_string());
            eprintln!("sf-hub pid {pid} killed ({status})");
            self.log.mark(&format!("SIGKILLed pid {pid}"));
        }
    }

    /// Starts the hub again on the same data dir and the same API port, so
    /// agents that knew it reconnect. Retries while the port is still taken.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "restart() needs a killed hub");
        let listen = format!("127.0.0.1:{}", self.port);
        let deadline = Instant::now() + PROCESS_DEADLINE;
        loop {
            match self.launch(&listen).await {
                Ok(()) => return,
                Err(err) if err.contains("in use") && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(err) => panic!("{err}"),
            }
        }
    }

    async fn launch(&mut self, listen: &str) -> Result<(), String> {
        self.log.mark(&format!("starting sf-hub --listen {listen}"));
        let mut command = sf_test_support::hub_command(&binary("sf-hub"), &self.data_dir);
        command
            .env("RUST_LOG", child_rust_log())
            .args(["--listen", listen, "--metrics-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.options.args)
            .envs(self.options.env.iter().map(|(k, v)| (k, v)));
        let tls = self.options.tls_ca_pem.is_some();
        let mut child = HubChild::start_at(command, self.log.clone(), &self.http, |api| {
            if tls {
                format!("https://localhost:{}", api.port())
            } else {
                format!("http://127.0.0.1:{}", api.port())
            }
        })
        .await
        .map_err(|e| e.to_string())?;
        child.set_tail_lines(log_lines_on_failure());
        let port = child.api_addr().port();
        if self.port != 0 && port != self.port {
            return Err(format!(
                "sf-hub restarted on port {port}, not {}",
                self.port
            ));
        }
        self.port = port;
        self.url = child.url().to_owned();
        crate::tokens::register(&self.url, &self.read_token()?);
        eprintln!("sf-hub pid {} ready at {}", child.pid(), self.url);
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        // A running child is killed here and prints the log's tail itself.
        if self.child.take().is_none() && std::thread::panicking() {
            self.log
                .print_tail(&format!("sf-hub at {}", self.url), log_lines_on_failure());
        }
        keep_if_asked(&mut self.home);
    }
}
