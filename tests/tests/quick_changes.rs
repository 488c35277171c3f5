//! Changes made right after another one reach the other agent through file
//! events, not the periodic scan. The agents scan only once an hour here,
//! so a change the watcher loses never arrives and the test fails.

use std::fs;
use std::time::Duration;

use sf_e2e::*;

const CONVERGE: Duration = Duration::from_secs(60);
/// No periodic scan within the test: only events can carry the changes.
const NO_PERIODIC_SCAN: &[&str] = &["--scan-interval", "3600"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_right_after_a_download_reaches_the_other_agent() {
    let sandbox = Sandbox::new("delete_after_download");
    let TwoAgents {
        hub,
        a_dir,
        b_dir,
        mut a,
        mut b,
    } = TwoAgents::start(&sandbox, NO_PERIODIC_SCAN).await;

    sandbox.step("A writes a.txt; it reaches B");
    write_file(&a_dir.join("a.txt"), "from a\n");
    wait_until(CONVERGE, "a.txt on B", || b_dir.join("a.txt").exists())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    sandbox.step("B writes b.txt; it reaches A");
    write_file(&b_dir.join("b.txt"), "from b\n");
    wait_until(CONVERGE, "b.txt on A", || a_dir.join("b.txt").exists())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    sandbox.step("A deletes a.txt at once (within the watcher's window)");
    fs::remove_file(a_dir.join("a.txt")).unwrap();
    wait_until(CONVERGE, "a.txt gone from B", || {
        !b_dir.join("a.txt").exists()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    wait_converged(&[a_dir.as_path(), b_dir.as_path()], hub.url(), CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Nothing is lost: B's copy is in its trash.
    assert_eq!(trashed_copies(&b_dir, "a.txt").len(), 1);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_deleted_and_made_again_loses_its_old_contents_everywhere() {
    let sandbox = Sandbox::new("folder_remade");
    let TwoAgents {
        hub,
        a_dir,
        b_dir,
        mut a,
        mut b,
    } = TwoAgents::start(&sandbox, NO_PERIODIC_SCAN).await;
    let both = [a_dir.as_path(), b_dir.as_path()];

    sandbox.step("d/x.txt on both");
    write_file(&a_dir.join("d/x.txt"), "old contents\n");
    wait_converged(&both, hub.url(), CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(b_dir.join("d/x.txt").exists());

    sandbox.step("rm -rf d; mkdir d on A (ext4 hands the inode straight back)");
    fs::remove_dir_all(a_dir.join("d")).unwrap();
    fs::create_dir(a_dir.join("d")).unwrap();
    wait_until(CONVERGE, "d/x.txt gone from B", || {
        !b_dir.join("d/x.txt").exists()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    wait_converged(&both, hub.url(), CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(b_dir.join("d").is_dir(), "the new, empty d is on B");
    a.stop().await;
    b.stop().await;
}
