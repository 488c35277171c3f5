//! What the deployment checks need besides [`crate::Hub`] and
//! [`crate::Agent`]: where the repository's deployment files are, a private
//! PostgreSQL database, a hub started with a chosen environment (so it can
//! run on PostgreSQL, or with a compose service's variables), and a real
//! Prometheus.
//!
//! A service that is not installed skips the test with a loud line, except
//! in CI (`CI` set), where it fails it: see [`unavailable`].

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::Connection;

use crate::bins::binary;
use crate::converge::http_client;
use crate::process::PROCESS_DEADLINE;

/// The repository whose `dashboards/` and `compose/` are checked:
/// `SF_REPO_ROOT`, or this workspace. Point it at a modified copy to see a
/// check fail.
pub fn repo_root() -> PathBuf {
    match std::env::var_os("SF_REPO_ROOT") {
        Some(root) => PathBuf::from(root),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the e2e crate lives in the workspace")
            .to_path_buf(),
    }
}

/// Whether we run in CI (`CI` set to anything but `false`, `0` or nothing),
/// where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// A service a test needs is missing: panics in CI, otherwise prints a loud
/// `skipped` line (the caller then returns).
pub fn unavailable(test: &str, what: &str, how: &str) {
    if in_ci() {
        panic!("{test}: {what}; CI must run this check: {how}");
    }
    eprintln!(
        "\n==================== skipped: {test}: {what} ====================\n\
         {how}\n"
    );
}

/// `name` as an executable in a folder of `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            fs::metadata(candidate).is_ok_and(|m| {
                m.is_file()
                    && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            })
        })
}

/// A free TCP port on 127.0.0.1 (free when asked: a child told to use it
/// may still lose a race, so callers retry).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// The parts of a `postgres://user:password@host:port/database?…` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgUrl {
    pub user: String,
    pub password: Option<String>,
    pub host: String,
    pub port: u16,
    pub database: String,
}

impl PgUrl {
    pub fn parse(url: &str) -> Result<PgUrl, String> {
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .ok_or_else(|| format!("{url} is not a postgres:// URL"))?;
        let rest = rest.split_once('?').map_or(rest, |(r, _)| r);
        let (authority, database) = rest
            .split_once('/')
            .ok_or_else(|| format!("{url} names no database"))?;
        let (user_info, host_port) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (user, password) = match user_info {
            Some(info) => match info.split_once(':') {
                Some((u, p)) => (percent_decode(u), Some(percent_decode(p))),
                None => (percent_decode(info), None),
            },
            None => ("postgres".to_owned(), None),
        };
        let (host, port) = match host_port.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() => (
                h.to_owned(),
                p.parse().map_err(|_| format!("bad port in {url}"))?,
            ),
            _ => (host_port.to_owned(), 5432),
        };
        Ok(PgUrl {
            user,
            password,
            host: if host.is_empty() {
                "localhost".to_owned()
            } else {
                host
            },
            port,
            database: percent_decode(database),
        })
    }
}

fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = raw.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A PostgreSQL database made for one test (`sf_e2e_<pid>_<n>`) on the
/// server of `SF_TEST_DATABASE_URL`, dropped when this is dropped.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDatabase {
    /// `None`, after [`unavailable`], when `SF_TEST_DATABASE_URL` is unset.
    pub async fn create(test: &str) -> Option<PgDatabase> {
        let Ok(admin_url) = std::env::var("SF_TEST_DATABASE_URL") else {
            unavailable(
                test,
                "SF_TEST_DATABASE_URL is unset",
                "set SF_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test (any database \
                 on a server where that user may CREATE DATABASE)",
            );
            return None;
        };
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "sf_e2e_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to SF_TEST_DATABASE_URL={admin_url}: {e}"));
        // The name holds our pid: a leftover of that name is a dead run's.
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&mut admin)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        let _ = admin.close().await;
        let url = match admin_url.rsplit_once('/') {
            Some((server, db)) => {
                let query = db
                    .split_once('?')
                    .map(|(_, q)| format!("?{q}"))
                    .unwrap_or_default();
                format!("{server}/{name}{query}")
            }
            None => panic!("SF_TEST_DATABASE_URL has no database part: {admin_url}"),
        };
        eprintln!("PostgreSQL database {name} created");
        Some(PgDatabase {
            admin_url,
            name,
            url,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn parts(&self) -> PgUrl {
        PgUrl::parse(&self.url).unwrap_or_else(|e| panic!("{e}"))
    }

    pub async fn connect(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.name))
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop cannot await: a short-lived runtime on its own thread.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            runtime.block_on(async {
                if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut admin)
                    .await;
                }
            });
        })
        .join();
    }
}

