//! Two agents without file events (`--poll --scan-interval 1`): create,
//! modify and delete still converge through periodic scans. Every local
//! change reaches the hub through a full scan here, so this also covers the
//! scan's walk: a folder bigger than one window of paths, a renamed tree,
//! whole trees deleted (children before their folder), and a synced folder
//! replaced by a symlink (never followed).

use std::fs;
use std::time::Duration;

use sf_e2e::*;

const CONVERGE: Duration = Duration::from_secs(60);
const POLL: &[&str] = &["--poll", "--scan-interval", "1"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_agents_converge() {
    let sandbox = Sandbox::new("poll");
    let TwoAgents {
        hub,
        a_dir,
        b_dir,
        mut a,
        mut b,
    } = TwoAgents::start(&sandbox, POLL).await;
    assert!(a.log_of_run().contains("polling"), "A runs in polling mode");
    let both = [a_dir.as_path(), b_dir.as_path()];
    let converge = async || {
        wait_converged(&both, hub.url(), CONVERGE)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    };

    sandbox.step("create");
    write_file(&a_dir.join("one.txt"), "one\n");
    write_file(&a_dir.join("sub/two.txt"), "two\n");
    fs::create_dir_all(a_dir.join("empty")).unwrap();
    write_file(&b_dir.join("from-b.txt"), "from b\n");
    converge().await;

    sandbox.step("modify");
    write_file(&a_dir.join("one.txt"), "one, modified in a\n");
    write_file(&b_dir.join("sub/two.txt"), "two, modified in b\n");
    converge().await;
    assert_eq!(read_file(&b_dir.join("one.txt")), b"one, modified in a\n");
    assert_eq!(
        read_file(&a_dir.join("sub/two.txt")),
        b"two, modified in b\n"
    );

    sandbox.step("delete");
    fs::remove_file(a_dir.join("one.txt")).unwrap();
    fs::remove_file(b_dir.join("from-b.txt")).unwrap();
    converge().await;
    assert!(!b_dir.join("one.txt").exists());
    assert!(!a_dir.join("from-b.txt").exists());
    assert_eq!(trashed_copies(&b_dir, "one.txt").len(), 1);
    assert_eq!(trashed_copies(&a_dir, "from-b.txt").len(), 1);

    sandbox.step("a folder of 1,200 files and a nested tree");
    for i in 0..1200 {
        write_file(
            &a_dir.join(format!("many/f{i:04}.txt")),
            format!("file {i}\n"),
        );
    }
    write_file(&a_dir.join("tree/x/y/z.txt"), "z\n");
    write_file(&a_dir.join("tree/x/w.txt"), "w\n");
    fs::create_dir_all(a_dir.join("tree/x/empty")).unwrap();
    converge().await;
    assert_eq!(fs::read_dir(b_dir.join("many")).unwrap().count(), 1200);

    sandbox.step("rename a tree");
    fs::rename(a_dir.join("tree"), a_dir.join("renamed")).unwrap();
    converge().await;
    assert!(!b_dir.join("tree").exists());
    assert_eq!(read_file(&b_dir.join("renamed/x/y/z.txt")), b"z\n");
    assert!(b_dir.join("renamed/x/empty").is_dir());
    assert_eq!(trashed_copies(&b_dir, "tree/x/y/z.txt").len(), 1);

    sandbox.step("delete whole trees");
    fs::remove_dir_all(a_dir.join("many")).unwrap();
    fs::remove_dir_all(a_dir.join("renamed")).unwrap();
    converge().await;
    assert!(!b_dir.join("many").exists());
    assert!(!b_dir.join("renamed").exists());
    assert_eq!(trashed_copies(&b_dir, "many/f1199.txt").len(), 1);

    sandbox.step("a synced folder replaced by a symlink to elsewhere");
    write_file(&a_dir.join("linked/inside.txt"), "inside\n");
    converge().await;
    let outside = sandbox.dir("outside");
    write_file(&outside.join("secret.txt"), "not in the synced folder\n");
    fs::remove_dir_all(a_dir.join("linked")).unwrap();
    std::os::unix::fs::symlink(&outside, a_dir.join("linked")).unwrap();
    // The link is not followed: to the hub, the folder is gone.
    converge().await;
    assert!(!b_dir.join("linked").exists());
    assert_eq!(trashed_copies(&b_dir, "linked/inside.txt").len(), 1);
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        1,
        "nothing is written where the link points"
    );

    assert!(a.stop().await.success());
    assert!(b.stop().await.success());
    sandbox.step("done");
}
