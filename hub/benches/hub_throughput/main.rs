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
//!
//!    The same files through the **batch API**, as agents of this version
//!    send them: `SF_BENCH_BATCH_CLIENTS` (8) clients, each sending rounds
//!    of `SF_BENCH_BATCH_SIZE` (500) files as one `POST /v1/chunks/pack`
//!    and one `POST /v1/batch`; committed files per second, every commit
//!    durable before its answer. The issue's goals: at least 5,000 files/s
//!    on SQLite and 2,000 on PostgreSQL with 8 clients.
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
//! | `SF_BENCH_BATCH_FILES` | 16000 | files per batch-API run; 0 skips it              |
//! | `SF_BENCH_BATCH_SIZE`  | 500   | files per pack + batch round                     |
//! | `SF_BENCH_BATCH_CLIENTS` | 8   | concurrent clients of the batch-API run          |
//! | `SF_BENCH_BIG_MIB`  | 1024     | size of the large file; 0 skips that part        |
//! | `SF_BENCH_ONLY`     | (both)   | `commits` or `big` to run one part only          |
//!
//! Temporary files go to `$TMPDIR` (default `/tmp`) and are removed at the
//! end. Outside `cargo bench` (e.g. `cargo test --all-targets`, which runs
//! bench targets without `--bench`) the program does nothing.
//!
//! Layout: this file holds the settings and the run; [`hub`] the hub
//! process (on `sf-test-support`'s `HubChild`), [`api`] the requests a
//! client makes, [`commits`] (with [`batches`]) and [`big`] the two parts,
//! [`report`] the tables printed at the end.

mod api;
mod batches;
mod big;
mod commits;
mod hub;
mod report;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Instant;

use anyhow::{Context, Result, ensure};

use crate::big::bench_big;
use crate::commits::bench_commits;
use crate::report::Report;

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
    if !sf_test_support::bench::requested() {
        println!("hub_throughput: not run outside `cargo bench` (pass --bench to run it)");
        return Ok(());
    }
    let config = Config::from_env()?;
    let hub_exe = hub::hub_binary()?;
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
    report.bench_peak_rss_kib = sf_test_support::peak_rss_kib(std::process::id()).ok();
    report.print(&config, started.elapsed());
    work.close().context("removing the benchmark's temp dir")?;
    Ok(())
}

/// What to run and how often (from `SF_BENCH_*`, see the table above).
struct Config {
    reps: usize,
    commits: usize,
    healthz: usize,
    clients: Vec<usize>,
    big_mib: u64,
    /// Files per batch-API run (0: none), per round of a client, and
    /// concurrent clients.
    batch_files: usize,
    batch_size: usize,
    batch_clients: usize,
    run_commits: bool,
    run_big: bool,
    pg_admin_url: Option<String>,
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
        let batch_size = env_number("SF_BENCH_BATCH_SIZE", 500)?;
        ensure!(
            (1..=sf_protocol::v1::BATCH_MAX_OPS).contains(&batch_size),
            "SF_BENCH_BATCH_SIZE must be from 1 to {}",
            sf_protocol::v1::BATCH_MAX_OPS
        );
        let batch_clients = env_number("SF_BENCH_BATCH_CLIENTS", 8)?;
        ensure!(batch_clients > 0, "SF_BENCH_BATCH_CLIENTS must be positive");
        Ok(Self {
            reps,
            batch_files: env_number("SF_BENCH_BATCH_FILES", 16_000)?,
            batch_size,
            batch_clients,
            commits: env_number("SF_BENCH_COMMITS", 1920)?,
            healthz: env_number("SF_BENCH_HEALTHZ", 20000)?,
            clients,
            big_mib: env_number("SF_BENCH_BIG_MIB", 1024)?,
            run_commits: only != "big",
            run_big: only != "commits",
            pg_admin_url: sf_test_support::postgres::admin_url(),
        })
    }
}
