//! An agent that was down catches up: creates, edits and deletes made
//! elsewhere meanwhile all arrive, deletes as moves into its trash.

use std::fs;
use std::time::Duration;

use sf_e2e::*;

const CONVERGE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_agent_catches_up() {
    let sandbox = Sandbox::new("offline");
    let TwoAgents {
        hub,
        a_dir,
        b_dir,
        mut a,
        mut b,
    } = TwoAgents::start(&sandbox, &[]).await;
    let both = [a_dir.as_path(), b_dir.as_path()];

    sandbox.step("initial files");
    write_file(&a_dir.join("keep.txt"), "keep\n");
    write_file(&a_dir.join("edit.txt"), "before\n");
    write_file(&a_dir.join("gone.txt"), "soon gone\n");
    write_file(&a_dir.join("dir/gone2.txt"), "also gone\n");
    write_file(&a_dir.join("dir/stays.txt"), "stays\n");
    write_file(&a_dir.join("whole/only.txt"), "whole folder goes\n");
    wait_converged(&both, hub.url(), CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    sandbox.step("stop B; create, edit, delete in A");
    assert!(b.stop().await.success());
    write_file(&a_dir.join("new.txt"), "new while b was down\n");
    write_file(&a_dir.join("newdir/deep/new2.txt"), "deep new\n");
    fs::create_dir_all(a_dir.join("newdir/empty")).unwrap();
    write_file(&a_dir.join("edit.txt"), "after\n");
    fs::remove_file(a_dir.join("gone.txt")).unwrap();
    fs::remove_file(a_dir.join("dir/gone2.txt")).unwrap();
    fs::remove_dir_all(a_dir.join("whole")).unwrap();
    // A and the hub agree before B comes back.
    wait_converged(&[a_dir.as_path()], hub.url(), CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    sandbox.step("start B");
    b.restart().await;
    wait_converged(&both, hub.url(), CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(read_file(&b_dir.join("edit.txt")), b"after\n");
    assert_eq!(
        read_file(&b_dir.join("newdir/deep/new2.txt")),
        b"deep new\n"
    );
    assert!(b_dir.join("newdir/empty").is_dir());
    for (path, bytes) in [
        ("gone.txt", "soon gone\n"),
        ("dir/gone2.txt", "also gone\n"),
        ("whole/only.txt", "whole folder goes\n"),
    ] {
        assert!(!b_dir.join(path).exists(), "{path} left B");
        let trashed = trashed_copies(&b_dir, path);
        assert_eq!(trashed.len(), 1, "{path} is in B's trash: {trashed:?}");
        assert_eq!(read_file(&trashed[0]), bytes.as_bytes());
    }
    assert!(!b_dir.join("whole").exists(), "the deleted folder left B");

    assert!(a.stop().await.success());
    assert!(b.stop().await.success());
    sandbox.step("done");
}
