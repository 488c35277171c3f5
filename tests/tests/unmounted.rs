//! A synced folder replaced by an empty one (an unmounted disk leaves its
//! empty mount point behind): the agent refuses to start instead of taking
//! every file as deleted, and the hub keeps everything.

use std::fs;
use std::time::Duration;

use sf_e2e::*;

const CONVERGE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_an_empty_replacement_folder() {
    let sandbox = Sandbox::new("unmounted");
    let TwoAgents {
        hub,
        a_dir,
        b_dir,
        mut a,
        mut b,
    } = TwoAgents::start(&sandbox, &[]).await;
    let both = [a_dir.as_path(), b_dir.as_path()];

    sandbox.step("sync a few files");
    for i in 0..5 {
        write_file(
            &a_dir.join(format!("docs/file{i}.txt")),
            format!("file {i}\n"),
        );
    }
    write_file(&b_dir.join("from-b.txt"), "from b\n");
    wait_converged(&both, hub.url(), CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let before = hub_index(hub.url()).await.unwrap();
    assert_eq!(before.len(), 6);

    sandbox.step("stop B, move its folder away, leave an empty one");
    assert!(b.stop().await.success());
    fs::rename(&b_dir, sandbox.path().join("b-unmounted")).unwrap();
    fs::create_dir(&b_dir).unwrap();

    sandbox.step("start B");
    b.spawn();
    let status = b.wait_exit(Duration::from_secs(60)).await;
    let log = b.log_of_run();
    assert!(
        !status.success(),
        "B exits non-zero, got {status}; log:\n{log}"
    );
    assert!(log.contains("Refusing to sync"), "B says why; log:\n{log}");
    assert_eq!(
        fs::read_dir(&b_dir).unwrap().count(),
        0,
        "B left the empty folder alone (no new .sf)"
    );

    sandbox.step("the hub still holds everything");
    // Give a wrongly running agent time to do damage before checking.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(hub_index(hub.url()).await.unwrap(), before);
    wait_converged(&[a_dir.as_path()], hub.url(), CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    assert!(a.stop().await.success());
    sandbox.step("done");
}
