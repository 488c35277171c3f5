//! Section 3, one large file and a 1 MiB change in it: seconds until B
//! has each version and the bytes the hub received and sent for the
//! change, next to `cp` and a sha256 of the file.

use std::fmt::Write as _;
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use sf_e2e::*;
use sf_test_support::bench::spread;
use sha2::{Digest, Sha256};

use crate::procs::{HubMetrics, status_kib, stop_agent, timed_cp, two_agents};
use crate::report::{Table, cell, log_notes, mib, ratio, render_notes, secs};
use crate::{Config, KIB, MIB, Section};

/// Bytes overwritten in the middle of the large file.
const PATCH_BYTES: usize = MIB as usize;
/// Target for the bytes A uploads for the 1 MiB change.
const PATCH_TARGET_BYTES: f64 = 4.0 * MIB as f64;

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
pub fn wait_file(path: &Path, size: u64, sha: Sha256Hex, timeout: Duration) -> Instant {
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

pub async fn bench_big(config: &Config) -> String {
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
    let mut notes = log_notes();
    for rep in 0..config.reps {
        let sandbox = Sandbox::new("bench-big");
        let staging = sandbox.dir("staging");
        let TwoAgents {
            hub,
            a_dir,
            b_dir,
            mut a,
            mut b,
        } = two_agents(&sandbox).await;
        let metrics = HubMetrics::of(&hub);
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
        notes.add(Some("hub"), &hub.log());
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
    write!(out, "\n{}\n", render_notes(&notes)).unwrap();
    out
}
