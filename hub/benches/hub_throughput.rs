//! Hub throughput benchmark: how fast the real `sf-hub` binary commits small
//! files and moves one large file over loopback, each next to a baseline
//! measured in the same run.
//!
//! What it measures, each over `SF_BENCH_REPS` repetitions (median and
//! min–max reported):
//!
//! 1. **Small commits.** Commits per second of 1 KiB files with 1, 8 and 64
//!    concurrent clients, on SQLite and on PostgreSQL. One commit is the v1
//!    flow an agent uses: `POST /v1/chunks/missing`, `PUT /v1/chunks/{hash}`
//!    for the missing chunk, `POST /v1/commit`. Every client has its own HTTP
//!    connection pool and writes distinct paths with distinct random content.
//!    Baseline: the same client loop against `GET /healthz` (requests/s), so
//!    the HTTP overhead is visible; "vs healthz" compares the commit's three
//!    requests per commit against it.
//! 2. **One large file.** Wall time and hub peak RSS (`VmHWM`) for uploading
//!    and downloading a `SF_BENCH_BIG_MIB` file (1 GiB by default) through
//!    the legacy API (`POST /upload`, `GET /download`) and through v1
//!    (client-side chunking with `sf_protocol::chunking::Chunker`, missing,
//!    PUT, commit; `GET /v1/file`). Baseline: `cp` of the same file, and `cp`
//!    followed by an fsync of the copy (the hub fsyncs every chunk it
//!    stores). Uploads stream from the file and downloads are hashed as they
//!    arrive (and not written to disk): the benchmark never holds the file in
//!    memory, and every download's sha256 is checked against the source's.
//!
//! The hub always runs as a child process (the `sf-hub` binary cargo builds
//! next to this bench, with its default logging), on 127.0.0.1 with ports
//! picked free. For the large file a fresh hub is started for every phase,
//! so each peak RSS belongs to one phase; the large-file part runs on SQLite.
//! The client runs in this process, on the same machine: on a small machine
//! client and hub compete for the same cores.
//!
//! Run it with:
//!
//! ```text
//! cargo bench -p sf-hub --bench hub_throughput
//! SF_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo bench -p sf-hub --bench hub_throughput
//! ```
//!
//! PostgreSQL runs only when `SF_TEST_DATABASE_URL` is set: a database
//! `sf_bench_<unique>` is created on that server and dropped afterwards.
//! Sizes come from the environment (a quick smoke run:
//! `SF_BENCH_REPS=1 SF_BENCH_COMMITS=64 SF_BENCH_HEALTHZ=640 SF_BENCH_BIG_MIB=16`):
//!
//! | variable            | default  | meaning                                          |
//! |---------------------|----------|--------------------------------------------------|
//! | `SF_BENCH_REPS`     | 3        | repetitions of every measurement                 |
//! | `SF_BENCH_COMMITS`  | 1920     | commits per run, split across the clients        |
//! | `SF_BENCH_HEALTHZ`  | 20000    | `/healthz` requests per baseline run             |
//! | `SF_BENCH_CLIENTS`  | 1,8,64   | concurrency levels                               |
//! | `SF_BENCH_BIG_MIB`  | 1024     | size of the large file; 0 skips that part        |
//! | `SF_BENCH_ONLY`     | (both)   | `commits` or `big` to run one part only          |
//!
//! Temporary files go to `$TMPDIR` (default `/tmp`) and are removed at the
//! end. Outside `cargo bench` (e.g. `cargo test --all-targets`, which runs
//! bench targets without `--bench`) the program does nothing.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use reqwest::StatusCode;
use reqwest::header::CONTENT_LENGTH;
use sf_protocol::Sha256Hex;
use sf_protocol::chunking::{Chunk, ChunkRef, Chunker};
use sf_protocol::legacy::{META_LENGTH_HEADER, UploadResponse};
use sf_protocol::v1::{
    ChangesResponse, CommitRequest, Entry, EntryKind, HealthResponse, MissingChunksRequest,
    MissingChunksResponse,
};
use sha2::{Digest, Sha256};
use sqlx::Connection;
use tokio::process::{Child, Command};
use tokio_util::io::ReaderStream;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;
/// Size of every file in the commit benchmark.
const SMALL_FILE_BYTES: usize = 1024;
/// Unmeasured commits before the measured runs on each hub.
const WARMUP_COMMITS: usize = 16;
/// How many chunks the v1 large-file upload asks about per `/v1/chunks/missing`.
const MISSING_BATCH: usize = 8;
const MTIME_NS: i64 = 1_700_000_000_000_000_000;

fn main() -> Result<()> {
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("hub_throughput: not run outside `cargo bench` (pass --bench to run it)");
        return Ok(());
    }
    let config = Config::from_env()?;
    let hub_exe = hub_binary()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(config, hub_exe))
}

