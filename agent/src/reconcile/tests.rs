use super::*;

fn sha(content: &str) -> Sha256Hex {
    Sha256Hex::of(content.as_bytes())
}

fn path(raw: &str) -> SyncPath {
    SyncPath::parse(raw).unwrap()
}

/// A local regular file holding `content`.
fn lfile(content: &str) -> Option<LocalFile> {
    Some(LocalFile {
        kind: EntryKind::File,
        sha256: sha(content),
        size: content.len() as u64,
        mtime_ns: 1_000,
        inode: 42,
        executable: false,
    })
}

fn lexec(content: &str) -> Option<LocalFile> {
    lfile(content).map(|l| LocalFile {
        executable: true,
        ..l
    })
}

fn ldir() -> Option<LocalFile> {
    Some(LocalFile {
        kind: EntryKind::Dir,
        sha256: Sha256Hex::empty(),
        size: 0,
        mtime_ns: 1_000,
        inode: 43,
        executable: false,
    })
}

fn with_mtime(local: Option<LocalFile>, mtime_ns: i64) -> Option<LocalFile> {
    local.map(|l| LocalFile { mtime_ns, ..l })
}

/// A synced record of a regular file holding `content` at `version`.
fn sfile(content: &str, version: u64) -> Option<SyncedFile> {
    Some(SyncedFile {
        kind: EntryKind::File,
        sha256: sha(content),
        size: content.len() as u64,
        mtime_ns: 1_000,
        inode: 42,
        executable: false,
        version,
    })
}

fn sdir(version: u64) -> Option<SyncedFile> {
    Some(SyncedFile {
        kind: EntryKind::Dir,
        sha256: Sha256Hex::empty(),
        size: 0,
        mtime_ns: 1_000,
        inode: 43,
        executable: false,
        version,
    })
}

fn entry(kind: EntryKind, content: &str, version: u64) -> Entry {
    Entry {
        path: path("p"),
        kind,
        version,
        seq: version * 10,
        sha256: Some(if kind == EntryKind::Dir {
            Sha256Hex::empty()
        } else {
            sha(content)
        }),
        size: content.len() as u64,
        mtime_ns: 2_000,
        executable: false,
        deleted: false,
        origin: "other".to_owned(),
        committed_ms: 3,
        chunks: None,
    }
}

/// The hub's live file holding `content` at `version`.
fn rfile(content: &str, version: u64) -> Option<Entry> {
    Some(entry(EntryKind::File, content, version))
}

fn rexec(content: &str, version: u64) -> Option<Entry> {
    rfile(content, version).map(|e| Entry {
        executable: true,
        ..e
    })
}

fn rdir(version: u64) -> Option<Entry> {
    Some(entry(EntryKind::Dir, "", version))
}

/// The hub's tombstone at `version`.
fn tomb(version: u64) -> Option<Entry> {
    Some(Entry {
        sha256: None,
        size: 0,
        deleted: true,
        ..entry(EntryKind::File, "", version)
    })
}

fn up(base_version: u64) -> Action {
    Action::Upload { base_version }
}

fn del(base_version: u64) -> Action {
    Action::DeleteRemote { base_version }
}

/// A batch of paths with their three views.
type Row = (
    SyncPath,
    Option<LocalFile>,
    Option<SyncedFile>,
    Option<Entry>,
);

/// Checks what [`decide_all`] does with `rows`, in its order.
fn assert_decided(rows: &[Row], direction: Direction, expected: &[(&str, Action)]) {
    let decided = decide_all(
        rows.iter()
            .map(|(p, l, s, r)| (p, l.as_ref(), s.as_ref(), r.as_ref())),
        direction,
    );
    let got: Vec<(&str, Action)> = decided
        .iter()
        .map(|(p, d)| (p.as_str(), d.action()))
        .collect();
    assert_eq!(got, expected);
}

type Case = (
    &'static str,
    Option<LocalFile>,
    Option<SyncedFile>,
    Option<Entry>,
    Action,
);

