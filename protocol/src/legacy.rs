//! The original REST API (`/index`, `/download`, `/upload`, `/delete`,
//! `/logs`), kept byte-compatible so the first Python client keeps working,
//! and the pure half of the `POST /upload` framing: reading `X-Meta-Length`
//! and decoding the metadata that precedes the file's bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{PathError, Sha256Hex, SyncPath};

/// Header on `POST /upload`: the byte length of the JSON metadata that
/// precedes the file's bytes in the body.
pub const META_LENGTH_HEADER: &str = "x-meta-length";
/// The longest `X-Meta-Length` accepted: metadata is a path and a sha, so
/// anything longer is refused before a byte of the body is read.
pub const MAX_META_LENGTH: u64 = 64 * 1024;
/// The origin recorded for changes made through this API.
pub const LEGACY_ORIGIN: &str = "legacy";

/// `GET /index`: live files only.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexResponse {
    /// Every live file, by path. Directories and tombstones are not listed.
    /// The keys are plain strings, not [`SyncPath`]s: this is what the
    /// original client reads, and the hub only ever writes valid paths.
    pub index: BTreeMap<String, IndexEntry>,
    /// Hub time of the answer, in seconds since the epoch.
    pub ts: f64,
}

/// One live file in `GET /index`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The current content's digest; the `base_sha` a client's next upload
    /// of this path sends.
    pub sha: Sha256Hex,
    /// The file's modification time, in seconds since the epoch (the v1
    /// `mtime_ns` divided by 10^9). For a legacy upload, when the hub
    /// received it: the original protocol carries no mtime.
    pub mtime: f64,
    /// The path's current version, as in the v1 API.
    pub version: u64,
}

/// `GET /download?path=P`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DownloadQuery {
    /// The live file to send whole; a directory, a tombstone or an unknown
    /// path is `404 not_found`.
    pub path: SyncPath,
}

/// The JSON part at the start of a `POST /upload` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadMeta {
    /// Where the bytes that follow go.
    pub path: SyncPath,
    /// The hub's sha the client last saw for `path` (its `GET /index`
    /// `sha`); `None` (`null` or left out) for a new file. A live path with
    /// another sha makes the upload a conflict copy. Not looked at when the
    /// path is absent or a tombstone.
    #[serde(default)]
    pub base_sha: Option<Sha256Hex>,
}

/// Why the start of a `POST /upload` cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadFramingError {
    /// No `X-Meta-Length` header.
    #[error(
        "missing X-Meta-Length header: it must give the byte length of the JSON metadata at \
         the start of the body"
    )]
    MissingMetaLength,
    /// `X-Meta-Length` is not a plain decimal from 1 to [`MAX_META_LENGTH`].
    #[error("X-Meta-Length must be a byte count from 1 to {MAX_META_LENGTH}")]
    BadMetaLength,
    /// The metadata is not JSON of the expected shape.
    #[error("the metadata is not valid upload JSON: {0}")]
    InvalidMeta(String),
    /// The metadata is well-formed but its path breaks the path rules.
    #[error("the metadata's path is refused: {0}")]
    InvalidPath(#[source] PathError),
}

/// Reads the `X-Meta-Length` header's raw value (`None` when absent): a
/// decimal byte count from 1 to [`MAX_META_LENGTH`], surrounding spaces
/// allowed. Never allocates more than the count it returns.
pub fn parse_meta_length(raw: Option<&[u8]>) -> Result<u64, UploadFramingError> {
    let raw = raw.ok_or(UploadFramingError::MissingMetaLength)?;
    let text = std::str::from_utf8(raw)
        .map_err(|_| UploadFramingError::BadMetaLength)?
        .trim();
    // Digits only: `parse` would also take a leading `+`.
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UploadFramingError::BadMetaLength);
    }
    text.parse::<u64>()
        .ok()
        .filter(|n| (1..=MAX_META_LENGTH).contains(n))
        .ok_or(UploadFramingError::BadMetaLength)
}

/// Decodes the metadata bytes of an upload. A path that breaks the rules is
/// told apart from malformed JSON, so the hub can answer `invalid_path`.
pub fn decode_upload_meta(bytes: &[u8]) -> Result<UploadMeta, UploadFramingError> {
    /// The same shape with the path unchecked, so its error stays typed.
    #[derive(Deserialize)]
    struct RawMeta {
        path: String,
        #[serde(default)]
        base_sha: Option<Sha256Hex>,
    }
    let invalid = |err: serde_json::Error| UploadFramingError::InvalidMeta(err.to_string());
    // Through a `Value` first: decoding straight into the struct would skip
    // unknown fields without checking them (even invalid UTF-8), and then a
    // path error would be reported for bytes that are not JSON at all.
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(invalid)?;
    let raw = RawMeta::deserialize(value).map_err(invalid)?;
    let path = SyncPath::parse(raw.path).map_err(UploadFramingError::InvalidPath)?;
    Ok(UploadMeta {
        path,
        base_sha: raw.base_sha,
    })
}

