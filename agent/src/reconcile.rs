//! The agent's three-way sync decision: given what is on disk now, what was
//! last synced, and what the hub holds now, say what to do with one path.
//!
//! This module owns the *policy* only (mutagen's `Reconcile(ancestor, alpha,
//! beta)` idea): [`decide`] and [`decide_all`] are pure functions, with no
//! I/O and no async. The engine carries the decisions out.
//!
//! The product's promise that every rule serves: no local file is overwritten
//! or removed unless its bytes are on the hub or in the trash. Hence a hub
//! delete moves the local file to the trash (never unlinks it), a conflict
//! keeps the local bytes as a conflict copy, and a hub that forgot a path
//! (or went back in time) gets the local file uploaded again instead of
//! having it removed.
//!
//! # Terms
//!
//! - *content* of a side: its kind, its digest and (for files) its executable
//!   bit. mtime, size-on-disk details and inode are not content. A
//!   directory's executable bit is ignored: it carries no meaning on the
//!   wire, and comparing it could turn two identical directories into a
//!   conflict.
//! - *local changed*: the path is on disk but was never synced, is gone from
//!   disk but was synced, or its content differs from the synced content.
//! - *hub changed*: the hub's entry is newer than the synced version
//!   (a higher version, live or tombstone).
//! - *hub regressed*: something was synced at version `S`, but the hub now
//!   has no record of the path, or its entry is older than `S`, or it is at
//!   `S` with other content or as a tombstone. The hub lost state (for
//!   example it was restored from an old backup); it is treated like a hub
//!   that never knew the path, so local files are uploaded again, never
//!   trashed because of it.
//!
//! # Decision table
//!
//! `L` = local file, `S` = synced record (version `s`), `R` = hub entry
//! (version `r`; "tomb" = tombstone, "none" = no record at all).
//! `L == R` means equal content; rows are tried top to bottom.
//!
//! | L       | S       | R                   | condition                       | decision                      |
//! |---------|---------|---------------------|---------------------------------|-------------------------------|
//! | some    | any     | live                | `L == R`, `S` at `r` and `== L` | `Nothing`                     |
//! | some    | any     | live                | `L == R` otherwise              | `Record`                      |
//! | absent  | some    | tomb / none         |                                 | `Forget`                      |
//! | absent  | none    | tomb / none         |                                 | `Nothing`                     |
//! | some    | none    | none                |                                 | `Upload { 0 }`                |
//! | some    | none    | tomb                |                                 | `Upload { r }`                |
//! | some    | none    | live                | `L != R`                        | `ConflictCopyThenDownload`    |
//! | absent  | none    | live                |                                 | `Download`                    |
//! | some    | some    | none                | hub lost the path               | `Upload { 0 }`                |
//! | some    | some    | tomb / live         | hub regressed                   | `Upload { r }`                |
//! | absent  | some    | live                | hub regressed                   | `Download`                    |
//! | absent  | some    | live, `r == s`      | local delete, hub unchanged     | `DeleteRemote { s }`          |
//! | absent  | some    | live, `r > s`       | local delete, hub modified      | `Download` (hub wins)         |
//! | some    | some    | tomb, `r > s`       | local unchanged                 | `TrashLocal`                  |
//! | some    | some    | tomb, `r > s`       | local modified                  | `Upload { r }` (local wins)   |
//! | some    | some    | live, `r == s`      | local modified (hub unchanged)  | `Upload { s }`                |
//! | some    | some    | live, `r > s`       | local unchanged                 | `Download`                    |
//! | some    | some    | live, `r > s`       | local modified, `L != R`        | `ConflictCopyThenDownload`    |
//!
//! A kind change (file on one side, directory on the other) is a content
//! difference like any other. An mtime-only change is no change.
//!
//! # Receive-only
//!
//! With a read-only token ([`Direction::ReceiveOnly`], as Syncthing's
//! receive-only folders) the hub's changes are applied as above, but nothing
//! is ever sent: no decision uploads, commits or deletes on the hub
//! ([`Decision::writes_to_hub`] is false for all of them), and local changes
//! stay on disk:
//!
//! | send-receive decision      | receive-only decision                                  |
//! |----------------------------|--------------------------------------------------------|
//! | `Upload`, hub live         | `Nothing` (the local change stays, not sent)           |
//! | `Upload`, hub tomb / none, synced | `Forget` (the file is now one the hub lacks)    |
//! | `Upload`, never synced     | `Nothing`                                              |
//! | `DeleteRemote`             | `Nothing` (the local delete stays, not sent)           |
//! | `ConflictCopyThenDownload` | `SetAsideThenDownload` (the copy stays local)          |
//! | anything else              | the same                                               |