async fn run(config: Config, hub_exe: PathBuf) -> Result<()> {
    let work = tempfile::Builder::new()
        .prefix("sf-bench-")
        .tempdir()
        .context("creating the benchmark's temp dir")?;
    eprintln!(
        "hub_throughput: hub {}, work dir {}, {} rep(s), {} commits/run, {} healthz/run, \
         clients {:?}, large file {} MiB",
        hub_exe.display(),
        work.path().display(),
        config.reps,
        config.commits,
        config.healthz,
        config.clients,
        config.big_mib
    );
    let started = Instant::now();
    let mut report = Report::default();
    if config.run_commits {
        report.commits = Some(bench_commits(&config, &hub_exe, work.path()).await?);
    }
    if config.run_big && config.big_mib > 0 {
        report.big = Some(bench_big(&config, &hub_exe, work.path()).await?);
    }
    report.bench_peak_rss_kib = peak_rss_kib(std::process::id()).ok();
    report.print(&config, started.elapsed());
    work.close().context("removing the benchmark's temp dir")?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

struct Config {
    reps: usize,
    commits: usize,
    healthz: usize,
    clients: Vec<usize>,
    big_mib: u64,
    run_commits: bool,
    run_big: bool,
    pg_admin_url: Option<String>,
}

impl Config {
    fn from_env() -> Result<Self> {
        let clients = match std::env::var("SF_BENCH_CLIENTS") {
            Ok(raw) => raw
                .split(',')
                .map(|n| n.trim().parse::<usize>())
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("SF_BENCH_CLIENTS={raw:?} is not a list like 1,8,64"))?,
            Err(_) => vec![1, 8, 64],
        };
        ensure!(
            clients.iter().all(|&c| c > 0),
            "SF_BENCH_CLIENTS must be positive"
        );
        let only = std::env::var("SF_BENCH_ONLY").unwrap_or_default();
        ensure!(
            matches!(only.as_str(), "" | "commits" | "big"),
            "SF_BENCH_ONLY must be `commits` or `big`"
        );
        let reps = env_number("SF_BENCH_REPS", 3)?;
        ensure!(reps > 0, "SF_BENCH_REPS must be at least 1");
        Ok(Self {
            reps,
            commits: env_number("SF_BENCH_COMMITS", 1920)?,
            healthz: env_number("SF_BENCH_HEALTHZ", 20000)?,
            clients,
            big_mib: env_number("SF_BENCH_BIG_MIB", 1024)?,
            run_commits: only != "big",
            run_big: only != "commits",
            pg_admin_url: std::env::var("SF_TEST_DATABASE_URL")
                .ok()
                .filter(|url| !url.trim().is_empty()),
        })
    }
}

fn env_number<T: FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(raw) => raw
            .trim()
            .parse()
            .map_err(|_| anyhow!("{name}={raw:?} is not a number")),
        Err(_) => Ok(default),
    }
}