/// Answer to `POST /upload`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadResponse {
    /// Always `true`; failures answer an error body instead.
    pub ok: bool,
    /// The path's current version after the upload: the new one, or (for a
    /// conflict copy, a stale or an unchanged upload) the one already there.
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
    /// The file or folder to tombstone, with no base check; an unknown path
    /// is `404 not_found`, a tombstone is left as it is.
    pub path: SyncPath,
}

/// `{"ok": true}`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OkResponse {
    /// Always `true`; failures answer an error body instead.
    pub ok: bool,
}

/// `GET /logs?limit=N&path=P`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogsQuery {
    /// Rows to return, 1 to [`LOGS_MAX_LIMIT`]; default
    /// [`LOGS_DEFAULT_LIMIT`]. Out of range is `400 invalid_request`, not
    /// clamped.
    #[serde(default)]
    pub limit: Option<u32>,
    /// Only the rows for exactly this path.
    #[serde(default)]
    pub path: Option<SyncPath>,
}

/// Rows per `GET /logs` unless `limit` says otherwise.
pub const LOGS_DEFAULT_LIMIT: u32 = 50;
/// The largest `limit` `GET /logs` accepts.
pub const LOGS_MAX_LIMIT: u32 = 1000;

/// The answer to `GET /logs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogsResponse {
    /// Audit rows, newest first.
    pub logs: Vec<LogEntry>,
}

/// One row of the audit table `files_log`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogEntry {
    /// The row's id; `GET /logs` lists the largest (newest) first.
    pub id: i64,
    /// `upload`, `delete`, `conflict` or `restore`. v1 commits, directory
    /// commits included, are `upload`.
    pub action: String,
    /// The path changed (for `conflict`, the copy's path).
    pub path: String,
    /// The path's version this change made.
    pub version: u64,
    /// The new content's digest, in hex; `None` for a delete.
    pub sha: Option<String>,
    /// RFC 3339, UTC.
    pub timestamp: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_length_bounds() {
        assert_eq!(parse_meta_length(Some(b"41")), Ok(41));
        assert_eq!(parse_meta_length(Some(b" 1 ")), Ok(1));
        assert_eq!(parse_meta_length(Some(b"65536")), Ok(MAX_META_LENGTH));
        assert_eq!(
            parse_meta_length(None),
            Err(UploadFramingError::MissingMetaLength)
        );
        for bad in [
            &b""[..],
            b"0",
            b"65537",
            b"-1",
            b"+5",
            b"5x",
            b"0x10",
            b"18446744073709551616",
            b"99999999999999999999999999",
            b"\xff",
            "４".as_bytes(),
        ] {
            assert_eq!(
                parse_meta_length(Some(bad)),
                Err(UploadFramingError::BadMetaLength),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn meta_decoding_tells_path_failures_apart() {
        let meta = decode_upload_meta(br#"{"path":"a/b.txt","base_sha":null}"#).unwrap();
        assert_eq!(meta.path.as_str(), "a/b.txt");
        assert_eq!(meta.base_sha, None);
        let sha = Sha256Hex::empty();
        let meta =
            decode_upload_meta(format!(r#"{{"path":"x","base_sha":"{sha}"}}"#).as_bytes()).unwrap();
        assert_eq!(meta.base_sha, Some(sha));
        let err = decode_upload_meta(br#"{"path":".SF/state"}"#).unwrap_err();
        assert_eq!(err, UploadFramingError::InvalidPath(PathError::Reserved));
        assert!(
            err.to_string().contains(crate::path::PATH_ERROR_PREFIX),
            "{err}"
        );
        for bad in [
            &b""[..],
            b"{",
            b"[]",
            b"{}",
            br#"{"path":5}"#,
            br#"{"path":"a","base_sha":"nothex"}"#,
            b"\xff\xfe",
            // Found by the legacy_upload fuzz target: invalid UTF-8 in an
            // unknown field was skipped, and the path error reported instead.
            b"{\"path\":\"n\x7ftes\",\"x\":\"4\xed9\"}",
            b"{\"path\":\"ok\",\"x\":\"\xff\"}",
        ] {
            assert!(
                matches!(
                    decode_upload_meta(bad),
                    Err(UploadFramingError::InvalidMeta(_))
                ),
                "{bad:?}"
            );
        }
    }
}