use std::cmp::Ordering;

use crate::model::{LocalFile, SyncedFile};
use sf_protocol::v1::{Entry, EntryKind};
use sf_protocol::{Sha256Hex, SyncPath};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to do.
    Nothing,
    /// Upload the local content and commit it with this base version.
    Upload { base_version: u64 },
    /// Write the hub's current version at the path (file content or mkdir).
    Download,
    /// Both sides changed to different content: rename the local file to a
    /// conflict copy (which is then uploaded as a new path), then download
    /// the hub's version to the path.
    ConflictCopyThenDownload,
    /// Deleted locally, unchanged on the hub: delete on the hub with this
    /// base version.
    DeleteRemote { base_version: u64 },
    /// Deleted on the hub, unchanged locally: move the local file to the trash.
    TrashLocal,
    /// Both sides hold the same thing: record it as synced at the hub's version.
    Record,
    /// Gone on both sides: forget the synced record.
    Forget,
    /// Receive-only: the hub's new version meets a local change. Rename
    /// the local file to a conflict copy that stays local (never
    /// uploaded), then download the hub's version to the path.
    SetAsideThenDownload,
}

/// Whether local changes are sent to the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Both ways (a token that may write).
    SendReceive,
    /// Only the hub's changes are applied; local ones stay local (a
    /// read-only token).
    ReceiveOnly,
}

impl Decision {
    /// Whether carrying it out changes anything on the hub.
    pub fn writes_to_hub(self) -> bool {
        matches!(
            self,
            Decision::Upload { .. }
                | Decision::DeleteRemote { .. }
                | Decision::ConflictCopyThenDownload
        )
    }

    /// Whether this decision removes something (on the hub or on disk), so
    /// that it must run children first.
    pub fn is_removal(self) -> bool {
        matches!(self, Decision::DeleteRemote { .. } | Decision::TrashLocal)
    }
}

/// What sync compares: kind, digest and, for files, the executable bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Content {
    kind: EntryKind,
    sha256: Sha256Hex,
    executable: bool,
}

impl Content {
    fn new(kind: EntryKind, sha256: Sha256Hex, executable: bool) -> Self {
        Self {
            kind,
            sha256,
            // A directory's mode bit is not synced content.
            executable: executable && kind == EntryKind::File,
        }
    }

    fn of_local(local: &LocalFile) -> Self {
        Self::new(local.kind, local.sha256, local.executable)
    }

    fn of_synced(synced: &SyncedFile) -> Self {
        Self::new(synced.kind, synced.sha256, synced.executable)
    }

    /// `None` for a tombstone (or a malformed live entry without a digest,
    /// which then equals nothing and is never mistaken for local content).
    fn of_entry(entry: &Entry) -> Option<Self> {
        if entry.deleted {
            return None;
        }
        entry
            .sha256
            .map(|sha256| Self::new(entry.kind, sha256, entry.executable))
    }
}

