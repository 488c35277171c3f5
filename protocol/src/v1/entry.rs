//! One committed version of one path ([`Entry`]), as the change feed, the
//! WebSocket and commit answers carry it, and the checks a client makes
//! before it acts on one ([`Entry::validate`]).

use serde::{Deserialize, Serialize};

use crate::chunking::{ChunkListError, ChunkRef, check_chunk_list};
use crate::{Sha256Hex, SyncPath};

/// Whether an entry is a regular file or a directory (so empty directories
/// sync too). A directory carries no content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// `"file"`: a regular file; its content is the chunks that concatenate
    /// to its `sha256`. The default when a commit leaves `kind` out.
    #[default]
    File,
    /// `"dir"`: a folder. Always `size` 0, no chunks and the empty digest;
    /// it exists on the hub only when committed (files need no dir entries
    /// for their ancestors).
    Dir,
}

impl EntryKind {
    /// The wire spelling, `"file"` or `"dir"`, as serde writes it; also what
    /// the hub's database and the agent's state store.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Dir => "dir",
        }
    }

    /// The inverse of [`EntryKind::as_str`]: exact, lower-case spellings
    /// only; `None` for anything else.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "file" => Some(EntryKind::File),
            "dir" => Some(EntryKind::Dir),
            _ => None,
        }
    }
}

/// One committed version of one path: what the change feed, the WebSocket
/// and commit responses carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The path this version belongs to; checked against the path rules when
    /// decoded.
    pub path: SyncPath,
    /// File or folder. A tombstone keeps the kind of the version it deleted.
    pub kind: EntryKind,
    /// Per-path version, starting at 1; a delete is a version too.
    pub version: u64,
    /// Hub-wide commit sequence number, strictly increasing, without gaps.
    pub seq: u64,
    /// Content digest; `None` for a tombstone. Directories carry the empty digest.
    pub sha256: Option<Sha256Hex>,
    /// Content length in bytes; 0 for directories and tombstones.
    pub size: u64,
    /// Modification time the writer reported, in nanoseconds since the epoch
    /// (negative before 1970). Legacy uploads record the hub's receive time;
    /// a tombstone keeps the deleted version's value. Never a reason to sync
    /// on its own (see [`Entry::same_content`]).
    pub mtime_ns: i64,
    /// The file's executable bit (any of the Unix `x` bits). Always `false`
    /// for directories and tombstones.
    pub executable: bool,
    /// A tombstone: the path was deleted at this version.
    pub deleted: bool,
    /// Who made the change: an agent's name, `legacy` (the legacy API),
    /// `hub` (a restore without an origin) or `unknown` (a commit or delete
    /// without one).
    pub origin: String,
    /// When the hub committed it, in milliseconds since the epoch.
    pub committed_ms: i64,
    /// The chunk list, present only where asked for (`?chunks=true`) and in
    /// commit responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks: Option<Vec<ChunkRef>>,
}

impl Entry {
    /// True when `self` and `other` hold the same content and metadata that
    /// matters for sync (mtime alone does not make a change).
    pub fn same_content(&self, other: &Entry) -> bool {
        self.kind == other.kind
            && self.deleted == other.deleted
            && self.sha256 == other.sha256
            && self.executable == other.executable
    }
}

/// Why an entry received from a hub cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// `kind` is `file`, not deleted, but `sha256` is `null`: there is no
    /// content to fetch or compare.
    #[error("{path}: a live file without a sha256")]
    FileWithoutDigest {
        /// The entry's path.
        path: SyncPath,
    },
    /// `deleted` is true but the entry still has a `sha256` or a non-zero
    /// `size`.
    #[error("{path}: a tombstone that carries a sha256 or a size")]
    TombstoneWithContent {
        /// The entry's path.
        path: SyncPath,
    },
    /// A live directory with a non-zero `size`, chunks, or a digest other
    /// than the empty one.
    #[error("{path}: a directory that carries content")]
    DirWithContent {
        /// The entry's path.
        path: SyncPath,
    },
    /// `version` or `seq` is 0; the hub numbers both from 1, so 0 would
    /// break "resume after the last applied seq".
    #[error("{path}: version 0 or seq 0; both start at 1")]
    ZeroVersion {
        /// The entry's path.
        path: SyncPath,
    },
    /// The chunk list cannot be this protocol's chunking of `size` bytes
    /// (see [`check_chunk_list`]).
    #[error("{path}: {source}")]
    Chunks {
        /// The entry's path.
        path: SyncPath,
        /// Which bound the list breaks.
        #[source]
        source: ChunkListError,
    },
}

impl Entry {
    /// Checks what the types cannot: a live file has a digest, a directory
    /// and a tombstone carry no content, and a chunk list (when present) is
    /// within the chunking bounds and sums to the size. An agent calls this
    /// on every entry before acting on it.
    pub fn validate(&self) -> Result<(), EntryError> {
        let path = || self.path.clone();
        if self.version == 0 || self.seq == 0 {
            return Err(EntryError::ZeroVersion { path: path() });
        }
        if self.deleted {
            if self.sha256.is_some() || self.size != 0 {
                return Err(EntryError::TombstoneWithContent { path: path() });
            }
            return Ok(());
        }
        match self.kind {
            EntryKind::Dir => {
                let empty = self.sha256.is_none_or(|sha| sha == Sha256Hex::empty());
                if self.size != 0 || !empty || self.chunks.as_ref().is_some_and(|c| !c.is_empty()) {
                    return Err(EntryError::DirWithContent { path: path() });
                }
            }
            EntryKind::File => {
                if self.sha256.is_none() {
                    return Err(EntryError::FileWithoutDigest { path: path() });
                }
                if let Some(chunks) = &self.chunks {
                    check_chunk_list(chunks, self.size).map_err(|source| EntryError::Chunks {
                        path: path(),
                        source,
                    })?;
                }
            }
        }
        Ok(())
    }
}