// One row per case; kept on single lines so the table reads as a table.
#[rustfmt::skip]
fn cases() -> Vec<Case> {
    use Action::*;
    vec![
        // Already in sync.
        ("unchanged everywhere", lfile("a"), sfile("a", 3), rfile("a", 3), Nothing),
        ("mtime-only local change", with_mtime(lfile("a"), 9_999), sfile("a", 3), rfile("a", 3), Nothing),
        ("unchanged directory", ldir(), sdir(2), rdir(2), Nothing),
        ("directory exec bit ignored", ldir().map(|l| LocalFile { executable: true, ..l }), sdir(2), rdir(2), Nothing),
        // One side changed.
        ("only local changed", lfile("b"), sfile("a", 3), rfile("a", 3), up(3)),
        ("only local exec bit changed", lexec("a"), sfile("a", 3), rfile("a", 3), up(3)),
        ("only hub changed", lfile("a"), sfile("a", 3), rfile("b", 4), Download),
        ("only hub exec bit changed", lfile("a"), sfile("a", 3), rexec("a", 4), Download),
        ("local file became a dir", ldir(), sfile("a", 3), rfile("a", 3), up(3)),
        ("hub file became a dir", lfile("a"), sfile("a", 3), rdir(4), Download),
        ("hub dir became a file", ldir(), sdir(3), rfile("a", 4), Download),
        // Both changed.
        ("both changed, different content", lfile("b"), sfile("a", 3), rfile("c", 4), ConflictCopyThenDownload),
        ("both changed, exec bit vs content", lexec("a"), sfile("a", 3), rfile("c", 4), ConflictCopyThenDownload),
        ("both changed, local dir vs hub file", ldir(), sfile("a", 3), rfile("c", 4), ConflictCopyThenDownload),
        ("both changed to the same content", lfile("b"), sfile("a", 3), rfile("b", 4), Record),
        ("both changed exec bit alike", lexec("a"), sfile("a", 3), rexec("a", 4), Record),
        ("hub changed to local content, mtime differs", with_mtime(lfile("b"), 7), sfile("a", 3), rfile("b", 4), Record),
        ("hub moved on with same content", lfile("a"), sfile("a", 3), rfile("a", 5), Record),
        // Deletes.
        ("local delete, hub unchanged", None, sfile("a", 3), rfile("a", 3), del(3)),
        ("local delete, hub modified", None, sfile("a", 3), rfile("b", 4), Download),
        ("hub delete, local unchanged", lfile("a"), sfile("a", 3), tomb(4), TrashLocal),
        ("hub delete, local mtime only", with_mtime(lfile("a"), 5), sfile("a", 3), tomb(4), TrashLocal),
        ("hub delete, local modified", lfile("b"), sfile("a", 3), tomb(4), up(4)),
        ("hub delete, local exec bit changed", lexec("a"), sfile("a", 3), tomb(4), up(4)),
        ("hub delete of a dir, local dir unchanged", ldir(), sdir(3), tomb(4), TrashLocal),
        ("deleted on both sides", None, sfile("a", 3), tomb(4), Forget),
        // Never synced.
        ("new local file", lfile("a"), None, None, up(0)),
        ("new local dir", ldir(), None, None, up(0)),
        ("new hub file", None, None, rfile("a", 1), Download),
        ("new hub dir", None, None, rdir(1), Download),
        ("new on both sides, same content", lfile("a"), None, rfile("a", 2), Record),
        ("new on both sides, same dir", ldir(), None, rdir(2), Record),
        ("new on both sides, different content", lfile("a"), None, rfile("b", 2), ConflictCopyThenDownload),
        ("new on both sides, file vs dir", lfile("a"), None, rdir(2), ConflictCopyThenDownload),
        ("new local file over hub tombstone", lfile("a"), None, tomb(5), up(5)),
        ("only a hub tombstone", None, None, tomb(5), Nothing),
        ("nothing anywhere", None, None, None, Nothing),
        // The hub lost state.
        ("hub forgot, local unchanged", lfile("a"), sfile("a", 3), None, up(0)),
        ("hub forgot, local modified", lfile("b"), sfile("a", 3), None, up(0)),
        ("hub forgot, local gone too", None, sfile("a", 3), None, Forget),
        ("hub forgot a synced dir", ldir(), sdir(3), None, up(0)),
        ("hub regressed to older version", lfile("a"), sfile("a", 5), rfile("old", 2), up(2)),
        ("hub regressed, same version other content", lfile("a"), sfile("a", 5), rfile("x", 5), up(5)),
        ("hub regressed to older tombstone", lfile("a"), sfile("a", 5), tomb(2), up(2)),
        ("hub regressed, local gone", None, sfile("a", 5), rfile("old", 2), Download),
        ("hub regressed to older tombstone, local gone", None, sfile("a", 5), tomb(2), Forget),
        ("hub regressed to the local content", lfile("old"), sfile("a", 5), rfile("old", 2), Record),
    ]
}

