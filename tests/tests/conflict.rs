//! The same file edited differently on two sides while one agent is down:
//! both contents survive on both sides, one of them as a conflict copy.

use std::time::Duration;

use sf_e2e::*;

const CONVERGE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_edits_become_a_conflict_copy() {
    let sandbox = Sandbox::new("conflict");
    let TwoAgents {
        hub,
        a_dir,
        b_dir,
        mut a,
        mut b,
    } = TwoAgents::start(&sandbox, &[]).await;
    let both = [a_dir.as_path(), b_dir.as_path()];

    sandbox.step("shared file");
    write_file(&a_dir.join("notes/report.txt"), "base version\n");
    wait_converged(&both, hub.url(), CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    sandbox.step("stop B, edit in A and in B");
    assert!(b.stop().await.success());
    let from_a = "edited on a\n";
    let from_b = "edited on b, differently\n";
    write_file(&a_dir.join("notes/report.txt"), from_a);
    wait_hub(hub.url(), CONVERGE, "A's edit on the hub", |index| {
        index.get("notes/report.txt") == Some(&sha256(from_a))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    write_file(&b_dir.join("notes/report.txt"), from_b);

    sandbox.step("start B");
    b.restart().await;
    wait_converged(&both, hub.url(), CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let expected: std::collections::BTreeSet<Sha256Hex> =
        [sha256(from_a), sha256(from_b)].into_iter().collect();
    for dir in both {
        let files = folder_files(&dir.join("notes"));
        let copies: Vec<&String> = files
            .keys()
            .filter(|p| is_conflict_copy(p, "report.txt", &["a", "b"]))
            .collect();
        assert_eq!(
            copies.len(),
            1,
            "{}: exactly one conflict copy named `report (conflict <a|b> YYYY-MM-DD HHMMSS).txt`: {files:?}",
            dir.display()
        );
        let held: std::collections::BTreeSet<Sha256Hex> = [files["report.txt"], files[copies[0]]]
            .into_iter()
            .collect();
        assert_eq!(
            held,
            expected,
            "{}: the original and the copy hold both edits",
            dir.display()
        );
        assert_eq!(files.len(), 2, "{}: {files:?}", dir.display());
    }

    assert!(a.stop().await.success());
    assert!(b.stop().await.success());
    sandbox.step("done");
}
