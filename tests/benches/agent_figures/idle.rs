//! Section 4, first sync and idle cost of a large folder: seconds until
//! the hub has every file, then the agent's CPU, wake-ups and memory over
//! idle windows (after the first sync, after a restart, and on an empty
//! folder as the baseline).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use sf_e2e::*;
use sf_test_support::bench::spread;

use crate::burst::write_tree;
use crate::procs::{
    HubMetrics, Wakeups, check_events_mode, clock_ticks, cpu_seconds, status_kib, stop_agent,
};
use crate::report::{Table, cell, log_notes, ratio, render_notes, secs};
use crate::{Config, KIB, Section};

const IDLE_FILES_PER_FOLDER: usize = 100;

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

/// Flushes the file system holding `dir` (`sync -f`): the created files'
/// write-back is the creation's work, not the first sync's. On one machine
/// it would otherwise land on the hub, whose group flush (`syncfs`) of
/// each pack of chunks also flushes whatever else is dirty on the same
/// file system, which a hub on its own disk never meets.
fn flush_file_system(dir: &std::path::Path) {
    let status = std::process::Command::new("sync")
        .arg("-f")
        .arg(dir)
        .status()
        .expect("run sync -f");
    assert!(
        status.success(),
        "sync -f {} failed: {status}",
        dir.display()
    );
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

pub async fn bench_idle(config: &Config) -> String {
    let n = config.idle_files;
    let folders = n.div_ceil(IDLE_FILES_PER_FOLDER);
    let timeout = Duration::from_secs(600).max(Duration::from_millis(20) * n as u32);
    let mut create = Vec::new();
    let mut first_sync = Vec::new();
    let mut both_sync = Vec::new();
    let mut peak_rss: Vec<(f64, f64)> = Vec::new();
    let mut settled = Vec::new();
    let mut unsettled = 0;
    let mut loaded: Vec<IdleSample> = Vec::new();
    let mut restarted: Vec<IdleSample> = Vec::new();
    let mut empty: Vec<IdleSample> = Vec::new();
    let mut notes = log_notes();
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
        let expected = tokio::task::block_in_place(|| {
            let expected = write_tree(&a_dir, 11, n, folders, KIB, 4 * KIB);
            flush_file_system(&a_dir);
            expected
        });
        create.push(secs(started.elapsed()));
        let hub = Hub::start(&sandbox.dir("hub")).await;
        let metrics = HubMetrics::of(&hub);

        // B, on an empty folder, receives the whole first sync.
        let b_dir = sandbox.dir("b");
        let mut b = Agent::start(hub.url(), &b_dir, "b", &[]).await;
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
        // B has every file at its size (stat only while timing; contents
        // are checked after).
        let b_done = loop {
            let polled = Instant::now();
            let all_there = tokio::task::block_in_place(|| {
                expected.iter().all(|(rel, (len, _))| {
                    std::fs::metadata(b_dir.join(rel)).is_ok_and(|m| m.len() == *len)
                })
            });
            if all_there {
                break polled;
            }
            assert!(
                Instant::now() < deadline,
                "first sync: B does not have all {n} files after {timeout:?}"
            );
            assert!(b.is_running(), "agent B exited during the first sync");
            let pause = (polled.elapsed() * 4).max(Duration::from_millis(100));
            tokio::time::sleep(pause).await;
        };
        both_sync.push(secs(b_done - started));
        peak_rss.push((
            status_kib(a.pid().unwrap(), "VmHWM") as f64 / 1024.0,
            status_kib(b.pid().unwrap(), "VmHWM") as f64 / 1024.0,
        ));
        let on_b = tokio::task::block_in_place(|| folder_files(&b_dir));
        assert!(
            on_b == want,
            "B's files differ from A's after the first sync"
        );
        stop_agent(&mut b, &mut notes).await;
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
        notes.add(Some("hub"), &hub.log());
    }

    let base = spread(&create).median;
    let mut out = format!(
        "\n## {}\n\n{n} files of 1–4 KiB in {folders} folders are created in A's folder and \
         flushed to disk (`sync -f`) before A starts (hub empty); \"first sync\" runs from A's start until the hub has committed \
         all of them (`sync_uploads_total`, polled every ≥ 100 ms; once it reaches {n}, the \
         hub's index checked by sha256 at each poll), and until agent B, started on an empty \
         folder just before A, has every file at its size (then checked by sha256). Then A settles (a 2 s slice under 2 % CPU) and is observed for {} s. \
         Baseline: the same window for an agent with an empty folder. {} rep(s).\n\n",
        Section::Idle.title(),
        config.idle_window.as_secs(),
        config.reps
    );
    let mut table = Table::new(&["measurement", "value", "unit", "vs baseline"]);
    table.row(&[
        format!("baseline: create and flush the {n} files (this process)"),
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
        format!("**first sync of {n} files (A start → B, started on an empty folder, has all)**"),
        format!("**{}**", cell(&both_sync, 1)),
        "s".to_owned(),
        ratio(spread(&both_sync).median, base),
    ]);
    let peaks = |f: fn(&(f64, f64)) -> f64| peak_rss.iter().map(f).collect::<Vec<f64>>();
    table.row(&[
        "peak RSS (VmHWM) of A / of B over the first sync".to_owned(),
        format!(
            "{} / {}",
            cell(&peaks(|p| p.0), 1),
            cell(&peaks(|p| p.1), 1)
        ),
        "MiB".to_owned(),
        String::new(),
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
        render_notes(&notes)
    )
    .unwrap();
    out
}
