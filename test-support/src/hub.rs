//! The real `sf-hub` binary as a child process: a command cleared of every
//! variable the hub reads ([`HUB_ENV_VARS`], exported by the hub's
//! `config.rs`), its start-up followed through its log line `hub listening
//! api=… metrics=…` and `/readyz`, and a [`HubChild`] that is SIGKILLed when
//! dropped and prints its log's tail when the test fails. How the hub is
//! configured (arguments, token, back end) and which binary runs is the
//! caller's: each suite wraps this in its own `Hub` type.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::log::LogFile;
use crate::process::Process;

/// Every variable the hub reads: cleared for each child so the caller's
/// (the developer's, CI's) environment never leaks into a test.
pub use sf_hub::config::ENV_VARS as HUB_ENV_VARS;

/// Bound for a process to start or exit: a hang guard, not a speed check.
pub const PROCESS_DEADLINE: Duration = Duration::from_secs(60);

/// The Rust runtime's variables that change how an error looks: removed, so
/// a test sees what an operator sees by default (no backtraces).
const BACKTRACE_VARS: &[&str] = &["RUST_BACKTRACE", "RUST_LIB_BACKTRACE"];

/// How often start-up is looked at again.
const POLL: Duration = Duration::from_millis(20);

/// Removes [`HUB_ENV_VARS`] and the backtrace variables from `command`.
pub fn clear_hub_env(command: &mut Command) -> &mut Command {
    for name in HUB_ENV_VARS.iter().chain(BACKTRACE_VARS) {
        command.env_remove(name);
    }
    command
}

/// `exe` (an `sf-hub` binary) with a clean environment, run from `cwd` (so
/// a `./data` fallback can never land in the repository), stdin closed.
pub fn hub_command(exe: &Path, cwd: &Path) -> Command {
    let mut command = Command::new(exe);
    clear_hub_env(&mut command);
    command.current_dir(cwd).stdin(Stdio::null());
    command
}

/// A client that sends `token` as `Authorization: Bearer` on every request,
/// as an agent does.
pub fn bearer_client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
        .expect("a token is a valid header value");
    value.set_sensitive(true);
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("an HTTP client")
}

