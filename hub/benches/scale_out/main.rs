//! Scale-out benchmark: the same workload on one hub and on two hubs that
//! share one PostgreSQL database and one S3 bucket, with the real `sf-hub`
//! binary as child processes, and where the time goes.
//!
//! What it measures, each over `SF_BENCH_REPS` repetitions (median and
//! min–max reported):
//!
//! 1. **Small commits.** Commits per second of 1 KiB files with 8 and 64
//!    concurrent clients (the v1 flow an agent uses: `POST
//!    /v1/chunks/missing`, `PUT /v1/chunks/{hash}`, `POST /v1/commit`; each
//!    client its own connection pool, distinct paths, distinct random
//!    content) on (a) one hub on PostgreSQL with the local store, (b) one
//!    hub on PostgreSQL with an S3 store (`moto_server`), (c) two hubs on
//!    the same database and the same bucket, the clients split evenly
//!    across them. Before them, `SF_BENCH_PROBE` commits from one client
//!    show the uncontended cost of a commit. For every run it also reports
//!    where the time goes: the hubs' own timing of each request and of the
//!    commit (`sync_request_duration`, `sync_commit_duration` from
//!    `/metrics`); how much of the wall time PostgreSQL's write lock (the
//!    `hub_state` row every commit takes with `SELECT … FOR UPDATE`) is
//!    held, split into PostgreSQL executing, flushing WAL and waiting for
//!    the hub's next statement, and how many backends wait for it
//!    (`pg_stat_activity` sampled every 10 ms); and the CPU used by the
//!    hubs, moto, the database's PostgreSQL backends, this process (the
//!    clients) and the whole machine (`/proc`).
//! 2. **One large file** of `SF_BENCH_BIG_MIB` MiB uploaded through v1
//!    (client-side chunking, missing, PUT, commit) and downloaded (`GET
//!    /v1/file`) through the local store and through the S3 store: wall
//!    time, MiB/s and the hub's peak RSS (`VmHWM`, a fresh hub process per
//!    phase). Baselines in the same run: `cp` + fsync of the file for the
//!    local store; a plain PUT and GET of the same bytes straight to moto in
//!    2 MiB objects, one at a time as the hub's client sends chunks, for the
//!    S3 store. Uploads stream from the file, downloads are hashed as they
//!    arrive and checked against the source's sha256: the file is never in
//!    memory.
//! 3. **Cross-hub push latency.** A WebSocket (`/v1/ws`) client on hub 2
//!    and one on hub 1; `SF_BENCH_PUSH` commits on hub 1, one at a time:
//!    the time from each commit's HTTP answer to the `change` frame on each
//!    socket (p50, p99). The client on hub 1 itself is the baseline.
//!
//! Everything runs on this machine over loopback: PostgreSQL (the server of
//! `SF_TEST_DATABASE_URL`, a fresh `sf_bench_<unique>` database per setup,
//! dropped afterwards), one `moto_server` (started by `sf-test-support`, a
//! fresh bucket per setup), the hubs and the clients, which all compete for
//! the same cores; the load average at start and end is printed.
//!
//! Run it with:
//!
//! ```text
//! SF_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo bench -p sf-hub --bench scale_out
//! ```
//!
//! Without `SF_TEST_DATABASE_URL` it does nothing (several hubs need
//! PostgreSQL); without `moto_server` (`pip install 'moto[server]'`) only
//! the local store is measured. Sizes come from the environment (a quick
//! smoke run: `SF_BENCH_REPS=1 SF_BENCH_COMMITS=256 SF_BENCH_PROBE=50
//! SF_BENCH_BIG_MIB=32 SF_BENCH_PUSH=50`):
//!
//! | variable          | default | meaning                                          |
//! |-------------------|---------|--------------------------------------------------|
//! | `SF_BENCH_REPS`   | 3       | repetitions of every measurement                 |
//! | `SF_BENCH_COMMITS`| 1920    | commits per run, split across the clients        |
//! | `SF_BENCH_CLIENTS`| 8,64    | concurrency levels                               |
//! | `SF_BENCH_PROBE`  | 200     | one-client commits per setup and rep; 0: none    |
//! | `SF_BENCH_BIG_MIB`| 1024    | size of the large file; 0 skips that part        |
//! | `SF_BENCH_PUSH`   | 200     | commits per push-latency run; 0 skips that part  |
//! | `SF_BENCH_ONLY`   | (all)   | `commits`, `big`, `push`, or a comma list        |
//!
//! Temporary files go to `$TMPDIR` (default `/tmp`) and are removed at the
//! end. Outside `cargo bench` the program does nothing.
//!
//! Layout: this file holds the settings and the run; `api` and `hub` are
//! `hub_throughput`'s (the requests a client makes, the hub process),
//! included by path; [`cluster`] starts one setup (database, bucket, one
//! or two hubs); [`sample`] measures CPU, the hubs' metrics and
//! PostgreSQL's lock around a run; [`commits`], [`big`] and [`push`] are
//! the three parts; [`report`] prints the tables and what they say.

