//! Agent figures: what a user of two synced folders sees, measured on the
//! real release `sf-hub` and `sf-agent` binaries running as processes (the
//! e2e harness in `tests/src`), each next to a baseline measured in the same
//! run.
//!
//! Sections (each repeated `SF_BENCH_REPS` times, every repetition in a
//! fresh sandbox with a fresh hub and fresh agents; medians and min–max
//! over the repetitions are reported):
//!
//! 1. **latency** — one hub, agents A and B with default settings. A 1 KiB
//!    file is written straight into A's folder (create, write, close, as an
//!    editor would); a poller thread reads B's copy every
//!    `SF_BENCH_POLL_US` µs until it holds exactly those bytes. Samples are
//!    `SF_BENCH_LATENCY_GAP_MS` apart (after 3 unmeasured warm-up samples).
//!    Baseline: the same poller watching a plain directory into which the
//!    file is written under a temp name elsewhere and renamed: the
//!    measurement floor.
//! 2. **burst** — `SF_BENCH_FILES` files of 1–16 KiB (random sizes and
//!    bytes, fixed seed) in 100 folders, copied with `cp -r` into A's folder
//!    while A runs: seconds from the start of the copy until the hub has
//!    committed all of them (its `sync_uploads_total` counter) and until B
//!    has all of them (sizes polled, then every sha256 checked against the
//!    source and `wait_converged` run on A, B and the hub). Baseline: `cp
//!    -r` of the same tree to another local directory.
//! 3. **big** — a `SF_BENCH_BIG_MIB` file (1 GiB by default, random bytes)
//!    renamed into A's folder from a staging directory on the same file
//!    system: seconds until B's copy has the same sha256. Then 1 MiB in the
//!    middle of A's copy is overwritten in place (open, seek, write, close):
//!    seconds until B's copy has the new sha256, and the bytes the hub
//!    received (`sync_bytes_received_total`, chunk and file bodies only) and
//!    sent (`sync_bytes_sent_total`) across that change, read from the hub's
//!    Prometheus endpoint. Target: under 4 MiB received. Baselines: `cp` of
//!    the file, and sha256 of the whole file in this process.
//! 4. **idle** — `SF_BENCH_IDLE_FILES` files of 1–4 KiB in folders of 100
//!    are created and flushed (`sync -f`) before A starts; seconds from A's start until the hub has
//!    all of them (counter, then the index checked by sha256), and until
//!    agent B, started on an empty folder just before A, has them all: "first
//!    sync", with both agents' peak memory. B then stops. After A settles
//!    (a 2 s slice under 2 % CPU, at most 120 s), an
//!    idle window of `SF_BENCH_IDLE_SECS` s: A's CPU time (utime + stime
//!    from /proc/<pid>/stat), context switches summed per thread (wake-ups),
//!    VmRSS and VmHWM. Then A is stopped and started again (its start-up
//!    scan finds every file unchanged), settles, and is observed for a
//!    second window. Baselines: the time to create and flush the files, and the same
//!    window for an agent on an empty folder. The default window (70 s) is
//!    longer than the agent's scan interval (60 s), so each window includes
//!    one periodic full scan of the whole folder.
//! 5. **link** — A reaches the hub through a loopback relay limited to
//!    `SF_BENCH_LINK_MBIT` in each direction (`sf_test_support::relay`),
//!    B directly: seconds until B has a new `SF_BENCH_LINK_MIB` file
//!    renamed into A's folder. Baseline: the same bytes through the same
//!    kind of relay by a plain TCP copy. Target: within 10 %.
//!
//! Run it with (quick smoke run first):
//!
//! ```text
//! SF_BENCH_REPS=1 SF_BENCH_LATENCY_SAMPLES=20 SF_BENCH_FILES=500 SF_BENCH_BIG_MIB=64 \
//!     SF_BENCH_IDLE_FILES=5000 SF_BENCH_IDLE_SECS=10 cargo bench -p sf-e2e --bench agent_figures
//! cargo bench -p sf-e2e --bench agent_figures
//! SF_BENCH_ONLY=latency,big cargo bench -p sf-e2e --bench agent_figures
//! ```
//!
//! | variable                  | default                    | meaning                              |
//! |---------------------------|----------------------------|--------------------------------------|
//! | `SF_BENCH_ONLY`           | latency,burst,big,idle,link | sections to run, in this order      |
//! | `SF_BENCH_REPS`           | 3                          | repetitions of every section         |
//! | `SF_BENCH_LATENCY_SAMPLES`| 100                        | measured samples per repetition      |
//! | `SF_BENCH_LATENCY_GAP_MS` | 300                        | pause between samples                |
//! | `SF_BENCH_POLL_US`        | 1000                       | poll interval of the latency poller  |
//! | `SF_BENCH_FILES`          | 10000                      | files in the burst                   |
//! | `SF_BENCH_BIG_MIB`        | 1024                       | size of the large file (≥ 2)         |
//! | `SF_BENCH_IDLE_FILES`     | 100000                     | files in the idle folder             |
//! | `SF_BENCH_IDLE_SECS`      | 70                         | length of the idle window            |
//! | `SF_BENCH_LINK_MBIT`      | 100                        | the slow link's rate, each direction |
//! | `SF_BENCH_LINK_MIB`       | 100                        | size of the file sent over it        |
//!
//! The binaries come from the harness ([`sf_e2e::binary`]): under `cargo
//! bench` this executable lives in `target/release/deps`, so the harness
//! runs `cargo build --release --bins -p sf-hub -p sf-agent` once before the
//! first process starts (`SF_E2E_BIN_DIR` / `SF_E2E_NO_BUILD` as for the
//! tests; the header says which binaries ran, and warns when they are not
//! release builds). The children log at `info` (`SF_E2E_RUST_LOG`).
//! Results go to stdout as markdown, one table per section as soon as the
//! section ends; progress goes to stderr. A failed section (timeout, wrong
//! content) prints its error and the processes' logs; the others still run
//! and the exit status is non-zero. Outside `cargo bench` (e.g. `cargo test
//! --all-targets`, which runs benches without `--bench`) it does nothing.
//!
//! Layout: this file holds the settings, the header and the run; one module
//! per section ([`latency`], [`burst`], [`big`], [`idle`], [`link`]), [`procs`] what
//! the sections read from the processes (CPU, wake-ups, the hub's
//! counters), [`report`] the markdown tables. The processes are the e2e
//! harness's; statistics and log notes come from `sf-test-support`.

