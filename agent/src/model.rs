//! The three views of a path that sync decisions are made from: what is on
//! disk now ([`LocalFile`]), what was last synced ([`SyncedFile`]), and what
//! the hub holds now (`sf_protocol::v1::Entry`).

use sf_protocol::Sha256Hex;
use sf_protocol::v1::EntryKind;

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
    /// Whether the file on disk still holds what was synced (content, kind
    /// and executable bit; mtime alone is no change).
    pub fn matches(&self, local: &LocalFile) -> bool {
        self.kind == local.kind
            && self.sha256 == local.sha256
            && self.executable == local.executable
    }

    /// Whether stat data is unchanged, so the recorded hash can be trusted
    /// without reading the file again.
    pub fn stat_unchanged(&self, size: u64, mtime_ns: i64, inode: u64) -> bool {
        self.size == size && self.mtime_ns == mtime_ns && self.inode == inode
    }
}
