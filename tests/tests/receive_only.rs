//! A receive-only agent: one given a read-only token (`sf-hub token create
//! NAME --read-only`) applies the hub's changes but sends nothing. Its
//! local edits, new files and deletions stay on its disk, are listed by
//! `sf-agent status`, and never reach the hub or the other agent; a hub
//! change over a locally edited file keeps the local bytes as a conflict
//! copy that stays local too.

use std::time::Duration;

use sf_e2e::*;

const CONVERGE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_token_receives_and_never_sends() {
    let sandbox = Sandbox::new("receive-only");
    let hub = Hub::start(&sandbox.dir("hub")).await;
    let w_dir = sandbox.dir("w");
    let r_dir = sandbox.dir("r");
    let mut w = Agent::start(hub.url(), &w_dir, "w", &[]).await;
    let read_only = create_token(&hub, "kiosk", true);
    let token_file = write_token_file(&sandbox.dir("secrets"), "kiosk-token", &read_only);
    let token_arg = token_file.to_str().expect("a UTF-8 sandbox path");
    let mut r = Agent::start(hub.url(), &r_dir, "r", &["--token-file", token_arg]).await;

    sandbox.step("W's files arrive at R");
    write_file(&w_dir.join("docs/keep.txt"), "original keep\n");
    write_file(&w_dir.join("docs/gone.txt"), "original gone\n");
    write_file(&w_dir.join("docs/zz-shared.txt"), "original shared\n");
    wait_converged(&[w_dir.as_path(), r_dir.as_path()], hub.url(), CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        r.log_of_run().contains("read-only"),
        "R says it is receive-only:\n{}",
        r.log_of_run()
    );

    sandbox.step("R is stopped and changed locally; W edits the shared file");
    assert!(r.stop().await.success());
    let keep_on_r = "edited on r, not to be sent\n";
    let new_on_r = "made on r, not to be sent\n";
    let shared_on_r = "r's version of the shared file\n";
    write_file(&r_dir.join("docs/keep.txt"), keep_on_r);
    write_file(&r_dir.join("docs/new-on-r.txt"), new_on_r);
    std::fs::remove_file(r_dir.join("docs/gone.txt")).expect("delete a file on r");
    write_file(&r_dir.join("docs/zz-shared.txt"), shared_on_r);
    let shared_on_w = "w's version of the shared file\n";
    write_file(&w_dir.join("docs/zz-shared.txt"), shared_on_w);
    wait_hub(hub.url(), CONVERGE, "W's edit on the hub", |index| {
        index.get("docs/zz-shared.txt") == Some(&sha256(shared_on_w))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    sandbox.step("R starts: W's edit arrives, R's version becomes a local copy");
    r.restart().await;
    let copy_of_r = || {
        folder_files(&r_dir)
            .into_iter()
            .find(|(p, _)| is_conflict_copy(p, "docs/zz-shared.txt", &["r"]))
    };
    wait_until(
        CONVERGE,
        "R holds W's shared file and a copy of its own",
        || {
            folder_files(&r_dir).get("docs/zz-shared.txt") == Some(&sha256(shared_on_w))
                && copy_of_r().is_some()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    // The first cycle after the start scanned every path, and this file is
    // committed after it read the feed: once R holds it, that whole scan
    // is done, so whatever it would have sent would be on the hub now.
    write_file(&w_dir.join("docs/zzz-after.txt"), "after\n");
    wait_until(CONVERGE, "R receives a file made after its scan", || {
        folder_files(&r_dir).contains_key("docs/zzz-after.txt")
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    sandbox.step("R kept every local change on disk");
    let r_files = folder_files(&r_dir);
    let (copy, copy_sha) = copy_of_r().expect("R's conflict copy");
    assert_eq!(copy_sha, sha256(shared_on_r), "the copy holds R's bytes");
    assert_eq!(r_files.get("docs/keep.txt"), Some(&sha256(keep_on_r)));
    assert_eq!(r_files.get("docs/new-on-r.txt"), Some(&sha256(new_on_r)));
    assert!(
        !r_files.contains_key("docs/gone.txt"),
        "R's deletion stays: {r_files:?}"
    );

    sandbox.step("nothing of R's reached the hub or W");
    let index = hub_index(hub.url()).await.unwrap_or_else(|e| panic!("{e}"));
    let r_bytes = [sha256(keep_on_r), sha256(new_on_r), sha256(shared_on_r)];
    for (path, sha) in &index {
        assert!(
            !r_bytes.contains(sha),
            "R's bytes reached the hub at {path}"
        );
    }
    assert_eq!(index.get("docs/keep.txt"), Some(&sha256("original keep\n")));
    assert_eq!(
        index.get("docs/gone.txt"),
        Some(&sha256("original gone\n")),
        "R's deletion was not sent"
    );
    assert!(!index.contains_key("docs/new-on-r.txt"), "{index:?}");
    assert!(!index.contains_key(&copy), "{index:?}");
    for path in ["docs/keep.txt", "docs/zz-shared.txt", "docs/gone.txt"] {
        let history = hub_history(hub.url(), path)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            history.iter().all(|e| e.origin != "r"),
            "{path}: a version from R: {history:?}"
        );
    }
    assert!(
        hub_history(hub.url(), &copy)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .is_empty()
    );
    // The hub refuses writes with a read-only token anyway (403): R must
    // not even try.
    let r_log = r.log();
    for attempt in ["refused a change", "uploaded", "deleted on the hub"] {
        assert!(
            !r_log.contains(attempt),
            "R tried to write ({attempt}):\n{r_log}"
        );
    }
    // W holds exactly what the hub holds.
    wait_converged(&[w_dir.as_path()], hub.url(), CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    sandbox.step("`sf-agent status` lists what R did not send");
    let status = agent_status(&r_dir);
    assert!(
        status.contains("local changes not sent (read-only token): 4"),
        "{status}"
    );
    for line in [
        "docs/keep.txt".to_owned(),
        "docs/new-on-r.txt".to_owned(),
        "docs/gone.txt (deleted)".to_owned(),
        copy.clone(),
    ] {
        assert!(
            status.lines().any(|l| l.trim() == line),
            "status lacks {line:?}:\n{status}"
        );
    }
    assert!(!status.contains("pending upload"), "{status}");

    assert!(r.is_running(), "R keeps running");
    assert!(r.stop().await.success());
    assert!(w.stop().await.success());
    sandbox.step("done");
}
