//! Whole-folder operations while both agents run: renaming a folder with
//! nested contents, and deleting a folder tree. The other side ends with the
//! same tree, and the old files are in its trash.

use std::fs;
use std::time::Duration;

use sf_e2e::*;

const CONVERGE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folder_rename_and_tree_delete() {
    let sandbox = Sandbox::new("tree-ops");
    let TwoAgents {
        hub,
        a_dir,
        b_dir,
        mut a,
        mut b,
    } = TwoAgents::start(&sandbox, &[]).await;
    let both = [a_dir.as_path(), b_dir.as_path()];
    let converge = async || {
        wait_converged(&both, hub.url(), CONVERGE)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    };

    sandbox.step("a tree");
    for (path, text) in [
        ("project/readme.txt", "readme\n"),
        ("project/src/main.c", "int main() {}\n"),
        ("project/src/lib/util.c", "void util() {}\n"),
        ("trash-me/one.txt", "one\n"),
        ("trash-me/sub/two.txt", "two\n"),
    ] {
        write_file(&a_dir.join(path), text);
    }
    fs::create_dir_all(a_dir.join("project/empty")).unwrap();
    fs::create_dir_all(a_dir.join("trash-me/sub/empty")).unwrap();
    converge().await;

    sandbox.step("rename a folder in A");
    fs::rename(a_dir.join("project"), a_dir.join("renamed")).unwrap();
    converge().await;
    assert!(!b_dir.join("project").exists(), "the old folder left B");
    assert_eq!(
        read_file(&b_dir.join("renamed/src/lib/util.c")),
        b"void util() {}\n"
    );
    assert!(b_dir.join("renamed/empty").is_dir());
    assert_eq!(
        read_file(&trashed_copies(&b_dir, "project/src/main.c")[0]),
        b"int main() {}\n"
    );

    sandbox.step("delete a tree in B");
    fs::remove_dir_all(b_dir.join("trash-me")).unwrap();
    converge().await;
    assert!(!a_dir.join("trash-me").exists(), "the tree left A");
    assert_eq!(
        read_file(&trashed_copies(&a_dir, "trash-me/sub/two.txt")[0]),
        b"two\n"
    );

    assert!(a.stop().await.success());
    assert!(b.stop().await.success());
    sandbox.step("done");
}