mod big;
mod burst;
mod idle;
mod latency;
mod link;
mod procs;
mod report;

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sf_e2e::binary;
use sf_test_support::bench::env_number;

use crate::big::bench_big;
use crate::burst::bench_burst;
use crate::idle::bench_idle;
use crate::latency::bench_latency;
use crate::link::bench_link;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;

fn main() -> ExitCode {
    if !sf_test_support::bench::requested() {
        println!("agent_figures: not run outside `cargo bench` (pass --bench to run it)");
        return ExitCode::SUCCESS;
    }
    let config = match Config::from_env() {
        Ok(config) => Arc::new(config),
        Err(err) => {
            eprintln!("agent_figures: {err}");
            return ExitCode::FAILURE;
        }
    };
    // Builds (under cargo) and finds the binaries before anything is timed.
    let hub_exe = binary("sf-hub");
    let agent_exe = binary("sf-agent");
    print_header(&config, &hub_exe, &agent_exe);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let started = Instant::now();
    let mut failed = Vec::new();
    for &section in &config.sections {
        let config = Arc::clone(&config);
        eprintln!("agent_figures: section {}", section.name());
        let load_before = load_average();
        // A panic (the harness's way to fail: it prints the processes' logs
        // while unwinding) ends this section only.
        let outcome = runtime.block_on(async move {
            tokio::spawn(async move {
                match section {
                    Section::Latency => bench_latency(&config).await,
                    Section::Burst => bench_burst(&config).await,
                    Section::Big => bench_big(&config).await,
                    Section::Idle => bench_idle(&config).await,
                    Section::Link => bench_link(&config).await,
                }
            })
            .await
        });
        match outcome {
            Ok(text) => {
                println!("{text}");
                println!(
                    "Load average (1 min) at the start / end of the section: {load_before} / {} \
                     ({} CPUs; other processes on the machine compete with the ones measured).",
                    load_average(),
                    std::thread::available_parallelism().map_or(0, |n| n.get())
                );
                let _ = io::stdout().flush();
            }
            Err(err) => {
                let why = panic_message(err);
                println!("\n## {}: FAILED\n\n```text\n{why}\n```\n", section.title());
                failed.push(section.name());
            }
        }
    }
    println!(
        "\nTotal bench time: {:.0} s{}",
        started.elapsed().as_secs_f64(),
        if failed.is_empty() {
            String::new()
        } else {
            format!("; FAILED sections: {}", failed.join(", "))
        }
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The 1-minute load average.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

fn panic_message(err: tokio::task::JoinError) -> String {
    match err.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "panic".to_owned()),
        Err(err) => err.to_string(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Latency,
    Burst,
    Big,
    Idle,
    Link,
}

impl Section {
    const ALL: [Section; 5] = [
        Self::Latency,
        Self::Burst,
        Self::Big,
        Self::Idle,
        Self::Link,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Latency => "latency",
            Self::Burst => "burst",
            Self::Big => "big",
            Self::Idle => "idle",
            Self::Link => "link",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Latency => "1. Propagation latency",
            Self::Burst => "2. Burst of small files",
            Self::Big => "3. One large file and a 1 MiB change in it",
            Self::Idle => "4. First sync and idle cost of a large folder",
            Self::Link => "5. A new file over a slow link",
        }
    }
}

struct Config {
    sections: Vec<Section>,
    reps: usize,
    latency_samples: usize,
    latency_gap: Duration,
    poll: Duration,
    files: usize,
    big_bytes: u64,
    idle_files: usize,
    idle_window: Duration,
    link_mbit: u64,
    link_bytes: u64,
}

impl Config {
    fn from_env() -> Result<Self, String> {
        let sections = match std::env::var("SF_BENCH_ONLY") {
            Ok(raw) if !raw.trim().is_empty() => {
                let wanted: Vec<&str> = raw.split(',').map(str::trim).collect();
                for name in &wanted {
                    if !Section::ALL.iter().any(|s| s.name() == *name) {
                        return Err(format!(
                            "SF_BENCH_ONLY: unknown section {name:?} (known: latency,burst,big,idle,link)"
                        ));
                    }
                }
                Section::ALL
                    .into_iter()
                    .filter(|s| wanted.contains(&s.name()))
                    .collect()
            }
            _ => Section::ALL.to_vec(),
        };
        let config = Self {
            sections,
            reps: env_number("SF_BENCH_REPS", 3)?,
            latency_samples: env_number("SF_BENCH_LATENCY_SAMPLES", 100)?,
            latency_gap: Duration::from_millis(env_number("SF_BENCH_LATENCY_GAP_MS", 300)?),
            poll: Duration::from_micros(env_number("SF_BENCH_POLL_US", 1000)?),
            files: env_number("SF_BENCH_FILES", 10_000)?,
            big_bytes: env_number::<u64>("SF_BENCH_BIG_MIB", 1024)? * MIB,
            idle_files: env_number("SF_BENCH_IDLE_FILES", 100_000)?,
            idle_window: Duration::from_secs(env_number("SF_BENCH_IDLE_SECS", 70)?),
            link_mbit: env_number("SF_BENCH_LINK_MBIT", 100)?,
            link_bytes: env_number::<u64>("SF_BENCH_LINK_MIB", 100)? * MIB,
        };
        if config.reps == 0
            || config.latency_samples == 0
            || config.files == 0
            || config.idle_files == 0
            || config.idle_window.is_zero()
            || config.link_mbit == 0
            || config.link_bytes == 0
        {
            return Err("SF_BENCH_* counts and durations must be positive".to_owned());
        }
        if config.big_bytes < 2 * MIB {
            return Err("SF_BENCH_BIG_MIB must be at least 2".to_owned());
        }
        Ok(config)
    }
}

fn print_header(config: &Config, hub_exe: &Path, agent_exe: &Path) {
    let mut vars: Vec<String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("SF_BENCH_") || k.starts_with("SF_E2E_"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    vars.sort();
    vars.push("cargo bench -p sf-e2e --bench agent_figures".to_owned());
    println!("# agent_figures");
    println!();
    println!("Command: `{}`", vars.join(" "));
    println!();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate lives in the workspace");
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(workspace)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let head = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "?".to_owned());
    let dirty = git(&[
        "status",
        "--porcelain",
        "--",
        "agent",
        "hub",
        "protocol",
        "Cargo.lock",
    ])
    .map_or(0, |s| s.lines().count());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "- source: git {head}{}; {cpus} CPU(s), load average {}",
        if dirty > 0 {
            format!(" + {dirty} uncommitted change(s) in agent/, hub/, protocol/")
        } else {
            String::new()
        },
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    for exe in [hub_exe, agent_exe] {
        let age = fs::metadata(exe)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .map_or("?".to_owned(), |d| format!("{:.0} s", d.as_secs_f64()));
        let profile = exe
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        println!(
            "- binary: {} (built {age} before the run){}",
            exe.display(),
            if profile == "release" {
                ""
            } else {
                " — WARNING: not a release build"
            }
        );
    }
    println!(
        "- sizes: {} rep(s); latency {} samples/rep, {} ms apart, poll {} µs; burst {} files; \
         big {} MiB; idle {} files, {} s window",
        config.reps,
        config.latency_samples,
        config.latency_gap.as_millis(),
        config.poll.as_micros(),
        config.files,
        config.big_bytes / MIB,
        config.idle_files,
        config.idle_window.as_secs()
    );
    println!(
        "- agents run with default settings (debounce 150 ms, full scan every 60 s while file \
         events work), children log at {}",
        std::env::var("SF_E2E_RUST_LOG").unwrap_or_else(|_| "info".to_owned())
    );
    let _ = io::stdout().flush();
}
