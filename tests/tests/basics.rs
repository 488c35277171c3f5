//! Two agents on one hub: create (nested, empty directory, Unicode name,
//! 0-byte file, executable), modify on both sides, mode change, delete (the
//! other side's copy goes to its trash, never unlinked), rename.

use std::fs;
use std::time::Duration;

use sf_e2e::*;

const CONVERGE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basics() {
    let sandbox = Sandbox::new("basics");
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

    sandbox.step("create in A");
    let unicode = "überblick/naïve 日本.txt";
    let big = random_bytes(7, 3 << 20);
    write_file(&a_dir.join("docs/notes/todo.txt"), "buy bread\n");
    write_file(&a_dir.join("docs/readme.md"), "# readme\n");
    write_file(&a_dir.join("deep/a/b/c/d/leaf.bin"), &big);
    fs::create_dir_all(a_dir.join("empty/inner")).unwrap();
    write_file(&a_dir.join(unicode), "Grüße, 日本\n");
    write_file(&a_dir.join("zero.bin"), "");
    write_file(&a_dir.join("bin/run.sh"), "#!/bin/sh\necho hi\n");
    set_mode(&a_dir.join("bin/run.sh"), 0o755);
    converge().await;
    assert_eq!(
        read_file(&b_dir.join("docs/notes/todo.txt")),
        b"buy bread\n"
    );
    assert_eq!(read_file(&b_dir.join("deep/a/b/c/d/leaf.bin")), big);
    assert_eq!(
        read_file(&b_dir.join(unicode)),
        "Grüße, 日本\n".as_bytes(),
        "the Unicode name arrives under the same bytes"
    );
    assert!(b_dir.join("empty/inner").is_dir(), "empty directories sync");
    assert_eq!(fs::metadata(b_dir.join("zero.bin")).unwrap().len(), 0);
    assert!(
        is_executable(&b_dir.join("bin/run.sh")),
        "B's copy of a 0755 file is executable"
    );
    assert!(!is_executable(&b_dir.join("docs/readme.md")));

    sandbox.step("modify in A and in B");
    write_file(&a_dir.join("docs/notes/todo.txt"), "buy bread\nand milk\n");
    write_file(&b_dir.join("docs/readme.md"), "# readme\nedited on b\n");
    converge().await;
    assert_eq!(
        read_file(&b_dir.join("docs/notes/todo.txt")),
        b"buy bread\nand milk\n"
    );
    assert_eq!(
        read_file(&a_dir.join("docs/readme.md")),
        b"# readme\nedited on b\n"
    );

    sandbox.step("chmod -x in A");
    set_mode(&a_dir.join("bin/run.sh"), 0o644);
    converge().await;
    assert!(!is_executable(&b_dir.join("bin/run.sh")));

    sandbox.step("delete in A");
    fs::remove_file(a_dir.join("docs/readme.md")).unwrap();
    converge().await;
    assert!(!b_dir.join("docs/readme.md").exists());
    let trashed = trashed_copies(&b_dir, "docs/readme.md");
    assert_eq!(
        trashed.len(),
        1,
        "B keeps its copy in .sf/trash: {trashed:?}"
    );
    assert_eq!(read_file(&trashed[0]), b"# readme\nedited on b\n");
    let history = hub_history(hub.url(), "docs/readme.md").await.unwrap();
    assert!(history.last().is_some_and(|e| e.deleted), "{history:?}");

    sandbox.step("delete in B");
    fs::remove_file(b_dir.join("zero.bin")).unwrap();
    converge().await;
    assert!(!a_dir.join("zero.bin").exists());
    let trashed = trashed_copies(&a_dir, "zero.bin");
    assert_eq!(trashed.len(), 1, "A keeps its copy: {trashed:?}");
    assert_eq!(read_file(&trashed[0]), b"");

    sandbox.step("remove an empty directory in A");
    fs::remove_dir(a_dir.join("empty/inner")).unwrap();
    converge().await;
    assert!(!b_dir.join("empty/inner").exists());
    assert!(b_dir.join("empty").is_dir());

    sandbox.step("rename in A");
    fs::rename(
        a_dir.join("docs/notes/todo.txt"),
        a_dir.join("docs/todo-renamed.txt"),
    )
    .unwrap();
    converge().await;
    for dir in both {
        assert!(!dir.join("docs/notes/todo.txt").exists());
        assert_eq!(
            read_file(&dir.join("docs/todo-renamed.txt")),
            b"buy bread\nand milk\n"
        );
    }
    let index = hub_index(hub.url()).await.unwrap();
    assert!(!index.contains_key("docs/notes/todo.txt"));
    let history = hub_history(hub.url(), "docs/notes/todo.txt").await.unwrap();
    assert!(
        history.len() >= 3 && history.last().is_some_and(|e| e.deleted),
        "the old path keeps its versions and ends in a tombstone: {history:?}"
    );

    sandbox.step("stop both");
    assert!(a.stop().await.success());
    assert!(b.stop().await.success());
    sandbox.step("done");
}
