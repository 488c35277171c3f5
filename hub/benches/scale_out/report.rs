//! The tables printed at the end (medians and ranges over the
//! repetitions) and what they say: whether a second hub helps, and which
//! resource the runs ran out of.

use std::time::Duration;

use sf_test_support::bench::{mib, mib_cells, spread};

use crate::big::{BigReport, Phase};
use crate::cluster::Store;
use crate::commits::{CommitReport, Row};
use crate::push::{PushReport, quantile};
use crate::sample::Usage;
use crate::{Config, MIB, SMALL_FILE_BYTES};

#[derive(Default)]
pub struct Report {
    pub load_at_start: String,
    pub load_at_end: String,
    pub commits: Option<CommitReport>,
    pub big: Option<BigReport>,
    pub push: Option<PushReport>,
    pub bench_peak_rss_kib: Option<u64>,
}

fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let values: Vec<f64> = values.into_iter().filter(|v| !v.is_nan()).collect();
    spread(&values).median
}

fn quantile_ms(durations: &[Duration], q: f64) -> f64 {
    let ms: Vec<f64> = durations.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    quantile(&ms, q)
}

impl Report {
    pub fn print(&self, config: &Config, elapsed: Duration) {
        println!();
        println!(
            "==================== scale_out results ({} rep(s), {:.0} s) ====================",
            config.reps,
            elapsed.as_secs_f64()
        );
        println!(
            "load average (1, 5, 15 min): {} at start, {} at end; {} CPUs; everything on this \
             machine over loopback",
            self.load_at_start,
            self.load_at_end,
            std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
        );
        if let Some(commits) = &self.commits {
            print_commits(commits);
        }
        if let Some(big) = &self.big {
            print_big(big);
        }
        if let Some(push) = &self.push {
            print_push(push);
        }
        if let Some(kib) = self.bench_peak_rss_kib {
            println!();
            println!("bench (client) process peak RSS: {:.1} MiB", mib(kib));
        }
        if let Some(commits) = &self.commits {
            interpret(commits, self.push.as_ref());
        }
    }
}

/// Medians over a row's runs of what [`Usage`] reports.
struct RowUsage {
    missing_ms: f64,
    put_ms: f64,
    commit_ms: f64,
    lock_tx_ms: f64,
    held: f64,
    running: f64,
    wal: f64,
    hub: f64,
    waiters: f64,
    /// Milliseconds the write lock was held per commit.
    hold_ms: f64,
    hubs: f64,
    moto: Option<f64>,
    pg: f64,
    bench: f64,
    machine: f64,
    cpus: f64,
}

impl RowUsage {
    fn of(row: &Row) -> Self {
        let each = |f: &dyn Fn(&Usage) -> f64| median(row.runs.iter().map(|r| f(&r.usage)));
        let moto: Vec<f64> = row.runs.iter().filter_map(|r| r.usage.moto_cores).collect();
        Self {
            missing_ms: each(&|u| u.times.route_ms(0)),
            put_ms: each(&|u| u.times.route_ms(1)),
            commit_ms: each(&|u| u.times.route_ms(2)),
            lock_tx_ms: each(&|u| u.times.commit_ms()),
            held: each(&|u| u.lock.held_share()),
            running: each(&|u| u.lock.parts().0),
            wal: each(&|u| u.lock.parts().1),
            hub: each(&|u| u.lock.parts().2),
            waiters: each(&|u| u.lock.mean_waiters()),
            hold_ms: median(row.runs.iter().map(|r| {
                r.usage.lock.held_share() * r.elapsed.as_secs_f64() * 1e3 / r.commits as f64
            })),
            hubs: each(&|u| u.hubs_cores),
            moto: (!moto.is_empty()).then(|| median(moto)),
            pg: each(&|u| u.pg_cores),
            bench: each(&|u| u.bench_cores),
            machine: each(&|u| u.machine_cores),
            cpus: each(&|u| u.machine_count),
        }
    }
}