#[test]
fn decision_table() {
    let mut failures = Vec::new();
    for (name, local, synced, remote, expected) in cases() {
        let got = decide(local.as_ref(), synced.as_ref(), remote.as_ref()).action();
        if got != expected {
            failures.push(format!("{name}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn case_names_are_unique() {
    let cases = cases();
    let mut names: Vec<_> = cases.iter().map(|case| case.0).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len());
}

#[test]
fn decide_all_orders_parents_first_and_removals_children_first() {
    let rows: Vec<Row> = vec![
        // Trash: a hub-deleted tree, deepest first.
        (path("old"), ldir(), sdir(1), tomb(2)),
        (path("old/x"), lfile("x"), sfile("x", 1), tomb(2)),
        (path("old/x.txt"), lfile("x"), sfile("x", 1), tomb(2)),
        // Delete on the hub: a locally deleted tree.
        (path("gone"), None, sdir(1), rdir(1)),
        (path("gone/f"), None, sfile("f", 1), rfile("f", 1)),
        // Creations, given children first.
        (path("new/sub/f"), None, None, rfile("f", 1)),
        (path("new/sub"), None, None, rdir(1)),
        (path("new"), None, None, rdir(1)),
        (path("up/f"), lfile("f"), None, None),
        (path("up"), ldir(), None, None),
        // Dropped: nothing to do.
        (path("same"), lfile("s"), sfile("s", 1), rfile("s", 1)),
        // Bookkeeping.
        (path("both"), None, sfile("b", 1), tomb(2)),
        (path("rec"), lfile("r"), None, rfile("r", 1)),
    ];
    assert_decided(
        &rows,
        Direction::SendReceive,
        &[
            ("both", Action::Forget),
            ("new", Action::Download),
            ("new/sub", Action::Download),
            ("new/sub/f", Action::Download),
            ("rec", Action::Record),
            ("up", Action::Upload { base_version: 0 }),
            ("up/f", Action::Upload { base_version: 0 }),
            ("old/x.txt", Action::TrashLocal),
            ("old/x", Action::TrashLocal),
            ("old", Action::TrashLocal),
            ("gone/f", Action::DeleteRemote { base_version: 1 }),
            ("gone", Action::DeleteRemote { base_version: 1 }),
        ],
    );
}

/// The stuck states the tree model found (`tree_model_tests.rs`), kept as
/// cases: a file and a folder swapped places on one side while the other
/// added inside the folder, and a folder deleted on the hub while a file in
/// it, changed here, was sent after.
#[test]
fn decide_all_settles_a_file_and_a_folder_that_swapped_places() {
    // Here a file replaced the folder; the hub has something new in it.
    assert_decided(
        &[
            (path("d"), lfile("f"), sdir(1), rdir(1)),
            (path("d/x"), None, None, rfile("x", 1)),
        ],
        Direction::SendReceive,
        &[
            ("d", Action::ConflictCopyThenDownload),
            ("d/x", Action::Download),
        ],
    );
    // The hub replaced the folder by a file; something new is in it here.
    assert_decided(
        &[
            (path("d"), ldir(), sdir(1), rfile("f", 2)),
            (path("d/x"), lfile("x"), None, None),
        ],
        Direction::SendReceive,
        &[("d", Action::ConflictCopyThenDownload), ("d/x", up(0))],
    );
    // Without anything new inside, the swap is an upload and a download.
    assert_decided(
        &[(path("d"), lfile("f"), sdir(1), rdir(1))],
        Direction::SendReceive,
        &[("d", up(1))],
    );
    assert_decided(
        &[(path("d"), ldir(), sdir(1), rfile("f", 2))],
        Direction::SendReceive,
        &[("d", Action::Download)],
    );
    // Deleted on the hub, but a file in it changed here is live there: the
    // folder is sent back, not trashed for ever.
    assert_decided(
        &[
            (path("d"), ldir(), sdir(1), tomb(2)),
            (path("d/x"), lfile("x2"), sfile("x2", 3), rfile("x2", 3)),
        ],
        Direction::SendReceive,
        &[("d", up(2))],
    );
}

#[test]
fn decide_all_drops_everything_when_in_sync() {
    let p = path("a");
    let (l, s, r) = (lfile("a"), sfile("a", 1), rfile("a", 1));
    for direction in [Direction::SendReceive, Direction::ReceiveOnly] {
        assert!(decide_all([(&p, l.as_ref(), s.as_ref(), r.as_ref())], direction).is_empty());
    }
}

/// Every row of the send-receive table where receive-only decides
/// otherwise, by name, with the receive-only decision.
#[rustfmt::skip]
fn receive_only_changes() -> Vec<(&'static str, Action)> {
    use Action::*;
    vec![
        ("only local changed", Nothing),
        ("only local exec bit changed", Nothing),
        ("local file became a dir", Nothing),
        ("both changed, different content", SetAsideThenDownload),
        ("both changed, exec bit vs content", SetAsideThenDownload),
        ("both changed, local dir vs hub file", SetAsideThenDownload),
        ("local delete, hub unchanged", Nothing),
        ("hub delete, local modified", Forget),
        ("hub delete, local exec bit changed", Forget),
        ("new local file", Nothing),
        ("new local dir", Nothing),
        ("new on both sides, different content", SetAsideThenDownload),
        ("new on both sides, file vs dir", SetAsideThenDownload),
        ("new local file over hub tombstone", Nothing),
        ("hub forgot, local unchanged", Forget),
        ("hub forgot, local modified", Forget),
        ("hub forgot a synced dir", Forget),
        ("hub regressed to older version", Nothing),
        ("hub regressed, same version other content", Nothing),
        ("hub regressed to older tombstone", Forget),
    ]
}

#[test]
fn receive_only_table() {
    let changes: std::collections::HashMap<_, _> = receive_only_changes().into_iter().collect();
    let cases = cases();
    for name in changes.keys() {
        assert!(cases.iter().any(|c| c.0 == *name), "no case named {name:?}");
    }
    let mut failures = Vec::new();
    for (name, local, synced, remote, send_receive) in cases {
        let expected = changes.get(name).copied().unwrap_or(send_receive);
        let got = decide_receive_only(local.as_ref(), synced.as_ref(), remote.as_ref()).action();
        if got != expected {
            failures.push(format!("{name}: expected {expected:?}, got {got:?}"));
        }
        if got.writes_to_hub() {
            failures.push(format!(
                "{name}: receive-only would write to the hub: {got:?}"
            ));
        }
        let same = decide_in(
            Direction::ReceiveOnly,
            local.as_ref(),
            synced.as_ref(),
            remote.as_ref(),
        );
        assert_eq!(same.action(), got, "{name}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn receive_only_never_writes_to_the_hub_in_any_combination() {
    // Every combination of these sides, beyond the named cases.
    let locals = [None, lfile("a"), lfile("b"), lexec("a"), ldir()];
    let synceds = [None, sfile("a", 3), sfile("b", 3), sdir(3), sfile("a", 5)];
    let remotes = [
        None,
        rfile("a", 3),
        rfile("b", 4),
        rfile("c", 2),
        rexec("a", 4),
        rdir(3),
        rdir(4),
        tomb(2),
        tomb(3),
        tomb(4),
    ];
    let mut checked = 0;
    for local in &locals {
        for synced in &synceds {
            for remote in &remotes {
                let (l, s, r) = (local.as_ref(), synced.as_ref(), remote.as_ref());
                let got = decide_receive_only(l, s, r);
                assert!(!got.action().writes_to_hub(), "{l:?} {s:?} {r:?}: {got:?}");
                // The hub's side is still applied wherever it changed.
                let both_ways = decide(l, s, r);
                if !both_ways.action().writes_to_hub() {
                    assert_eq!(got, both_ways, "{l:?} {s:?} {r:?}");
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 5 * 5 * 10);
}

#[test]
fn receive_only_decide_all_sends_nothing() {
    let rows = [
        (path("new.txt"), lfile("n"), None, None),
        (path("edited.txt"), lfile("x"), sfile("a", 1), rfile("a", 1)),
        (path("deleted.txt"), None, sfile("d", 1), rfile("d", 1)),
        (
            path("both.txt"),
            lfile("mine"),
            sfile("a", 1),
            rfile("theirs", 2),
        ),
        (path("incoming.txt"), None, None, rfile("i", 1)),
    ];
    assert_decided(
        &rows,
        Direction::ReceiveOnly,
        &[
            ("both.txt", Action::SetAsideThenDownload),
            ("incoming.txt", Action::Download),
        ],
    );
}

/// Every decision of the table carries the very views it acts on: the
/// engine takes them from the decision, never from a second lookup.
#[test]
fn decisions_carry_what_they_act_on() {
    let mut failures = Vec::new();
    for (name, local, synced, remote, _) in cases() {
        for direction in [Direction::SendReceive, Direction::ReceiveOnly] {
            let (l, s, r) = (local.as_ref(), synced.as_ref(), remote.as_ref());
            let carried_ok = match decide_in(direction, l, s, r) {
                Decision::Upload { local, .. } | Decision::TrashLocal { local } => {
                    Some(&local) == l
                }
                Decision::Download { entry, replacing } => {
                    Some(&entry) == r && (replacing.is_none() || replacing.as_ref() == l)
                }
                Decision::ConflictCopyThenDownload { local, remote }
                | Decision::SetAsideThenDownload { local, remote }
                | Decision::Record {
                    local,
                    entry: remote,
                } => Some(&local) == l && Some(&remote) == r,
                Decision::DeleteRemote { synced } => Some(&synced) == s,
                Decision::Nothing | Decision::Forget => true,
            };
            if !carried_ok {
                failures.push(format!("{name} ({direction:?})"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A download that replaces something on disk says what: the apply step
/// refuses to overwrite it if it changed since.
#[test]
fn a_download_over_a_local_file_names_it() {
    let (l, s, r) = (lfile("a"), sfile("a", 3), rfile("b", 4));
    let Decision::Download { replacing, .. } = decide(l.as_ref(), s.as_ref(), r.as_ref()) else {
        panic!("only the hub changed: a download");
    };
    assert_eq!(replacing, l);
}