/// The `sf-hub` binary: cargo builds it for benches and says where; else the
/// one next to this bench's profile directory (`target/<profile>/sf-hub`).
fn hub_binary() -> Result<PathBuf> {
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

// ---------------------------------------------------------------------------
// The hub as a child process
// ---------------------------------------------------------------------------

/// A running `sf-hub` child process; killed if dropped without [`stop`].
struct HubProcess {
    child: Child,
    pid: u32,
    base: String,
    log_path: PathBuf,
    /// The first-start write token (`<data-dir>/agent-token`).
    token: String,
}

/// What a hub's log said, once it stopped.
#[derive(Default)]
struct LogSummary {
    warnings: usize,
    errors: usize,
    samples: Vec<String>,
}

impl HubProcess {
    async fn start(
        exe: &Path,
        data_dir: &Path,
        database_url: &str,
        backend: &str,
        log_path: &Path,
    ) -> Result<Self> {
        let (api_port, metrics_port) = free_ports()?;
        let log = std::fs::File::create(log_path)?;
        let mut command = Command::new(exe);
        command
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{api_port}"))
            .arg("--metrics-listen")
            .arg(format!("127.0.0.1:{metrics_port}"))
            .arg("--database-url")
            .arg(database_url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true);
        for var in [
            "POSTGRES_HOST",
            "DATABASE_URL",
            "SF_MAX_FILE_SIZE",
            "SF_DATABASE_TIMEOUT",
        ] {
            command.env_remove(var);
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let pid = child.id().context("the hub exited at once")?;
        let mut hub = Self {
            child,
            pid,
            base: format!("http://127.0.0.1:{api_port}"),
            log_path: log_path.to_owned(),
            token: String::new(),
        };
        hub.wait_ready(backend, &data_dir.join("agent-token"))
            .await?;
        Ok(hub)
    }

    /// Polls `/readyz` until the hub answers, on the back end asked for.
    async fn wait_ready(&mut self, backend: &str, token_file: &Path) -> Result<()> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(resp) = http.get(self.url("/readyz")).send().await
                && resp.status().is_success()
            {
                let health: HealthResponse = resp.json().await?;
                ensure!(
                    health.database.as_deref() == Some(backend),
                    "hub runs on {:?}, not on {backend}",
                    health.database
                );
                self.token = std::fs::read_to_string(token_file)
                    .with_context(|| format!("reading {}", token_file.display()))?
                    .trim()
                    .to_owned();
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the hub exited during start-up ({status}); its log:\n{}",
                    log_tail(&self.log_path)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "the hub was not ready after 60 s; its log:\n{}",
                    log_tail(&self.log_path)
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// A client that authenticates as agents do, with a bearer token.
    fn client(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", self.token))
            .expect("a token is a valid header value");
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .expect("an HTTP client")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn peak_rss_kib(&self) -> Result<u64> {
        peak_rss_kib(self.pid)
    }

    /// SIGTERM, then wait for the graceful shutdown; returns the log summary.
    async fn stop(mut self) -> Result<LogSummary> {
        let signalled = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .await?;
        let exited = if signalled.success() {
            tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await
        } else {
            Ok(self.child.wait().await)
        };
        match exited {
            Ok(status) => {
                let status = status?;
                ensure!(
                    status.success(),
                    "the hub stopped with {status}; its log:\n{}",
                    log_tail(&self.log_path)
                );
            }
            Err(_) => {
                self.child.kill().await?;
                bail!("the hub did not stop within 30 s of SIGTERM");
            }
        }
        Ok(summarise_log(&self.log_path))
    }
}

/// Two distinct free loopback ports (held together so they differ).
fn free_ports() -> Result<(u16, u16)> {
    let a = std::net::TcpListener::bind("127.0.0.1:0")?;
    let b = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok((a.local_addr()?.port(), b.local_addr()?.port()))
}

/// `VmHWM` (peak resident set size) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/<pid>/status")
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

fn summarise_log(path: &Path) -> LogSummary {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut summary = LogSummary::default();
    for line in text.lines() {
        match line.split_whitespace().nth(1) {
            Some("WARN") => summary.warnings += 1,
            Some("ERROR") => summary.errors += 1,
            _ => continue,
        }
        if summary.samples.len() < 3 {
            summary.samples.push(line.chars().take(300).collect());
        }
    }
    summary
}

fn sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("hub.db").display())
}

/// A PostgreSQL database made for this run and dropped after it.
struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
    dropped: bool,
}

impl PgDatabase {
    async fn create(admin_url: &str) -> Result<Self> {
        let name = format!(
            "sf_bench_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_micros()
        );
        let mut admin = sqlx::PgConnection::connect(admin_url)
            .await
            .context("connecting to SF_TEST_DATABASE_URL")?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .with_context(|| format!("CREATE DATABASE {name}"))?;
        admin.close().await?;
        let Some((server, db)) = admin_url.rsplit_once('/') else {
            bail!("SF_TEST_DATABASE_URL has no database part: {admin_url}");
        };
        let query = db
            .split_once('?')
            .map(|(_, q)| format!("?{q}"))
            .unwrap_or_default();
        Ok(Self {
            admin_url: admin_url.to_owned(),
            url: format!("{server}/{name}{query}"),
            name,
            dropped: false,
        })
    }

    async fn drop_database(mut self) -> Result<()> {
        self.dropped = true;
        drop_pg_database(&self.admin_url, &self.name).await
    }
}

async fn drop_pg_database(admin_url: &str, name: &str) -> Result<()> {
    let mut admin = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .with_context(|| format!("DROP DATABASE {name}"))?;
    admin.close().await?;
    Ok(())
}

impl Drop for PgDatabase {
    /// On an early exit (an error), drop the database from a helper thread:
    /// `Drop` cannot await.
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(drop_pg_database(&admin_url, &name))
        })
        .join();
    }
}

// ---------------------------------------------------------------------------
// Part 1: commits of small files
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    /// `GET /healthz`: the HTTP baseline.
    Healthz,
    /// The v1 commit flow for one 1 KiB file.
    Commit,
}

/// One measured run: `ops` operations by all clients in `elapsed`.
struct ClientRun {
    ops: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

/// Every run of one row of the commit table.
struct CommitRow {
    label: String,
    clients: usize,
    rates: Vec<f64>,
    latencies: Vec<Duration>,
}

impl CommitRow {
    fn new(label: &str, clients: usize) -> Self {
        Self {
            label: label.to_owned(),
            clients,
            rates: Vec::new(),
            latencies: Vec::new(),
        }
    }

