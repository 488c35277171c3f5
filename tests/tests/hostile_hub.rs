//! What an agent does with what a hub sends that it must not take as it
//! comes, through the real binaries: a path that leads through a directory
//! symlink in its folder is refused and reported while everything else
//! syncs; and another hub at the same address (a fresh database, so another
//! identity) gets the folder merged as at a first sync, deleting nothing.

use std::path::Path;
use std::time::Duration;

use sf_e2e::*;

const CONVERGE: Duration = Duration::from_secs(120);

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_never_writes_through_a_directory_symlink() {
    let sandbox = Sandbox::new("hostile-symlink");
    let hub = Hub::start(&sandbox.dir("hub")).await;
    let a_dir = sandbox.dir("a");
    let b_dir = sandbox.dir("b");
    let outside = sandbox.dir("outside");
    std::fs::create_dir_all(&a_dir).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    write_file(&outside.join("mine.txt"), "not the hub's to touch");
    std::os::unix::fs::symlink(&outside, a_dir.join("d")).unwrap();
    let a = Agent::start(hub.url(), &a_dir, "a", &[]).await;
    let b = Agent::start(hub.url(), &b_dir, "b", &[]).await;

    sandbox.step("B makes d/x.txt (a real folder d on its side), then other files");
    write_file(&b_dir.join("d/x.txt"), "planted through the link");
    wait_hub(hub.url(), CONVERGE, "d/x.txt on the hub", |index| {
        index.contains_key("d/x.txt")
    })
    .await
    .unwrap();
    write_file(&b_dir.join("after.txt"), "synced all the same");
    write_file(&b_dir.join("e/y.txt"), "in a real folder");

    sandbox.step("A gets the other files and writes nothing outside its folder");
    wait_until(CONVERGE, "A has after.txt and e/y.txt", || {
        read_existing(&a_dir.join("after.txt")) == Some(b"synced all the same".to_vec())
            && read_existing(&a_dir.join("e/y.txt")) == Some(b"in a real folder".to_vec())
    })
    .await
    .unwrap();
    let status = {
        let mut last = String::new();
        let reported = wait_until(CONVERGE, "A's status reports d/x.txt", || {
            last = agent_status(&a_dir);
            last.contains("d/x.txt: not applied: d is a symbolic link")
        })
        .await;
        assert!(reported.is_ok(), "{last}");
        last
    };
    assert_eq!(names_in(&outside), ["mine.txt"], "written through the link");
    assert_eq!(
        read_file(&outside.join("mine.txt")),
        b"not the hub's to touch"
    );
    assert!(
        std::fs::symlink_metadata(a_dir.join("d"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "A's link is left as it is"
    );
    assert!(status.contains("hub changes not applied:"), "{status}");
    assert!(
        a.log().contains("hub entry not applied"),
        "A logs the refusal"
    );

    sandbox.step("A's own link is not sent to the hub either");
    let index = hub_index(hub.url()).await.unwrap();
    assert!(!index.keys().any(|p| p.starts_with("d/mine")), "{index:?}");
    drop((a, b));
}

fn read_existing(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_hub_at_the_same_address_gets_the_folder_merged_not_deleted() {
    let sandbox = Sandbox::new("hostile-identity");
    let hub_dir = sandbox.dir("hub");
    let mut hub = Hub::start(&hub_dir).await;
    let url = hub.url().to_owned();
    let a_dir = sandbox.dir("a");
    let b_dir = sandbox.dir("b");

    sandbox.step("A syncs three files with the first hub");
    write_file(&a_dir.join("same.txt"), "identical on both hubs");
    write_file(&a_dir.join("both.txt"), "A's version");
    write_file(&a_dir.join("a-only.txt"), "only A had it");
    let mut a = Agent::start(&url, &a_dir, "a", &[]).await;
    wait_hub(
        &url,
        CONVERGE,
        "A's three files on the first hub",
        |index| index.len() == 3,
    )
    .await
    .unwrap();
    a.stop().await;

    sandbox.step("a fresh hub (new database) on the same port, with other content from B");
    hub.kill();
    std::fs::rename(&hub_dir, sandbox.dir("first-hub")).unwrap();
    std::fs::create_dir_all(&hub_dir).unwrap();
    hub.restart().await;
    assert_eq!(hub.url(), url, "same address");
    write_file(&b_dir.join("same.txt"), "identical on both hubs");
    write_file(&b_dir.join("both.txt"), "B's version");
    write_file(&b_dir.join("b-only.txt"), "only the new hub had it");
    let b = Agent::start(&url, &b_dir, "b", &[]).await;
    wait_hub(&url, CONVERGE, "B's three files on the new hub", |index| {
        index.len() == 3
    })
    .await
    .unwrap();

    sandbox.step("A comes back: a first sync with the new hub, nothing deleted");
    a.restart().await;
    wait_converged(&[&a_dir, &b_dir], &url, CONVERGE)
        .await
        .unwrap();
    let files = folder_files(&a_dir);
    assert_eq!(
        files.get("same.txt"),
        Some(&sha256("identical on both hubs"))
    );
    assert_eq!(files.get("a-only.txt"), Some(&sha256("only A had it")));
    assert_eq!(
        files.get("b-only.txt"),
        Some(&sha256("only the new hub had it"))
    );
    // The hub's version at the path, A's kept beside it as a conflict copy.
    assert_eq!(files.get("both.txt"), Some(&sha256("B's version")));
    let copies: Vec<&String> = files
        .keys()
        .filter(|p| is_conflict_copy(p, "both.txt", &["a"]))
        .collect();
    assert_eq!(copies.len(), 1, "{files:?}");
    assert_eq!(files[copies[0]], sha256("A's version"));
    assert_eq!(files.len(), 5, "{files:?}");
    for path in ["same.txt", "both.txt", "a-only.txt"] {
        assert!(
            trashed_copies(&a_dir, path).is_empty(),
            "{path} went to A's trash"
        );
    }
    assert!(
        a.log_of_run()
            .contains("is not the one this folder last synced with"),
        "A says what happened"
    );
    drop(b);
}
