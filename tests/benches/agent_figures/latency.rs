//! Section 1, propagation latency: a 1 KiB file written into A's folder,
//! timed until a poller thread finds it in B's, next to the same poller
//! watching a plain rename (the measurement floor).

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sf_e2e::*;

use crate::procs::{stop_agent, two_agents};
use crate::report::{Table, cell, log_notes, quantile, render_notes, secs};
use crate::{Config, Section};

/// Unmeasured latency samples at the start of every repetition.
const LATENCY_WARMUP: usize = 3;
const LATENCY_FILE_BYTES: usize = 1024;

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

pub async fn bench_latency(config: &Config) -> String {
    let timeout = Duration::from_secs(30);
    let mut agent_ms: Vec<Vec<f64>> = Vec::new();
    let mut floor_ms: Vec<Vec<f64>> = Vec::new();
    let mut notes = log_notes();
    for rep in 0..config.reps {
        let sandbox = Sandbox::new("bench-latency");
        let staging = sandbox.dir("staging");
        let plain = sandbox.dir("plain");
        let TwoAgents {
            hub,
            a_dir,
            b_dir,
            mut a,
            mut b,
        } = two_agents(&sandbox).await;
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
        notes.add(Some("hub"), &hub.log());
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
        render_notes(&notes)
    )
    .unwrap();
    out
}