/// A child's output in a log file, its tail printed if the test panics.
struct ChildLog {
    path: PathBuf,
}

impl ChildLog {
    fn stdio(&self) -> (Stdio, Stdio) {
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .expect("open a log file");
        let copy = file.try_clone().expect("clone a log file handle");
        (Stdio::from(copy), Stdio::from(file))
    }

    fn read(&self) -> String {
        fs::read(&self.path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    fn print_tail(&self, what: &str) {
        let text = self.read();
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(40)..];
        eprintln!(
            "--- last {} lines of {what} ({}) ---\n{}\n--- end of {what} ---",
            tail.len(),
            self.path.display(),
            tail.join("\n")
        );
    }
}

fn kill_child(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

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
    child: Option<Child>,
    _home: tempfile::TempDir,
    log: ChildLog,
    url: String,
    metrics: SocketAddr,
    ready: serde_json::Value,
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
        let log = ChildLog {
            path: home.path().join("sf-hub.log"),
        };
        let (stdout, stderr) = log.stdio();
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
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        let child = command
            .spawn()
            .map_err(|e| format!("cannot spawn sf-hub: {e}"))?;
        eprintln!("sf-hub pid {} (environment: {:?})", child.id(), env.keys());
        let mut hub = HubProcess {
            child: Some(child),
            _home: home,
            log,
            url: String::new(),
            metrics: SocketAddr::from(([127, 0, 0, 1], 0)),
            ready: serde_json::Value::Null,
        };
        hub.wait_ready().await?;
        if let Some(token) = hub_token(env, args) {
            crate::tokens::register(&hub.url, &token);
        }
        Ok(hub)
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + PROCESS_DEADLINE;
        let (api, metrics) = loop {
            let text = self.log.read();
            if let Some(line) = text.lines().find(|l| l.contains("hub listening")) {
                let field = |name: &str| -> Result<SocketAddr, String> {
                    let value = line
                        .split_whitespace()
                        .find_map(|w| w.strip_prefix(name))
                        .ok_or_else(|| format!("no {name} in the log line {line:?}"))?;
                    let addr: SocketAddr = value
                        .parse()
                        .map_err(|e| format!("{name}{value} in {line:?}: {e}"))?;
                    // A hub on 0.0.0.0 is reached on loopback.
                    Ok(if addr.ip().is_unspecified() {
                        SocketAddr::from(([127, 0, 0, 1], addr.port()))
                    } else {
                        addr
                    })
                };
                break (field("api=")?, field("metrics=")?);
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
        self.url = format!("http://{api}");
        self.metrics = metrics;
        let http = http_client();
        loop {
            if let Ok(resp) = http.get(format!("{}/readyz", self.url)).send().await
                && resp.status().is_success()
            {
                self.ready = resp
                    .json()
                    .await
                    .map_err(|e| format!("/readyz is not JSON: {e}"))?;
                eprintln!("sf-hub ready at {}: {}", self.url, self.ready);
                return Ok(());
            }
            if let Some(status) = self.exited() {
                return Err(format!(
                    "sf-hub exited before it was ready, with {status}; log:\n{}",
                    self.log.read()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "sf-hub not ready within {PROCESS_DEADLINE:?}; log:\n{}",
                    self.log.read()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    /// `http://127.0.0.1:<api port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The metrics listener, `127.0.0.1:<port>` (scrape `/metrics`).
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics
    }

    /// The first `/readyz` answer (`{"status":"ready","database":…}`).
    pub fn ready(&self) -> &serde_json::Value {
        &self.ready
    }

    pub fn log(&self) -> String {
        self.log.read()
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        kill_child(&mut self.child);
        if std::thread::panicking() {
            self.log.print_tail(&format!("sf-hub at {}", self.url));
        }
    }
}

/// A real Prometheus (`SF_PROMETHEUS_BIN`, or `prometheus` on `PATH`)
/// scraping given targets, its data and log in a folder of the sandbox.
pub struct Prometheus {
    child: Option<Child>,
    log: ChildLog,
    url: String,
    http: reqwest::Client,
}

impl Prometheus {
    /// Where the Prometheus binary is, if installed.
    pub fn binary() -> Option<PathBuf> {
        match std::env::var_os("SF_PROMETHEUS_BIN") {
            Some(path) => Some(PathBuf::from(path)),
            None => find_on_path("prometheus"),
        }
    }

    /// Starts Prometheus in `dir` scraping `/metrics` of every `(job,
    /// host:port)` every `interval`, on a free port of 127.0.0.1, and waits
    /// for `/-/ready`.
    pub async fn start(
        binary: &Path,
        dir: &Path,
        targets: &[(&str, SocketAddr)],
        interval: Duration,
    ) -> Prometheus {
        fs::create_dir_all(dir).expect("create the Prometheus folder");
        let interval_ms = interval.as_millis();
        let mut config = format!(
            "global:\n  scrape_interval: {interval_ms}ms\n  scrape_timeout: {interval_ms}ms\n  \
             evaluation_interval: {interval_ms}ms\n\
             scrape_configs:\n"
        );
        for (job, addr) in targets {
            config.push_str(&format!(
                "  - job_name: {job}\n    metrics_path: /metrics\n    static_configs:\n      \
                 - targets: ['{addr}']\n"
            ));
        }
        let config_path = dir.join("prometheus.yml");
        fs::write(&config_path, config).expect("write prometheus.yml");
        let log = ChildLog {
            path: dir.join("prometheus.log"),
        };
        let mut attempts = 0;
        loop {
            attempts += 1;
            let port = free_port();
            let (stdout, stderr) = log.stdio();
            let child = Command::new(binary)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .current_dir(dir)
                .stdin(Stdio::null())
                .stdout(stdout)
                .stderr(stderr)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
            eprintln!("prometheus pid {} on 127.0.0.1:{port}", child.id());
            let mut prometheus = Prometheus {
                child: Some(child),
                log: ChildLog {
                    path: log.path.clone(),
                },
                url: format!("http://127.0.0.1:{port}"),
                http: http_client(),
            };
            match prometheus.wait_ready().await {
                Ok(()) => return prometheus,
                // Another process took the port between our probe and its bind.
                Err(err) if err.contains("address already in use") && attempts < 5 => {
                    eprintln!("prometheus lost port {port}; retrying");
                }
                Err(err) => panic!("{err}"),
            }
        }
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + PROCESS_DEADLINE;
        loop {
            if let Ok(resp) = self.http.get(format!("{}/-/ready", self.url)).send().await
                && resp.status().is_success()
            {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!(
                    "prometheus exited during start-up with {status}; log:\n{}",
                    self.log.read()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "prometheus not ready within {PROCESS_DEADLINE:?}; log:\n{}",
                    self.log.read()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Waits until the `job` target is up and Prometheus holds at least
    /// `samples` scrapes of it from the last minute.
    pub async fn wait_scraped(&self, job: &str, samples: u32, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let targets = self.get("/api/v1/targets", &[]).await;
            let up = targets.as_ref().is_ok_and(|t| {
                t["data"]["activeTargets"].as_array().is_some_and(|all| {
                    all.iter()
                        .any(|t| t["labels"]["job"] == job && t["health"] == "up")
                })
            });
            let last = if up {
                let count = self
                    .query(&format!("count_over_time(up{{job=\"{job}\"}}[1m])"))
                    .await
                    .ok()
                    .and_then(|r| {
                        r["data"]["result"][0]["value"][1]
                            .as_str()
                            .and_then(|v| v.parse::<f64>().ok())
                    })
                    .unwrap_or(0.0);
                if count >= f64::from(samples) {
                    eprintln!("prometheus holds {count} scrapes of {job}");
                    return;
                }
                format!("{job} is up, {count} scrapes so far")
            } else {
                format!("targets: {targets:?}")
            };
            assert!(
                Instant::now() < deadline,
                "prometheus did not scrape {job} {samples} times within {timeout:?}: {last}\nlog:\n{}",
                self.log.read()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// `GET /api/v1/query?query=expr` at the current time: the whole JSON
    /// answer (also for an error status, whose body says why).
    pub async fn query(&self, expr: &str) -> Result<serde_json::Value, String> {
        self.get("/api/v1/query", &[("query", expr)]).await
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<serde_json::Value, String> {
        let resp = self
            .http
            .get(format!("{}{path}", self.url))
            .query(query)
            .send()
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| format!("GET {path}: {e}"))?;
        serde_json::from_str(&body).map_err(|e| format!("GET {path}: {status}: {e}: {body}"))
    }

    pub fn log(&self) -> String {
        self.log.read()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        kill_child(&mut self.child);
        if std::thread::panicking() {
            self.log.print_tail("prometheus");
        }
    }
}

/// One query of a Grafana dashboard in `dashboards/json/`.
#[derive(Debug, Clone)]
pub struct DashboardTarget {
    /// The file's name, e.g. `hub-metrics.json`.
    pub file: String,
    pub panel_id: Option<i64>,
    pub panel_title: String,
    pub ref_id: String,
    /// The target's datasource uid, else its panel's.
    pub datasource_uid: Option<String>,
    /// The whole target object.
    pub target: serde_json::Value,
}

impl DashboardTarget {
    /// `hub-metrics.json, panel 3 "Uploads (range)", target A`.
    pub fn label(&self) -> String {
        format!(
            "{}, panel {} {:?}, target {}",
            self.file,
            self.panel_id.map_or("?".to_owned(), |id| id.to_string()),
            self.panel_title,
            self.ref_id
        )
    }

    /// The PromQL (`expr`), if this is a Prometheus query.
    pub fn expr(&self) -> Option<&str> {
        self.target["expr"].as_str()
    }

    /// The SQL (`rawSql`), if this is an SQL query.
    pub fn raw_sql(&self) -> Option<&str> {
        self.target["rawSql"].as_str()
    }

    /// The target's `format` (`time_series`, `table`), if set.
    pub fn format(&self) -> Option<&str> {
        self.target["format"].as_str()
    }
}

/// Every `dashboards/json/*.json` under `root`, sorted, parsed.
pub fn load_dashboards(root: &Path) -> Result<Vec<(String, serde_json::Value)>, String> {
    let dir = root.join("dashboards/json");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no dashboards (*.json) in {}", dir.display()));
    }
    files
        .into_iter()
        .map(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let json = serde_json::from_str(&text)
                .map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
            Ok((name, json))
        })
        .collect()
}

/// Every panel of a dashboard, rows' nested panels (collapsed rows, and the
/// old `rows[].panels` layout) included.
pub fn dashboard_panels(dashboard: &serde_json::Value) -> Vec<&serde_json::Value> {
    fn walk<'a>(panels: &'a serde_json::Value, out: &mut Vec<&'a serde_json::Value>) {
        for panel in panels.as_array().into_iter().flatten() {
            out.push(panel);
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    for row in dashboard["rows"].as_array().into_iter().flatten() {
        walk(&row["panels"], &mut out);
    }
    out
}

/// Every target of every panel of every dashboard under `root`.
pub fn dashboard_targets(root: &Path) -> Result<Vec<DashboardTarget>, String> {
    let mut out = Vec::new();
    for (file, dashboard) in load_dashboards(root)? {
        for panel in dashboard_panels(&dashboard) {
            let panel_uid = panel["datasource"]["uid"].as_str();
            for target in panel["targets"].as_array().into_iter().flatten() {
                out.push(DashboardTarget {
                    file: file.clone(),
                    panel_id: panel["id"].as_i64(),
                    panel_title: panel["title"].as_str().unwrap_or_default().to_owned(),
                    ref_id: target["refId"].as_str().unwrap_or("?").to_owned(),
                    datasource_uid: target["datasource"]["uid"]
                        .as_str()
                        .or(panel_uid)
                        .map(str::to_owned),
                    target: target.clone(),
                });
            }
        }
    }
    Ok(out)
}
