//! The three views of a path that sync decisions are made from: what is on
//! disk now ([`LocalFile`]), what was last synced ([`SyncedFile`]), and what
//! the hub holds now (`sf_protocol::v1::Entry`).

use std::collections::{BTreeMap, HashMap};

use sf_protocol::v1::{Entry, EntryKind};
use sf_protocol::{Sha256Hex, SyncPath};

/// A file or directory as the scan found it on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    pub kind: EntryKind,
    /// Content digest; directories carry the empty digest.
    pub sha256: Sha256Hex,
    pub size: u64,
    pub mtime_ns: i64,
    /// Inode number (0 where the platform has none): with size and mtime it
    /// tells whether a file may have changed without re-hashing it.
    pub inode: u64,
    pub executable: bool,
}

/// A path as it was when the folder and the hub last agreed on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncedFile {
    pub kind: EntryKind,
    pub sha256: Sha256Hex,
    pub size: u64,
    pub mtime_ns: i64,
    pub inode: u64,
    pub executable: bool,
    /// The hub version this content was synced at.
    pub version: u64,
}

impl SyncedFile {
    /// Whether stat data is unchanged, so the recorded hash can be trusted
    /// without reading the file again.
    pub fn stat_unchanged(&self, size: u64, mtime_ns: i64, inode: u64) -> bool {
        self.size == size && self.mtime_ns == mtime_ns && self.inode == inode
    }
}

/// The three views of a batch of paths: on disk now, last synced, on the
/// hub now.
#[derive(Debug, Default)]
pub(crate) struct Views {
    pub(crate) local: BTreeMap<SyncPath, LocalFile>,
    pub(crate) synced: HashMap<SyncPath, SyncedFile>,
    pub(crate) remote: HashMap<SyncPath, Entry>,
}

impl Views {
    /// `path` with its three views, as [`crate::reconcile::decide_all`]
    /// takes them.
    pub(crate) fn of<'a>(
        &'a self,
        path: &'a SyncPath,
    ) -> (
        &'a SyncPath,
        Option<&'a LocalFile>,
        Option<&'a SyncedFile>,
        Option<&'a Entry>,
    ) {
        (
            path,
            self.local.get(path),
            self.synced.get(path),
            self.remote.get(path),
        )
    }

    /// Whether `path` is a directory, for ignore rules: as on disk, else as
    /// on the hub, else as last synced.
    pub(crate) fn is_dir(&self, path: &SyncPath) -> bool {
        let kind = self
            .local
            .get(path)
            .map(|l| l.kind)
            .or_else(|| self.remote.get(path).map(|e| e.kind))
            .or_else(|| self.synced.get(path).map(|s| s.kind));
        kind == Some(EntryKind::Dir)
    }

    /// Whether a walk must look inside `path`: a directory on disk, synced
    /// or live on the hub.
    pub(crate) fn descends(&self, path: &SyncPath) -> bool {
        self.local
            .get(path)
            .is_some_and(|l| l.kind == EntryKind::Dir)
            || self
                .synced
                .get(path)
                .is_some_and(|s| s.kind == EntryKind::Dir)
            || self
                .remote
                .get(path)
                .is_some_and(|e| e.kind == EntryKind::Dir && !e.deleted)
    }
}