    fn add(&mut self, run: ClientRun) {
        self.rates.push(run.ops as f64 / run.elapsed.as_secs_f64());
        self.latencies.extend(run.latencies);
    }
}

struct CommitReport {
    healthz: Vec<CommitRow>,
    backends: Vec<(String, Vec<CommitRow>, u64, LogSummary)>,
    skipped: Vec<String>,
}

async fn bench_commits(config: &Config, exe: &Path, work: &Path) -> Result<CommitReport> {
    let mut report = CommitReport {
        healthz: config
            .clients
            .iter()
            .map(|&c| CommitRow::new("GET /healthz", c))
            .collect(),
        backends: Vec::new(),
        skipped: Vec::new(),
    };
    let mut backends = vec!["sqlite"];
    match &config.pg_admin_url {
        Some(_) => backends.push("postgres"),
        None => {
            let line = "skipped: PostgreSQL (SF_TEST_DATABASE_URL unset)".to_owned();
            println!("{line}");
            report.skipped.push(line);
        }
    }
    for backend in backends {
        let data_dir = tempfile::tempdir_in(work)?;
        let pg = match backend {
            "postgres" => {
                let admin = config.pg_admin_url.as_deref().expect("checked above");
                Some(PgDatabase::create(admin).await?)
            }
            _ => None,
        };
        let database_url = match &pg {
            Some(pg) => pg.url.clone(),
            None => sqlite_url(data_dir.path()),
        };
        let log = work.join(format!("hub-commits-{backend}.log"));
        let hub = HubProcess::start(exe, data_dir.path(), &database_url, backend, &log).await?;
        eprintln!(
            "commits on {backend}: hub pid {}{}",
            hub.pid,
            pg.as_ref()
                .map(|pg| format!(", database {}", pg.name))
                .unwrap_or_default()
        );
        let measure_healthz = report.backends.is_empty();
        let result = commit_runs(config, &hub, backend, measure_healthz, &mut report).await;
        let peak = hub.peak_rss_kib().unwrap_or(0);
        let log_summary = hub.stop().await;
        if let Some(pg) = pg {
            pg.drop_database().await?;
        }
        let rows = result?;
        report
            .backends
            .push((backend.to_owned(), rows, peak, log_summary?));
    }
    Ok(report)
}

/// All measured runs on one hub: repetitions outermost, so slow drift (a
/// growing database, a busy neighbour) spreads over every row.
async fn commit_runs(
    config: &Config,
    hub: &HubProcess,
    backend: &str,
    measure_healthz: bool,
    report: &mut CommitReport,
) -> Result<Vec<CommitRow>> {
    let mut rows: Vec<CommitRow> = config
        .clients
        .iter()
        .map(|&c| CommitRow::new(&format!("commit {backend}"), c))
        .collect();
    let mut committed = 0usize;
    let warmup = run_clients(hub, Workload::Commit, 1, WARMUP_COMMITS, "warmup").await?;
    committed += warmup.ops;
    for rep in 0..config.reps {
        for (i, &clients) in config.clients.iter().enumerate() {
            if measure_healthz {
                let run = run_clients(hub, Workload::Healthz, clients, config.healthz, "").await?;
                eprintln!(
                    "  rep {}/{} healthz   {clients:>3} clients: {:>9.0} req/s",
                    rep + 1,
                    config.reps,
                    run.ops as f64 / run.elapsed.as_secs_f64()
                );
                report.healthz[i].add(run);
            }
            let tag = format!("r{rep}c{clients}");
            let run = run_clients(hub, Workload::Commit, clients, config.commits, &tag).await?;
            committed += run.ops;
            eprintln!(
                "  rep {}/{} {backend:<9} {clients:>3} clients: {:>9.1} commits/s",
                rep + 1,
                config.reps,
                run.ops as f64 / run.elapsed.as_secs_f64()
            );
            rows[i].add(run);
        }
    }
    // Every commit must have landed: the head seq counts them.
    let feed: ChangesResponse = hub
        .client()
        .get(hub.url("/v1/changes?since=0&limit=1"))
        .send()
        .await?
        .json()
        .await?;
    ensure!(
        feed.head == committed as u64,
        "hub head is {} after {committed} commits",
        feed.head
    );
    Ok(rows)
}

/// `total` operations split over `clients` concurrent clients, each with its
/// own connection pool; timed from the first request to the last answer.
async fn run_clients(
    hub: &HubProcess,
    workload: Workload,
    clients: usize,
    total: usize,
    tag: &str,
) -> Result<ClientRun> {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as u64;
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let count = total / clients + usize::from(client < total % clients);
            let http = hub.client();
            let base: Arc<str> = hub.base.clone().into();
            let prefix = format!("bench/{tag}/client{client}");
            let seed = nonce ^ ((client as u64) << 32);
            (http, base, prefix, seed, count)
        })
        .collect();
    let started = Instant::now();
    let handles: Vec<_> = tasks
        .into_iter()
        .map(|(http, base, prefix, seed, count)| {
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(count);
                for i in 0..count {
                    let op_started = Instant::now();
                    match workload {
                        Workload::Healthz => healthz(&http, &base).await?,
                        Workload::Commit => {
                            let bytes = random_bytes(SMALL_FILE_BYTES, seed.wrapping_add(i as u64));
                            let path = format!("{prefix}/file{i}.bin");
                            commit_small(&http, &base, &path, &bytes).await?;
                        }
                    }
                    latencies.push(op_started.elapsed());
                }
                Ok::<_, anyhow::Error>(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(total);
    for handle in handles {
        latencies.extend(handle.await??);
    }
    Ok(ClientRun {
        ops: latencies.len(),
        elapsed: started.elapsed(),
        latencies,
    })
}

async fn healthz(http: &reqwest::Client, base: &str) -> Result<()> {
    let resp = http.get(format!("{base}/healthz")).send().await?;
    ensure!(resp.status().is_success(), "/healthz: {}", resp.status());
    resp.bytes().await?;
    Ok(())
}

/// One file through the v1 flow, as an agent does it: which chunks are
/// missing, upload those, commit.
async fn commit_small(http: &reqwest::Client, base: &str, path: &str, bytes: &[u8]) -> Result<()> {
    let chunks: Vec<Chunk> = Chunker::new(bytes).collect::<io::Result<_>>()?;
    let missing = missing_chunks(http, base, chunks.iter().map(|c| c.hash).collect()).await?;
    for chunk in chunks.iter().filter(|c| missing.contains(&c.hash)) {
        put_chunk(http, base, chunk.hash, chunk.data.clone()).await?;
    }
    let entry = commit(
        http,
        base,
        path,
        Sha256Hex::of(bytes),
        bytes.len() as u64,
        chunks.iter().map(Chunk::to_ref).collect(),
    )
    .await?;
    ensure!(
        entry.version == 1,
        "{path} committed as version {}",
        entry.version
    );
    Ok(())
}

async fn missing_chunks(
    http: &reqwest::Client,
    base: &str,
    chunks: Vec<Sha256Hex>,
) -> Result<Vec<Sha256Hex>> {
    let resp = http
        .post(format!("{base}/v1/chunks/missing"))
        .json(&MissingChunksRequest { chunks })
        .send()
        .await?;
    let resp = check(resp, "POST /v1/chunks/missing").await?;
    Ok(resp.json::<MissingChunksResponse>().await?.missing)
}

async fn put_chunk(
    http: &reqwest::Client,
    base: &str,
    hash: Sha256Hex,
    data: Vec<u8>,
) -> Result<()> {
    let resp = http
        .put(format!("{base}/v1/chunks/{hash}"))
        .body(data)
        .send()
        .await?;
    check(resp, "PUT /v1/chunks").await?;
    Ok(())
}

async fn commit(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    sha256: Sha256Hex,
    size: u64,
    chunks: Vec<ChunkRef>,
) -> Result<Entry> {
    let request = CommitRequest {
        path: path.parse()?,
        kind: EntryKind::File,
        base_version: 0,
        sha256,
        size,
        mtime_ns: MTIME_NS,
        executable: false,
        chunks,
        origin: "bench".into(),
    };
    let resp = http
        .post(format!("{base}/v1/commit"))
        .json(&request)
        .send()
        .await?;
    Ok(check(resp, "POST /v1/commit").await?.json().await?)
}

/// Turns a non-2xx answer into an error carrying its body.
async fn check(resp: reqwest::Response, what: &str) -> Result<reqwest::Response> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = resp.text().await.unwrap_or_default();
    bail!("{what}: {status}: {body}")
}

/// Deterministic pseudo-random bytes (xorshift): incompressible, and distinct
/// seeds never share chunks.
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut state = XorShift::new(seed);
    while out.len() < len {
        out.extend_from_slice(&state.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

// ---------------------------------------------------------------------------
// Part 2: one large file
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BigPhase {
    CpFsync,
    Cp,
    LegacyUpload,
    LegacyDownload,
    V1Upload,
    V1Download,
}

impl BigPhase {
    const ALL: [BigPhase; 6] = [
        BigPhase::CpFsync,
        BigPhase::Cp,
        BigPhase::LegacyUpload,
        BigPhase::LegacyDownload,
        BigPhase::V1Upload,
        BigPhase::V1Download,
    ];

    fn label(self) -> &'static str {
        match self {
            BigPhase::CpFsync => "cp + fsync (baseline)",
            BigPhase::Cp => "cp (baseline)",
            BigPhase::LegacyUpload => "legacy POST /upload",
            BigPhase::LegacyDownload => "legacy GET /download",
            BigPhase::V1Upload => "v1 chunk+missing+PUT+commit",
            BigPhase::V1Download => "v1 GET /v1/file",
        }
    }

    fn uses_hub(self) -> bool {
        !matches!(self, BigPhase::CpFsync | BigPhase::Cp)
    }
}

struct BigRow {
    phase: BigPhase,
    seconds: Vec<f64>,
    hub_peak_kib: Vec<u64>,
    hub_idle_kib: Vec<u64>,
}

struct BigReport {
    bytes: u64,
    rows: Vec<BigRow>,
    logs: Vec<(String, LogSummary)>,
}

async fn bench_big(config: &Config, exe: &Path, work: &Path) -> Result<BigReport> {
    let bytes = config.big_mib * MIB;
    let source = work.join("source.bin");
    eprintln!(
        "large file: writing {} MiB to {}",
        config.big_mib,
        source.display()
    );
    let source_sha = write_source(&source, bytes).await?;
    let mut report = BigReport {
        bytes,
        rows: BigPhase::ALL
            .iter()
            .map(|&phase| BigRow {
                phase,
                seconds: Vec::new(),
                hub_peak_kib: Vec::new(),
                hub_idle_kib: Vec::new(),
            })
            .collect(),
        logs: Vec::new(),
    };
    for rep in 0..config.reps {
        let legacy_dir = tempfile::tempdir_in(work)?;
        let v1_dir = tempfile::tempdir_in(work)?;
        let remote_path = format!("bench/big-{rep}.bin");
        for row in &mut report.rows {
            let phase = row.phase;
            if !phase.uses_hub() {
                let copy = work.join("copy.bin");
                let elapsed = copy_file(&source, &copy, phase == BigPhase::CpFsync).await?;
                std::fs::remove_file(&copy)?;
                eprintln!(
                    "  rep {}/{} {:<30} {:>7.2} s",
                    rep + 1,
                    config.reps,
                    phase.label(),
                    elapsed.as_secs_f64()
                );
                row.seconds.push(elapsed.as_secs_f64());
                continue;
            }
            let data_dir = match phase {
                BigPhase::LegacyUpload | BigPhase::LegacyDownload => legacy_dir.path(),
                _ => v1_dir.path(),
            };
            let log = work.join(format!("hub-big-{rep}-{phase:?}.log"));
            let hub =
                HubProcess::start(exe, data_dir, &sqlite_url(data_dir), "sqlite", &log).await?;
            let idle = hub.peak_rss_kib()?;
            let http = hub.client();
            let started = Instant::now();
            let outcome = match phase {
                BigPhase::LegacyUpload => {
                    legacy_upload(&http, &hub.base, &source, &remote_path, bytes, source_sha).await
                }
                BigPhase::V1Upload => {
                    v1_upload(&http, &hub.base, &source, &remote_path, source_sha).await
                }
                BigPhase::LegacyDownload => {
                    download(
                        &http,
                        &hub.url("/download"),
                        &remote_path,
                        bytes,
                        source_sha,
                    )
                    .await
                }
                BigPhase::V1Download => {
                    download(&http, &hub.url("/v1/file"), &remote_path, bytes, source_sha).await
                }
                BigPhase::CpFsync | BigPhase::Cp => unreachable!("baselines run without a hub"),
            };
            let elapsed = started.elapsed();
            let peak = hub.peak_rss_kib()?;
            let summary = hub.stop().await?;
            outcome.with_context(|| format!("{} (rep {})", phase.label(), rep + 1))?;
            eprintln!(
                "  rep {}/{} {:<30} {:>7.2} s, hub peak RSS {:.1} MiB (idle {:.1} MiB)",
                rep + 1,
                config.reps,
                phase.label(),
                elapsed.as_secs_f64(),
                peak as f64 / KIB as f64,
                idle as f64 / KIB as f64
            );
            row.seconds.push(elapsed.as_secs_f64());
            row.hub_peak_kib.push(peak);
            row.hub_idle_kib.push(idle);
            if summary.warnings + summary.errors > 0 {
                report
                    .logs
                    .push((format!("rep {} {}", rep + 1, phase.label()), summary));
            }
        }
        legacy_dir.close()?;
        v1_dir.close()?;
    }
    std::fs::remove_file(&source)?;
    Ok(report)
}

/// Writes `bytes` pseudo-random bytes to `path`; returns their sha256.
async fn write_source(path: &Path, bytes: u64) -> Result<Sha256Hex> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || -> Result<Sha256Hex> {
        let mut file = io::BufWriter::with_capacity(MIB as usize, std::fs::File::create(&path)?);
        let mut hasher = Sha256::new();
        let mut rng = XorShift::new(0x5eed_b16f);
        let mut buffer = vec![0u8; MIB as usize];
        let mut left = bytes;
        while left > 0 {
            for word in buffer.chunks_exact_mut(8) {
                word.copy_from_slice(&rng.next().to_le_bytes());
            }
            let n = left.min(MIB) as usize;
            hasher.update(&buffer[..n]);
            file.write_all(&buffer[..n])?;
            left -= n as u64;
        }
        file.into_inner().map_err(io::Error::from)?.sync_all()?;
        Ok(Sha256Hex::from(hasher))
    })
    .await?
}

