//! A file and a folder swap places on one side while the other side adds
//! something inside the folder: nothing is lost and both converge. The
//! local side becomes a conflict copy (a folder with what is in it) and
//! the hub's side comes down. Found by the tree model of the planner
//! (`agent/src/reconcile/tree_model_tests.rs`): before, the agent retried
//! for ever (the hub refused the upload inside a file; the folder could
//! not be replaced while it held it).

use std::time::Duration;

use sf_e2e::*;

const CONVERGE: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_replaced_by_a_file_while_the_other_side_adds_to_it() {
    let sandbox = Sandbox::new("file-folder-swap");
    let TwoAgents {
        hub,
        a_dir,
        b_dir,
        a: _a,
        b,
    } = TwoAgents::start(&sandbox, &[]).await;
    write_file(&a_dir.join("d/old.txt"), b"in the folder\n");
    wait_converged(&[&a_dir, &b_dir], hub.url(), CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    sandbox.step("B frozen; A replaces the folder d with a file d; B adds d/new.txt");
    b.pause();
    std::fs::remove_dir_all(a_dir.join("d")).unwrap();
    write_file(&a_dir.join("d"), b"now a file\n");
    wait_hub(hub.url(), CONVERGE, "the hub has the file d", |index| {
        index.get("d") == Some(&sha256(b"now a file\n"))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    write_file(&b_dir.join("d/new.txt"), b"added on B\n");

    sandbox.step("B wakes: its folder becomes a conflict copy, the file comes down");
    b.resume();
    wait_converged(&[&a_dir, &b_dir], hub.url(), CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("{e}\nB:\n{}", b.log()));
    assert_eq!(read_file(&b_dir.join("d")), b"now a file\n");
    let files = folder_files(&a_dir);
    let kept: Vec<&String> = files
        .iter()
        .filter(|(path, sha)| path.ends_with("/new.txt") && **sha == sha256(b"added on B\n"))
        .map(|(path, _)| path)
        .collect();
    assert_eq!(
        kept.len(),
        1,
        "B's new file reached A in the conflict copy: {files:?}"
    );
    assert!(
        is_conflict_copy(kept[0].trim_end_matches("/new.txt"), "d", &["b"]),
        "{kept:?}"
    );
}