#[allow(
    dead_code,
    reason = "hub_throughput's requests; this bench uses some of them"
)]
#[path = "../hub_throughput/api.rs"]
mod api;
mod big;
mod cluster;
mod commits;
#[allow(
    dead_code,
    reason = "hub_throughput's hub process; this bench uses most of it"
)]
#[path = "../hub_throughput/hub.rs"]
mod hub;
mod push;
mod report;
mod sample;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use anyhow::{Context, Result, ensure};

use crate::report::Report;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;
/// Size of every file in the commit and push parts.
const SMALL_FILE_BYTES: usize = 1024;
/// Unmeasured commits through each hub before the measured runs.
const WARMUP_COMMITS: usize = 16;
/// How many chunks the v1 large-file upload asks about per `/v1/chunks/missing`.
const MISSING_BATCH: usize = 8;
const MTIME_NS: i64 = 1_700_000_000_000_000_000;

fn main() -> Result<()> {
    if !sf_test_support::bench::requested() {
        println!("scale_out: not run outside `cargo bench` (pass --bench to run it)");
        return Ok(());
    }
    let config = Config::from_env()?;
    let Some(pg_admin_url) = config.pg_admin_url.clone() else {
        println!(
            "scale_out: skipped: several hubs need PostgreSQL; set \
             SF_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test (any database on a \
             server where that user may CREATE DATABASE)"
        );
        return Ok(());
    };
    let hub_exe = hub::hub_binary()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(config, pg_admin_url, hub_exe))
}

async fn run(config: Config, pg_admin_url: String, hub_exe: PathBuf) -> Result<()> {
    let work = tempfile::Builder::new()
        .prefix("sf-bench-scale-")
        .tempdir()
        .context("creating the benchmark's temp dir")?;
    let load_at_start = load_average();
    eprintln!(
        "scale_out: hub {}, work dir {}, {} rep(s), {} commits/run, clients {:?}, probe {}, \
         large file {} MiB, push {} commits; load average at start {load_at_start}",
        hub_exe.display(),
        work.path().display(),
        config.reps,
        config.commits,
        config.clients,
        config.probe,
        config.big_mib,
        config.push,
    );
    let s3 = s3_endpoint().await;
    if let Err(why) = &s3 {
        println!("skipped: the S3 store ({why})");
    }
    let s3 = s3.ok();
    let setup = Setup {
        config: &config,
        exe: &hub_exe,
        work: work.path(),
        pg_admin_url: &pg_admin_url,
        s3: s3.as_ref(),
    };
    let started = Instant::now();
    let mut report = Report {
        load_at_start,
        ..Report::default()
    };
    if config.run_commits {
        report.commits = Some(commits::bench_commits(&setup).await?);
    }
    if config.run_big && config.big_mib > 0 {
        report.big = Some(big::bench_big(&setup).await?);
    }
    if config.run_push && config.push > 0 {
        match &s3 {
            Some(_) => report.push = Some(push::bench_push(&setup).await?),
            None => println!("skipped: push latency across hubs (needs the S3 store)"),
        }
    }
    report.load_at_end = load_average();
    report.bench_peak_rss_kib = sf_test_support::peak_rss_kib(std::process::id()).ok();
    report.print(&config, started.elapsed());
    work.close().context("removing the benchmark's temp dir")?;
    Ok(())
}