/// The three-way decision for one path.
///
/// `local` is what is on disk now, `synced` what was last agreed with the hub,
/// `remote` the hub's current entry: `Some` with `deleted == true` is a
/// tombstone, `None` means the hub has no record of the path at all. See the
/// module documentation for the full table.
pub fn decide(
    local: Option<&LocalFile>,
    synced: Option<&SyncedFile>,
    remote: Option<&Entry>,
) -> Decision {
    let local_content = local.map(Content::of_local);
    let synced_content = synced.map(Content::of_synced);
    // The hub's live content; `None` for a tombstone or no record.
    let remote_content = remote.and_then(Content::of_entry);

    // Same content on both sides, whatever happened: record it, unless it is
    // recorded at exactly this version and content already.
    if let (Some(l), Some(r), Some(entry)) = (local_content, remote_content, remote)
        && l == r
    {
        return match synced {
            Some(s) if s.version == entry.version && synced_content == Some(l) => Decision::Nothing,
            _ => Decision::Record,
        };
    }

    // Gone on both sides (hub tombstone or no record, nothing on disk).
    if local.is_none() && remote_content.is_none() {
        return if synced.is_some() {
            Decision::Forget
        } else {
            Decision::Nothing
        };
    }

    // From here on at least one side exists and the two sides differ.
    let Some(synced) = synced else {
        // Never synced: no common ancestor.
        return match (local, remote) {
            (Some(_), None) => Decision::Upload { base_version: 0 },
            (Some(_), Some(entry)) if entry.deleted => Decision::Upload {
                base_version: entry.version,
            },
            (Some(_), Some(_)) => Decision::ConflictCopyThenDownload,
            // Only the hub has it (live, or we would have returned above).
            (None, _) => Decision::Download,
        };
    };

    let Some(entry) = remote else {
        // The hub has no record although we synced the path: it lost state.
        // Never trash user files because a hub forgot them. (Local absent
        // was handled above as `Forget`.)
        return Decision::Upload { base_version: 0 };
    };

    let hub_regressed = entry.version < synced.version
        || (entry.version == synced.version && remote_content != synced_content);
    if hub_regressed {
        // The hub went back in time: what we synced is no longer there.
        // Put the local file back on top of whatever the hub has now; if the
        // local file is gone, take what the hub has (re-creating is safe).
        return match local {
            Some(_) => Decision::Upload {
                base_version: entry.version,
            },
            None => Decision::Download,
        };
    }
    // Not regressed: either the hub is exactly at the synced version and
    // content (unchanged), or it is newer.
    let hub_changed = entry.version > synced.version;
    let local_changed = local_content != synced_content;

    match local {
        None => {
            if hub_changed {
                // Local delete, hub modified (live, or the tombstone case
                // would have been handled above): the hub's change wins.
                Decision::Download
            } else {
                Decision::DeleteRemote {
                    base_version: synced.version,
                }
            }
        }
        Some(_) if entry.deleted => {
            // Hub delete (hub_changed is true: a tombstone at or below the
            // synced version counts as regression above).
            if local_changed {
                Decision::Upload {
                    base_version: entry.version,
                }
            } else {
                Decision::TrashLocal
            }
        }
        Some(_) => match (local_changed, hub_changed) {
            (true, false) => Decision::Upload {
                base_version: synced.version,
            },
            (false, _) => Decision::Download,
            (true, true) => Decision::ConflictCopyThenDownload,
        },
    }
}

/// [`decide`] for a receive-only agent: the same, except that a local change
/// is never sent (see "Receive-only" in the module documentation).
pub fn decide_receive_only(
    local: Option<&LocalFile>,
    synced: Option<&SyncedFile>,
    remote: Option<&Entry>,
) -> Decision {
    match decide(local, synced, remote) {
        Decision::ConflictCopyThenDownload => Decision::SetAsideThenDownload,
        Decision::Upload { .. } => {
            let hub_live = remote.is_some_and(|entry| !entry.deleted);
            if synced.is_some() && !hub_live {
                // The hub deleted or forgot what was synced; the local
                // version stays, as a file the hub does not have. Keeping
                // the record would show a hub change that never applies.
                Decision::Forget
            } else {
                Decision::Nothing
            }
        }
        Decision::DeleteRemote { .. } => Decision::Nothing,
        other => other,
    }
}

/// The decision for one path in `direction`.
pub fn decide_in(
    direction: Direction,
    local: Option<&LocalFile>,
    synced: Option<&SyncedFile>,
    remote: Option<&Entry>,
) -> Decision {
    match direction {
        Direction::SendReceive => decide(local, synced, remote),
        Direction::ReceiveOnly => decide_receive_only(local, synced, remote),
    }
}

