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
//!    are created before A starts; seconds from A's start until the hub has
//!    all of them (counter, then the index checked by sha256): "first
//!    sync". After A settles (a 2 s slice under 2 % CPU, at most 120 s), an
//!    idle window of `SF_BENCH_IDLE_SECS` s: A's CPU time (utime + stime
//!    from /proc/<pid>/stat), context switches summed per thread (wake-ups),
//!    VmRSS and VmHWM. Then A is stopped and started again (its start-up
//!    scan finds every file unchanged), settles, and is observed for a
//!    second window. Baselines: the time to create the files, and the same
//!    window for an agent on an empty folder. The default window (70 s) is
//!    longer than the agent's scan interval (60 s), so each window includes
//!    one periodic full scan of the whole folder.
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
//! | `SF_BENCH_ONLY`           | latency,burst,big,idle     | sections to run, in this order       |
//! | `SF_BENCH_REPS`           | 3                          | repetitions of every section         |
//! | `SF_BENCH_LATENCY_SAMPLES`| 100                        | measured samples per repetition      |
//! | `SF_BENCH_LATENCY_GAP_MS` | 300                        | pause between samples                |
//! | `SF_BENCH_POLL_US`        | 1000                       | poll interval of the latency poller  |
//! | `SF_BENCH_FILES`          | 10000                      | files in the burst                   |
//! | `SF_BENCH_BIG_MIB`        | 1024                       | size of the large file (≥ 2)         |
//! | `SF_BENCH_IDLE_FILES`     | 100000                     | files in the idle folder             |
//! | `SF_BENCH_IDLE_SECS`      | 70                         | length of the idle window            |
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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::{Duration, Instant, SystemTime};

use sf_e2e::*;
use sha2::{Digest, Sha256};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;
/// Unmeasured latency samples at the start of every repetition.
const LATENCY_WARMUP: usize = 3;
const LATENCY_FILE_BYTES: usize = 1024;
/// Bytes overwritten in the middle of the large file.
const PATCH_BYTES: usize = MIB as usize;
/// Target for the bytes A uploads for the 1 MiB change.
const PATCH_TARGET_BYTES: f64 = 4.0 * MIB as f64;
const BURST_FOLDERS: usize = 100;
const IDLE_FILES_PER_FOLDER: usize = 100;