/// `cp source dest`, optionally followed by an fsync of the copy.
async fn copy_file(source: &Path, dest: &Path, fsync: bool) -> Result<Duration> {
    let started = Instant::now();
    let status = Command::new("cp").arg(source).arg(dest).status().await?;
    ensure!(status.success(), "cp failed: {status}");
    if fsync {
        let dest = dest.to_owned();
        tokio::task::spawn_blocking(move || std::fs::File::open(dest)?.sync_all()).await??;
    }
    Ok(started.elapsed())
}

/// `POST /upload`: the JSON meta, then the file streamed from disk.
async fn legacy_upload(
    http: &reqwest::Client,
    base: &str,
    source: &Path,
    path: &str,
    bytes: u64,
    expected: Sha256Hex,
) -> Result<()> {
    let meta = serde_json::json!({"path": path, "base_sha": null}).to_string();
    let file = tokio::fs::File::open(source).await?;
    let body = stream::iter([Ok::<_, io::Error>(Bytes::from(meta.clone()))])
        .chain(ReaderStream::with_capacity(file, 256 * KIB as usize));
    let resp = http
        .post(format!("{base}/upload"))
        .header(META_LENGTH_HEADER, meta.len())
        .header(CONTENT_LENGTH, meta.len() as u64 + bytes)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await?;
    let answer: UploadResponse = check(resp, "POST /upload").await?.json().await?;
    ensure!(
        answer.ok && answer.sha == Some(expected) && answer.conflict.is_none(),
        "unexpected upload answer {answer:?}"
    );
    Ok(())
}

