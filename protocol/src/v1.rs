//! The v1 API used by agents: change feed, chunks, commits, history, and the
//! WebSocket frames. See `protocol/README.md` for the exchange itself.

use serde::{Deserialize, Serialize};

use crate::chunking::{ChunkListError, ChunkRef, check_chunk_list};
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

/// Why an entry received from a hub cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("{path}: a live file without a sha256")]
    FileWithoutDigest { path: SyncPath },
    #[error("{path}: a tombstone that carries a sha256 or a size")]
    TombstoneWithContent { path: SyncPath },
    #[error("{path}: a directory that carries content")]
    DirWithContent { path: SyncPath },
    #[error("{path}: version 0 or seq 0; both start at 1")]
    ZeroVersion { path: SyncPath },
    #[error("{path}: {source}")]
    Chunks {
        path: SyncPath,
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
    /// The hub's identity: random, made once with its database. A different
    /// identity at the same URL means another hub (or one restored from a
    /// backup), whose seqs say nothing about what an agent synced before.
    #[serde(default)]
    pub hub_id: String,
}

/// `GET /v1/whoami`: who the presented token is, so an agent knows before
/// its first write whether it may send changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoAmI {
    /// The token's name; `None` when the hub runs with `--no-auth`.
    pub token: Option<String>,
    pub scope: Scope,
    pub hub_id: String,
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Read everything; change nothing (a receive-only agent).
    Read,
    /// Read and change everything.
    Write,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            _ => None,
        }
    }
}

/// Prefix of every token the hub issues, so secret scanners can spot leaked ones.
pub const TOKEN_PREFIX: &str = "sft_";

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

/// `GET /v1/history?path=P[&limit=N][&before=V | &after=V]`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PathQuery {
    pub path: SyncPath,
    /// Page size, 1 to [`HISTORY_MAX_LIMIT`]; default [`HISTORY_DEFAULT_LIMIT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Only versions below this one: the newest `limit` of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
    /// Only versions above this one: the oldest `limit` of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryResponse {
    pub path: SyncPath,
    /// One page of versions, oldest first, tombstones included. Without
    /// `before` or `after`, the newest page.
    pub versions: Vec<Entry>,
    /// More versions lie beyond this page in the direction paged: older ones
    /// (no cursor, or `before`; ask again with `before` = the first version
    /// here) or newer ones (`after`; ask again with `after` = the last).
    /// Absent from hubs older than paging, which always sent every version.
    #[serde(default)]
    pub more: bool,
}

/// Versions per `/v1/history` page unless `limit` says otherwise.
pub const HISTORY_DEFAULT_LIMIT: u32 = 1_000;
/// The largest `limit` `/v1/history` accepts.
pub const HISTORY_MAX_LIMIT: u32 = 10_000;

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
    Hello {
        head: u64,
        /// The hub's identity (see [`ChangesResponse::hub_id`]); empty from
        /// hubs older than the field.
        #[serde(default)]
        hub_id: String,
    },
    /// A committed change, in seq order.
    Change(Entry),
}

