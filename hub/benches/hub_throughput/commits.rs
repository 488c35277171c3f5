//! Part 1, commits of small files: commits per second of 1 KiB files with
//! 1, 8 and 64 concurrent clients on each back end, next to the same
//! client loop against `GET /healthz`; and, on the same hub, files per
//! second through the batch API (see [`crate::batches`]).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use sf_protocol::v1::ChangesResponse;
use sf_test_support::bench::LogNotes;
use sf_test_support::{PgDatabase, random_bytes};

use crate::api::commit_small;
use crate::batches::run_batches;
use crate::hub::{BenchHub, sqlite_url};
use crate::{Config, SMALL_FILE_BYTES, WARMUP_COMMITS};

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
pub struct CommitRow {
    pub label: String,
    pub clients: usize,
    /// HTTP requests per operation (3 for a single commit, 2 per batch
    /// round for a batched one).
    pub requests_per_op: f64,
    pub rates: Vec<f64>,
    /// Per operation; for batch rows, per round (pack and batch).
    pub latencies: Vec<Duration>,
}

impl CommitRow {
    fn new(label: &str, clients: usize, requests_per_op: f64) -> Self {
        Self {
            label: label.to_owned(),
            clients,
            requests_per_op,
            rates: Vec::new(),
            latencies: Vec::new(),
        }
    }

    fn add(&mut self, run: ClientRun) {
        self.rates.push(run.ops as f64 / run.elapsed.as_secs_f64());
        self.latencies.extend(run.latencies);
    }
}

pub struct CommitReport {
    pub healthz: Vec<CommitRow>,
    pub backends: Vec<(String, Vec<CommitRow>, u64, LogNotes)>,
    pub skipped: Vec<String>,
}

pub async fn bench_commits(config: &Config, exe: &Path, work: &Path) -> Result<CommitReport> {
    let mut report = CommitReport {
        healthz: config
            .clients
            .iter()
            .map(|&c| CommitRow::new("GET /healthz", c, 1.0))
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
    // Every hub's data is removed only once all back ends are measured: on a
    // file system without a journal (as on this project's machines) ext4
    // skips freshly freed inodes, at a cost, for minutes, so removing one
    // hub's tens of thousands of chunks would slow the next hub's uploads.
    let mut data_dirs = Vec::new();
    for backend in backends {
        let data_dir = tempfile::tempdir_in(work)?;
        let pg = match backend {
            "postgres" => {
                let admin = config.pg_admin_url.as_deref().expect("checked above");
                Some(PgDatabase::create_on(admin, "sf_bench").await?)
            }
            _ => None,
        };
        let database_url = match &pg {
            Some(pg) => pg.url().to_owned(),
            None => sqlite_url(data_dir.path()),
        };
        let log = work.join(format!("hub-commits-{backend}.log"));
        let hub = BenchHub::start(exe, data_dir.path(), &database_url, backend, &log).await?;
        eprintln!(
            "commits on {backend}: hub pid {}{}",
            hub.pid(),
            pg.as_ref()
                .map(|pg| format!(", database {}", pg.name()))
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
        data_dirs.push(data_dir);
    }
    drop(data_dirs);
    Ok(report)
}

/// All measured runs on one hub: repetitions outermost, so slow drift (a
/// growing database, a busy neighbour) spreads over every row.
async fn commit_runs(
    config: &Config,
    hub: &BenchHub,
    backend: &str,
    measure_healthz: bool,
    report: &mut CommitReport,
) -> Result<Vec<CommitRow>> {
    let mut rows: Vec<CommitRow> = config
        .clients
        .iter()
        .map(|&c| CommitRow::new(&format!("commit {backend}"), c, 3.0))
        .collect();
    let mut batch_row = CommitRow::new(
        &format!("batch {backend}"),
        config.batch_clients,
        2.0 / config.batch_size as f64,
    );
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
        if config.batch_files > 0 {
            let tag = format!("r{rep}");
            let run = run_batches(
                hub,
                config.batch_clients,
                config.batch_size,
                config.batch_files,
                &tag,
            )
            .await?;
            committed += run.files;
            let rate = run.files as f64 / run.elapsed.as_secs_f64();
            eprintln!(
                "  rep {}/{} {backend:<9} {:>3} clients: {rate:>9.1} files/s through pack + batch",
                rep + 1,
                config.reps,
                config.batch_clients,
            );
            batch_row.rates.push(rate);
            batch_row.latencies.extend(run.latencies);
        }
    }
    if config.batch_files > 0 {
        rows.push(batch_row);
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
    hub: &BenchHub,
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
            let base: Arc<str> = hub.base().into();
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
                            let bytes = random_bytes(seed.wrapping_add(i as u64), SMALL_FILE_BYTES);
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