/// The v1 upload of a large file: a blocking thread cuts the file into chunks
/// as it reads it; batches of them are checked with `/v1/chunks/missing` and
/// the missing ones PUT, then the whole is committed. At most a few chunks
/// are in memory at once.
async fn v1_upload(
    http: &reqwest::Client,
    base: &str,
    source: &Path,
    path: &str,
    expected: Sha256Hex,
) -> Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<io::Result<Chunk>>(MISSING_BATCH);
    let source = source.to_owned();
    let chunker = tokio::task::spawn_blocking(move || -> io::Result<(Sha256Hex, u64)> {
        let mut chunker = Chunker::new(std::fs::File::open(source)?);
        for chunk in chunker.by_ref() {
            if tx.blocking_send(chunk).is_err() {
                break;
            }
        }
        Ok(chunker.finish())
    });
    let mut refs = Vec::new();
    let mut batch = Vec::with_capacity(MISSING_BATCH);
    while rx.recv_many(&mut batch, MISSING_BATCH).await > 0 {
        let chunks: Vec<Chunk> = batch.drain(..).collect::<io::Result<_>>()?;
        let missing = missing_chunks(http, base, chunks.iter().map(|c| c.hash).collect()).await?;
        for chunk in chunks {
            refs.push(chunk.to_ref());
            if missing.contains(&chunk.hash) {
                put_chunk(http, base, chunk.hash, chunk.data).await?;
            }
        }
    }
    let (sha256, size) = chunker.await??;
    ensure!(
        sha256 == expected,
        "the chunker hashed the file to {sha256}"
    );
    let entry = commit(http, base, path, sha256, size, refs).await?;
    ensure!(
        entry.sha256 == Some(expected) && entry.size == size,
        "unexpected commit answer {entry:?}"
    );
    Ok(())
}

