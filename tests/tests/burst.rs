//! A burst of many small files in many folders, written as fast as the test
//! can: the other agent converges, also one that slept through the burst
//! and catches up from the feed.
//!
//! `SF_E2E_BURST` sets the file count (default below); the files are spread
//! over 100 folders, 1–16 KiB each.

use std::time::Duration;

use sf_e2e::*;

/// Default file count: the 10,000. On the 2-core CI machine (debug
/// build) the whole scenario, writing included, takes about 80 s; set
/// `SF_E2E_BURST` lower for a quicker local run.
const DEFAULT_FILES: usize = 10_000;
const FOLDERS: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_of_small_files() {
    let files: usize = std::env::var("SF_E2E_BURST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_FILES);
    // Generous: at least 10 files/s end to end, never under 5 minutes.
    let converge = Duration::from_secs(300).max(Duration::from_millis(100) * files as u32);
    let sandbox = Sandbox::new("burst");
    let TwoAgents {
        hub,
        a_dir,
        b_dir,
        mut a,
        mut b,
    } = TwoAgents::start(&sandbox, &[]).await;

    sandbox.step(&format!("A writes {files} files in {FOLDERS} folders"));
    {
        let a_dir = a_dir.clone();
        tokio::task::spawn_blocking(move || {
            let mut noise = Noise::new(9);
            for i in 0..files {
                let len = 1024 + (noise.next_u64() % (15 * 1024 + 1)) as usize;
                let mut bytes = vec![0u8; len];
                noise.fill(&mut bytes);
                write_file(
                    &a_dir.join(format!("d{:03}/f{i:05}.bin", i % FOLDERS)),
                    bytes,
                );
            }
        })
        .await
        .unwrap();
    }
    sandbox.step("written; waiting for convergence");
    wait_converged(&[a_dir.as_path(), b_dir.as_path()], hub.url(), converge)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(folder_files(&b_dir).len(), files);
    sandbox.step("converged");

    assert!(a.stop().await.success());
    assert!(b.stop().await.success());
    sandbox.step("done");
}

/// Files A writes while B sleeps (SIGSTOP): more than a cycle's window of
/// the feed (2,000 paths), so B catches up over two cycles or more, the
/// rewrite and the removal that follow these in the last one.
const WHILE_ASLEEP: usize = 2_500;

/// B asleep while A commits thousands of changes, among them a rewrite of
/// a file B had, a file deleted before them and made again after them, and
/// the removal of a folder B had: on waking, B reads the feed a window at a
/// time and carries on cycle after cycle, with no scan of its folder to
/// help (it scans hourly here). Each file ends at its last version, and
/// what B had of the deleted file and folder is in its trash, whichever
/// window each change fell in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_far_behind_catches_up_window_by_window() {
    let sandbox = Sandbox::new("catch-up");
    let TwoAgents {
        hub,
        a_dir,
        b_dir,
        mut a,
        mut b,
    } = TwoAgents::start(&sandbox, &["--scan-interval", "3600"]).await;
    let converge = Duration::from_secs(300);

    sandbox.step("B gets files and a folder it will miss changes to");
    write_file(&a_dir.join("early.txt"), b"the first version");
    write_file(&a_dir.join("phoenix.txt"), b"the old phoenix");
    for i in 0..3 {
        write_file(
            &a_dir.join(format!("doomed/{i}.txt")),
            format!("doomed {i}"),
        );
    }
    wait_converged(&[a_dir.as_path(), b_dir.as_path()], hub.url(), converge)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    sandbox.step(&format!(
        "B asleep; A deletes, writes {WHILE_ASLEEP} files, then rewrites and removes"
    ));
    b.pause();
    // Deleted before the burst, made again after it: the two land in
    // different windows of B's catch-up.
    std::fs::remove_file(a_dir.join("phoenix.txt")).unwrap();
    wait_hub(hub.url(), converge, "phoenix.txt deleted", |index| {
        !index.contains_key("phoenix.txt")
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    {
        let a_dir = a_dir.clone();
        tokio::task::spawn_blocking(move || {
            for i in 0..WHILE_ASLEEP {
                write_file(
                    &a_dir.join(format!("new{:02}/f{i:04}.txt", i % 40)),
                    format!("file {i}"),
                );
            }
        })
        .await
        .unwrap();
    }
    // After thousands of others in the feed: these land in a later window.
    wait_hub(hub.url(), converge, "A's files on the hub", |index| {
        index.len() >= WHILE_ASLEEP
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    write_file(&a_dir.join("early.txt"), b"the last version");
    write_file(&a_dir.join("phoenix.txt"), b"the new phoenix");
    std::fs::remove_dir_all(a_dir.join("doomed")).unwrap();
    wait_hub(hub.url(), converge, "the last changes", |index| {
        index.get("early.txt") == Some(&sha256(b"the last version"))
            && index.get("phoenix.txt") == Some(&sha256(b"the new phoenix"))
            && !index.keys().any(|p| p.starts_with("doomed/"))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    sandbox.step("B wakes");
    b.resume();
    wait_converged(&[a_dir.as_path(), b_dir.as_path()], hub.url(), converge)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(read_file(&b_dir.join("early.txt")), b"the last version");
    assert_eq!(read_file(&b_dir.join("phoenix.txt")), b"the new phoenix");
    assert!(
        trashed_copies(&b_dir, "phoenix.txt")
            .iter()
            .any(|copy| read_file(copy) == b"the old phoenix"),
        "the phoenix B had went to its trash when the hub deleted it"
    );
    assert!(!b_dir.join("doomed").exists());
    for i in 0..3 {
        let trashed = trashed_copies(&b_dir, &format!("doomed/{i}.txt"));
        assert!(
            trashed
                .iter()
                .any(|copy| read_file(copy) == format!("doomed {i}").as_bytes()),
            "B's copy of doomed/{i}.txt is in its trash: {trashed:?}"
        );
    }
    assert_eq!(folder_files(&b_dir).len(), WHILE_ASLEEP + 2);
    // The catch-up took more than one cycle: not one look at every path,
    // nor a scan of the folder after a failed request.
    let windows = b
        .log_of_run()
        .matches("acting on this window of the feed, more waiting")
        .count();
    assert!(windows >= 1, "B read the feed in windows: {windows} breaks");

    assert!(a.stop().await.success());
    assert!(b.stop().await.success());
    sandbox.step("done");
}
