//! `sf-agent status` on a real folder and a real state database: each path
//! is listed under what the engine's decision for it is.

use std::path::Path;

use sf_protocol::v1::{Entry, EntryKind};
use sf_protocol::{Sha256Hex, SyncPath};

use super::*;
use crate::model::SyncedFile;

fn hub_entry(path: &str, version: u64, content: Option<&str>) -> Entry {
    Entry {
        path: SyncPath::parse(path).unwrap(),
        kind: EntryKind::File,
        version,
        seq: 0,
        sha256: content.map(|c| Sha256Hex::of(c.as_bytes())),
        size: content.map_or(0, |c| c.len() as u64),
        mtime_ns: 1,
        executable: false,
        deleted: content.is_none(),
        origin: "other".to_owned(),
        committed_ms: 1,
        chunks: None,
    }
}

fn synced(content: &str, version: u64) -> SyncedFile {
    SyncedFile {
        kind: EntryKind::File,
        sha256: Sha256Hex::of(content.as_bytes()),
        size: content.len() as u64,
        mtime_ns: 0,
        inode: 0,
        executable: false,
        version,
    }
}

fn section<'a>(report: &'a str, title: &str) -> Vec<&'a str> {
    let mut lines = report.lines().skip_while(|l| !l.starts_with(title));
    let heading = lines
        .next()
        .unwrap_or_else(|| panic!("no {title:?}:\n{report}"));
    let mut items: Vec<&str> = lines
        .take_while(|l| l.starts_with("  "))
        .map(str::trim)
        .collect();
    items.insert(0, heading);
    items
}

async fn folder_with_history(root: &Path, registry: &Path) {
    std::fs::create_dir_all(root).unwrap();
    let state = State::open(root, registry).await.unwrap();
    // (path, on disk now, synced at version 1, the hub now: version and
    // content, `None` for a tombstone)
    type Row<'a> = (
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        Option<(u64, Option<&'a str>)>,
    );
    let rows: [Row; 6] = [
        ("deleted-on-hub.txt", Some("k"), Some("k"), Some((2, None))),
        (
            "edited-here.txt",
            Some("new"),
            Some("old"),
            Some((1, Some("old"))),
        ),
        ("deleted-here.txt", None, Some("g"), Some((1, Some("g")))),
        (
            "edited-on-hub.txt",
            Some("a"),
            Some("a"),
            Some((2, Some("b"))),
        ),
        ("new-on-hub.txt", None, None, Some((1, Some("n")))),
        (
            "edited-on-both.txt",
            Some("mine"),
            Some("base"),
            Some((2, Some("theirs"))),
        ),
    ];
    let mut feed = Vec::new();
    for (seq, (path, local, base, hub)) in rows.into_iter().enumerate() {
        if let Some(content) = local {
            std::fs::write(root.join(path), content).unwrap();
        }
        let sync_path = SyncPath::parse(path).unwrap();
        if let Some(base) = base {
            state
                .record(&sync_path, &synced(base, 1), &[])
                .await
                .unwrap();
        }
        if let Some((version, content)) = hub {
            let mut entry = hub_entry(path, version, content);
            entry.seq = seq as u64 + 1;
            feed.push(entry);
        }
    }
    let last = feed.len() as u64;
    state.apply_changes(&feed, last).await.unwrap();
    state.close().await;
}

#[tokio::test]
async fn paths_are_grouped_by_the_engines_decision() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("folder");
    folder_with_history(&root, &dir.path().join("registry")).await;

    let report = report(&root).await.unwrap();
    assert_eq!(
        section(&report, "pending upload"),
        [
            "pending upload: 2",
            "deleted-here.txt (deleted)",
            "edited-here.txt"
        ],
        "{report}"
    );
    // A file the hub deleted goes to the trash: it is not "to download".
    assert_eq!(
        section(&report, "pending download"),
        ["pending download: 2", "edited-on-hub.txt", "new-on-hub.txt"],
        "{report}"
    );
    assert_eq!(
        section(&report, "pending move to the trash"),
        [
            "pending move to the trash (deleted on the hub): 1",
            "deleted-on-hub.txt"
        ],
        "{report}"
    );
    assert_eq!(
        section(&report, "pending conflicts")[1],
        "edited-on-both.txt"
    );
    assert!(report.contains("synced:   5 files, 0 folders"), "{report}");
    // Nothing changed on disk or in the state.
    assert!(!root.join("new-on-hub.txt").exists());
    assert_eq!(report, super::report(&root).await.unwrap());
}

#[tokio::test]
async fn a_read_only_token_lists_what_it_keeps_here() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("folder");
    folder_with_history(&root, &dir.path().join("registry")).await;
    let state = State::open_existing(&root).await.unwrap();
    state.set_meta(MetaKey::Scope, "read").await.unwrap();
    state.close().await;

    let report = report(&root).await.unwrap();
    assert!(!report.contains("pending upload"), "{report}");
    assert_eq!(
        section(&report, "local changes not sent (read-only token)"),
        [
            "local changes not sent (read-only token): 2",
            "deleted-here.txt (deleted)",
            "edited-here.txt"
        ],
        "{report}"
    );
    assert_eq!(
        section(&report, "pending download")[0],
        "pending download: 2"
    );
}
