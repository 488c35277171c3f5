//! The tables printed at the end: medians and ranges over the repetitions,
//! latency quantiles, throughput next to its baseline, the hub's memory and
//! what its logs said.

use std::time::Duration;

use sf_test_support::bench::{mib, mib_cells, spread};

use crate::big::{BigPhase, BigReport};
use crate::commits::{CommitReport, CommitRow};
use crate::{Config, MIB, SMALL_FILE_BYTES};

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

#[derive(Default)]
pub struct Report {
    pub commits: Option<CommitReport>,
    pub big: Option<BigReport>,
    pub bench_peak_rss_kib: Option<u64>,
}

impl Report {
    pub fn print(&self, config: &Config, elapsed: Duration) {
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
    let print_row = |row: &CommitRow| {
        let requests_per_op = row.requests_per_op;
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
        print_row(row);
    }
    for (_, rows, _, _) in &report.backends {
        for row in rows {
            print_row(row);
        }
    }
    print_batch_goals(config, report);
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

/// The batch rows next to the single commits with as many clients, and the
/// issue's goals for them.
fn print_batch_goals(config: &Config, report: &CommitReport) {
    if config.batch_files == 0 {
        return;
    }
    println!();
    println!(
        "   batch rows: files/s committed through POST /v1/chunks/pack + POST /v1/batch, {} \
         files per round, {} files per run; their latencies are per round (pack + batch)",
        config.batch_size, config.batch_files
    );
    for (backend, rows, _, _) in &report.backends {
        let Some(batch) = rows.iter().find(|r| r.label.starts_with("batch")) else {
            continue;
        };
        let rate = spread(&batch.rates);
        let single = rows
            .iter()
            .find(|r| r.label.starts_with("commit") && r.clients == batch.clients)
            .map(|r| spread(&r.rates).median);
        let goal = match backend.as_str() {
            "sqlite" => 5_000.0,
            _ => 2_000.0,
        };
        println!(
            "   {backend}: batch median {:.0} files/s (min–max {:.0}–{:.0}){}; goal ≥ {goal:.0} \
             with 8 clients: {}",
            rate.median,
            rate.min,
            rate.max,
            single
                .map(|s| format!(", {:.1}× the single commits' {s:.0}/s", rate.median / s))
                .unwrap_or_default(),
            if rate.median >= goal {
                "met"
            } else {
                "NOT met"
            },
        );
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
        let (peak, peak_range) = mib_cells(&row.hub_peak_kib);
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