fn main() -> ExitCode {
    if !std::env::args().any(|arg| arg == "--bench") {
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

// ---------------------------------------------------------------------------
// Configuration and header
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Latency,
    Burst,
    Big,
    Idle,
}

impl Section {
    const ALL: [Section; 4] = [Self::Latency, Self::Burst, Self::Big, Self::Idle];

    fn name(self) -> &'static str {
        match self {
            Self::Latency => "latency",
            Self::Burst => "burst",
            Self::Big => "big",
            Self::Idle => "idle",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Latency => "1. Propagation latency",
            Self::Burst => "2. Burst of small files",
            Self::Big => "3. One large file and a 1 MiB change in it",
            Self::Idle => "4. First sync and idle cost of a large folder",
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
}

impl Config {
    fn from_env() -> Result<Self, String> {
        let sections = match std::env::var("SF_BENCH_ONLY") {
            Ok(raw) if !raw.trim().is_empty() => {
                let wanted: Vec<&str> = raw.split(',').map(str::trim).collect();
                for name in &wanted {
                    if !Section::ALL.iter().any(|s| s.name() == *name) {
                        return Err(format!(
                            "SF_BENCH_ONLY: unknown section {name:?} (known: latency,burst,big,idle)"
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
        };
        if config.reps == 0
            || config.latency_samples == 0
            || config.files == 0
            || config.idle_files == 0
            || config.idle_window.is_zero()
        {
            return Err("SF_BENCH_* counts and durations must be positive".to_owned());
        }
        if config.big_bytes < 2 * MIB {
            return Err("SF_BENCH_BIG_MIB must be at least 2".to_owned());
        }
        Ok(config)
    }
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Ok(raw) => raw
            .trim()
            .parse()
            .map_err(|_| format!("{name}={raw:?} is not a number")),
        Err(_) => Ok(default),
    }
}

/// The command line to reproduce this run, the binaries, the source state.
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

// ---------------------------------------------------------------------------
// Statistics and formatting
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

/// Nearest-rank quantile (`q` in 0..=1) of `values`.
fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `median (min–max)` with `prec` decimals; just the value for one rep.
fn cell(values: &[f64], prec: usize) -> String {
    let s = spread(values);
    if values.len() == 1 {
        format!("{:.prec$}", s.median)
    } else {
        format!("{:.prec$} ({:.prec$}–{:.prec$})", s.median, s.min, s.max)
    }
}

fn ratio(value: f64, baseline: f64) -> String {
    if baseline > 0.0 && value.is_finite() {
        format!("{:.1}×", value / baseline)
    } else {
        "-".to_owned()
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn mib(bytes: f64) -> f64 {
    bytes / MIB as f64
}

/// Markdown table builder.
struct Table {
    text: String,
}

impl Table {
    fn new(headers: &[&str]) -> Self {
        let mut text = format!("| {} |\n|", headers.join(" | "));
        for (i, _) in headers.iter().enumerate() {
            text.push_str(if i == 0 { "---|" } else { "---:|" });
        }
        text.push('\n');
        Self { text }
    }

    fn row(&mut self, cells: &[String]) {
        writeln!(self.text, "| {} |", cells.join(" | ")).unwrap();
    }
}

/// Agent/hub log lines at WARN or ERROR, a few kept as samples.
#[derive(Default)]
struct LogNotes {
    warnings: usize,
    errors: usize,
    samples: Vec<String>,
}

impl LogNotes {
    fn add(&mut self, who: &str, log: &str) {
        for line in log.lines() {
            match line.split_whitespace().nth(1) {
                Some("WARN") => self.warnings += 1,
                Some("ERROR") => self.errors += 1,
                _ => continue,
            }
            if self.samples.len() < 5 {
                let short: String = line.chars().take(240).collect();
                self.samples.push(format!("{who}: {short}"));
            }
        }
    }

    fn render(&self) -> String {
        let mut text = format!(
            "Process logs: {} WARN, {} ERROR line(s)",
            self.warnings, self.errors
        );
        for sample in &self.samples {
            write!(text, "\n    {sample}").unwrap();
        }
        text
    }
}

// ---------------------------------------------------------------------------
// Processes: /proc and the hub's metrics
// ---------------------------------------------------------------------------

fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// utime + stime of the whole process (all threads), in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/stat: {e}"));
    // Fields after the command name (which may hold spaces): state is
    // field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').expect("a /proc stat line").1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / clock_ticks()
}

/// A `Key:  123 kB` (or plain number) line of /proc/<pid>/status.
fn status_field(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn status_kib(pid: u32, key: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    status_field(&status, key)
}

/// Voluntary + involuntary context switches of every live thread, by
/// thread id.
fn thread_switches(pid: u32) -> BTreeMap<String, u64> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return BTreeMap::new();
    };
    tasks
        .flatten()
        .filter_map(|task| {
            let status = fs::read_to_string(task.path().join("status")).ok()?;
            let switches = status_field(&status, "voluntary_ctxt_switches")
                + status_field(&status, "nonvoluntary_ctxt_switches");
            Some((task.file_name().to_string_lossy().into_owned(), switches))
        })
        .collect()
}

/// How often a process woke up over a window: context switches summed per
/// thread, so that threads exiting during the window (tokio's idle blocking
/// threads do, after 10 s) do not take their earlier counts with them and
/// threads starting in it count from zero. A thread that exits loses at most
/// its switches since the last sample.
struct Wakeups {
    first: BTreeMap<String, u64>,
    last: BTreeMap<String, u64>,
}

impl Wakeups {
    fn start(pid: u32) -> Self {
        let now = thread_switches(pid);
        Self {
            first: now.clone(),
            last: now,
        }
    }

    fn sample(&mut self, pid: u32) {
        for (tid, switches) in thread_switches(pid) {
            self.first.entry(tid.clone()).or_insert(0);
            self.last.insert(tid, switches);
        }
    }

    fn total(&self) -> u64 {
        self.last
            .iter()
            .map(|(tid, last)| last.saturating_sub(self.first[tid]))
            .sum()
    }
}

/// The hub's Prometheus endpoint, found in its `hub listening` log line.
struct HubMetrics {
    url: String,
    http: reqwest::Client,
}

#[derive(Debug, Clone, Copy, Default)]
struct Scrape {
    received: f64,
    sent: f64,
    uploads: f64,
}

impl HubMetrics {
    fn of(hub: &Hub) -> Self {
        let log = hub.log();
        let addr = log
            .lines()
            .rev()
            .filter(|line| line.contains("hub listening"))
            .find_map(|line| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix("metrics="))
            })
            .unwrap_or_else(|| panic!("no metrics= in the hub's `hub listening` line:\n{log}"));
        Self {
            url: format!("http://{addr}/metrics"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
        }
    }

    async fn scrape(&self) -> Scrape {
        let text = async {
            let resp = self.http.get(&self.url).send().await?;
            resp.error_for_status()?.text().await
        }
        .await
        .unwrap_or_else(|e| panic!("GET {}: {e}", self.url));
        let value = |name: &str| -> f64 {
            let found: Vec<f64> = text
                .lines()
                .filter(|line| {
                    line.strip_prefix(name)
                        .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
                })
                .filter_map(|line| line.split_whitespace().last()?.parse().ok())
                .collect();
            assert!(!found.is_empty(), "no {name} in the hub's metrics:\n{text}");
            found.iter().sum()
        };
        Scrape {
            received: value("sync_bytes_received_total"),
            sent: value("sync_bytes_sent_total"),
            uploads: value("sync_uploads_total"),
        }
    }
}

/// Stops an agent with SIGTERM, adds its log to `notes`.
async fn stop_agent(agent: &mut Agent, notes: &mut LogNotes) {
    let status = agent.stop().await;
    notes.add(agent.name(), &agent.log());
    if !status.success() {
        notes.errors += 1;
        notes
            .samples
            .push(format!("{}: exited with {status} on SIGTERM", agent.name()));
    }
}

fn check_events_mode(agent: &Agent) {
    let log = agent.log_of_run();
    assert!(
        log.contains("mode=events") || log.contains("mode=\"events\""),
        "agent {} does not use file events (watcher unhealthy?):\n{log}",
        agent.name()
    );
}

/// `cp` with `args`; returns its wall time.
fn timed_cp(args: &[&Path]) -> Duration {
    let started = Instant::now();
    let status = Command::new("cp").args(args).status().expect("run cp");
    let elapsed = started.elapsed();
    assert!(status.success(), "cp {args:?}: {status}");
    elapsed
}

// ---------------------------------------------------------------------------
// 1. Propagation latency
// ---------------------------------------------------------------------------

/// Starts a poller thread that reads `target` every `poll` until it holds
/// exactly `expected`, waits `phase` (so that the baseline, like a synced
/// file, lands at any point of the poll cycle), then runs `act`; returns
/// the time from just before `act` until the poller saw the bytes.
fn time_until_visible(
    target: &Path,
    expected: &[u8],
    poll: Duration,
    phase: Duration,
    timeout: Duration,
    act: impl FnOnce(),
) -> Duration {
    let (ready_tx, ready_rx) = mpsc::channel();
    let poller = {
        let target = target.to_owned();
        let expected = expected.to_vec();
        std::thread::spawn(move || {
            let _ = ready_tx.send(());
            let deadline = Instant::now() + timeout;
            loop {
                if fs::read(&target).is_ok_and(|bytes| bytes == expected) {
                    return Some(Instant::now());
                }
                if Instant::now() > deadline {
                    return None;
                }
                std::thread::sleep(poll);
            }
        })
    };
    ready_rx.recv().expect("the poller starts");
    std::thread::sleep(phase);
    let started = Instant::now();
    act();
    let seen = poller.join().expect("the poller does not panic");
    let seen = seen.unwrap_or_else(|| {
        panic!(
            "{} did not get the expected {} bytes within {timeout:?}",
            target.display(),
            expected.len()
        )
    });
    seen.saturating_duration_since(started)
}

async fn bench_latency(config: &Config) -> String {
    let timeout = Duration::from_secs(30);
    let mut agent_ms: Vec<Vec<f64>> = Vec::new();
    let mut floor_ms: Vec<Vec<f64>> = Vec::new();
    let mut notes = LogNotes::default();
    for rep in 0..config.reps {
        let sandbox = Sandbox::new("bench-latency");
        let hub = Hub::start(&sandbox.dir("hub")).await;
        let a_dir = sandbox.dir("a");
        let b_dir = sandbox.dir("b");
        let staging = sandbox.dir("staging");
        let plain = sandbox.dir("plain");
        let mut a = Agent::start(hub.url(), &a_dir, "a", &[]).await;
        let mut b = Agent::start(hub.url(), &b_dir, "b", &[]).await;
        check_events_mode(&a);
        check_events_mode(&b);
        sandbox.step(&format!(
            "rep {}/{}: {} warm-up + {} samples",
            rep + 1,
            config.reps,
            LATENCY_WARMUP,
            config.latency_samples
        ));
        let total = LATENCY_WARMUP + config.latency_samples;
        let (agent, floor) = tokio::task::block_in_place(|| {
            let mut agent = Vec::new();
            let mut floor = Vec::new();
            for i in 0..total {
                let name = format!("note-{i:04}.txt");
                // 0, 1/10, …, 9/10 of the poll interval.
                let phase = config.poll * (i % 10) as u32 / 10;
                let content = random_bytes((rep * 100_000 + i) as u64 + 1, LATENCY_FILE_BYTES);
                let baseline = time_until_visible(
                    &plain.join(&name),
                    &content,
                    config.poll,
                    phase,
                    timeout,
                    || {
                        let temp = staging.join(&name);
                        fs::write(&temp, &content).expect("write the baseline file");
                        fs::rename(&temp, plain.join(&name)).expect("rename the baseline file");
                    },
                );
                let synced = time_until_visible(
                    &b_dir.join(&name),
                    &content,
                    config.poll,
                    phase,
                    timeout,
                    || fs::write(a_dir.join(&name), &content).expect("write in A's folder"),
                );
                if i >= LATENCY_WARMUP {
                    floor.push(secs(baseline) * 1e3);
                    agent.push(secs(synced) * 1e3);
                }
                std::thread::sleep(config.latency_gap);
            }
            (agent, floor)
        });
        sandbox.step(&format!(
            "rep {}: p50 {:.1} ms, max {:.1} ms",
            rep + 1,
            quantile(&agent, 0.5),
            quantile(&agent, 1.0)
        ));
        wait_converged(&[a_dir.as_path(), b_dir.as_path()], hub.url(), timeout)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(folder_files(&b_dir).len(), total, "files in B");
        stop_agent(&mut a, &mut notes).await;
        stop_agent(&mut b, &mut notes).await;
        notes.add("hub", &hub.log());
        agent_ms.push(agent);
        floor_ms.push(floor);
    }

    let mut out = format!(
        "\n## {}\n\n{} rep(s) × {} samples (after {} warm-up samples each), {} ms apart. \
         A 1 KiB file is written into A's folder (create, write, close); the time runs from \
         just before the write until a thread reading B's copy every {} µs finds exactly \
         those bytes. Agents: default settings (debounce 150 ms).\n\n",
        Section::Latency.title(),
        config.reps,
        config.latency_samples,
        LATENCY_WARMUP,
        config.latency_gap.as_millis(),
        config.poll.as_micros()
    );
    let mut table = Table::new(&[
        "measurement",
        "samples",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "p50 per rep: median (min–max) ms",
    ]);
    for (label, per_rep) in [
        ("A → hub → B, 1 KiB new file", &agent_ms),
        (
            "baseline: write elsewhere + rename into a local dir, same poller",
            &floor_ms,
        ),
    ] {
        let all: Vec<f64> = per_rep.iter().flatten().copied().collect();
        let p50s: Vec<f64> = per_rep.iter().map(|r| quantile(r, 0.5)).collect();
        table.row(&[
            label.to_owned(),
            all.len().to_string(),
            format!("{:.1}", quantile(&all, 0.5)),
            format!("{:.1}", quantile(&all, 0.9)),
            format!("{:.1}", quantile(&all, 0.99)),
            format!("{:.1}", quantile(&all, 1.0)),
            cell(&p50s, 1),
        ]);
    }
    out.push_str(&table.text);
    write!(
        out,
        "\nQuantiles are nearest-rank over all samples of all reps.\n{}\n",
        notes.render()
    )
    .unwrap();
    out
}

// ---------------------------------------------------------------------------
// 2. Burst of small files
// ---------------------------------------------------------------------------

/// Relative path → (size, sha256).
type Expected = BTreeMap<String, (u64, Sha256Hex)>;

/// Writes `count` files of `min..=max` random bytes under `root`, spread
/// over `folders` folders; returns what was written.
fn write_tree(
    root: &Path,
    seed: u64,
    count: usize,
    folders: usize,
    min: u64,
    max: u64,
) -> Expected {
    let mut noise = Noise::new(seed);
    let mut expected = Expected::new();
    for i in 0..count {
        let len = min + noise.next_u64() % (max - min + 1);
        let mut bytes = vec![0u8; len as usize];
        noise.fill(&mut bytes);
        let rel = format!("d{:04}/f{i:06}.bin", i % folders);
        write_file(&root.join(&rel), &bytes);
        expected.insert(rel, (len, sha256(&bytes)));
    }
    expected
}

/// Checks `dir` against `expected` by sha256: `None` when equal, else a
/// description of the first differences.
fn tree_mismatch(dir: &Path, expected: &Expected) -> Option<String> {
    let actual = folder_files(dir);
    let mut lines = Vec::new();
    let mut differ = 0;
    for (rel, (_, sha)) in expected {
        let got = actual.get(rel);
        if got != Some(sha) {
            differ += 1;
            if lines.len() < 10 {
                lines.push(format!("{rel}: expected {sha}, found {got:?}"));
            }
        }
    }
    for rel in actual.keys().filter(|rel| !expected.contains_key(*rel)) {
        differ += 1;
        if lines.len() < 10 {
            lines.push(format!("{rel}: unexpected"));
        }
    }
    (differ > 0).then(|| {
        format!(
            "{} differs from what was written in {differ} path(s):\n{}",
            dir.display(),
            lines.join("\n")
        )
    })
}

/// Index of the first expected file not (yet) in `dir` with its size,
/// starting at `from` (files only appear in a burst, so earlier ones need
/// no second look).
fn first_missing(dir: &Path, expected: &[(&String, u64)], from: usize) -> usize {
    expected[from..]
        .iter()
        .position(|(rel, size)| !fs::metadata(dir.join(rel)).is_ok_and(|m| m.len() == *size))
        .map_or(expected.len(), |p| from + p)
}

async fn bench_burst(config: &Config) -> String {
    let n = config.files;
    let timeout = Duration::from_secs(300).max(Duration::from_millis(100) * n as u32);
    let source = Sandbox::new("bench-burst-source");
    let tree = source.dir("tree");
    let expected =
        tokio::task::block_in_place(|| write_tree(&tree, 9, n, BURST_FOLDERS, KIB, 16 * KIB));
    let total_bytes: u64 = expected.values().map(|(size, _)| size).sum();
    source.step(&format!(
        "source tree: {n} files, {:.1} MiB",
        mib(total_bytes as f64)
    ));
    let by_size: Vec<(&String, u64)> = expected.iter().map(|(rel, (s, _))| (rel, *s)).collect();
    let want: BTreeMap<String, Sha256Hex> = expected
        .iter()
        .map(|(rel, (_, sha))| (rel.clone(), *sha))
        .collect();

    let mut cp_local = Vec::new();
    let mut cp_into_a = Vec::new();
    let mut hub_all = Vec::new();
    let mut b_all = Vec::new();
    let mut received = Vec::new();
    let mut notes = LogNotes::default();
    for rep in 0..config.reps {
        let sandbox = Sandbox::new("bench-burst");
        let hub = Hub::start(&sandbox.dir("hub")).await;
        let metrics = HubMetrics::of(&hub);
        let a_dir = sandbox.dir("a");
        let b_dir = sandbox.dir("b");
        let mut a = Agent::start(hub.url(), &a_dir, "a", &[]).await;
        let mut b = Agent::start(hub.url(), &b_dir, "b", &[]).await;
        check_events_mode(&a);
        check_events_mode(&b);

        let copy = sandbox.path().join("copy");
        let baseline = tokio::task::block_in_place(|| timed_cp(&[Path::new("-r"), &tree, &copy]));
        assert!(tree_mismatch(&copy, &expected).is_none(), "cp -r copy");
        cp_local.push(secs(baseline));

        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = metrics.scrape().await;
        sandbox.step(&format!("rep {}/{}: cp -r into A", rep + 1, config.reps));
        let started = Instant::now();
        let write =
            tokio::task::block_in_place(|| timed_cp(&[Path::new("-r"), &tree.join("."), &a_dir]));
        cp_into_a.push(secs(write));

        let deadline = started + timeout;
        let mut hub_done: Option<Duration> = None;
        let mut b_done: Option<Duration> = None;
        let mut next = 0;
        while b_done.is_none() || hub_done.is_none() {
            let poll_started = Instant::now();
            // The counter is cheap to poll; the index confirms the content.
            if hub_done.is_none()
                && metrics.scrape().await.uploads - before.uploads >= n as f64
                && hub_index(hub.url()).await.is_ok_and(|index| index == want)
            {
                hub_done = Some(poll_started - started);
            }
            if b_done.is_none() {
                let b_polled = Instant::now();
                next = tokio::task::block_in_place(|| first_missing(&b_dir, &by_size, next));
                if next == by_size.len() {
                    b_done = Some(b_polled - started);
                }
            }
            assert!(
                Instant::now() < deadline,
                "burst: after {timeout:?} the hub counted {} uploads and B has {next} of {n} files",
                metrics.scrape().await.uploads - before.uploads
            );
            // Keep the poller light next to the agents: ≥ 100 ms, ≤ ~20 %
            // of a core.
            let pause = (poll_started.elapsed() * 4).max(Duration::from_millis(100));
            tokio::time::sleep(pause).await;
        }
        let mut b_done = b_done.unwrap();
        // Sizes matched: now the content. If it is not all right yet, the
        // time is when it is.
        if let Some(diff) = tokio::task::block_in_place(|| tree_mismatch(&b_dir, &expected)) {
            eprintln!("sizes matched but content not yet:\n{diff}");
            wait_converged(&[a_dir.as_path(), b_dir.as_path()], hub.url(), timeout)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            b_done = started.elapsed();
            if let Some(diff) = tokio::task::block_in_place(|| tree_mismatch(&b_dir, &expected)) {
                panic!("B converged with A, but not on what was written: {diff}");
            }
        }
        wait_converged(&[a_dir.as_path(), b_dir.as_path()], hub.url(), timeout)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(tree_mismatch(&a_dir, &expected).is_none(), "A's folder");
        let after = metrics.scrape().await;
        sandbox.step(&format!(
            "rep {}: hub has all after {:.2} s, B after {:.2} s",
            rep + 1,
            secs(hub_done.unwrap()),
            secs(b_done)
        ));
        hub_all.push(secs(hub_done.unwrap()));
        b_all.push(secs(b_done));
        received.push(mib(after.received - before.received));
        stop_agent(&mut a, &mut notes).await;
        stop_agent(&mut b, &mut notes).await;
        notes.add("hub", &hub.log());
    }

    let base = spread(&cp_local).median;
    let mut out = format!(
        "\n## {}\n\n{n} files of 1–16 KiB ({:.1} MiB, fixed seed) in {BURST_FOLDERS} folders, \
         `cp -r` into A's folder while A and B run; {} rep(s), each with a fresh hub and \
         agents. Times run from the start of the copy; the hub and B are polled \
         every ≥ 100 ms (the hub: its upload counter, then its index by sha256; B: every \
         file's size, then all {n} by sha256 against the source, then `wait_converged` on A, \
         B and the hub).\n\n",
        Section::Burst.title(),
        mib(total_bytes as f64),
        config.reps
    );
    let mut table = Table::new(&["measurement", "seconds", "files/s", "vs baseline"]);
    let rate = |v: &[f64]| format!("{:.0}", n as f64 / spread(v).median);
    table.row(&[
        "baseline: `cp -r` of the tree to a local dir".to_owned(),
        cell(&cp_local, 2),
        rate(&cp_local),
        "1.0×".to_owned(),
    ]);
    table.row(&[
        "`cp -r` of the tree into A's folder (A running)".to_owned(),
        cell(&cp_into_a, 2),
        rate(&cp_into_a),
        ratio(spread(&cp_into_a).median, base),
    ]);
    table.row(&[
        format!("hub has all {n} files (upload counter, then index by sha256)"),
        cell(&hub_all, 2),
        rate(&hub_all),
        ratio(spread(&hub_all).median, base),
    ]);
    table.row(&[
        format!("**B has all {n} files, content verified**"),
        format!("**{}**", cell(&b_all, 2)),
        rate(&b_all),
        ratio(spread(&b_all).median, base),
    ]);
    out.push_str(&table.text);
    write!(
        out,
        "\nHub received {} MiB of file/chunk bodies per rep (source: {:.1} MiB).\n{}\n",
        cell(&received, 1),
        mib(total_bytes as f64),
        notes.render()
    )
    .unwrap();
    out
}

// ---------------------------------------------------------------------------
// 3. One large file and a 1 MiB change in it
// ---------------------------------------------------------------------------

type FileKey = (u64, i64, i64, u64);

fn file_key(meta: &fs::Metadata) -> FileKey {
    (
        meta.len(),
        meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
        meta.ino(),
    )
}

/// Polls `path` every 10 ms until it has `size` bytes hashing to `sha`;
/// returns when the stat that first saw that version ran. Each version
/// (size, mtime, ctime, inode) is hashed once; a match counts if the inode
/// is still the same after hashing (the agent renames new versions into
/// place, then may set their mtime: that changes the key, not the bytes).
/// The version present at the start is taken as already checked.
fn wait_file(path: &Path, size: u64, sha: Sha256Hex, timeout: Duration) -> Instant {
    let deadline = Instant::now() + timeout;
    let mut checked: Option<FileKey> = fs::metadata(path).ok().map(|m| file_key(&m));
    loop {
        let seen_at = Instant::now();
        if let Ok(meta) = fs::metadata(path) {
            let key = file_key(&meta);
            if meta.len() == size && checked != Some(key) {
                checked = Some(key);
                let hashed = file_sha256(path).ok();
                let still = fs::metadata(path).ok().map(|m| (m.ino(), m.len()));
                if hashed == Some(sha) && still == Some((meta.ino(), size)) {
                    return seen_at;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} did not reach {size} bytes with sha256 {sha} within {timeout:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// sha256 of `path` with `patch` written over it at `offset`.
fn patched_sha256(path: &Path, offset: u64, patch: &[u8]) -> Sha256Hex {
    use std::io::Read;
    let mut file = fs::File::open(path).expect("open the source");
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; MIB as usize];
    let mut pos = 0u64;
    loop {
        let n = file.read(&mut buffer).expect("read the source");
        if n == 0 {
            return Sha256Hex::from(hasher);
        }
        let block = &mut buffer[..n];
        let (start, end) = (pos, pos + n as u64);
        let (p_start, p_end) = (offset, offset + patch.len() as u64);
        if start < p_end && p_start < end {
            let from = p_start.max(start);
            let to = p_end.min(end);
            block[(from - start) as usize..(to - start) as usize]
                .copy_from_slice(&patch[(from - p_start) as usize..(to - p_start) as usize]);
        }
        hasher.update(block);
        pos = end;
    }
}

async fn bench_big(config: &Config) -> String {
    let bytes = config.big_bytes;
    let timeout = Duration::from_secs(600).max(Duration::from_secs(bytes / (2 * MIB)));
    let source_box = Sandbox::new("bench-big-source");
    let source = source_box.path().join("big.bin");
    let offset = bytes / 2;
    let patch = random_bytes(0x00c4_a99e, PATCH_BYTES);
    let (sha_v1, sha_v2, hash_time) = tokio::task::block_in_place(|| {
        let sha_v1 = write_random_file(&source, 0xb16, bytes);
        let started = Instant::now();
        let sha_v2 = patched_sha256(&source, offset, &patch);
        (sha_v1, sha_v2, started.elapsed())
    });
    source_box.step(&format!("source: {} MiB, sha256 {sha_v1}", bytes / MIB));

    let mut cp = Vec::new();
    let mut first = Vec::new();
    let mut first_received = Vec::new();
    let mut change = Vec::new();
    let mut change_received = Vec::new();
    let mut change_sent = Vec::new();
    let mut a_peak = Vec::new();
    let mut b_peak = Vec::new();
    let mut notes = LogNotes::default();
    for rep in 0..config.reps {
        let sandbox = Sandbox::new("bench-big");
        let hub = Hub::start(&sandbox.dir("hub")).await;
        let metrics = HubMetrics::of(&hub);
        let a_dir = sandbox.dir("a");
        let b_dir = sandbox.dir("b");
        let staging = sandbox.dir("staging");
        let mut a = Agent::start(hub.url(), &a_dir, "a", &[]).await;
        let mut b = Agent::start(hub.url(), &b_dir, "b", &[]).await;
        check_events_mode(&a);
        check_events_mode(&b);
        let staged = staging.join("big.bin");
        let a_file = a_dir.join("big.bin");
        let b_file = b_dir.join("big.bin");

        // Baseline, and the copy that goes into A.
        cp.push(secs(tokio::task::block_in_place(|| {
            timed_cp(&[&source, &staged])
        })));
        tokio::time::sleep(Duration::from_secs(1)).await;

        sandbox.step(&format!("rep {}/{}: new file into A", rep + 1, config.reps));
        let before = metrics.scrape().await;
        let started = Instant::now();
        fs::rename(&staged, &a_file).expect("rename the file into A's folder");
        let seen = tokio::task::block_in_place(|| wait_file(&b_file, bytes, sha_v1, timeout));
        first.push(secs(seen - started));
        first_received.push(mib(metrics.scrape().await.received - before.received));
        wait_converged(&[a_dir.as_path(), b_dir.as_path()], hub.url(), timeout)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        tokio::time::sleep(Duration::from_secs(1)).await;

        sandbox.step(&format!(
            "rep {}: overwrite {} KiB at {} MiB in A's copy",
            rep + 1,
            PATCH_BYTES as u64 / KIB,
            offset / MIB
        ));
        let before = metrics.scrape().await;
        let started = Instant::now();
        {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .open(&a_file)
                .expect("open A's copy");
            file.seek(SeekFrom::Start(offset)).expect("seek");
            file.write_all(&patch).expect("write the patch");
        }
        let seen = tokio::task::block_in_place(|| wait_file(&b_file, bytes, sha_v2, timeout));
        change.push(secs(seen - started));
        let after = metrics.scrape().await;
        change_received.push(after.received - before.received);
        change_sent.push(after.sent - before.sent);
        assert_eq!(
            tokio::task::block_in_place(|| file_sha256(&a_file)).expect("hash A's copy"),
            sha_v2,
            "A's copy after the patch"
        );
        wait_converged(&[a_dir.as_path(), b_dir.as_path()], hub.url(), timeout)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        sandbox.step(&format!(
            "rep {}: new file {:.2} s, change {:.2} s, {:.2} MiB uploaded for the change",
            rep + 1,
            first.last().unwrap(),
            change.last().unwrap(),
            mib(*change_received.last().unwrap())
        ));
        a_peak.push(mib(
            status_kib(a.pid().unwrap(), "VmHWM") as f64 * KIB as f64
        ));
        b_peak.push(mib(
            status_kib(b.pid().unwrap(), "VmHWM") as f64 * KIB as f64
        ));
        stop_agent(&mut a, &mut notes).await;
        stop_agent(&mut b, &mut notes).await;
        notes.add("hub", &hub.log());
    }

    let size_mib = bytes / MIB;
    let base = spread(&cp).median;
    let received_mib: Vec<f64> = change_received.iter().map(|&b| mib(b)).collect();
    let sent_mib: Vec<f64> = change_sent.iter().map(|&b| mib(b)).collect();
    let worst = change_received.iter().copied().fold(0.0, f64::max);
    let mut out = format!(
        "\n## {}\n\nA {size_mib} MiB file of random bytes is renamed into A's folder (from a \
         staging dir on the same file system); then {} KiB at offset {} MiB of A's copy are \
         overwritten in place (open, seek, write, close). Times run until B's copy has the \
         expected sha256 (stat every 10 ms; a new version is hashed and counts from the stat \
         that first saw it). Bytes: deltas of the hub's `sync_bytes_received_total` / \
         `sync_bytes_sent_total` (request/response bodies of chunks and files; HTTP and \
         JSON overhead not counted). {} rep(s).\n\n",
        Section::Big.title(),
        PATCH_BYTES as u64 / KIB,
        offset / MIB,
        config.reps
    );
    let mut table = Table::new(&["measurement", "value", "unit", "vs baseline / target"]);
    table.row(&[
        format!("baseline: `cp` of the {size_mib} MiB file"),
        cell(&cp, 2),
        "s".to_owned(),
        "1.0×".to_owned(),
    ]);
    table.row(&[
        format!("baseline: sha256 of the {size_mib} MiB file in this process (once)"),
        format!("{:.2}", secs(hash_time)),
        "s".to_owned(),
        ratio(secs(hash_time), base),
    ]);
    table.row(&[
        "**new file: B has it (sha256 verified)**".to_owned(),
        format!("**{}**", cell(&first, 2)),
        "s".to_owned(),
        ratio(spread(&first).median, base),
    ]);
    table.row(&[
        "new file: bytes the hub received".to_owned(),
        cell(&first_received, 1),
        "MiB".to_owned(),
        format!("file is {size_mib} MiB"),
    ]);
    table.row(&[
        "**1 MiB overwrite: B has the new version (sha256 verified)**".to_owned(),
        format!("**{}**", cell(&change, 2)),
        "s".to_owned(),
        ratio(spread(&change).median, base),
    ]);
    table.row(&[
        "**1 MiB overwrite: bytes A uploaded (hub received)**".to_owned(),
        format!("**{}**", cell(&received_mib, 2)),
        "MiB".to_owned(),
        format!(
            "< 4 MiB: {}",
            if worst < PATCH_TARGET_BYTES {
                "met in every rep"
            } else {
                "**NOT met**"
            }
        ),
    ]);
    table.row(&[
        "1 MiB overwrite: bytes B downloaded (hub sent)".to_owned(),
        cell(&sent_mib, 2),
        "MiB".to_owned(),
        String::new(),
    ]);
    table.row(&[
        "agent A peak RSS (VmHWM) over the section".to_owned(),
        cell(&a_peak, 1),
        "MiB".to_owned(),
        String::new(),
    ]);
    table.row(&[
        "agent B peak RSS (VmHWM) over the section".to_owned(),
        cell(&b_peak, 1),
        "MiB".to_owned(),
        String::new(),
    ]);
    out.push_str(&table.text);
    write!(out, "\n{}\n", notes.render()).unwrap();
    out
}

// ---------------------------------------------------------------------------
// 4. First sync and idle cost of a large folder
// ---------------------------------------------------------------------------

struct IdleSample {
    cpu_seconds: f64,
    window: f64,
    max_slice_percent: f64,
    wakeups_per_second: f64,
    rss_end_kib: u64,
    rss_max_kib: u64,
    hwm_kib: u64,
    threads: u64,
}

/// Waits until `pid` uses ≤ 2 % CPU over a 2 s slice (at most 120 s);
/// returns how long that took and whether it settled.
async fn settle(pid: u32) -> (Duration, bool) {
    let started = Instant::now();
    loop {
        let before = cpu_seconds(pid);
        tokio::time::sleep(Duration::from_secs(2)).await;
        if (cpu_seconds(pid) - before) / 2.0 <= 0.02 {
            return (started.elapsed(), true);
        }
        if started.elapsed() > Duration::from_secs(120) {
            return (started.elapsed(), false);
        }
    }
}

/// CPU, wake-ups and memory of `pid` over `window`, sampled every second.
async fn idle_window(pid: u32, window: Duration) -> IdleSample {
    let started = Instant::now();
    let cpu_start = cpu_seconds(pid);
    let mut wakeups = Wakeups::start(pid);
    let mut max_slice: f64 = 0.0;
    let mut rss_max = status_kib(pid, "VmRSS");
    let mut last_cpu = cpu_start;
    let mut last_at = started;
    while started.elapsed() < window {
        let step = Duration::from_secs(1).min(window - started.elapsed());
        tokio::time::sleep(step).await;
        let now = Instant::now();
        let cpu = cpu_seconds(pid);
        max_slice = max_slice.max((cpu - last_cpu) / secs(now - last_at) * 100.0);
        rss_max = rss_max.max(status_kib(pid, "VmRSS"));
        wakeups.sample(pid);
        last_cpu = cpu;
        last_at = now;
    }
    let elapsed = secs(started.elapsed());
    IdleSample {
        cpu_seconds: last_cpu - cpu_start,
        window: elapsed,
        max_slice_percent: max_slice,
        wakeups_per_second: wakeups.total() as f64 / elapsed,
        rss_end_kib: status_kib(pid, "VmRSS"),
        rss_max_kib: rss_max,
        hwm_kib: status_kib(pid, "VmHWM"),
        threads: status_kib(pid, "Threads"),
    }
}

async fn bench_idle(config: &Config) -> String {
    let n = config.idle_files;
    let folders = n.div_ceil(IDLE_FILES_PER_FOLDER);
    let timeout = Duration::from_secs(600).max(Duration::from_millis(20) * n as u32);
    let mut create = Vec::new();
    let mut first_sync = Vec::new();
    let mut settled = Vec::new();
    let mut unsettled = 0;
    let mut loaded: Vec<IdleSample> = Vec::new();
    let mut restarted: Vec<IdleSample> = Vec::new();
    let mut empty: Vec<IdleSample> = Vec::new();
    let mut notes = LogNotes::default();
    for rep in 0..config.reps {
        // Baseline: the same agent on an empty folder, the same window.
        {
            let sandbox = Sandbox::new("bench-idle-empty");
            let hub = Hub::start(&sandbox.dir("hub")).await;
            let dir = sandbox.dir("a");
            let mut agent = Agent::start(hub.url(), &dir, "a", &[]).await;
            check_events_mode(&agent);
            let pid = agent.pid().unwrap();
            settle(pid).await;
            sandbox.step(&format!(
                "rep {}/{}: idle window, empty folder",
                rep + 1,
                config.reps
            ));
            empty.push(idle_window(pid, config.idle_window).await);
            assert!(agent.is_running(), "the agent exited during the window");
            stop_agent(&mut agent, &mut notes).await;
        }

        let sandbox = Sandbox::new("bench-idle");
        let a_dir = sandbox.dir("a");
        sandbox.step(&format!("rep {}: creating {n} files", rep + 1));
        let started = Instant::now();
        let expected =
            tokio::task::block_in_place(|| write_tree(&a_dir, 11, n, folders, KIB, 4 * KIB));
        create.push(secs(started.elapsed()));
        let hub = Hub::start(&sandbox.dir("hub")).await;
        let metrics = HubMetrics::of(&hub);

        sandbox.step(&format!("rep {}: first sync of {n} files", rep + 1));
        let started = Instant::now();
        let mut a = Agent::start(hub.url(), &a_dir, "a", &[]).await;
        check_events_mode(&a);
        let want: BTreeMap<String, Sha256Hex> = expected
            .iter()
            .map(|(rel, (_, sha))| (rel.clone(), *sha))
            .collect();
        let deadline = started + timeout;
        // The counter (which also counts folders) is cheap to poll; once it
        // reaches n, the index (large) confirms every file by sha256, at
        // most a fifth of the time.
        let done = loop {
            let polled = Instant::now();
            let uploads = metrics.scrape().await.uploads;
            if uploads >= n as f64 && hub_index(hub.url()).await.is_ok_and(|i| i == want) {
                break polled;
            }
            assert!(
                Instant::now() < deadline,
                "first sync: the hub counted {uploads} uploads for {n} files after {timeout:?}"
            );
            assert!(a.is_running(), "agent A exited during the first sync");
            let pause = (polled.elapsed() * 4).max(Duration::from_millis(100));
            tokio::time::sleep(pause).await;
        };
        first_sync.push(secs(done - started));
        let pid = a.pid().unwrap();
        let (took, ok) = settle(pid).await;
        settled.push(secs(took));
        unsettled += usize::from(!ok);
        sandbox.step(&format!(
            "rep {}: first sync {:.1} s, settled after {:.1} s; idle window",
            rep + 1,
            first_sync.last().unwrap(),
            secs(took)
        ));
        loaded.push(idle_window(pid, config.idle_window).await);
        assert!(a.is_running(), "agent A exited during the idle window");
        check_events_mode(&a);
        stop_agent(&mut a, &mut notes).await;

        // A restart: the start-up scan reads every record and finds every
        // file unchanged.
        let mut a = Agent::start(hub.url(), &a_dir, "a", &[]).await;
        let pid = a.pid().unwrap();
        let (took, _) = settle(pid).await;
        sandbox.step(&format!(
            "rep {}: restarted, settled after {:.1} s; idle window",
            rep + 1,
            secs(took)
        ));
        restarted.push(idle_window(pid, config.idle_window).await);
        assert!(a.is_running(), "agent A exited during the idle window");
        assert!(
            hub_index(hub.url()).await.is_ok_and(|i| i == want),
            "the hub's index changed across A's restart"
        );
        stop_agent(&mut a, &mut notes).await;
        notes.add("hub", &hub.log());
    }

    let base = spread(&create).median;
    let mut out = format!(
        "\n## {}\n\n{n} files of 1–4 KiB in {folders} folders are created in A's folder before \
         A starts (hub empty); \"first sync\" runs from A's start until the hub has committed \
         all of them (`sync_uploads_total`, polled every ≥ 100 ms; once it reaches {n}, the \
         hub's index checked by sha256 at each poll). Then A settles (a 2 s slice under 2 % CPU) and is observed for {} s. \
         Baseline: the same window for an agent with an empty folder. {} rep(s).\n\n",
        Section::Idle.title(),
        config.idle_window.as_secs(),
        config.reps
    );
    let mut table = Table::new(&["measurement", "value", "unit", "vs baseline"]);
    table.row(&[
        format!("baseline: create the {n} files (this process)"),
        cell(&create, 2),
        "s".to_owned(),
        "1.0×".to_owned(),
    ]);
    table.row(&[
        format!("**first sync of {n} files (A start → hub has all)**"),
        format!("**{}**", cell(&first_sync, 1)),
        "s".to_owned(),
        ratio(spread(&first_sync).median, base),
    ]);
    table.row(&[
        "time for A to settle after the first sync".to_owned(),
        cell(&settled, 1),
        "s".to_owned(),
        if unsettled > 0 {
            format!("**did not settle in {unsettled} rep(s)**")
        } else {
            String::new()
        },
    ]);
    out.push_str(&table.text);
    out.push('\n');

    let mut idle = Table::new(&[
        "idle A",
        &format!("{n} files, after the first sync"),
        &format!("{n} files, after a restart"),
        "empty folder (baseline)",
        "unit",
    ]);
    let metric = |label: &str, unit: &str, prec: usize, f: &dyn Fn(&IdleSample) -> f64| {
        let l: Vec<f64> = loaded.iter().map(f).collect();
        let r: Vec<f64> = restarted.iter().map(f).collect();
        let e: Vec<f64> = empty.iter().map(f).collect();
        [
            label.to_owned(),
            cell(&l, prec),
            cell(&r, prec),
            cell(&e, prec),
            unit.to_owned(),
        ]
    };
    idle.row(&metric("**CPU, average over the window**", "%", 2, &|s| {
        s.cpu_seconds / s.window * 100.0
    }));
    idle.row(&metric("CPU time in the window", "s", 2, &|s| {
        s.cpu_seconds
    }));
    idle.row(&metric("CPU, busiest 1 s slice", "%", 1, &|s| {
        s.max_slice_percent
    }));
    idle.row(&metric(
        "wake-ups (context switches summed per thread)",
        "/s",
        1,
        &|s| s.wakeups_per_second,
    ));
    idle.row(&metric(
        "**VmRSS at the end of the window**",
        "MiB",
        1,
        &|s| s.rss_end_kib as f64 / KIB as f64,
    ));
    idle.row(&metric(
        "VmRSS, highest sample in the window",
        "MiB",
        1,
        &|s| s.rss_max_kib as f64 / KIB as f64,
    ));
    idle.row(&metric("**VmHWM (peak since start)**", "MiB", 1, &|s| {
        s.hwm_kib as f64 / KIB as f64
    }));
    idle.row(&metric("threads", "", 0, &|s| s.threads as f64));
    out.push_str(&idle.text);
    write!(
        out,
        "\nCPU from utime+stime in /proc/<pid>/stat ({} ticks/s). The agent rescans its whole \
         folder every 60 s while file events work; a window longer than that includes one \
         such scan (see the busiest slice).\n{}\n",
        clock_ticks(),
        notes.render()
    )
    .unwrap();
    out
}