fn print_commits(report: &CommitReport) {
    println!();
    println!(
        "1. Commits of {SMALL_FILE_BYTES} B files, v1 flow = POST /v1/chunks/missing + PUT \
         /v1/chunks/{{hash}} + POST /v1/commit; hubs on PostgreSQL"
    );
    println!(
        "   {} commits per run split across the clients (clients spread evenly over the hubs); \
         the 1-client probe: {} commits",
        report.commits_per_run, report.probe
    );
    for line in &report.skipped {
        println!("   {line}");
    }
    println!();
    println!(
        "   {:<20} {:>7} {:>11} {:>17} {:>12} {:>8} {:>8}",
        "setup", "clients", "median c/s", "min–max c/s", "vs 1 hub S3", "p50 ms", "p99 ms"
    );
    let one_hub_s3 = report
        .setups
        .iter()
        .position(|(_, hubs, store)| *hubs == 1 && *store == Store::S3);
    for row in &report.rows {
        let rates: Vec<f64> = row.runs.iter().map(|r| r.rate()).collect();
        let s = spread(&rates);
        let (label, hubs, _) = &report.setups[row.setup];
        let versus = match one_hub_s3 {
            Some(base) if *hubs > 1 => report
                .row(base, row.clients)
                .map(|b| {
                    let base = median(b.runs.iter().map(|r| r.rate()));
                    format!("{:.2}×", s.median / base)
                })
                .unwrap_or_else(|| "-".into()),
            _ => "-".into(),
        };
        println!(
            "   {:<20} {:>7} {:>11.1} {:>17} {:>12} {:>8.2} {:>8.2}",
            label,
            row.clients,
            s.median,
            format!("{:.1}–{:.1}", s.min, s.max),
            versus,
            quantile_ms(&row.latencies, 0.5),
            quantile_ms(&row.latencies, 0.99),
        );
    }
    println!();
    println!("   Where the time goes (medians over the runs):");
    println!(
        "   - hub ms: mean time the hubs took per request (missing, PUT chunk, commit) and, of \
         the commit, its lock: waiting for the hub's commit lock + the database transaction"
    );
    println!(
        "   - PG lock: share of wall time PostgreSQL's write lock (hub_state FOR UPDATE) was \
         held, and by a backend running / flushing WAL / idle waiting for the hub's next \
         statement; wait: mean backends queued on it; ms/c: held per commit; max c/s: 1000 / \
         ms/c, the most commits per second the lock allows at that hold time"
    );
    println!(
        "   - CPU: cores busy (CPU s per wall s) for the hubs, moto, this database's PostgreSQL \
         backends, the bench's clients, and the whole machine (of its CPUs)"
    );
    println!();
    println!(
        "   {:<20} {:>3} | {:>6} {:>6} {:>6} {:>6} | {:>5} {:>5} {:>5} {:>5} {:>5} {:>5} {:>6} \
         | {:>5} {:>5} {:>5} {:>5} {:>9}",
        "",
        "cl",
        "miss",
        "PUT",
        "commit",
        "lock",
        "held",
        "run",
        "WAL",
        "hub",
        "wait",
        "ms/c",
        "max/s",
        "hubs",
        "moto",
        "PG",
        "bench",
        "machine"
    );
    for row in &report.rows {
        let u = RowUsage::of(row);
        let pct = |v: f64| format!("{:.0}%", v * 100.0);
        println!(
            "   {:<20} {:>3} | {:>6.2} {:>6.2} {:>6.2} {:>6.2} | {:>5} {:>5} {:>5} {:>5} {:>5.2} \
             {:>5.2} {:>6.0} | {:>5.2} {:>5} {:>5.2} {:>5.2} {:>9}",
            report.setups[row.setup].0,
            row.clients,
            u.missing_ms,
            u.put_ms,
            u.commit_ms,
            u.lock_tx_ms,
            pct(u.held),
            pct(u.running),
            pct(u.wal),
            pct(u.hub),
            u.waiters,
            u.hold_ms,
            1000.0 / u.hold_ms,
            u.hubs,
            u.moto.map_or("-".into(), |m| format!("{m:.2}")),
            u.pg,
            u.bench,
            format!("{:.2}/{:.0}", u.machine, u.cpus),
        );
    }
    println!();
    for (label, log) in &report.logs {
        println!(
            "   {label}: hub logs: {} warning(s), {} error(s)",
            log.warnings, log.errors
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
        "2. One {size_mib:.0} MiB file through each store, v1 API (client-side chunks, missing, \
         PUT, commit; GET /v1/file), hub on PostgreSQL, a fresh hub process per phase; downloads \
         hashed and checked, not written"
    );
    if let Some(line) = &report.skipped {
        println!("   {line}");
    }
    println!();
    println!(
        "   {:<40} {:>8} {:>13} {:>6} {:>9} {:>13} {:>5} {:>5} {:>9} {:>8}",
        "operation",
        "median s",
        "min–max s",
        "MiB/s",
        "hub peak",
        "min–max MiB",
        "hub",
        "moto",
        "moto RSS",
        "vs base"
    );
    let median_of = |phase: Phase| {
        report
            .rows
            .iter()
            .find(|r| r.phase == phase)
            .map(|r| spread(&r.seconds).median)
    };
    for row in &report.rows {
        let s = spread(&row.seconds);
        let (peak, peak_range) = mib_cells(&row.hub_peak_kib);
        let baseline = match row.phase {
            Phase::LocalUpload | Phase::LocalDownload => median_of(Phase::CpFsync),
            Phase::S3Upload => median_of(Phase::RawPut),
            Phase::S3Download => median_of(Phase::RawGet),
            _ => None,
        };
        let cores = |values: &[f64]| {
            if values.is_empty() {
                "-".to_owned()
            } else {
                format!("{:.2}", spread(values).median)
            }
        };
        let moto_rss = if row.moto_rss_kib.is_empty() {
            "-".to_owned()
        } else {
            let kib: Vec<f64> = row.moto_rss_kib.iter().map(|&k| mib(k)).collect();
            format!("{:.0}", spread(&kib).max)
        };
        println!(
            "   {:<40} {:>8.2} {:>13} {:>6.0} {:>9} {:>13} {:>5} {:>5} {:>9} {:>8}",
            row.phase.label(),
            s.median,
            format!("{:.2}–{:.2}", s.min, s.max),
            size_mib / s.median,
            peak,
            peak_range,
            cores(&row.hub_cores),
            cores(&row.moto_cores),
            moto_rss,
            baseline.map_or("-".into(), |b| format!("{:.2}×", s.median / b)),
        );
    }
    println!();
    println!(
        "   hub/moto: cores busy during the phase; moto RSS: its largest resident memory at a \
         phase's end, MiB (moto keeps objects in memory and keeps that memory after they are \
         deleted, reusing it only in part, so it grows from rep to rep although the bucket is \
         emptied after each: a figure of moto, not of the hub); vs base: time over the store's \
         baseline (cp + fsync; the PUTs or GETs to moto)"
    );
    let uploads = report
        .rows
        .iter()
        .filter(|r| matches!(r.phase, Phase::LocalUpload | Phase::S3Upload));
    for row in uploads {
        let part = |i: usize| {
            let values: Vec<f64> = row.hub_route_seconds.iter().map(|r| r[i]).collect();
            spread(&values).median
        };
        println!(
            "   {}: the hub's own time (median): missing {:.2} s, PUT chunks {:.2} s, commit \
             {:.2} s (the commit reads every chunk back to check the file's sha256)",
            row.phase.label(),
            part(0),
            part(1),
            part(2),
        );
    }
    let idle: Vec<f64> = report
        .rows
        .iter()
        .flat_map(|r| r.hub_idle_kib.iter().map(|&k| mib(k)))
        .collect();
    if !idle.is_empty() {
        let s = spread(&idle);
        println!(
            "   hub RSS right after start-up: median {:.1} MiB, {:.1}–{:.1} MiB; the peak stays \
             flat whatever the file's size if it is close to that",
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

fn print_push(report: &PushReport) {
    println!();
    println!(
        "3. Push latency: a commit on hub 1 (two hubs, one database, one bucket) to its `change` \
         frame on a WebSocket client; {} commits per run, one at a time; ms after the commit's \
         HTTP answer (negative: the frame came first)",
        report.commits_per_run
    );
    println!();
    println!(
        "   {:<30} {:>8} {:>15} {:>8} {:>15} | {:>8} {:>8} {:>8} {:>11}",
        "client",
        "p50 ms",
        "min–max p50",
        "p99 ms",
        "min–max p99",
        "all p50",
        "all p99",
        "all max",
        "p50 fr. sent"
    );
    for row in &report.rows {
        let p50 = spread(&row.p50);
        let p99 = spread(&row.p99);
        println!(
            "   {:<30} {:>8.2} {:>15} {:>8.2} {:>15} | {:>8.2} {:>8.2} {:>8.2} {:>11.2}",
            row.label,
            p50.median,
            format!("{:.2}–{:.2}", p50.min, p50.max),
            p99.median,
            format!("{:.2}–{:.2}", p99.min, p99.max),
            quantile(&row.after_answer, 0.5),
            quantile(&row.after_answer, 0.99),
            quantile(&row.after_answer, 1.0),
            quantile(&row.after_sent, 0.5),
        );
    }
    println!(
        "   POST /v1/commit on hub 1 took p50 {:.2} ms, p99 {:.2} ms (p50 fr. sent: from sending \
         it to the frame)",
        quantile(&report.commit_ms, 0.5),
        quantile(&report.commit_ms, 0.99)
    );
    println!(
        "   hub logs: {} warning(s), {} error(s)",
        report.log.warnings, report.log.errors
    );
    for sample in &report.log.samples {
        println!("      {sample}");
    }
}

/// What the runs say: does a second hub help, and what ran out.
fn interpret(report: &CommitReport, push: Option<&PushReport>) {
    println!();
    println!("Interpretation (from the figures above):");
    let find = |hubs: usize, store: Store| {
        report
            .setups
            .iter()
            .position(|(_, h, s)| *h == hubs && *s == store)
    };
    let (Some(local), one, two) = (
        find(1, Store::Local),
        find(1, Store::S3),
        find(2, Store::S3),
    ) else {
        return;
    };
    let rate = |setup: usize, clients: usize| {
        report
            .row(setup, clients)
            .map(|r| median(r.runs.iter().map(|r| r.rate())))
    };
    let levels: Vec<usize> = report
        .rows
        .iter()
        .filter(|r| r.setup == local && r.clients > 1)
        .map(|r| r.clients)
        .collect();
    for &clients in &levels {
        let l = rate(local, clients).unwrap_or(f64::NAN);
        let mut line = format!("- {clients} clients: 1 hub local {l:.0} c/s");
        if let (Some(one), Some(two)) = (one, two) {
            let o = rate(one, clients).unwrap_or(f64::NAN);
            let t = rate(two, clients).unwrap_or(f64::NAN);
            line.push_str(&format!(
                ", 1 hub S3 {o:.0} c/s ({:.2}× local), 2 hubs S3 {t:.0} c/s ({:.2}× one hub)",
                o / l,
                t / o
            ));
        }
        println!("{line}");
    }
    // The busiest run: the most clients on the most hubs there are.
    let Some(&top) = levels.iter().max() else {
        return;
    };
    let busiest = two.or(one).unwrap_or(local);
    let Some(row) = report.row(busiest, top) else {
        return;
    };
    let u = RowUsage::of(row);
    let label = &report.setups[busiest].0;
    let others = (u.machine - u.hubs - u.moto.unwrap_or(0.0) - u.pg - u.bench).max(0.0);
    println!(
        "- {label}, {top} clients: the machine had {:.2} of {:.0} CPUs busy (hubs {:.2}, moto \
         {}, PostgreSQL backends {:.2}, bench clients {:.2}, everything else {others:.2}); \
         PostgreSQL's write lock was held {:.0}% of the time ({:.2} ms per commit: at most \
         ≈{:.0} commits/s), {:.2} backends queued on it on average; the hubs spent {:.2} ms per \
         PUT chunk and {:.2} ms per commit request, {:.2} ms of it for the hub's lock and the \
         transaction",
        u.machine,
        u.cpus,
        u.hubs,
        u.moto.map_or("-".into(), |m| format!("{m:.2}")),
        u.pg,
        u.bench,
        u.held * 100.0,
        u.hold_ms,
        1000.0 / u.hold_ms,
        u.waiters,
        u.put_ms,
        u.commit_ms,
        u.lock_tx_ms,
    );
    if let (Some(one), Some(local_probe)) = (one, report.row(local, 1))
        && let Some(s3_probe) = report.row(one, 1)
    {
        let (l, s) = (RowUsage::of(local_probe), RowUsage::of(s3_probe));
        println!(
            "- the S3 store's cost, uncontended (1 client, 1 hub): the hub took {:.2} / {:.2} / \
             {:.2} ms for missing / PUT chunk / commit on S3 against {:.2} / {:.2} / {:.2} ms on \
             the local store; {:.2} ms of the S3 commit (local: {:.2}) came before the lock \
             (checking its chunks in the store)",
            s.missing_ms,
            s.put_ms,
            s.commit_ms,
            l.missing_ms,
            l.put_ms,
            l.commit_ms,
            s.commit_ms - s.lock_tx_ms,
            l.commit_ms - l.lock_tx_ms,
        );
    }
    let rate = median(row.runs.iter().map(|r| r.rate()));
    if let Some(probe) = report.row(busiest, 1) {
        let p = RowUsage::of(probe);
        println!(
            "- uncontended (1 client, {label}): the write lock is held {:.2} ms per commit \
             ({:.0}% of it waiting for the hub's next statement, {:.0}% flushing WAL), so \
             PostgreSQL's commit lock alone would allow ≈{:.0} commits/s across all hubs",
            p.hold_ms,
            p.hub / p.held * 100.0,
            p.wal / p.held * 100.0,
            1000.0 / p.hold_ms
        );
        let mut next = vec![(
            1000.0 / p.hold_ms,
            format!(
                "PostgreSQL's commit lock ≈{:.0}/s (≈{:.0}/s at the hold time under this load)",
                1000.0 / p.hold_ms,
                1000.0 / u.hold_ms
            ),
        )];
        if let Some(moto) = u.moto.filter(|m| *m > 0.0) {
            next.push((
                rate / moto,
                format!(
                    "moto ≈{:.0}/s (one Python process: one core at most)",
                    rate / moto
                ),
            ));
        }
        let per_hub = rate / u.hubs * report.setups[busiest].1 as f64;
        next.push((
            per_hub,
            format!("the hubs ≈{per_hub:.0}/s with a core each"),
        ));
        next.sort_by(|a, b| a.0.total_cmp(&b.0));
        println!(
            "- with more cores, from what each commit costs each part at {top} clients ({rate:.0} \
             c/s): {}; the lowest, {}, is where the next bottleneck is",
            next.iter()
                .map(|(_, text)| text.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            next[0].1.split(" ≈").next().unwrap_or_default(),
        );
    }
    for (setup, (label, _, _)) in report.setups.iter().enumerate() {
        let (Some(loaded), Some(probe)) = (report.row(setup, top), report.row(setup, 1)) else {
            continue;
        };
        println!(
            "- limit of {label} at {top} clients: {}",
            verdict(&RowUsage::of(loaded), &RowUsage::of(probe))
        );
    }
    println!(
        "- the network: all on loopback, so it costs no bandwidth here; what a real network \
         would stretch is every round trip, and the ones made while the write lock is held \
         (the `hub` share above) stretch the lock itself"
    );
    if let Some(push) = push {
        let [local, remote] = &push.rows;
        println!(
            "- push: a commit on hub 1 reaches a WebSocket client on hub 2 p50 {:.2} ms / p99 \
             {:.2} ms after its answer (client on hub 1 itself: p50 {:.2} / p99 {:.2} ms)",
            spread(&remote.p50).median,
            spread(&remote.p99).median,
            spread(&local.p50).median,
            spread(&local.p99).median,
        );
    }
}

/// What limited a loaded run, judged against the same setup's uncontended
/// probe: the store when its requests queue (missing and PUT chunk take
/// many times longer than alone, and longer than the commit's lock and
/// transaction); the commit lock when it is held most of the time and
/// commit requests spend nearly all their time waiting for it or holding
/// it; else the CPUs if they are full. moto's CPU is shown as evidence, not
/// used as a threshold: on a shared machine it may get less than its core.
fn verdict(u: &RowUsage, probe: &RowUsage) -> String {
    let store_queue = (u.put_ms / probe.put_ms).min(u.missing_ms / probe.missing_ms);
    if let Some(moto) = u.moto
        && store_queue >= 5.0
        && u.put_ms + u.missing_ms > 2.0 * u.lock_tx_ms
    {
        return format!(
            "the store: requests to it queue at moto_server (one Python process, at most one \
             core; it used {moto:.2} cores, with {:.2} of {:.0} CPUs busy on the machine): \
             missing and PUT chunk take {:.0} and {:.0} ms against {:.1} and {:.1} ms alone, \
             while the commit's lock and transaction take {:.1} ms",
            u.machine, u.cpus, u.missing_ms, u.put_ms, probe.missing_ms, probe.put_ms, u.lock_tx_ms
        );
    }
    if u.held >= 0.6 && u.lock_tx_ms >= 0.8 * u.commit_ms {
        return format!(
            "the commit lock: PostgreSQL's write lock is held {:.0}% of the time ({:.2} ms per \
             commit) and a commit request spends {:.0} of its {:.0} ms waiting for the hub's \
             commit lock or in the transaction, while PUT chunk takes {:.1} ms",
            u.held * 100.0,
            u.hold_ms,
            u.lock_tx_ms,
            u.commit_ms,
            u.put_ms
        );
    }
    if u.machine >= 0.9 * u.cpus {
        return format!(
            "the CPUs: {:.2} of {:.0} busy (hubs {:.2}, PostgreSQL {:.2}, bench {:.2})",
            u.machine, u.cpus, u.hubs, u.pg, u.bench
        );
    }
    "nothing measured here is saturated (the store's queue, the commit lock, the CPUs); the \
     clients' round trips bound the rate"
        .to_owned()
}
