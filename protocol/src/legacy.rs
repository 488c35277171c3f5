//! The original REST API (`/index`, `/download`, `/upload`, `/delete`,
//! `/logs`), kept byte-compatible so the first Python client keeps working.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Sha256Hex, SyncPath};

/// Header on `POST /upload`: the byte length of the JSON metadata that
/// precedes the file's bytes in the body.
pub const META_LENGTH_HEADER: &str = "x-meta-length";
/// The origin recorded for changes made through this API.
pub const LEGACY_ORIGIN: &str = "legacy";

/// `GET /index`: live files only.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexResponse {
    pub index: BTreeMap<String, IndexEntry>,
    /// Hub time of the answer, in seconds since the epoch.
    pub ts: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub sha: Sha256Hex,
    /// Seconds since the epoch.
    pub mtime: f64,
    pub version: u64,
}

/// `GET /download?path=P`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DownloadQuery {
    pub path: SyncPath,
}

/// The JSON part at the start of a `POST /upload` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadMeta {
    pub path: SyncPath,
    #[serde(default)]
    pub base_sha: Option<Sha256Hex>,
}

/// Answer to `POST /upload`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadResponse {
    pub ok: bool,
    pub version: u64,
    /// The path's current content; `null` when a stale upload met a tombstone.
    pub sha: Option<Sha256Hex>,
    /// Set when the upload became a conflict copy: the copy's path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<String>,
    /// Set when the upload was recognised as an old content and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale: Option<bool>,
}

/// `POST /delete`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeleteRequest {
    pub path: SyncPath,
}

/// `{"ok": true}`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OkResponse {
    pub ok: bool,
}

/// `GET /logs?limit=N&path=P`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogsQuery {
    #[serde(default)]
    pub limit: Option<u32>,
    #[serde(default)]
    pub path: Option<SyncPath>,
}

pub const LOGS_DEFAULT_LIMIT: u32 = 50;
pub const LOGS_MAX_LIMIT: u32 = 1000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogsResponse {
    pub logs: Vec<LogEntry>,
}

/// One row of the audit table `files_log`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogEntry {
    pub id: i64,
    /// `upload`, `delete`, `conflict` or `restore`.
    pub action: String,
    pub path: String,
    pub version: u64,
    pub sha: Option<String>,
    /// RFC 3339, UTC.
    pub timestamp: String,
}
