//! The v1 API used by agents: change feed, chunks, commits, history, and the
//! WebSocket frames. See `protocol/README.md` for the exchange itself.

use serde::{Deserialize, Serialize};

use crate::chunking::ChunkRef;
use crate::{Sha256Hex, SyncPath};

/// Whether an entry is a regular file or a directory (so empty directories
/// sync too). A directory carries no content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    #[default]
    File,
    Dir,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Dir => "dir",
        }
    }

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
    pub path: SyncPath,
    pub kind: EntryKind,
    /// Per-path version, starting at 1; a delete is a version too.
    pub version: u64,
    /// Hub-wide commit sequence number, strictly increasing, without gaps.
    pub seq: u64,
    /// Content digest; `None` for a tombstone. Directories carry the empty digest.
    pub sha256: Option<Sha256Hex>,
    pub size: u64,
    /// Modification time the writer reported, in nanoseconds since the epoch.
    pub mtime_ns: i64,
    pub executable: bool,
    /// A tombstone: the path was deleted at this version.
    pub deleted: bool,
    /// Who made the change: an agent's name, `legacy` or `hub`.
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

/// `GET /v1/changes?since=SEQ&limit=N&chunks=BOOL`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangesQuery {
    #[serde(default)]
    pub since: u64,
    #[serde(default)]
    pub limit: Option<u32>,
    #[serde(default)]
    pub chunks: bool,
}

/// Default and upper bound for `limit` in `/v1/changes`.
pub const CHANGES_DEFAULT_LIMIT: u32 = 1000;
pub const CHANGES_MAX_LIMIT: u32 = 10_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangesResponse {
    pub changes: Vec<Entry>,
    /// The newest seq at the time of the answer; `changes` may stop earlier
    /// when `limit` was reached.
    pub head: u64,
}

/// `POST /v1/chunks/missing`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MissingChunksRequest {
    pub chunks: Vec<Sha256Hex>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MissingChunksResponse {
    pub missing: Vec<Sha256Hex>,
}

/// At most this many hashes per `/v1/chunks/missing` request.
pub const MISSING_CHUNKS_MAX: usize = 100_000;

/// `POST /v1/commit`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommitRequest {
    pub path: SyncPath,
    #[serde(default)]
    pub kind: EntryKind,
    /// The version the writer last saw; 0 when the path does not exist or is
    /// a tombstone.
    pub base_version: u64,
    pub sha256: Sha256Hex,
    pub size: u64,
    #[serde(default)]
    pub mtime_ns: i64,
    #[serde(default)]
    pub executable: bool,
    #[serde(default)]
    pub chunks: Vec<ChunkRef>,
    #[serde(default = "unknown_origin")]
    pub origin: String,
}

/// `POST /v1/delete`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeleteRequest {
    pub path: SyncPath,
    pub base_version: u64,
    #[serde(default = "unknown_origin")]
    pub origin: String,
}

/// `GET /v1/file?path=P&version=N`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileQuery {
    pub path: SyncPath,
    #[serde(default)]
    pub version: Option<u64>,
}

/// `GET /v1/history?path=P`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PathQuery {
    pub path: SyncPath,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryResponse {
    pub path: SyncPath,
    /// Every version, oldest first, tombstones included.
    pub versions: Vec<Entry>,
}

/// `POST /v1/restore`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreRequest {
    pub path: SyncPath,
    pub version: u64,
    #[serde(default = "hub_origin")]
    pub origin: String,
}

/// Frames the hub sends on `/v1/ws`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WsFrame {
    /// First frame: every change with a seq above `head` follows on this socket.
    Hello { head: u64 },
    /// A committed change, in seq order.
    Change(Entry),
}

/// WebSocket close code the hub uses when a client fell too far behind; the
/// client catches up through `/v1/changes` and reconnects.
pub const WS_CLOSE_LAGGED: u16 = 4000;
/// How many changes a WebSocket client may lag behind before it is closed.
pub const WS_MAX_LAG: usize = 4096;

/// `GET /healthz`, `GET /readyz`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HealthResponse {
    pub status: String,
    /// `sqlite` or `postgres`: which back end this hub runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<u64>,
}

/// Machine-readable error kinds, the `error` field of every error body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    InvalidPath,
    NotFound,
    Conflict,
    PathConflict,
    MissingChunks,
    ContentMismatch,
    PayloadTooLarge,
    RangeNotSatisfiable,
    NotReady,
    Internal,
}

/// The JSON body of every 4xx and 5xx answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorCode,
    pub detail: String,
    /// With `conflict`: the path's current entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<Entry>,
    /// With `missing_chunks`: the chunks the hub does not hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<Vec<Sha256Hex>>,
}

fn unknown_origin() -> String {
    "unknown".to_owned()
}

fn hub_origin() -> String {
    "hub".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_frames_are_flat_entries_with_a_type() {
        let entry = Entry {
            path: SyncPath::parse("a.txt").unwrap(),
            kind: EntryKind::File,
            version: 2,
            seq: 9,
            sha256: Some(Sha256Hex::empty()),
            size: 0,
            mtime_ns: 5,
            executable: false,
            deleted: false,
            origin: "laptop".into(),
            committed_ms: 1,
            chunks: None,
        };
        let json = serde_json::to_value(WsFrame::Change(entry.clone())).unwrap();
        assert_eq!(json["type"], "change");
        assert_eq!(json["path"], "a.txt");
        assert_eq!(json["seq"], 9);
        assert!(json.get("chunks").is_none());
        let back: WsFrame = serde_json::from_value(json).unwrap();
        assert_eq!(back, WsFrame::Change(entry));
        let hello = serde_json::to_string(&WsFrame::Hello { head: 3 }).unwrap();
        assert_eq!(hello, r#"{"type":"hello","head":3}"#);
    }
}
