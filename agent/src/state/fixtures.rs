//! What the state's tests share: a new folder's state, and records and
//! hub entries to put in it.

use sf_protocol::chunking::ChunkRef;
use sf_protocol::v1::{Entry, EntryKind};
use sf_protocol::{Sha256Hex, SyncPath};

use tempfile::TempDir;

use super::{State, StateError};
use crate::model::SyncedFile;

/// A new synced folder and the registry of folders synced before; both
/// removed when dropped.
pub(super) struct Dirs {
    pub(super) folder: TempDir,
    pub(super) registry: TempDir,
}

impl Dirs {
    /// Opens (or opens again) the folder's state, as the agent does.
    pub(super) async fn open(&self) -> Result<State, StateError> {
        State::open(self.folder.path(), self.registry.path()).await
    }
}

/// The state of a new folder, and the directories it lives in.
pub(super) async fn fresh() -> (Dirs, State) {
    let dirs = Dirs {
        folder: tempfile::tempdir().unwrap(),
        registry: tempfile::tempdir().unwrap(),
    };
    let state = dirs.open().await.unwrap();
    (dirs, state)
}

pub(super) fn file(version: u64) -> SyncedFile {
    SyncedFile {
        kind: EntryKind::File,
        sha256: Sha256Hex::empty(),
        size: 30,
        mtime_ns: 1,
        inode: 2,
        executable: false,
        version,
    }
}

pub(super) fn chunk(byte: u8, len: u64) -> ChunkRef {
    ChunkRef {
        hash: Sha256Hex::of(&[byte]),
        len,
    }
}

/// Version 1 of an empty file at `path` (a tombstone when `deleted`).
pub(super) fn empty_file_entry(path: &str, seq: u64, deleted: bool) -> Entry {
    Entry {
        path: SyncPath::parse(path).unwrap(),
        kind: EntryKind::File,
        version: 1,
        seq,
        sha256: (!deleted).then(Sha256Hex::empty),
        size: 0,
        mtime_ns: 0,
        executable: false,
        deleted,
        origin: "x".into(),
        committed_ms: 0,
        chunks: (!deleted).then(Vec::new),
    }
}
