//! The v1 API used by agents: change feed, chunks, commits, history, and the
//! WebSocket frames. See `protocol/README.md` for the exchange itself.

//!
//! Layout: `batch` holds the many-changes-per-request routes and the chunk
//! pack framing; `browse` the routes the hub's web page uses (listing,
//! search, deleted files, conflicts, tree-shaped changes, its session); `entry` holds what a committed version is and how a client
//! checks one; `ws` the WebSocket frames and their decoding; this file the
//! requests and answers of each route, and the error body.

use serde::{Deserialize, Serialize};

use crate::chunking::ChunkRef;
use crate::{Sha256Hex, SyncPath};

mod batch;
mod browse;
mod entry;
mod ws;

pub use batch::{
    BATCH_MAX_OPS, BatchOp, BatchOutcome, BatchRequest, BatchResponse, FETCH_MAX_CHUNKS,
    FetchChunksRequest, PACK_HEADER_LEN, PACK_MAX_CHUNKS, PackError, PackResponse,
    decode_pack_header, encode_pack_header,
};

pub use browse::{
    ACTIVITY_RECENT, ActivityResponse, CONFLICTS_MAX, Conflict, ConflictsResponse, ConnectedClient,
    Deleted, DeletedQuery, DeletedResponse, Keep, LIST_DEFAULT_LIMIT, LIST_MAX_LIMIT, ListQuery,
    ListResponse, Listed, MoveRequest, MoveResponse, RemoveRequest, RemoveResponse, ResolveRequest,
    ResolveResponse, SearchQuery, SearchResponse, SessionInfo, SessionRequest, UploadQuery,
    UploadResponse, WEB_ORIGIN,
};
pub use entry::{Entry, EntryError, EntryKind};
pub use ws::{
    FrameError, WS_CLOSE_LAGGED, WS_CLOSE_REVOKED, WS_MAX_LAG, WS_MAX_WANTED, WS_MAX_WANTED_FILES,
    WantedChunk, WantedFile, WsFrame, decode_changes, decode_ws_frame,
};

/// `GET /v1/changes?since=SEQ&limit=N&chunks=BOOL`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangesQuery {
    /// Only versions with a seq above this one: the last seq the client
    /// applied (0, the default, for everything).
    #[serde(default)]
    pub since: u64,
    /// Entries per page, 1 to [`CHANGES_MAX_LIMIT`]; default
    /// [`CHANGES_DEFAULT_LIMIT`]. Out of range is `400 invalid_request`,
    /// not clamped.
    #[serde(default)]
    pub limit: Option<u32>,
    /// Whether every entry carries its chunk list (`[]` for directories and
    /// tombstones); without it `chunks` is left out.
    #[serde(default)]
    pub chunks: bool,
}

/// Entries per `/v1/changes` page unless `limit` says otherwise.
pub const CHANGES_DEFAULT_LIMIT: u32 = 1000;
/// The largest `limit` `/v1/changes` accepts.
pub const CHANGES_MAX_LIMIT: u32 = 10_000;

/// The answer to `GET /v1/changes`: one page of the hub-wide change feed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangesResponse {
    /// Every version with a seq above `since`, in ascending seq order, at
    /// most `limit` of them: all versions of a path, tombstones included,
    /// not only the latest. Apply them in order.
    pub changes: Vec<Entry>,
    /// The newest seq, read after the page, so every seq up to it is
    /// committed; `changes` may stop earlier (the `limit`, or a commit
    /// between the two reads): page on from the last seq applied until it
    /// reaches `head`. 0 on an empty hub.
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
    /// What the token may do; always [`Scope::Write`] under `--no-auth`.
    pub scope: Scope,
    /// The hub's identity, as in [`ChangesResponse::hub_id`].
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
    /// The wire spelling, `"read"` or `"write"`, as serde writes it; also
    /// what the hub's token table stores.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
        }
    }

    /// The inverse of [`Scope::as_str`]: exact, lower-case spellings only;
    /// `None` for anything else.
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

/// `POST /v1/chunks/missing`: which of these chunks does the hub lack, so
/// only those are uploaded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MissingChunksRequest {
    /// The chunk names to ask about, at most [`MISSING_CHUNKS_MAX`]; more is
    /// `400 invalid_request`. Asking about a chunk the hub holds also keeps
    /// it from garbage collection for another `--chunk-grace`.
    pub chunks: Vec<Sha256Hex>,
}

/// The answer to `POST /v1/chunks/missing`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MissingChunksResponse {
    /// The asked-about hashes the hub does not hold, in request order;
    /// empty when it holds them all.
    pub missing: Vec<Sha256Hex>,
}

/// At most this many hashes per `/v1/chunks/missing` request.
pub const MISSING_CHUNKS_MAX: usize = 100_000;

/// `POST /v1/commit`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommitRequest {
    /// The path to write a new version of.
    pub path: SyncPath,
    /// File or folder; [`EntryKind::File`] when left out.
    #[serde(default)]
    pub kind: EntryKind,
    /// The version the writer last saw; 0 when the path does not exist or is
    /// a tombstone.
    pub base_version: u64,
    /// Digest of the whole content, which the chunks must concatenate to;
    /// the empty digest for a directory.
    pub sha256: Sha256Hex,
    /// Content length in bytes, at most the hub's `--max-file-size`; 0 for a
    /// directory.
    pub size: u64,
    /// Modification time in nanoseconds since the epoch; 0 when left out.
    #[serde(default)]
    pub mtime_ns: i64,
    /// The executable bit; stored as `false` for a directory.
    #[serde(default)]
    pub executable: bool,
    /// The content's chunks in order, each already uploaded; `[]` (the
    /// default) for an empty file and for a directory.
    #[serde(default)]
    pub chunks: Vec<ChunkRef>,
    /// Who writes, usually the agent's name: trimmed, then 1 to 64 bytes
    /// without control characters. `"unknown"` when left out.
    #[serde(default = "unknown_origin")]
    pub origin: String,
}

