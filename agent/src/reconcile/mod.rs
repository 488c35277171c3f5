//! The agent's three-way sync decision: given what is on disk now, what was
//! last synced, and what the hub holds now, say what to do with one path.
//!
//! This module owns the *policy* only (mutagen's `Reconcile(ancestor, alpha,
//! beta)` idea): [`decide`] and [`decide_all`] are pure functions, with no
//! I/O and no async. Each [`Decision`] carries the views it acts on, so
//! the engine carries it out without looking anything up again.
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
//! ([`Action::writes_to_hub`] is false for all of them), and local changes
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

use sf_protocol::Sha256Hex;
use sf_protocol::SyncPath;
use sf_protocol::v1::{Entry, EntryKind};

use crate::model::{LocalFile, SyncedFile};

mod decision;

pub(crate) use decision::{Action, Decision, transfers};

/// Whether local changes are sent to the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Both ways (a token that may write).
    SendReceive,
    /// Only the hub's changes are applied; local ones stay local (a
    /// read-only token).
    ReceiveOnly,
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

fn upload(local: &LocalFile, base_version: u64) -> Decision {
    Decision::Upload {
        local: local.clone(),
        base_version,
    }
}

fn download(entry: &Entry, replacing: Option<&LocalFile>) -> Decision {
    Decision::Download {
        entry: entry.clone(),
        replacing: replacing.cloned(),
    }
}

fn conflict(local: &LocalFile, remote: &Entry) -> Decision {
    Decision::ConflictCopyThenDownload {
        local: local.clone(),
        remote: remote.clone(),
    }
}

/// The three-way decision for one path.
///
/// `local` is what is on disk now, `synced` what was last agreed with the hub,
/// `remote` the hub's current entry: `Some` with `deleted == true` is a
/// tombstone, `None` means the hub has no record of the path at all. See the
/// module documentation for the full table.
pub(crate) fn decide(
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
    if let (Some(l), Some(entry)) = (local, remote)
        && remote_content.is_some()
        && local_content == remote_content
    {
        return match synced {
            Some(s) if s.version == entry.version && synced_content == local_content => {
                Decision::Nothing
            }
            _ => Decision::Record {
                local: l.clone(),
                entry: entry.clone(),
            },
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
            (Some(l), None) => upload(l, 0),
            (Some(l), Some(entry)) if entry.deleted => upload(l, entry.version),
            (Some(l), Some(entry)) => conflict(l, entry),
            // Only the hub has it (live, or we would have returned above).
            (None, Some(entry)) => download(entry, None),
            (None, None) => Decision::Nothing,
        };
    };

    let Some(entry) = remote else {
        // The hub has no record although we synced the path: it lost state.
        // Never trash user files because a hub forgot them. (Local absent
        // was handled above as `Forget`.)
        return match local {
            Some(l) => upload(l, 0),
            None => Decision::Forget,
        };
    };

    let hub_regressed = entry.version < synced.version
        || (entry.version == synced.version && remote_content != synced_content);
    if hub_regressed {
        // The hub went back in time: what we synced is no longer there.
        // Put the local file back on top of whatever the hub has now; if the
        // local file is gone, take what the hub has (re-creating is safe).
        return match local {
            Some(l) => upload(l, entry.version),
            None => download(entry, None),
        };
    }
    // Not regressed: either the hub is exactly at the synced version and
    // content (unchanged), or it is newer.
    let hub_changed = entry.version > synced.version;
    let local_changed = local_content != synced_content;

    match local {
        None if hub_changed => {
            // Local delete, hub modified (live, or the tombstone case would
            // have been handled above): the hub's change wins.
            download(entry, None)
        }
        None => Decision::DeleteRemote {
            synced: synced.clone(),
        },
        // Hub delete (hub_changed is true: a tombstone at or below the
        // synced version counts as regression above).
        Some(l) if entry.deleted && local_changed => upload(l, entry.version),
        Some(l) if entry.deleted => Decision::TrashLocal { local: l.clone() },
        Some(l) => match (local_changed, hub_changed) {
            (true, false) => upload(l, synced.version),
            (false, _) => download(entry, Some(l)),
            (true, true) => conflict(l, entry),
        },
    }
}

