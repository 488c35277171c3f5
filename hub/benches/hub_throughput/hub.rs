//! The hub under measurement: the `sf-hub` binary as a child process
//! (`sf-test-support`'s [`HubChild`]: environment cleared, ports picked by
//! the hub and read from its log, killed if the bench fails), at its
//! default logging, stopped gracefully so its log can be summarised.
//! The `scale_out` bench includes this file too (`#[path]`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use sf_test_support::bench::LogNotes;
use sf_test_support::{HubChild, LogFile};

/// A running `sf-hub`; killed if dropped without [`BenchHub::stop`].
pub struct BenchHub {
    child: HubChild,
    /// The first-start write token (`<data-dir>/agent-token`).
    token: String,
}

impl BenchHub {
    /// Starts the hub on `data_dir` and `database_url`, API and metrics on
    /// ports of 127.0.0.1 it picks, logging to `log_path`; checks that it
    /// runs on `backend`.
    pub async fn start(
        exe: &Path,
        data_dir: &Path,
        database_url: &str,
        backend: &str,
        log_path: &Path,
    ) -> Result<Self> {
        Self::start_with(exe, data_dir, database_url, backend, log_path, &[], None).await
    }

    /// [`BenchHub::start`] with extra environment variables (e.g. an s3://
    /// store's) and, for a hub joining another's database (which writes no
    /// first-start token of its own), the token to use.
    pub async fn start_with(
        exe: &Path,
        data_dir: &Path,
        database_url: &str,
        backend: &str,
        log_path: &Path,
        env: &[(&str, String)],
        token: Option<String>,
    ) -> Result<Self> {
        let mut command = sf_test_support::hub_command(exe, data_dir);
        command
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .arg("--database-url")
            .arg(database_url)
            .envs(env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null());
        let child = HubChild::start(command, LogFile::new(log_path), &reqwest::Client::new())
            .await
            .with_context(|| format!("starting {}", exe.display()))?;
        ensure!(
            child.database() == backend,
            "hub runs on {:?}, not on {backend}",
            child.database()
        );
        let token = match token {
            Some(token) => token,
            None => {
                let token_file = data_dir.join("agent-token");
                std::fs::read_to_string(&token_file)
                    .with_context(|| format!("reading {}", token_file.display()))?
                    .trim()
                    .to_owned()
            }
        };
        Ok(Self { child, token })
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> &str {
        self.child.url()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    /// The write token its clients send.
    #[allow(
        dead_code,
        reason = "used by the scale_out bench, which includes this file"
    )]
    pub fn token(&self) -> &str {
        &self.token
    }

    /// `http://<metrics>/metrics`.
    #[allow(
        dead_code,
        reason = "used by the scale_out bench, which includes this file"
    )]
    pub fn metrics_url(&self) -> String {
        self.child.metrics_url()
    }

    /// A client that authenticates as agents do, with a bearer token.
    pub fn client(&self) -> reqwest::Client {
        sf_test_support::bearer_client(&self.token)
    }

    pub fn peak_rss_kib(&self) -> Result<u64> {
        Ok(self.child.peak_rss_kib()?)
    }

    /// SIGTERM, then wait for the graceful shutdown; returns what its log
    /// says.
    pub async fn stop(mut self) -> Result<LogNotes> {
        let Some(status) = self.child.terminate(Duration::from_secs(30)).await else {
            bail!("the hub did not stop within 30 s of SIGTERM");
        };
        ensure!(
            status.success(),
            "the hub stopped with {status}; its log:\n{}",
            self.child.log().tail(20)
        );
        let mut notes = LogNotes::new(3, 300);
        notes.add(None, &self.child.log().read());
        Ok(notes)
    }
}

pub fn sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("hub.db").display())
}

/// The `sf-hub` binary: cargo builds it for benches and says where; else the
/// one next to this bench's profile directory (`target/<profile>/sf-hub`).
pub fn hub_binary() -> Result<PathBuf> {
    let from_cargo = PathBuf::from(env!("CARGO_BIN_EXE_sf-hub"));
    if from_cargo.is_file() {
        return Ok(from_cargo);
    }
    let exe = std::env::current_exe()?;
    if let Some(profile_dir) = exe.parent().and_then(Path::parent) {
        let sibling = profile_dir.join("sf-hub");
        if sibling.is_file() {
            return Ok(sibling);
        }
    }
    bail!(
        "the sf-hub binary is missing (looked for {}); build it first with \
         `cargo build --release -p sf-hub`",
        from_cargo.display()
    )
}