/// Downloads `url?path=P`, hashing the bytes as they arrive.
async fn download(
    http: &reqwest::Client,
    url: &str,
    path: &str,
    bytes: u64,
    expected: Sha256Hex,
) -> Result<()> {
    let resp = http.get(url).query(&[("path", path)]).send().await?;
    ensure!(
        resp.status() == StatusCode::OK,
        "GET {url}: {}",
        resp.status()
    );
    let mut body = resp.bytes_stream();
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    while let Some(frame) = body.next().await {
        let frame = frame?;
        received += frame.len() as u64;
        hasher.update(&frame);
    }
    let actual = Sha256Hex::from(hasher);
    ensure!(
        received == bytes && actual == expected,
        "downloaded {received} bytes hashing to {actual}, expected {bytes} bytes, {expected}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Statistics and the report
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

fn spread(values: &[f64]) -> Spread {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    };
    Spread {
        median,
        min: sorted.first().copied().unwrap_or(f64::NAN),
        max: sorted.last().copied().unwrap_or(f64::NAN),
    }
}

/// The `q` quantile (0..=1) of `durations`, in milliseconds.
fn quantile_ms(durations: &[Duration], q: f64) -> f64 {
    if durations.is_empty() {
        return f64::NAN;
    }
    let mut sorted = durations.to_vec();
    sorted.sort();
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index].as_secs_f64() * 1e3
}

fn mib(kib: u64) -> f64 {
    kib as f64 / KIB as f64
}

#[derive(Default)]
struct Report {
    commits: Option<CommitReport>,
    big: Option<BigReport>,
    bench_peak_rss_kib: Option<u64>,
}

