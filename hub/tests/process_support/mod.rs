//! Runs the real `sf-hub` binary as a child process: a guard that always
//! kills it, start-up through the log line and `/readyz`, and a deterministic
//! content generator that never holds a whole file in memory.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Generous bound for start-up and exit: a hang guard, not a speed check.
pub const PROCESS_DEADLINE: Duration = Duration::from_secs(60);

/// Every variable the hub reads from its environment: cleared for each child
/// so the developer's or CI's environment never leaks into a test.
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

/// The token every hub these tests start knows (as its bootstrap token):
/// made once per test process by `sf-hub token generate`.
pub fn test_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sf-hub"))
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
    let mut headers = reqwest::header::HeaderMap::new();
    let mut value =
        reqwest::header::HeaderValue::from_str(&format!("Bearer {}", test_token())).unwrap();
    value.set_sensitive(true);
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// A command for the hub binary with a clean environment, logging at info,
/// run from `cwd` (so a `./data` fallback can never land in the repository).
pub fn hub_command(cwd: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sf-hub"));
    for name in HUB_ENV {
        command.env_remove(name);
    }
    command
        .env("SF_HUB_BOOTSTRAP_TOKEN", test_token())
        .env("RUST_LOG", "info")
        // What an operator sees by default: no backtraces in error reports.
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .current_dir(cwd)
        .stdin(Stdio::null());
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

/// A running hub process. Dropping it kills (SIGKILL) and reaps the child,
/// also when the test panics, and then prints the end of its log.
pub struct HubProcess {
    child: Child,
    pub base: String,
    pub metrics_url: String,
    /// Which back end `/readyz` reported: `sqlite` or `postgres`.
    pub database: String,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    pub http: reqwest::Client,
}

impl HubProcess {
    /// Spawns `command`, reads the listening addresses from its log and waits
    /// until `/readyz` answers 200.
    pub async fn start(mut command: Command) -> Self {
        command.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn sf-hub");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let mut hub = Self {
            child,
            base: String::new(),
            metrics_url: String::new(),
            database: String::new(),
            log,
            reader: Some(reader),
            http: authorized_client(),
        };
        let (api, metrics) = hub.wait_listening().await;
        hub.base = format!("http://{api}");
        hub.metrics_url = format!("http://{metrics}/metrics");
        hub.database = hub.wait_ready().await;
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
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The hub's log so far, one line per entry.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits for `hub listening api=… metrics=…` and returns both addresses.
    async fn wait_listening(&mut self) -> (String, String) {
        let deadline = Instant::now() + PROCESS_DEADLINE;
        loop {
            let found = self
                .log
                .lock()
                .unwrap()
                .iter()
                .find(|line| line.contains("hub listening"))
                .cloned();
            if let Some(line) = found {
                let field = |name: &str| {
                    line.split_whitespace()
                        .find_map(|word| word.strip_prefix(name))
                        .unwrap_or_else(|| panic!("no {name} in the log line {line:?}"))
                        .to_owned()
                };
                return (field("api="), field("metrics="));
            }
            if let Some(status) = self.child.try_wait().expect("poll child") {
                panic!(
                    "sf-hub exited during start-up with {status}; log:\n{}",
                    self.log().join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "sf-hub did not log `hub listening` within {PROCESS_DEADLINE:?}; log:\n{}",
                self.log().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for `/readyz` and returns the back end it names.
    async fn wait_ready(&mut self) -> String {
        let deadline = Instant::now() + PROCESS_DEADLINE;
        loop {
            if let Ok(resp) = self.http.get(self.url("/readyz")).send().await
                && resp.status().is_success()
            {
                let body: serde_json::Value = resp.json().await.expect("readyz JSON");
                return body["database"].as_str().unwrap_or_default().to_owned();
            }
            if let Some(status) = self.child.try_wait().expect("poll child") {
                panic!(
                    "sf-hub exited before it was ready, with {status}; log:\n{}",
                    self.log().join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "sf-hub not ready within {PROCESS_DEADLINE:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL (what `Child::kill` sends on Unix): no shutdown code runs.
    pub fn sigkill(mut self) -> ExitStatus {
        self.child.kill().expect("SIGKILL sf-hub");
        self.child.wait().expect("reap sf-hub")
    }

    /// The peak resident set size of the hub so far (`VmHWM`), in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/<pid>/status of the hub");
        let line = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .expect("VmHWM in /proc/<pid>/status");
        let kib: u64 = line
            .trim_start_matches("VmHWM:")
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .expect("VmHWM in kB");
        kib * 1024
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        if std::thread::panicking() {
            let log = self.log();
            let tail = &log[log.len().saturating_sub(60)..];
            eprintln!(
                "--- last {} lines of sf-hub pid {} ---\n{}",
                tail.len(),
                self.child.id(),
                tail.join("\n")
            );
        }
    }
}

/// A child process that is killed and reaped when dropped, with its stderr
/// collected by a thread (so a chatty child never blocks on a full pipe).
pub struct ChildGuard {
    child: Child,
    stderr: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl ChildGuard {
    pub fn spawn(mut command: Command) -> Self {
        command.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn sf-hub");
        let mut pipe = child.stderr.take().expect("piped stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
            sink.lock().unwrap().push_str(&text);
        });
        Self {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    /// Waits up to `deadline` for the child to exit; returns its status and
    /// everything it wrote to stderr. Panics (after killing it) if it is
    /// still running then.
    pub async fn wait_exit(mut self, deadline: Duration) -> (ExitStatus, String) {
        let until = Instant::now() + deadline;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("poll child") {
                break status;
            }
            assert!(
                Instant::now() < until,
                "sf-hub still running after {deadline:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if let Some(reader) = self.reader.take() {
            reader.join().expect("stderr reader");
        }
        let stderr = self.stderr.lock().unwrap().clone();
        (status, stderr)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// A port nobody listens on right now (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// Deterministic, incompressible content (xorshift64), produced in blocks so
/// that arbitrarily large files never sit in memory. Different seeds never
/// share chunks.
pub struct Content {
    state: u64,
    remaining: u64,
}

impl Content {
    pub const BLOCK: usize = 64 * 1024;

    pub fn new(seed: u64, len: u64) -> Self {
        Self {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            remaining: len,
        }
    }

    /// The next block (at most `BLOCK` bytes), or `None` at the end.
    pub fn next_block(&mut self) -> Option<Vec<u8>> {
        if self.remaining == 0 {
            return None;
        }
        let n = (self.remaining as usize).min(Self::BLOCK);
        self.remaining -= n as u64;
        let mut block = vec![0u8; n];
        for word in block.chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            word.copy_from_slice(&self.state.to_le_bytes()[..word.len()]);
        }
        Some(block)
    }

    /// The whole content in memory: for small files only.
    pub fn to_vec(seed: u64, len: u64) -> Vec<u8> {
        let mut generator = Self::new(seed, len);
        let mut out = Vec::with_capacity(len as usize);
        while let Some(block) = generator.next_block() {
            out.extend_from_slice(&block);
        }
        out
    }
}

impl Iterator for Content {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        self.next_block()
    }
}
