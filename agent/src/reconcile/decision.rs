//! What [`super::decide`] returns: a [`Decision`] that carries the views it
//! acts on (as mutagen's `Change{old, new}` carries its entries), so the
//! engine never looks them up again, and its [`Action`], the bare verb that
//! orders a batch and that the decision table is written in.

use sf_protocol::v1::{Entry, EntryKind};

use crate::model::{LocalFile, SyncedFile};

/// What to do with one path, holding what it is done with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Nothing to do.
    Nothing,
    /// Send `local` and commit it on top of the hub's `base_version`.
    Upload { local: LocalFile, base_version: u64 },
    /// Write the hub's `entry` at the path (file content or mkdir), in place
    /// of `replacing`, what is on disk there now (`None`: nothing); if that
    /// changed meanwhile, nothing is replaced.
    Download {
        entry: Entry,
        replacing: Option<LocalFile>,
    },
    /// Both sides changed to different content: rename `local` to a
    /// conflict copy (which is then uploaded as a new path), then download
    /// `remote` to the path.
    ConflictCopyThenDownload { local: LocalFile, remote: Entry },
    /// Deleted locally, unchanged on the hub: delete on the hub on top of
    /// the version of `synced`, what was last synced there.
    DeleteRemote { synced: SyncedFile },
    /// Deleted on the hub, unchanged locally: move `local` to the trash.
    TrashLocal { local: LocalFile },
    /// Both sides hold the same thing: record `local` as synced at `entry`'s
    /// version.
    Record { local: LocalFile, entry: Entry },
    /// Gone on both sides: forget the synced record.
    Forget,
    /// Receive-only: the hub's new version meets a local change. Rename
    /// `local` to a conflict copy that stays local (never uploaded), then
    /// download `remote` to the path.
    SetAsideThenDownload { local: LocalFile, remote: Entry },
}

/// The verb of a [`Decision`], without what it acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Action {
    Nothing,
    Upload { base_version: u64 },
    Download,
    ConflictCopyThenDownload,
    DeleteRemote { base_version: u64 },
    TrashLocal,
    Record,
    Forget,
    SetAsideThenDownload,
}

impl Decision {
    pub(crate) fn action(&self) -> Action {
        match self {
            Decision::Nothing => Action::Nothing,
            Decision::Upload { base_version, .. } => Action::Upload {
                base_version: *base_version,
            },
            Decision::Download { .. } => Action::Download,
            Decision::ConflictCopyThenDownload { .. } => Action::ConflictCopyThenDownload,
            Decision::DeleteRemote { synced } => Action::DeleteRemote {
                base_version: synced.version,
            },
            Decision::TrashLocal { .. } => Action::TrashLocal,
            Decision::Record { .. } => Action::Record,
            Decision::Forget => Action::Forget,
            Decision::SetAsideThenDownload { .. } => Action::SetAsideThenDownload,
        }
    }

    /// The file bytes carrying it out moves, for progress displays; `None`
    /// when it moves no file content.
    pub(crate) fn transfer_bytes(&self) -> Option<u64> {
        let file = |kind: EntryKind, size: u64| (kind == EntryKind::File).then_some(size);
        match self {
            Decision::Upload { local, .. } => file(local.kind, local.size),
            Decision::Download { entry, .. } => file(entry.kind, entry.size),
            // The local version is uploaded as a copy, the hub's downloaded.
            Decision::ConflictCopyThenDownload { local, remote } => file(remote.kind, remote.size)
                .map(|down| down + file(local.kind, local.size).unwrap_or(0)),
            // The copy stays local.
            Decision::SetAsideThenDownload { remote, .. } => file(remote.kind, remote.size),
            _ => None,
        }
    }
}

impl Action {
    /// Whether carrying it out changes anything on the hub.
    pub(crate) fn writes_to_hub(self) -> bool {
        matches!(
            self,
            Action::Upload { .. } | Action::DeleteRemote { .. } | Action::ConflictCopyThenDownload
        )
    }

    /// Whether it removes something (on the hub or on disk), so that it
    /// must run children first.
    pub(crate) fn is_removal(self) -> bool {
        matches!(self, Action::DeleteRemote { .. } | Action::TrashLocal)
    }
}

/// How many files `decisions` move and their bytes.
pub(crate) fn transfers<'a>(decisions: impl IntoIterator<Item = &'a Decision>) -> (u64, u64) {
    decisions
        .into_iter()
        .filter_map(Decision::transfer_bytes)
        .fold((0, 0), |(files, bytes), size| (files + 1, bytes + size))
}