impl Report {
    fn print(&self, config: &Config, elapsed: Duration) {
        println!();
        println!(
            "==================== hub_throughput results ({} rep(s), {:.0} s) ====================",
            config.reps,
            elapsed.as_secs_f64()
        );
        if let Some(commits) = &self.commits {
            print_commits(config, commits);
        }
        if let Some(big) = &self.big {
            print_big(big);
        }
        if let Some(kib) = self.bench_peak_rss_kib {
            println!();
            println!("bench (client) process peak RSS: {:.1} MiB", mib(kib));
        }
    }
}

fn print_commits(config: &Config, report: &CommitReport) {
    println!();
    println!(
        "1. Commits of {} B files: v1 flow = POST /v1/chunks/missing + PUT /v1/chunks/{{hash}} \
         + POST /v1/commit (3 HTTP requests per commit)",
        SMALL_FILE_BYTES
    );
    println!(
        "   {} commits per run split across the clients, {} /healthz requests per baseline run; \
         latency quantiles over all runs",
        config.commits, config.healthz
    );
    for line in &report.skipped {
        println!("   {line}");
    }
    println!();
    println!(
        "   {:<16} {:>7} {:>11} {:>21} {:>11} {:>11} {:>9} {:>9}",
        "target",
        "clients",
        "median op/s",
        "min–max op/s",
        "HTTP req/s",
        "vs /healthz",
        "p50 ms",
        "p99 ms"
    );
    let print_row = |row: &CommitRow, requests_per_op: f64| {
        let s = spread(&row.rates);
        let baseline = report
            .healthz
            .iter()
            .find(|h| h.clients == row.clients)
            .map(|h| spread(&h.rates).median);
        let versus = match baseline {
            Some(b) if b > 0.0 => format!("{:.1}%", s.median * requests_per_op / b * 100.0),
            _ => "-".into(),
        };
        println!(
            "   {:<16} {:>7} {:>11.1} {:>21} {:>11.0} {:>11} {:>9.2} {:>9.2}",
            row.label,
            row.clients,
            s.median,
            format!("{:.1}–{:.1}", s.min, s.max),
            s.median * requests_per_op,
            versus,
            quantile_ms(&row.latencies, 0.5),
            quantile_ms(&row.latencies, 0.99),
        );
    };
    for row in &report.healthz {
        print_row(row, 1.0);
    }
    for (_, rows, _, _) in &report.backends {
        for row in rows {
            print_row(row, 3.0);
        }
    }
    println!();
    for (backend, _, peak, log) in &report.backends {
        println!(
            "   hub on {backend}: peak RSS {:.1} MiB over all its runs; log: {} warning(s), {} error(s)",
            mib(*peak),
            log.warnings,
            log.errors
        );
        for sample in &log.samples {
            println!("      {sample}");
        }
    }
}

fn print_big(report: &BigReport) {
    let size_mib = report.bytes as f64 / MIB as f64;
    println!();
    println!(
        "2. One {size_mib:.0} MiB file over loopback (hub on SQLite, fresh hub process per phase; \
         downloads hashed, not written)"
    );
    println!();
    println!(
        "   {:<30} {:>9} {:>15} {:>9} {:>13} {:>17} {:>10}",
        "operation", "median s", "min–max s", "MiB/s", "hub peak MiB", "min–max MiB", "vs cp"
    );
    let cp = report
        .rows
        .iter()
        .find(|r| r.phase == BigPhase::Cp)
        .map(|r| spread(&r.seconds).median);
    for row in &report.rows {
        let s = spread(&row.seconds);
        let (peak, peak_range) = if row.hub_peak_kib.is_empty() {
            ("-".to_owned(), "-".to_owned())
        } else {
            let kib: Vec<f64> = row.hub_peak_kib.iter().map(|&k| mib(k)).collect();
            let p = spread(&kib);
            (
                format!("{:.1}", p.median),
                format!("{:.1}–{:.1}", p.min, p.max),
            )
        };
        let versus = match cp {
            Some(cp) if cp > 0.0 => format!("{:.1}×", s.median / cp),
            _ => "-".into(),
        };
        println!(
            "   {:<30} {:>9.2} {:>15} {:>9.0} {:>13} {:>17} {:>10}",
            row.phase.label(),
            s.median,
            format!("{:.2}–{:.2}", s.min, s.max),
            size_mib / s.median,
            peak,
            peak_range,
            versus
        );
    }
    let idle: Vec<f64> = report
        .rows
        .iter()
        .flat_map(|r| r.hub_idle_kib.iter().map(|&k| mib(k)))
        .collect();
    if !idle.is_empty() {
        let s = spread(&idle);
        println!();
        println!(
            "   hub RSS right after start-up (before each phase): median {:.1} MiB, {:.1}–{:.1} MiB",
            s.median, s.min, s.max
        );
    }
    for (phase, log) in &report.logs {
        println!(
            "   hub log during {phase}: {} warning(s), {} error(s)",
            log.warnings, log.errors
        );
        for sample in &log.samples {
            println!("      {sample}");
        }
    }
}