/// Why a hub did not come up.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot spawn {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// It exited; `stage` says when (`during start-up`, `before it was
    /// ready`). The log often says why (`address already in use`).
    #[error("sf-hub exited {stage} with {status}; log:\n{log}")]
    Exited {
        stage: &'static str,
        status: ExitStatus,
        log: String,
    },
    #[error("sf-hub did not log `hub listening` within {PROCESS_DEADLINE:?}; log:\n{log}")]
    NotListening { log: String },
    #[error("sf-hub not ready within {PROCESS_DEADLINE:?}; log:\n{log}")]
    NotReady { log: String },
    #[error("cannot read {field} from the log line {line:?}")]
    LogLine { field: &'static str, line: String },
    #[error("/readyz is not JSON: {0}")]
    ReadyJson(#[source] reqwest::Error),
}

/// A started hub. Dropping it kills (SIGKILL) and reaps it, and prints the
/// end of its log if the test is panicking.
#[derive(Debug)]
pub struct HubChild {
    process: Process,
    pid: u32,
    log: LogFile,
    url: String,
    api: SocketAddr,
    metrics: SocketAddr,
    ready: serde_json::Value,
    tail_lines: usize,
}

impl HubChild {
    /// Spawns `command` with its output appended to `log`, reads its
    /// addresses from the `hub listening` line written after that point (so
    /// the log must be at `info` for `sf_hub`), and waits until `/readyz`,
    /// asked with `http`, answers 200. The API's URL is `http://<api>`.
    pub async fn start(
        command: Command,
        log: LogFile,
        http: &reqwest::Client,
    ) -> Result<Self, StartError> {
        Self::start_at(command, log, http, |api| format!("http://{api}")).await
    }

    /// [`HubChild::start`], with the API's URL made by `url` from its
    /// address (e.g. `https://localhost:<port>` for a TLS hub).
    pub async fn start_at(
        mut command: Command,
        log: LogFile,
        http: &reqwest::Client,
        url: impl FnOnce(SocketAddr) -> String,
    ) -> Result<Self, StartError> {
        let offset = log.len();
        let (stdout, stderr) = log.stdio();
        command.stdout(stdout).stderr(stderr);
        let process = Process::spawn(&mut command).map_err(|source| StartError::Spawn {
            program: command.get_program().to_string_lossy().into_owned(),
            source,
        })?;
        let pid = process.pid().expect("a child just spawned");
        let mut hub = Self {
            process,
            pid,
            log,
            url: String::new(),
            api: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics: SocketAddr::from(([127, 0, 0, 1], 0)),
            ready: serde_json::Value::Null,
            tail_lines: 40,
        };
        let deadline = Instant::now() + PROCESS_DEADLINE;
        (hub.api, hub.metrics) = hub.wait_listening(offset, deadline).await?;
        hub.url = url(hub.api);
        hub.ready = hub.wait_ready(http, offset, deadline).await?;
        Ok(hub)
    }

    async fn wait_listening(
        &mut self,
        offset: u64,
        deadline: Instant,
    ) -> Result<(SocketAddr, SocketAddr), StartError> {
        loop {
            let text = self.log.read_from(offset);
            if let Some(line) = text.lines().find(|l| l.contains("hub listening")) {
                return Ok((address(line, "api=")?, address(line, "metrics=")?));
            }
            if let Some(status) = self.process.exited() {
                return Err(StartError::Exited {
                    stage: "during start-up",
                    status,
                    log: text,
                });
            }
            if Instant::now() > deadline {
                return Err(StartError::NotListening { log: text });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn wait_ready(
        &mut self,
        http: &reqwest::Client,
        offset: u64,
        deadline: Instant,
    ) -> Result<serde_json::Value, StartError> {
        loop {
            if let Ok(resp) = http.get(format!("{}/readyz", self.url)).send().await
                && resp.status().is_success()
            {
                return resp.json().await.map_err(StartError::ReadyJson);
            }
            if let Some(status) = self.process.exited() {
                return Err(StartError::Exited {
                    stage: "before it was ready",
                    status,
                    log: self.log.read_from(offset),
                });
            }
            if Instant::now() > deadline {
                return Err(StartError::NotReady {
                    log: self.log.read_from(offset),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// How many log lines to print if the test fails while this runs
    /// (default 40).
    pub fn set_tail_lines(&mut self, lines: usize) {
        self.tail_lines = lines;
    }

    /// The pid it ran as (also after it exited).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The API's URL, without a trailing `/`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where the API listens (a hub on `0.0.0.0` is reached on 127.0.0.1).
    pub fn api_addr(&self) -> SocketAddr {
        self.api
    }

    /// Where the metrics listener is (scrape `/metrics`).
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics
    }

    /// `http://<metrics>/metrics`.
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.metrics)
    }

    /// The first `/readyz` answer (`{"status":"ready","database":…}`).
    pub fn ready(&self) -> &serde_json::Value {
        &self.ready
    }

    /// The back end `/readyz` named: `sqlite` or `postgres`.
    pub fn database(&self) -> &str {
        self.ready["database"].as_str().unwrap_or_default()
    }

    pub fn log(&self) -> &LogFile {
        &self.log
    }

    /// Its exit status, if it has exited on its own.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.process.exited()
    }

    /// SIGKILL: no shutdown code runs. `None` if it had already exited.
    pub fn sigkill(&mut self) -> Option<ExitStatus> {
        self.process.sigkill()
    }

    /// SIGTERM, then up to `timeout` for the graceful shutdown: its exit
    /// status, or `None` if it still runs (then killed when dropped).
    pub async fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.process.sigterm();
        self.process.wait_exit(timeout).await
    }

    /// Its peak resident set size so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> std::io::Result<u64> {
        crate::procfs::peak_rss_kib(self.pid)
    }
}

impl Drop for HubChild {
    fn drop(&mut self) {
        self.process.kill_quietly();
        if std::thread::panicking() {
            self.log.print_tail(
                &format!("sf-hub pid {} at {}", self.pid, self.url),
                self.tail_lines,
            );
        }
    }
}

/// The address after `field` (`api=`, `metrics=`) in the `hub listening`
/// line; an unspecified IP (`0.0.0.0`) becomes loopback, where the hub is
/// reached.
fn address(line: &str, field: &'static str) -> Result<SocketAddr, StartError> {
    let bad = || StartError::LogLine {
        field,
        line: line.to_owned(),
    };
    let addr: SocketAddr = line
        .split_whitespace()
        .find_map(|word| word.strip_prefix(field))
        .ok_or_else(bad)?
        .parse()
        .map_err(|_| bad())?;
    Ok(if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_line() {
        let line = "2026-01-01T00:00:00Z  INFO sf_hub: hub listening api=0.0.0.0:8080 \
                    metrics=127.0.0.1:9000";
        assert_eq!(address(line, "api=").unwrap().to_string(), "127.0.0.1:8080");
        assert_eq!(
            address(line, "metrics=").unwrap().to_string(),
            "127.0.0.1:9000"
        );
        assert!(address("hub listening api=nowhere", "api=").is_err());
        assert!(address("hub listening", "metrics=").is_err());
    }

    #[test]
    fn the_environment_is_cleared() {
        let command = hub_command(Path::new("sf-hub"), Path::new("/"));
        let removed: Vec<_> = command
            .get_envs()
            .filter(|(_, value)| value.is_none())
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect();
        for name in [
            "SF_DATA_DIR",
            "DATABASE_URL",
            "POSTGRES_HOST",
            "RUST_BACKTRACE",
        ] {
            assert!(removed.iter().any(|r| r == name), "{name} not removed");
        }
    }
}
