//! The real `sf-hub` binary of this package as a child process, on top of
//! `sf-test-support`'s [`HubChild`]: every hub here knows one bootstrap
//! token ([`test_token`]) and logs at info; [`ChildGuard`] runs a hub that
//! is expected to exit (a start-up failure) and collects its stderr.

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use sf_test_support::{HubChild, LogFile, Process};

pub use sf_test_support::{Content, PROCESS_DEADLINE, free_port};

/// The hub binary cargo built for these tests.
fn hub_exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_sf-hub"))
}

/// The token every hub these tests start knows (as its bootstrap token):
/// made once per test process by `sf-hub token generate`.
pub fn test_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| {
        let out = Command::new(hub_exe())
            .args(["token", "generate"])
            .output()
            .expect("run sf-hub token generate");
        assert!(
            out.status.success(),
            "sf-hub token generate failed: {out:?}"
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    })
}

/// A client sending [`test_token`] on every request.
pub fn authorized_client() -> reqwest::Client {
    sf_test_support::bearer_client(test_token())
}

/// A command for the hub binary with a clean environment, logging at info,
/// run from `cwd` (so a `./data` fallback can never land in the repository).
pub fn hub_command(cwd: &Path) -> Command {
    let mut command = sf_test_support::hub_command(hub_exe(), cwd);
    command
        .env("SF_HUB_BOOTSTRAP_TOKEN", test_token())
        .env("RUST_LOG", "info");
    command
}

/// `hub_command` listening on port 0 with `data_dir`, and `database_url`
/// when given (SQLite in the data dir otherwise).
pub fn hub_command_on(data_dir: &Path, database_url: Option<&str>) -> Command {
    let mut command = hub_command(data_dir);
    command.args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"]);
    command.arg("--data-dir").arg(data_dir);
    if let Some(url) = database_url {
        command.args(["--database-url", url]);
    }
    command
}

/// Runs `sf-hub check` (with `--repair` when `repair`) on `data_dir` and
/// `database_url`, beside a hub that may be running: its exit status and
/// its report.
pub fn run_check(
    data_dir: &Path,
    database_url: Option<&str>,
    repair: bool,
) -> (std::process::ExitStatus, String) {
    let mut command = hub_command(data_dir);
    command.arg("check").arg("--data-dir").arg(data_dir);
    if let Some(url) = database_url {
        command.args(["--database-url", url]);
    }
    if repair {
        command.arg("--repair");
    }
    let out = command.output().expect("run sf-hub check");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    let log = String::from_utf8_lossy(&out.stderr);
    (out.status, format!("{report}\n(stderr: {log})"))
}

/// A running hub process. Dropping it kills (SIGKILL) and reaps the child,
/// also when the test panics, and then prints the end of its log.
pub struct HubProcess {
    child: HubChild,
    pub base: String,
    pub metrics_url: String,
    /// Which back end `/readyz` reported: `sqlite` or `postgres`.
    pub database: String,
    pub http: reqwest::Client,
    // Last: the log outlives the child, whose drop prints its tail.
    _logs: tempfile::TempDir,
}

impl HubProcess {
    /// Spawns `command`, reads the listening addresses from its log and waits
    /// until `/readyz` answers 200.
    pub async fn start(command: Command) -> Self {
        let logs = tempfile::Builder::new()
            .prefix("sf-hub-test-log-")
            .tempdir()
            .expect("a folder for the hub's log");
        let log = LogFile::new(logs.path().join("sf-hub.log"));
        let http = authorized_client();
        let mut child = HubChild::start(command, log, &http)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        child.set_tail_lines(60);
        let hub = Self {
            base: child.url().to_owned(),
            metrics_url: child.metrics_url(),
            database: child.database().to_owned(),
            http,
            child,
            _logs: logs,
        };
        eprintln!(
            "hub pid {} listening on {} ({}), metrics {}",
            hub.pid(),
            hub.base,
            hub.database,
            hub.metrics_url
        );
        hub
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGKILL (what `Child::kill` sends on Unix): no shutdown code runs.
    pub fn sigkill(mut self) -> ExitStatus {
        self.child.sigkill().expect("sf-hub was still running")
    }

    /// The peak resident set size of the hub so far (`VmHWM`), in bytes.
    pub fn peak_rss(&self) -> u64 {
        self.child
            .peak_rss_kib()
            .expect("VmHWM of the hub in /proc/<pid>/status")
            * 1024
    }
}

/// A child process that is killed and reaped when dropped, with its stderr
/// collected in a file (so a chatty child never blocks on a full pipe).
pub struct ChildGuard {
    process: Process,
    stderr: LogFile,
    _dir: tempfile::TempDir,
}

impl ChildGuard {
    pub fn spawn(mut command: Command) -> Self {
        let dir = tempfile::tempdir().expect("a folder for the child's stderr");
        let stderr = LogFile::new(dir.path().join("stderr"));
        command.stdout(Stdio::null()).stderr(stderr.stdio().1);
        let process = Process::spawn(&mut command).expect("spawn sf-hub");
        Self {
            process,
            stderr,
            _dir: dir,
        }
    }

    /// Waits up to `deadline` for the child to exit; returns its status and
    /// everything it wrote to stderr. Panics (after killing it) if it is
    /// still running then.
    pub async fn wait_exit(mut self, deadline: Duration) -> (ExitStatus, String) {
        let status = self
            .process
            .wait_exit(deadline)
            .await
            .unwrap_or_else(|| panic!("sf-hub still running after {deadline:?}"));
        (status, self.stderr.read())
    }
}
