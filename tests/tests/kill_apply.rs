//! An agent SIGKILLed again and again while it applies a burst of hub
//! changes that move files to its trash, make conflict copies of its own
//! edits and download: after the restarts nothing is lost (every trashed
//! file is in the trash, every local edit in a conflict copy or on the hub)
//! and, once it settles, `.sf/tmp` holds nothing.

use std::collections::HashSet;
use std::time::Duration;

use sf_e2e::*;

const FILES: u64 = 240;
const CONVERGE: Duration = Duration::from_secs(180);
/// How long B works after each start before it is killed: fixed, so a run
/// is repeatable, and spread so the kills land in different steps.
const KILL_AFTER_MS: [u64; 6] = [40, 150, 90, 300, 60, 220];

fn path(i: u64) -> String {
    format!("d{}/f{i:03}.txt", i % 8)
}

fn original(i: u64) -> Vec<u8> {
    random_bytes(10_000 + i, 200 + (i as usize % 7) * 900)
}

fn every_content(dir: &std::path::Path) -> HashSet<Sha256Hex> {
    fn walk(dir: &std::path::Path, found: &mut HashSet<Sha256Hex>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if let Ok(sha) = file_sha256(&path) {
                found.insert(sha);
            }
        }
    }
    let mut found = HashSet::new();
    walk(dir, &mut found);
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_trashing_and_making_conflict_copies() {
    let sandbox = Sandbox::new("kill-apply");
    let TwoAgents {
        hub,
        a_dir,
        b_dir,
        a: _a,
        mut b,
    } = TwoAgents::start(&sandbox, &[]).await;

    sandbox.step("A writes the files; both have them");
    for i in 0..FILES {
        write_file(&a_dir.join(path(i)), original(i));
    }
    wait_converged(&[&a_dir, &b_dir], hub.url(), CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    sandbox.step(
        "B frozen: B edits a third; A deletes a third, edits the same third as B, and another",
    );
    b.pause();
    let mut b_edits = Vec::new();
    for i in (0..FILES).filter(|i| i % 3 == 1) {
        let edit = format!("B's edit of {} while frozen\n", path(i)).into_bytes();
        write_file(&b_dir.join(path(i)), &edit);
        b_edits.push(sha256(&edit));
    }
    for i in 0..FILES {
        match i % 3 {
            0 => std::fs::remove_file(a_dir.join(path(i))).unwrap(),
            _ => write_file(&a_dir.join(path(i)), format!("A's edit of {}\n", path(i))),
        }
    }
    wait_hub(hub.url(), CONVERGE, "the hub has A's changes", |index| {
        (0..FILES).all(|i| match i % 3 {
            0 => !index.contains_key(&path(i)),
            _ => index.get(&path(i)) == Some(&sha256(format!("A's edit of {}\n", path(i)))),
        })
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    sandbox.step("B wakes and is killed again and again while it applies them");
    b.resume();
    for (round, after) in KILL_AFTER_MS.iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(*after)).await;
        b.kill();
        let trashed = (0..FILES)
            .filter(|i| i % 3 == 0)
            .filter(|i| !trashed_copies(&b_dir, &path(*i)).is_empty())
            .count();
        sandbox.step(&format!(
            "kill {round} after {after} ms: {trashed} of {} deleted files in the trash so far",
            FILES / 3
        ));
        b.restart().await;
    }
    wait_converged(&[&a_dir, &b_dir], hub.url(), CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("{e}\nB:\n{}", b.log()));

    sandbox.step("nothing lost, nothing stale");
    for i in (0..FILES).filter(|i| i % 3 == 0) {
        let kept: Vec<Sha256Hex> = trashed_copies(&b_dir, &path(i))
            .iter()
            .filter_map(|p| file_sha256(p).ok())
            .collect();
        assert!(
            kept.contains(&sha256(original(i))),
            "{} was deleted on the hub, but its bytes are not in B's trash ({kept:?})",
            path(i)
        );
    }
    let in_b = every_content(&b_dir);
    for edit in &b_edits {
        assert!(
            in_b.contains(edit),
            "one of B's edits ({edit}) is in no file of B's folder (conflict copies included)"
        );
    }
    let stale: Vec<_> = std::fs::read_dir(b_dir.join(".sf").join("tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(stale.is_empty(), "B left {stale:?} in .sf/tmp");
    assert!(!b.log().contains("panicked"), "B panicked:\n{}", b.log());
}