/// What every part needs: the settings, the hub binary, the work dir, the
/// PostgreSQL server and the S3 server (if there is one).
pub struct Setup<'a> {
    pub config: &'a Config,
    pub exe: &'a Path,
    pub work: &'a Path,
    pub pg_admin_url: &'a str,
    pub s3: Option<&'a S3>,
}

/// The S3 protocol server: its endpoint and its process (for CPU and RSS).
pub struct S3 {
    pub endpoint: String,
    pub pid: Option<u32>,
}

/// This process's `moto_server`, started on first use.
async fn s3_endpoint() -> Result<S3, String> {
    if !sf_test_support::s3::available() {
        return Err("moto_server is missing: pip install 'moto[server]'".into());
    }
    let server = tokio::task::spawn_blocking(sf_test_support::s3::server)
        .await
        .map_err(|e| e.to_string())??;
    let endpoint = server.endpoint().to_owned();
    let pid = cluster::moto_pid(&endpoint);
    if pid.is_none() {
        eprintln!("warning: cannot find moto_server's process; its CPU is not reported");
    }
    Ok(S3 { endpoint, pid })
}

/// `/proc/loadavg`'s three averages.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "?".into())
}

/// What to run and how often (from `SF_BENCH_*`, see the table above).
pub struct Config {
    pub reps: usize,
    pub commits: usize,
    pub clients: Vec<usize>,
    pub probe: usize,
    pub big_mib: u64,
    pub push: usize,
    pub run_commits: bool,
    pub run_big: bool,
    pub run_push: bool,
    pub pg_admin_url: Option<String>,
}

fn env_number<T: FromStr>(name: &str, default: T) -> Result<T> {
    sf_test_support::bench::env_number(name, default).map_err(anyhow::Error::msg)
}

impl Config {
    fn from_env() -> Result<Self> {
        let clients = match std::env::var("SF_BENCH_CLIENTS") {
            Ok(raw) => raw
                .split(',')
                .map(|n| n.trim().parse::<usize>())
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("SF_BENCH_CLIENTS={raw:?} is not a list like 8,64"))?,
            Err(_) => vec![8, 64],
        };
        ensure!(
            clients.iter().all(|&c| c > 0),
            "SF_BENCH_CLIENTS must be positive"
        );
        let only = std::env::var("SF_BENCH_ONLY").unwrap_or_default();
        let parts: Vec<&str> = only
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        ensure!(
            parts
                .iter()
                .all(|p| matches!(*p, "commits" | "big" | "push")),
            "SF_BENCH_ONLY must be `commits`, `big`, `push` or a comma list of them"
        );
        let wants = |part: &str| parts.is_empty() || parts.contains(&part);
        let reps = env_number("SF_BENCH_REPS", 3)?;
        ensure!(reps > 0, "SF_BENCH_REPS must be at least 1");
        let commits = env_number("SF_BENCH_COMMITS", 1920)?;
        ensure!(commits > 0, "SF_BENCH_COMMITS must be at least 1");
        Ok(Self {
            reps,
            commits,
            clients,
            probe: env_number("SF_BENCH_PROBE", 200)?,
            big_mib: env_number("SF_BENCH_BIG_MIB", 1024)?,
            push: env_number("SF_BENCH_PUSH", 200)?,
            run_commits: wants("commits"),
            run_big: wants("big"),
            run_push: wants("push"),
            pg_admin_url: sf_test_support::postgres::admin_url(),
        })
    }
}
