//! Section 2, a burst of small files: a tree copied into A's folder while
//! A runs, timed until the hub and B have all of it (content verified),
//! next to `cp -r` of the same tree.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use sf_e2e::*;
use sf_test_support::bench::spread;

use crate::procs::{HubMetrics, stop_agent, timed_cp, two_agents};
use crate::report::{Table, cell, log_notes, mib, ratio, render_notes, secs};
use crate::{Config, KIB, Section};

const BURST_FOLDERS: usize = 100;

/// Relative path → (size, sha256).
type Expected = BTreeMap<String, (u64, Sha256Hex)>;

/// Writes `count` files of `min..=max` random bytes under `root`, spread
/// over `folders` folders; returns what was written.
pub fn write_tree(
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

pub async fn bench_burst(config: &Config) -> String {
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
    let mut notes = log_notes();
    for rep in 0..config.reps {
        let sandbox = Sandbox::new("bench-burst");
        let TwoAgents {
            hub,
            a_dir,
            b_dir,
            mut a,
            mut b,
        } = two_agents(&sandbox).await;
        let metrics = HubMetrics::of(&hub);

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
        notes.add(Some("hub"), &hub.log());
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
        render_notes(&notes)
    )
    .unwrap();
    out
}