/// `POST /v1/delete`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeleteRequest {
    /// The file or folder to write a tombstone for. A folder's contents are
    /// not touched: each is deleted with its own request.
    pub path: SyncPath,
    /// The version the writer last saw, matched as for a commit. On a path
    /// that is already a tombstone, 0 or the tombstone's version gives back
    /// that tombstone.
    pub base_version: u64,
    /// Who deletes; the same rules and default (`"unknown"`) as
    /// [`CommitRequest::origin`].
    #[serde(default = "unknown_origin")]
    pub origin: String,
}

/// `GET /v1/file?path=P&version=N`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileQuery {
    /// The file to read; a directory is `400 invalid_request`.
    pub path: SyncPath,
    /// Which version to read; the current one when left out. A version that
    /// does not exist or is a tombstone is `404 not_found`.
    #[serde(default)]
    pub version: Option<u64>,
}

/// `GET /v1/history?path=P[&limit=N][&before=V | &after=V]`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PathQuery {
    /// The path whose versions to list.
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

/// The answer to `GET /v1/history`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryResponse {
    /// The path asked about.
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
    /// The path to restore. No `base_version`: the restore goes on top of
    /// whatever is current, a tombstone included.
    pub path: SyncPath,
    /// The old version whose content becomes current again as a new
    /// version; it must hold content (a tombstone is `400 invalid_request`).
    pub version: u64,
    /// Who restores; the same rules as [`CommitRequest::origin`], but
    /// `"hub"` when left out.
    #[serde(default = "hub_origin")]
    pub origin: String,
}

/// `GET /healthz`, `GET /readyz`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HealthResponse {
    /// `"ok"` from `/healthz` (the process serves), `"ready"` from
    /// `/readyz` (the database answers and the store is writable). A probe
    /// that fails answers an [`ErrorBody`] with [`ErrorCode::NotReady`].
    pub status: String,
    /// `sqlite` or `postgres`: which back end this hub runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// `local` or `s3`: where this hub keeps chunks (from `/readyz`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// The hub's head; sent by hubs before token authentication, never by
    /// this one, whose probes are open to anyone and say nothing about the
    /// files. Kept so answers from either decode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<u64>,
}

/// Machine-readable error kinds, the `error` field of every error body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: malformed JSON or query, a missing or invalid field, a bad hash
    /// or `limit`, a dir commit with content, reading a directory as a file,
    /// restoring a tombstone, no `Content-Type: application/json`.
    InvalidRequest,
    /// 400: a path breaks the path rules ([`crate::PathError`]).
    InvalidPath,
    /// 404: no such path, version, chunk or route.
    NotFound,
    /// 409: `base_version` is not the path's current version; the body's
    /// `current` carries that entry (left out when the path never existed).
    Conflict,
    /// 409: the write would put an entry inside a live file, or replace a
    /// folder that still has live contents with a file.
    PathConflict,
    /// 400: a commit lists chunks the hub does not hold; the body's
    /// `missing` lists them.
    MissingChunks,
    /// 400: bytes do not hash to the name they were sent under, or chunk
    /// lengths or digests disagree with the commit.
    ContentMismatch,
    /// 413: a chunk over [`crate::chunking::MAX_CHUNK_SIZE`], a file over
    /// `--max-file-size`, or a JSON body over its route's limit.
    PayloadTooLarge,
    /// 416: a `Range` that starts at or past the end of the content (see
    /// [`crate::range::RangeRequest::Unsatisfiable`]).
    RangeNotSatisfiable,
    /// 503, worth retrying later: `/readyz` found the database or the
    /// content store unavailable, the hub is shutting down, or garbage
    /// collection removed part of a legacy upload while it was stored.
    NotReady,
    /// 500: a database or storage failure, or a panic in a handler; the
    /// hub keeps serving, and its log says why.
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

impl ErrorCode {
    /// The HTTP status a single-operation route answers with this code
    /// (`POST /v1/batch` carries refusals inside a `200` answer, without
    /// their status).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest
            | ErrorCode::InvalidPath
            | ErrorCode::MissingChunks
            | ErrorCode::ContentMismatch => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict | ErrorCode::PathConflict => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::RangeNotSatisfiable => 416,
            ErrorCode::Internal => 500,
            ErrorCode::NotReady | ErrorCode::Busy => 503,
            ErrorCode::InsufficientStorage => 507,
        }
    }
}

/// The JSON body of every 4xx and 5xx answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, for programs to match on.
    pub error: ErrorCode,
    /// What went wrong and what to do about it, for people; its wording is
    /// not part of the protocol.
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
        for bad in [
            "",
            "{",
            r#"{"type":"hello"}"#,
            "[1]",
            r#"{"kind":"change"}"#,
        ] {
            assert!(
                matches!(decode_ws_frame(bad), Err(FrameError::Malformed(_))),
                "{bad:?}"
            );
        }
        // A frame type from a newer hub is ignored, not an error.
        assert!(matches!(
            decode_ws_frame(r#"{"type":"bye","later":1}"#),
            Ok(WsFrame::Unknown)
        ));
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
