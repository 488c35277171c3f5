//! Three hubs on one PostgreSQL database and one bucket, and three agents,
//! each given a different hub only. The agents take turns: one changes
//! its folder (small files, files of a few MiB, folders, then a rename, a
//! delete, a folder moved, an edit) while the other two do nothing, so
//! what they receive comes from another hub's push. The agents keep the
//! default scan interval (60 s, checked in their logs), longer than the
//! hang guard of each turn, so a periodic scan cannot stand in for a
//! broken push. Every folder must end as written and equal to every hub's
//! view.

use super::*;

/// Each turn's hang guard: with the push working, a turn takes seconds.
const TURN: Duration = Duration::from_secs(30);

/// Waits until every folder equals the view of every hub.
async fn converged(hubs: &SharedHubs, dirs: &[&Path], sandbox: &Sandbox, what: &str) {
    let started = Instant::now();
    for n in 1..=hubs.hubs.len() {
        wait_converged(dirs, &hubs.url(n), TURN)
            .await
            .unwrap_or_else(|e| panic!("{what}: against hub {n}: {e}"));
    }
    sandbox.step(&format!(
        "{what}: all folders and hubs agree after {:.1}s",
        started.elapsed().as_secs_f64()
    ));
}

/// Writes `len` random bytes at `rel` in `dir` (whole: made next door and
/// renamed in) and notes it in `ledger`.
fn write_big(
    ledger: &mut BTreeMap<String, Sha256Hex>,
    staging: &Path,
    dir: &Path,
    rel: &str,
    seed: u64,
    len: u64,
) {
    let staged = staging.join(format!("{seed}.bin"));
    let sha = tokio::task::block_in_place(|| write_random_file(&staged, seed, len));
    let target = dir.join(rel);
    std::fs::create_dir_all(target.parent().expect("a file in a folder")).unwrap();
    std::fs::rename(&staged, &target).unwrap();
    ledger.insert(rel.to_owned(), sha);
}

fn write_small(ledger: &mut BTreeMap<String, Sha256Hex>, dir: &Path, rel: &str, text: &str) {
    write_file(&dir.join(rel), text);
    ledger.insert(rel.to_owned(), sha256(text.as_bytes()));
}

fn make_dir(dirs: &mut BTreeSet<String>, dir: &Path, rel: &str) {
    std::fs::create_dir_all(dir.join(rel)).unwrap();
    dirs.insert(rel.to_owned());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_on_three_hubs_converge_through_cross_hub_push() {
    const TEST: &str = "scale_out::agents_on_three_hubs_converge_through_cross_hub_push";
    let sandbox = Sandbox::new("scale-out-three-hubs");
    let Some(hubs) = SharedHubs::start(TEST, &sandbox, 3).await else {
        return;
    };
    let names = ["a", "b", "c"];
    let dirs: Vec<PathBuf> = names.iter().map(|name| sandbox.dir(name)).collect();
    let all: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    let staging = sandbox.dir("staging");
    let mut agents = Vec::new();
    for (n, (name, dir)) in names.iter().zip(&dirs).enumerate() {
        let hub = hubs.url(n + 1);
        let agent = Agent::start(&hub, dir, name, &[]).await;
        let log = agent.log_of_run();
        assert!(
            log.contains("scan_every=60s") && log.contains(&format!("hubs={hub} ")),
            "agent {name} runs on hub {} only, with the default scan interval:\n{log}",
            n + 1
        );
        agents.push(agent);
    }
    let (a, b, c) = (&dirs[0], &dirs[1], &dirs[2]);
    let mut ledger = BTreeMap::new();
    let mut folders = BTreeSet::new();

    sandbox.step("A (hub 1 only) writes small files, 4 MiB, a folder and an empty one");
    make_dir(&mut folders, a, "a");
    write_small(&mut ledger, a, "a/notes.txt", "from a\n");
    write_big(&mut ledger, &staging, a, "a/big.bin", 1, (4 << 20) + 123);
    make_dir(&mut folders, a, "a/docs");
    write_small(&mut ledger, a, "a/docs/readme.txt", "a's docs\n");
    make_dir(&mut folders, a, "a/empty");
    converged(&hubs, &all, &sandbox, "A's files").await;

    sandbox.step("B (hub 2 only) writes, 3 MiB too, and renames a file that came from A");
    make_dir(&mut folders, b, "b");
    write_small(&mut ledger, b, "b/notes.txt", "from b\n");
    write_big(&mut ledger, &staging, b, "b/big.bin", 2, 3 << 20);
    make_dir(&mut folders, b, "b/empty");
    std::fs::rename(b.join("a/docs/readme.txt"), b.join("a/docs/renamed.txt")).unwrap();
    let moved = ledger.remove("a/docs/readme.txt").unwrap();
    ledger.insert("a/docs/renamed.txt".into(), moved);
    converged(&hubs, &all, &sandbox, "B's files and rename").await;

    sandbox.step("C (hub 3 only) deletes A's large file, moves A's folder, edits B's file");
    make_dir(&mut folders, c, "c");
    write_small(&mut ledger, c, "c/notes.txt", "from c\n");
    std::fs::remove_file(c.join("a/big.bin")).unwrap();
    ledger.remove("a/big.bin");
    std::fs::rename(c.join("a/docs"), c.join("c/docs-from-a")).unwrap();
    folders.remove("a/docs");
    folders.insert("c/docs-from-a".into());
    let moved = ledger.remove("a/docs/renamed.txt").unwrap();
    ledger.insert("c/docs-from-a/renamed.txt".into(), moved);
    write_small(&mut ledger, c, "b/notes.txt", "from b, edited on c\n");
    converged(&hubs, &all, &sandbox, "C's delete, move and edit").await;

    for dir in &all {
        assert_eq!(
            folder_files(dir),
            ledger,
            "{} holds every file as last written, and nothing else",
            dir.display()
        );
        assert_eq!(
            folder_dirs(dir),
            folders,
            "{} holds every folder, and nothing else",
            dir.display()
        );
    }
    for n in 1..=hubs.hubs.len() {
        assert_eq!(
            hub_index(&hubs.url(n)).await.unwrap(),
            ledger,
            "hub {n} serves every file as last written"
        );
    }
    for agent in &mut agents {
        assert!(agent.is_running(), "agent {} still runs", agent.name());
        assert!(agent.stop().await.success());
    }
    sandbox.step(&format!(
        "done: {} files and {} folders on three hubs",
        ledger.len(),
        folders.len()
    ));
}
