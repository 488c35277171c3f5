//! `.sfignore` and the built-in ignore rules: ignored files stay where they
//! are, the `.sfignore` itself syncs (and then applies on the other side).

use std::time::Duration;

use sf_e2e::*;

const CONVERGE: Duration = Duration::from_secs(60);

/// What the test writes that must never leave its folder.
fn ignored(path: &str, is_dir: bool) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.ends_with(".log")
        || name.ends_with(".swp")
        || name == ".DS_Store"
        || (is_dir && name == "build")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_files_stay_local() {
    let sandbox = Sandbox::new("sfignore");
    let hub = Hub::start(&sandbox.dir("hub")).await;
    let a_dir = sandbox.dir("a");
    let b_dir = sandbox.dir("b");
    let sfignore = "# test rules\n*.log\nbuild/\n";

    sandbox.step("A's folder before it starts");
    write_file(&a_dir.join(".sfignore"), sfignore);
    write_file(&a_dir.join("keep.txt"), "kept\n");
    write_file(&a_dir.join("app.log"), "log line\n");
    write_file(&a_dir.join("sub/trace.log"), "trace\n");
    write_file(&a_dir.join("sub/code.rs"), "fn main() {}\n");
    write_file(&a_dir.join("build/out.bin"), "binary\n");
    write_file(&a_dir.join("build/deep/obj.o"), "object\n");
    write_file(&a_dir.join("x.swp"), "vim swap\n");
    write_file(&a_dir.join(".DS_Store"), "finder\n");
    write_file(&a_dir.join("sub/.DS_Store"), "finder\n");

    let mut a = Agent::start(hub.url(), &a_dir, "a", &[]).await;
    let mut b = Agent::start(hub.url(), &b_dir, "b", &[]).await;
    let both = [a_dir.as_path(), b_dir.as_path()];
    wait_converged_except(&both, hub.url(), CONVERGE, ignored)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    sandbox.step("ignored files created while running");
    write_file(&a_dir.join("later.log"), "later\n");
    write_file(&a_dir.join("build/later.o"), "later object\n");
    write_file(&a_dir.join("later.txt"), "later, synced\n");
    wait_converged_except(&both, hub.url(), CONVERGE, ignored)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    sandbox.step("B applies the synced .sfignore to its own files");
    write_file(&b_dir.join("from-b.log"), "b's log\n");
    write_file(&b_dir.join("build/from-b.o"), "b's object\n");
    write_file(&b_dir.join("from-b.txt"), "b's text\n");
    wait_converged_except(&both, hub.url(), CONVERGE, ignored)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let index = hub_index(hub.url()).await.unwrap();
    let on_hub: Vec<&str> = index.keys().map(String::as_str).collect();
    assert_eq!(
        on_hub,
        [
            ".sfignore",
            "from-b.txt",
            "keep.txt",
            "later.txt",
            "sub/code.rs"
        ],
        "only the files no rule ignores are on the hub"
    );
    assert_eq!(read_file(&b_dir.join(".sfignore")), sfignore.as_bytes());
    for path in [
        "app.log",
        "sub/trace.log",
        "build/out.bin",
        "build/deep/obj.o",
        "build/later.o",
        "later.log",
        "x.swp",
        ".DS_Store",
        "sub/.DS_Store",
    ] {
        assert!(!b_dir.join(path).exists(), "{path} reached B");
        assert!(a_dir.join(path).exists(), "{path} left alone in A");
    }
    for path in ["from-b.log", "build/from-b.o"] {
        assert!(!a_dir.join(path).exists(), "{path} reached A");
        assert!(b_dir.join(path).exists(), "{path} left alone in B");
    }

    assert!(a.stop().await.success());
    assert!(b.stop().await.success());
    sandbox.step("done");
}