/// Decides every path and returns the decisions that do something, in the
/// order they should run:
///
/// 1. everything except removals (`Upload`, `Download`,
///    `ConflictCopyThenDownload`, `SetAsideThenDownload`, `Record`,
///    `Forget`), by path ascending, so
///    a parent directory is created before its children;
/// 2. then removals (`DeleteRemote`, `TrashLocal`), by path descending, so
///    children are deleted or trashed before their parent directory.
///
/// Paths sort byte for byte, so a parent (`a`) always sorts before its
/// children (`a/b`). `Nothing`s are dropped.
pub fn decide_all<'a>(
    paths: impl IntoIterator<
        Item = (
            &'a SyncPath,
            Option<&'a LocalFile>,
            Option<&'a SyncedFile>,
            Option<&'a Entry>,
        ),
    >,
    direction: Direction,
) -> Vec<(SyncPath, Decision)> {
    let mut decisions: Vec<(SyncPath, Decision)> = paths
        .into_iter()
        .filter_map(|(path, local, synced, remote)| {
            match decide_in(direction, local, synced, remote) {
                Decision::Nothing => None,
                decision => Some((path.clone(), decision)),
            }
        })
        .collect();
    decisions.sort_by(|(a_path, a), (b_path, b)| order(a_path, *a, b_path, *b));
    decisions
}

fn order(a_path: &SyncPath, a: Decision, b_path: &SyncPath, b: Decision) -> Ordering {
    match (a.is_removal(), b.is_removal()) {
        (false, true) => Ordering::Less,
        (true, false) => Ordering::Greater,
        (false, false) => a_path.cmp(b_path),
        (true, true) => b_path.cmp(a_path),
    }
}

#[cfg(test)]
mod tests {
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

    fn up(base_version: u64) -> Decision {
        Decision::Upload { base_version }
    }

    fn del(base_version: u64) -> Decision {
        Decision::DeleteRemote { base_version }
    }

    type Case = (
        &'static str,
        Option<LocalFile>,
        Option<SyncedFile>,
        Option<Entry>,
        Decision,
    );

    // One row per case; kept on single lines so the table reads as a table.
    #[rustfmt::skip]
    fn cases() -> Vec<Case> {
        use Decision::*;
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
            let got = decide(local.as_ref(), synced.as_ref(), remote.as_ref());
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
        type Row = (
            SyncPath,
            Option<LocalFile>,
            Option<SyncedFile>,
            Option<Entry>,
        );
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
        let decided = decide_all(
            rows.iter()
                .map(|(p, l, s, r)| (p, l.as_ref(), s.as_ref(), r.as_ref())),
            Direction::SendReceive,
        );
        let got: Vec<(&str, Decision)> = decided.iter().map(|(p, d)| (p.as_str(), *d)).collect();
        assert_eq!(
            got,
            vec![
                ("both", Decision::Forget),
                ("new", Decision::Download),
                ("new/sub", Decision::Download),
                ("new/sub/f", Decision::Download),
                ("rec", Decision::Record),
                ("up", Decision::Upload { base_version: 0 }),
                ("up/f", Decision::Upload { base_version: 0 }),
                ("old/x.txt", Decision::TrashLocal),
                ("old/x", Decision::TrashLocal),
                ("old", Decision::TrashLocal),
                ("gone/f", Decision::DeleteRemote { base_version: 1 }),
                ("gone", Decision::DeleteRemote { base_version: 1 }),
            ]
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
    fn receive_only_changes() -> Vec<(&'static str, Decision)> {
        use Decision::*;
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
            let got = decide_receive_only(local.as_ref(), synced.as_ref(), remote.as_ref());
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
            assert_eq!(same, got, "{name}");
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
                    assert!(!got.writes_to_hub(), "{l:?} {s:?} {r:?}: {got:?}");
                    // The hub's side is still applied wherever it changed.
                    let both_ways = decide(l, s, r);
                    if !both_ways.writes_to_hub() {
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
        let decided = decide_all(
            rows.iter()
                .map(|(p, l, s, r)| (p, l.as_ref(), s.as_ref(), r.as_ref())),
            Direction::ReceiveOnly,
        );
        let got: Vec<(&str, Decision)> = decided.iter().map(|(p, d)| (p.as_str(), *d)).collect();
        assert_eq!(
            got,
            vec![
                ("both.txt", Decision::SetAsideThenDownload),
                ("incoming.txt", Decision::Download),
            ]
        );
    }
}