/// Why a WebSocket frame or a change-feed page from a hub cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// Not JSON of the expected shape (this includes a path that breaks the
    /// path rules, and an unknown frame type).
    #[error("not a valid hub message: {0}")]
    Malformed(#[source] serde_json::Error),
    /// Well-formed, but an entry in it fails [`Entry::validate`].
    #[error("the hub sent an unusable entry: {0}")]
    Entry(#[from] EntryError),
}

/// Decodes one WebSocket text frame from a hub and validates the entry a
/// `change` frame carries. What an agent receives goes through here (or
/// [`decode_changes`] and [`Entry::validate`]) before it acts on it.
pub fn decode_ws_frame(text: &str) -> Result<WsFrame, FrameError> {
    let frame: WsFrame = serde_json::from_str(text).map_err(FrameError::Malformed)?;
    if let WsFrame::Change(entry) = &frame {
        entry.validate()?;
    }
    Ok(frame)
}

/// Decodes a `GET /v1/changes` answer. Its entries are not validated here:
/// a client checks each with [`Entry::validate`] before acting on it and
/// skips (and reports) the unusable ones, so one bad entry cannot stop the
/// rest of the feed. A page that is not of the expected shape (including a
/// path that breaks the path rules) is refused whole.
pub fn decode_changes(bytes: &[u8]) -> Result<ChangesResponse, FrameError> {
    serde_json::from_slice(bytes).map_err(FrameError::Malformed)
}

/// WebSocket close code the hub uses when a client fell too far behind; the
/// client catches up through `/v1/changes` and reconnects.
pub const WS_CLOSE_LAGGED: u16 = 4000;
/// WebSocket close code the hub uses when the token the socket was opened
/// with is revoked (the reason says so); the client must not reconnect with
/// the same token.
pub const WS_CLOSE_REVOKED: u16 = 4001;
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
    /// 401: no token, or an unknown or revoked one.
    Unauthorized,
    /// 403: the token may not do this (a read-only token on a change), or a
    /// cross-site WebSocket, or a foreign `Host` under `--no-auth`.
    Forbidden,
    /// 507: the chunk store reached `--max-store-bytes`.
    InsufficientStorage,
    /// 503 with `Retry-After`: too many connections or WebSocket clients.
    Busy,
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
        let hello = serde_json::to_string(&WsFrame::Hello {
            head: 3,
            hub_id: "h".into(),
        })
        .unwrap();
        assert_eq!(hello, r#"{"type":"hello","head":3,"hub_id":"h"}"#);
        let old: WsFrame = serde_json::from_str(r#"{"type":"hello","head":3}"#).unwrap();
        assert_eq!(
            old,
            WsFrame::Hello {
                head: 3,
                hub_id: String::new()
            }
        );
    }

    #[test]
    fn decoding_refuses_malformed_and_unusable_entries() {
        let sha = Sha256Hex::empty();
        let good = format!(
            r#"{{"path":"a","kind":"file","version":1,"seq":1,"sha256":"{sha}","size":0,"mtime_ns":0,"executable":false,"deleted":false,"origin":"o","committed_ms":0}}"#
        );
        let tombstone_with_sha = good.replace(r#""deleted":false"#, r#""deleted":true"#);
        let frame = |entry: &str| format!(r#"{{"type":"change",{}"#, &entry[1..]);
        assert!(matches!(
            decode_ws_frame(&frame(&good)),
            Ok(WsFrame::Change(_))
        ));
        assert!(matches!(
            decode_ws_frame(&frame(&tombstone_with_sha)),
            Err(FrameError::Entry(EntryError::TombstoneWithContent { .. }))
        ));
        for bad in ["", "{", r#"{"type":"bye"}"#, r#"{"type":"hello"}"#, "[1]"] {
            assert!(
                matches!(decode_ws_frame(bad), Err(FrameError::Malformed(_))),
                "{bad:?}"
            );
        }
        let bad_path = frame(&good).replace(r#""path":"a""#, r#""path":".SF/x""#);
        let err = decode_ws_frame(&bad_path).unwrap_err();
        assert!(err.to_string().contains("invalid path"), "{err}");
        let page = |entries: &[&str]| format!(r#"{{"changes":[{}],"head":5}}"#, entries.join(","));
        let ok = decode_changes(page(&[&good, &good]).as_bytes()).unwrap();
        assert_eq!((ok.changes.len(), ok.head, ok.hub_id.as_str()), (2, 5, ""));
        // An unusable entry does not refuse its page: it is judged alone.
        let mixed = decode_changes(page(&[&good, &tombstone_with_sha]).as_bytes()).unwrap();
        let verdicts: Vec<bool> = mixed.changes.iter().map(|e| e.validate().is_ok()).collect();
        assert_eq!(verdicts, [true, false]);
        assert!(matches!(
            decode_changes(b"\xff"),
            Err(FrameError::Malformed(_))
        ));
    }
}
