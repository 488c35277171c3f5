//! The hub and agents as child processes, and the sandbox they work in.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::bins::binary;
use crate::converge::http_client;

/// Bound for a process to start or exit: a hang guard, not a speed check.
pub const PROCESS_DEADLINE: Duration = Duration::from_secs(60);

/// Every variable the hub reads: cleared so the caller's environment never
/// leaks into a test.
const HUB_ENV: &[&str] = &[
    "SF_LISTEN",
    "SF_METRICS_LISTEN",
    "SF_DATA_DIR",
    "SF_MAX_FILE_SIZE",
    "SF_DATABASE_TIMEOUT",
    "DATABASE_URL",
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
];

/// Every variable the agent reads.
const AGENT_ENV: &[&str] = &[
    "SERVER_URL",
    "SYNC_DIR",
    "SCAN_INTERVAL",
    "SF_AGENT_NAME",
    "SF_DEBOUNCE_MS",
    "SF_AGENT_HOME",
    "XDG_STATE_HOME",
    "SF_TOKEN",
    "SF_TOKEN_FILE",
    "SF_CA_CERT",
];

fn child_rust_log() -> String {
    std::env::var("SF_E2E_RUST_LOG").unwrap_or_else(|_| "info".to_owned())
}

fn log_lines_on_failure() -> usize {
    std::env::var("SF_E2E_LOG_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

/// A temporary directory for one test: hub data, folders, staging areas.
/// Also timestamps the test's progress messages.
pub struct Sandbox {
    root: Option<tempfile::TempDir>,
    path: PathBuf,
    started: Instant,
}

impl Sandbox {
    pub fn new(test: &str) -> Self {
        let root = tempfile::Builder::new()
            .prefix(&format!("sf-e2e-{test}-"))
            .tempdir()
            .expect("create the sandbox");
        let path = root.path().to_path_buf();
        eprintln!("[{test}] sandbox {}", path.display());
        Self {
            root: Some(root),
            path,
            started: Instant::now(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `<sandbox>/<name>`, created (with parents) if missing.
    pub fn dir(&self, name: &str) -> PathBuf {
        let dir = self.path.join(name);
        fs::create_dir_all(&dir).expect("create a sandbox folder");
        dir
    }

    /// Prints a progress line with the time since the test started.
    pub fn step(&self, what: &str) {
        eprintln!("[{:>7.2}s] {what}", self.started.elapsed().as_secs_f64());
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if std::env::var_os("SF_E2E_KEEP").is_some()
            && let Some(root) = self.root.take()
        {
            eprintln!("kept the sandbox {}", root.keep().display());
        }
    }
}

/// With `SF_E2E_KEEP` set, tells the temp dir not to delete itself.
fn keep_if_asked(dir: &mut tempfile::TempDir) {
    if std::env::var_os("SF_E2E_KEEP").is_some() {
        dir.disable_cleanup(true);
        eprintln!("kept {}", dir.path().display());
    }
}

/// A child's log file: stdout and stderr of every run, appended, with a
/// harness line before each run.
struct LogFile {
    path: PathBuf,
}

impl LogFile {
    fn len(&self) -> u64 {
        fs::metadata(&self.path).map_or(0, |m| m.len())
    }

    /// Appends a harness line; returns where the next run's output starts.
    fn mark(&self, line: &str) -> u64 {
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .expect("open a log file");
        writeln!(file, "=== e2e: {line} ===").expect("write a log file");
        self.len()
    }

    fn stdio(&self) -> (Stdio, Stdio) {
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .expect("open a log file");
        let copy = file.try_clone().expect("clone a log file handle");
        (Stdio::from(copy), Stdio::from(file))
    }

    fn read_from(&self, offset: u64) -> String {
        let Ok(bytes) = fs::read(&self.path) else {
            return String::new();
        };
        let start = (offset as usize).min(bytes.len());
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }

    fn tail(&self, lines: usize) -> String {
        let text = self.read_from(0);
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

fn print_tail(what: &str, log: &LogFile) {
    let lines = log_lines_on_failure();
    eprintln!(
        "--- last {lines} lines of {what} ({}) ---\n{}\n--- end of {what} ---",
        log.path.display(),
        log.tail(lines)
    );
}

/// The `sf-hub` binary as a child process (SQLite in its data dir).
pub struct Hub {
    data_dir: PathBuf,
    home: tempfile::TempDir,
    log: LogFile,
    child: Option<Child>,
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
}

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
        let log = LogFile {
            path: home.path().join("sf-hub.log"),
        };
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

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The hub's first-start write token file, which agents get as
    /// `--token-file`.
    pub fn token_file(&self) -> PathBuf {
        self.data_dir.join("agent-token")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        self.log.read_from(0)
    }

    /// The write token the hub made on its first start.
    pub fn token(&self) -> String {
        fs::read_to_string(self.token_file())
            .expect("the hub's first-start token")
            .trim()
            .to_owned()
    }

    /// SIGKILL (what `Child::kill` sends on Unix): no shutdown code runs.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id();
            child.kill().expect("SIGKILL sf-hub");
            let status = child.wait().expect("reap sf-hub");
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
        let offset = self.log.mark(&format!("starting sf-hub --listen {listen}"));
        let (stdout, stderr) = self.log.stdio();
        let mut command = Command::new(binary("sf-hub"));
        for name in HUB_ENV {
            command.env_remove(name);
        }
        command
            .env("RUST_LOG", child_rust_log())
            .env_remove("RUST_BACKTRACE")
            .current_dir(&self.data_dir)
            .args(["--listen", listen, "--metrics-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.options.args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        let child = command
            .spawn()
            .map_err(|e| format!("cannot spawn sf-hub: {e}"))?;
        let pid = child.id();
        self.child = Some(child);

        let deadline = Instant::now() + PROCESS_DEADLINE;
        let api = loop {
            let text = self.log.read_from(offset);
            if let Some(line) = text.lines().find(|l| l.contains("hub listening")) {
                let api = line
                    .split_whitespace()
                    .find_map(|word| word.strip_prefix("api="))
                    .ok_or_else(|| format!("no api= in the log line {line:?}"))?;
                break api.to_owned();
            }
            if let Some(status) = self.exited() {
                return Err(format!(
                    "sf-hub exited during start-up with {status}; log:\n{text}"
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "sf-hub did not log `hub listening` within {PROCESS_DEADLINE:?}; log:\n{text}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let port: u16 = api
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("cannot read a port from api={api}"))?;
        if self.port != 0 && port != self.port {
            return Err(format!(
                "sf-hub restarted on port {port}, not {}",
                self.port
            ));
        }
        self.port = port;
        self.url = match self.options.tls_ca_pem {
            None => format!("http://127.0.0.1:{port}"),
            Some(_) => format!("https://localhost:{port}"),
        };
        loop {
            if let Ok(resp) = self.http.get(format!("{}/readyz", self.url)).send().await
                && resp.status().is_success()
            {
                break;
            }
            if let Some(status) = self.exited() {
                return Err(format!(
                    "sf-hub exited before it was ready, with {status}; log:\n{}",
                    self.log.read_from(offset)
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("sf-hub not ready within {PROCESS_DEADLINE:?}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Made by the hub's first start, before it serves; kept across restarts.
        let token = fs::read_to_string(self.token_file())
            .map_err(|e| format!("cannot read the hub's first-start token: {e}"))?;
        crate::tokens::register(&self.url, token.trim());
        eprintln!("sf-hub pid {pid} ready at {}", self.url);
        Ok(())
    }

    /// The exit status if the child has exited (and forgets the child).
    fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().expect("poll sf-hub")?;
        self.child = None;
        Some(status)
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            print_tail(&format!("sf-hub at {}", self.url), &self.log);
        }
        keep_if_asked(&mut self.home);
    }
}

/// The `sf-agent` binary syncing one folder, with its own state home (so
/// the folder registry of one test never meets another's).
pub struct Agent {
    name: String,
    dir: PathBuf,
    hub_url: String,
    extra_args: Vec<String>,
    home: tempfile::TempDir,
    log: LogFile,
    child: Option<Child>,
    /// Where the current (or last) run's output starts in the log.
    run_offset: u64,
}

impl Agent {
    /// Starts `sf-agent --hub hub_url --dir dir --name name extra_args…` and
    /// waits until it logs `agent started` (its watcher is then in place).
    pub async fn start(hub_url: &str, dir: &Path, name: &str, extra_args: &[&str]) -> Agent {
        let home = tempfile::Builder::new()
            .prefix(&format!("sf-e2e-agent-{name}-"))
            .tempdir()
            .expect("a state home for the agent");
        let log = LogFile {
            path: home.path().join(format!("sf-agent-{name}.log")),
        };
        let mut agent = Agent {
            name: name.to_owned(),
            dir: dir.to_path_buf(),
            hub_url: hub_url.to_owned(),
            extra_args: extra_args.iter().map(|s| (*s).to_owned()).collect(),
            home,
            log,
            child: None,
            run_offset: 0,
        };
        agent.restart().await;
        agent
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Where this agent keeps its folder registry (`--state-home`).
    pub fn state_home(&self) -> PathBuf {
        self.home.path().join("state")
    }

    /// Launches the agent again with the same folder, name, arguments and
    /// state home, without waiting for it to start.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "agent {} is still running", self.name);
        self.run_offset = self.log.mark(&format!("starting sf-agent {}", self.name));
        let (stdout, stderr) = self.log.stdio();
        let mut command = Command::new(binary("sf-agent"));
        for name in AGENT_ENV {
            command.env_remove(name);
        }
        command
            .env("RUST_LOG", child_rust_log())
            .env_remove("RUST_BACKTRACE")
            .current_dir(self.home.path())
            .arg("--hub")
            .arg(&self.hub_url)
            .arg("--dir")
            .arg(&self.dir)
            .arg("--name")
            .arg(&self.name)
            .arg("--state-home")
            .arg(self.state_home())
            .args(self.token_args())
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        let child = command.spawn().expect("spawn sf-agent");
        eprintln!(
            "sf-agent {} pid {} on {}",
            self.name,
            child.id(),
            self.dir.display()
        );
        self.child = Some(child);
    }

    /// `--token-file` with the token the harness knows for the agent's hub
    /// (written to a private file in the agent's home), unless the test
    /// passes its own token arguments.
    fn token_args(&self) -> Vec<std::ffi::OsString> {
        let own = self
            .extra_args
            .iter()
            .any(|a| a.starts_with("--token-file"));
        let Some(token) = crate::tokens::token_for(&self.hub_url).filter(|_| !own) else {
            return Vec::new();
        };
        let path = self.home.path().join("hub-token");
        fs::write(&path, format!("{token}\n")).expect("write the agent's token file");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
                .expect("make the token file private");
        }
        vec!["--token-file".into(), path.into_os_string()]
    }

    /// [`Agent::spawn`], then waits for `agent started`.
    pub async fn restart(&mut self) {
        self.spawn();
        self.wait_started().await;
    }

    /// Waits until the current run logs `agent started`; panics if it exits.
    pub async fn wait_started(&mut self) {
        let deadline = Instant::now() + PROCESS_DEADLINE;
        loop {
            if self.log_of_run().contains("agent started") {
                return;
            }
            if let Some(status) = self.exited() {
                panic!(
                    "sf-agent {} exited during start-up with {status}; log:\n{}",
                    self.name,
                    self.log_of_run()
                );
            }
            assert!(
                Instant::now() < deadline,
                "sf-agent {} did not log `agent started` within {PROCESS_DEADLINE:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The output of the current (or last) run.
    pub fn log_of_run(&self) -> String {
        self.log.read_from(self.run_offset)
    }

    /// The output of every run.
    pub fn log(&self) -> String {
        self.log.read_from(0)
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id();
            child.kill().expect("SIGKILL sf-agent");
            let status = child.wait().expect("reap sf-agent");
            eprintln!("sf-agent {} pid {pid} killed ({status})", self.name);
            self.log.mark(&format!("SIGKILLed pid {pid}"));
        }
    }

    /// SIGTERM (through `kill -TERM <pid>`), then waits for the exit.
    pub async fn stop(&mut self) -> ExitStatus {
        let pid = self
            .child
            .as_ref()
            .unwrap_or_else(|| panic!("agent {} is not running", self.name))
            .id();
        let sent = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(sent.success(), "kill -TERM {pid} failed: {sent}");
        let status = self.wait_exit(PROCESS_DEADLINE).await;
        eprintln!("sf-agent {} pid {pid} stopped ({status})", self.name);
        status
    }

    /// Waits up to `timeout` for the agent to exit on its own; panics (after
    /// a SIGKILL) if it is still running then.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            if Instant::now() > deadline {
                self.kill();
                panic!(
                    "sf-agent {} still running after {timeout:?}; killed it",
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether the process is still running (an unexpected exit is logged).
    pub fn is_running(&mut self) -> bool {
        match self.exited() {
            Some(status) => {
                eprintln!("sf-agent {} exited on its own: {status}", self.name);
                false
            }
            None => self.child.is_some(),
        }
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().expect("poll sf-agent")?;
        self.child = None;
        self.log.mark(&format!("exited with {status}"));
        Some(status)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            print_tail(&format!("sf-agent {}", self.name), &self.log);
        }
        keep_if_asked(&mut self.home);
    }
}

/// One hub and two agents, `a` and `b`, each on a fresh folder of the
/// sandbox and started with `agent_args`: where most scenarios begin.
pub struct TwoAgents {
    pub hub: Hub,
    pub a_dir: PathBuf,
    pub b_dir: PathBuf,
    pub a: Agent,
    pub b: Agent,
}

impl TwoAgents {
    pub async fn start(sandbox: &Sandbox, agent_args: &[&str]) -> TwoAgents {
        let hub = Hub::start(&sandbox.dir("hub")).await;
        let a_dir = sandbox.dir("a");
        let b_dir = sandbox.dir("b");
        let a = Agent::start(hub.url(), &a_dir, "a", agent_args).await;
        let b = Agent::start(hub.url(), &b_dir, "b", agent_args).await;
        TwoAgents {
            hub,
            a_dir,
            b_dir,
            a,
            b,
        }
    }
}