/// [`decide`] for a receive-only agent: the same, except that a local change
/// is never sent (see "Receive-only" in the module documentation).
pub(crate) fn decide_receive_only(
    local: Option<&LocalFile>,
    synced: Option<&SyncedFile>,
    remote: Option<&Entry>,
) -> Decision {
    match decide(local, synced, remote) {
        Decision::ConflictCopyThenDownload { local, remote } => {
            Decision::SetAsideThenDownload { local, remote }
        }
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
pub(crate) fn decide_in(
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
///
/// Two decisions need the tree, when a file and a folder swapped places on
/// one side while the other side added something inside the folder:
/// - a local file that replaced a folder is not uploaded over it while the
///   hub has contents in that folder this agent is about to download (the
///   hub would refuse the file, and the download would find the file in
///   its way, for ever);
/// - a hub file that replaced a folder is not downloaded over the local
///   folder while something inside it is about to be uploaded (the hub
///   would refuse the upload inside a file, and the folder could not be
///   replaced while it holds it).
///
/// Either way the local side becomes a conflict copy (a folder with what
/// is in it) and the hub's side comes down, as when both sides changed one
/// file. And a folder deleted on the hub is not trashed while the hub
/// holds something live inside it that is on disk here (a file changed
/// here after the folder's delete, and sent): the folder is sent back.
pub(crate) fn decide_all<'a>(
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
    // Paths on disk that the hub holds live: a folder around one of them
    // is still in use on the hub, whatever its own entry says.
    let mut kept_live: Vec<SyncPath> = Vec::new();
    let marked: FolderOverwrites = paths
        .into_iter()
        .filter_map(|(path, local, synced, remote)| {
            if local.is_some() && remote.is_some_and(|r| !r.deleted) {
                kept_live.push(path.clone());
            }
            match decide_in(direction, local, synced, remote) {
                Decision::Nothing => None,
                // A file over a live hub folder, or a hub file over a local
                // folder: settled once every path's decision is known.
                upload @ Decision::Upload { .. }
                    if local.is_some_and(|l| l.kind == EntryKind::File)
                        && remote.is_some_and(|r| !r.deleted && r.kind == EntryKind::Dir) =>
                {
                    Some(((path.clone(), upload), remote.cloned()))
                }
                download @ Decision::Download { .. }
                    if local.is_some_and(|l| l.kind == EntryKind::Dir)
                        && remote.is_some_and(|r| r.kind == EntryKind::File) =>
                {
                    Some(((path.clone(), download), remote.cloned()))
                }
                trash @ Decision::TrashLocal { .. }
                    if local.is_some_and(|l| l.kind == EntryKind::Dir) =>
                {
                    Some(((path.clone(), trash), remote.cloned()))
                }
                decision => Some(((path.clone(), decision), None)),
            }
        })
        .collect();
    let mut decisions = marked.settle(&kept_live, direction);
    decisions.sort_by(|(a_path, a), (b_path, b)| order(a_path, a.action(), b_path, b.action()));
    decisions
}

/// Decisions of a tree, with the uploads of a file over a live hub folder
/// and the downloads of a file over a local folder marked by the hub's
/// entry, until [`FolderOverwrites::settle`].
struct FolderOverwrites(Vec<((SyncPath, Decision), Option<Entry>)>);

impl FromIterator<((SyncPath, Decision), Option<Entry>)> for FolderOverwrites {
    fn from_iter<I: IntoIterator<Item = ((SyncPath, Decision), Option<Entry>)>>(iter: I) -> Self {
        FolderOverwrites(iter.into_iter().collect())
    }
}

impl FolderOverwrites {
    /// Turns each marked upload into a conflict copy when something inside
    /// its folder is about to be downloaded, each marked download when
    /// something inside is about to be uploaded, and each marked trash of a
    /// folder into an upload when the hub holds something live inside it
    /// that stays here (see [`decide_all`]).
    fn settle(self, kept_live: &[SyncPath], direction: Direction) -> Vec<(SyncPath, Decision)> {
        let paths_doing = |wanted: fn(Action) -> bool| -> Vec<SyncPath> {
            self.0
                .iter()
                .filter(|((_, d), _)| wanted(d.action()))
                .map(|((p, _), _)| p.clone())
                .collect()
        };
        let downloading = paths_doing(|a| {
            matches!(
                a,
                Action::Download | Action::ConflictCopyThenDownload | Action::SetAsideThenDownload
            )
        });
        let uploading =
            paths_doing(|a| matches!(a, Action::Upload { .. } | Action::ConflictCopyThenDownload));
        let inside = |child: &SyncPath, folder: &SyncPath| {
            child
                .as_str()
                .strip_prefix(folder.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
        };
        self.0
            .into_iter()
            .map(|((path, decision), hub)| match (decision, hub) {
                (Decision::Upload { local, .. }, Some(folder))
                    if downloading.iter().any(|d| inside(d, &path)) =>
                {
                    (path, conflict(&local, &folder))
                }
                (
                    Decision::Download {
                        entry,
                        replacing: Some(folder),
                    },
                    Some(_),
                ) if uploading.iter().any(|u| inside(u, &path)) => {
                    (path, conflict(&folder, &entry))
                }
                // A folder deleted on the hub while something in it was
                // changed here and sent (now live inside a deleted folder):
                // trashing it could never finish; it is sent back instead.
                (Decision::TrashLocal { local }, Some(tombstone))
                    if direction == Direction::SendReceive
                        && kept_live.iter().any(|k| inside(k, &path)) =>
                {
                    (path, upload(&local, tombstone.version))
                }
                (decision, _) => (path, decision),
            })
            .collect()
    }
}

fn order(a_path: &SyncPath, a: Action, b_path: &SyncPath, b: Action) -> Ordering {
    match (a.is_removal(), b.is_removal()) {
        (false, true) => Ordering::Less,
        (true, false) => Ordering::Greater,
        (false, false) => a_path.cmp(b_path),
        (true, true) => b_path.cmp(a_path),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod model_tests;

#[cfg(test)]
mod plan_tests;

#[cfg(test)]
mod tree_model_tests;
