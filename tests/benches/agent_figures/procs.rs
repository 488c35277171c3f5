//! What the sections read from the processes they measure: CPU time from
//! `/proc/<pid>/stat`, wake-ups (context switches summed per thread), memory
//! (through `sf-test-support`'s `/proc/<pid>/status` reader), the hub's
//! Prometheus counters; and the agent chores every section shares.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sf_e2e::{Agent, Hub, Sandbox, TwoAgents};
use sf_test_support::bench::LogNotes;
use sf_test_support::status_field;

pub fn clock_ticks() -> f64 {
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
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/stat: {e}"));
    // Fields after the command name (which may hold spaces): state is
    // field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').expect("a /proc stat line").1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / clock_ticks()
}

/// The `key:` number of /proc/<pid>/status (KiB for `Vm*`).
pub fn status_kib(pid: u32, key: &str) -> u64 {
    sf_test_support::status_value(pid, key).unwrap_or_else(|e| panic!("{e}"))
}

/// Voluntary + involuntary context switches of every live thread, by
/// thread id.
pub fn thread_switches(pid: u32) -> BTreeMap<String, u64> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return BTreeMap::new();
    };
    tasks
        .flatten()
        .filter_map(|task| {
            let status = fs::read_to_string(task.path().join("status")).ok()?;
            let switches = status_field(&status, "voluntary_ctxt_switches").unwrap_or(0)
                + status_field(&status, "nonvoluntary_ctxt_switches").unwrap_or(0);
            Some((task.file_name().to_string_lossy().into_owned(), switches))
        })
        .collect()
}

/// How often a process woke up over a window: context switches summed per
/// thread, so that threads exiting during the window (tokio's idle blocking
/// threads do, after 10 s) do not take their earlier counts with them and
/// threads starting in it count from zero. A thread that exits loses at most
/// its switches since the last sample.
pub struct Wakeups {
    first: BTreeMap<String, u64>,
    last: BTreeMap<String, u64>,
}

impl Wakeups {
    pub fn start(pid: u32) -> Self {
        let now = thread_switches(pid);
        Self {
            first: now.clone(),
            last: now,
        }
    }

    pub fn sample(&mut self, pid: u32) {
        for (tid, switches) in thread_switches(pid) {
            self.first.entry(tid.clone()).or_insert(0);
            self.last.insert(tid, switches);
        }
    }

    pub fn total(&self) -> u64 {
        self.last
            .iter()
            .map(|(tid, last)| last.saturating_sub(self.first[tid]))
            .sum()
    }
}

/// The hub's Prometheus endpoint.
pub struct HubMetrics {
    url: String,
    http: reqwest::Client,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Scrape {
    pub received: f64,
    pub sent: f64,
    pub uploads: f64,
}

impl HubMetrics {
    pub fn of(hub: &Hub) -> Self {
        Self {
            url: hub.metrics_url(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
        }
    }

    pub async fn scrape(&self) -> Scrape {
        let text = async {
            let resp = self.http.get(&self.url).send().await?;
            resp.error_for_status()?.text().await
        }
        .await
        .unwrap_or_else(|e| panic!("GET {}: {e}", self.url));
        let value = |name: &str| -> f64 {
            sf_test_support::metric_value(&text, name)
                .unwrap_or_else(|| panic!("no {name} in the hub's metrics:\n{text}"))
        };
        Scrape {
            received: value("sync_bytes_received_total"),
            sent: value("sync_bytes_sent_total"),
            uploads: value("sync_uploads_total"),
        }
    }
}

/// Stops an agent with SIGTERM, adds its log to `notes`.
pub async fn stop_agent(agent: &mut Agent, notes: &mut LogNotes) {
    let status = agent.stop().await;
    notes.add(Some(agent.name()), &agent.log());
    if !status.success() {
        notes.error(format!("{}: exited with {status} on SIGTERM", agent.name()));
    }
}

pub fn check_events_mode(agent: &Agent) {
    let log = agent.log_of_run();
    assert!(
        log.contains("mode=events") || log.contains("mode=\"events\""),
        "agent {} does not use file events (watcher unhealthy?):\n{log}",
        agent.name()
    );
}

/// A hub and agents A and B on their defaults in `sandbox`, both on file
/// events: where the latency, burst and big sections begin.
pub async fn two_agents(sandbox: &Sandbox) -> TwoAgents {
    let pair = TwoAgents::start(sandbox, &[]).await;
    check_events_mode(&pair.a);
    check_events_mode(&pair.b);
    pair
}

/// `cp` with `args`; returns its wall time.
pub fn timed_cp(args: &[&Path]) -> Duration {
    let started = Instant::now();
    let status = Command::new("cp").args(args).status().expect("run cp");
    let elapsed = started.elapsed();
    assert!(status.success(), "cp {args:?}: {status}");
    elapsed
}
