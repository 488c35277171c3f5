//! Many changes per request: `POST /v1/batch` (commits and deletes in one
//! transaction, one outcome each), and chunk packs — many chunks in one
//! body, to the hub (`POST /v1/chunks/pack`) and from it
//! (`POST /v1/chunks/fetch`). A file of a few KiB then costs a share of
//! three requests instead of three round trips of its own.
//!
//! A pack is a sequence of frames, each a [`PACK_HEADER_LEN`]-byte header
//! (the chunk's 32-byte SHA-256, then its length as a big-endian `u32`)
//! followed by that many bytes. This module encodes and checks headers; the
//! bytes themselves are streamed by the hub and the agent.

use serde::{Deserialize, Serialize};

use super::{CommitRequest, DeleteRequest, Entry, ErrorBody};
use crate::Sha256Hex;
use crate::chunking::MAX_CHUNK_SIZE;

/// `POST /v1/batch`: commits and deletes, applied in order in one database
/// transaction, so the batch costs one durable write.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchRequest {
    /// At most [`BATCH_MAX_OPS`] operations; more is `400 invalid_request`
    /// and nothing is done.
    pub ops: Vec<BatchOp>,
}

/// The most operations one `POST /v1/batch` may carry.
pub const BATCH_MAX_OPS: usize = 1000;

/// One operation of a batch: the body of `POST /v1/commit` or of
/// `POST /v1/delete`, with `"op"` saying which.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum BatchOp {
    /// As `POST /v1/commit`.
    Commit(CommitRequest),
    /// As `POST /v1/delete`.
    Delete(DeleteRequest),
}

impl BatchOp {
    /// The path the operation changes.
    pub fn path(&self) -> &crate::SyncPath {
        match self {
            BatchOp::Commit(commit) => &commit.path,
            BatchOp::Delete(delete) => &delete.path,
        }
    }
}

/// The answer to `POST /v1/batch`: one outcome per operation, in request
/// order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchResponse {
    /// `outcomes[i]` is what became of `ops[i]`.
    pub outcomes: Vec<BatchOutcome>,
}

/// What became of one operation of a batch. An operation refused does not
/// stop the others: each is decided against the state the earlier ones
/// left.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum BatchOutcome {
    /// Committed (or already there: the answer the single route would give
    /// with `200`). `entry` carries its chunk list.
    Done {
        /// The path's entry after the operation.
        entry: Entry,
    },
    /// `base_version` was not current: as `409 conflict`.
    Conflict {
        /// The path's current entry, absent when it never existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        current: Option<Entry>,
    },
    /// Refused for another reason, with the error body the single route
    /// would answer (`missing_chunks`, `path_conflict`, `not_found`, …).
    Refused {
        /// Why.
        error: ErrorBody,
    },
}

/// `POST /v1/chunks/fetch`: the chunks to send back as one pack.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FetchChunksRequest {
    /// In the order wanted; a hash may repeat (it is then sent again). At
    /// most [`FETCH_MAX_CHUNKS`]. Every one must be held, or the answer is
    /// `404 not_found` before any byte is sent.
    pub chunks: Vec<Sha256Hex>,
}

/// The most chunks one `POST /v1/chunks/fetch` may ask for.
pub const FETCH_MAX_CHUNKS: usize = 10_000;

/// The answer to `POST /v1/chunks/pack`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackResponse {
    /// Chunks in the pack.
    pub chunks: u64,
    /// Of them, how many the hub did not hold before.
    pub stored: u64,
}

/// The most chunks one `POST /v1/chunks/pack` may carry.
pub const PACK_MAX_CHUNKS: usize = 10_000;

/// Bytes of a pack frame's header: the digest, then the length.
pub const PACK_HEADER_LEN: usize = 36;

/// Why a pack frame's header cannot be right.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackError {
    /// A chunk of 0 bytes, or of more than [`MAX_CHUNK_SIZE`].
    #[error("a pack frame declares a chunk of {0} bytes; chunks are 1 to {MAX_CHUNK_SIZE} bytes")]
    BadLength(u32),
}

/// The header of the frame that carries `len` bytes of the chunk `hash`.
pub fn encode_pack_header(hash: &Sha256Hex, len: u32) -> [u8; PACK_HEADER_LEN] {
    let mut header = [0u8; PACK_HEADER_LEN];
    header[..32].copy_from_slice(hash.as_bytes());
    header[32..].copy_from_slice(&len.to_be_bytes());
    header
}

/// The chunk name and length a frame header declares; the length is
/// checked, the name is checked by hashing the bytes that follow.
pub fn decode_pack_header(header: &[u8; PACK_HEADER_LEN]) -> Result<(Sha256Hex, u32), PackError> {
    let mut digest = [0u8; 32];
    digest.copy_from_slice(&header[..32]);
    let mut len = [0u8; 4];
    len.copy_from_slice(&header[32..]);
    let len = u32::from_be_bytes(len);
    if len == 0 || len as usize > MAX_CHUNK_SIZE {
        return Err(PackError::BadLength(len));
    }
    Ok((Sha256Hex::from_digest(digest), len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_headers_round_trip_and_refuse_impossible_lengths() {
        let hash = Sha256Hex::of(b"hello");
        let header = encode_pack_header(&hash, 5);
        assert_eq!(decode_pack_header(&header), Ok((hash, 5)));
        assert_eq!(&header[32..], &[0, 0, 0, 5]);
        for bad in [0u32, MAX_CHUNK_SIZE as u32 + 1, u32::MAX] {
            assert_eq!(
                decode_pack_header(&encode_pack_header(&hash, bad)),
                Err(PackError::BadLength(bad))
            );
        }
    }

    #[test]
    fn batch_ops_and_outcomes_are_tagged() {
        let op: BatchOp = serde_json::from_str(
            r#"{"op":"delete","path":"a.txt","base_version":3,"origin":"laptop"}"#,
        )
        .unwrap();
        assert!(matches!(&op, BatchOp::Delete(d) if d.base_version == 3));
        assert_eq!(op.path().as_str(), "a.txt");
        let sha = Sha256Hex::empty();
        let commit: BatchOp = serde_json::from_str(&format!(
            r#"{{"op":"commit","path":"d","kind":"dir","base_version":0,"sha256":"{sha}","size":0}}"#
        ))
        .unwrap();
        assert!(matches!(&commit, BatchOp::Commit(c) if c.origin == "unknown"));
        assert!(serde_json::from_str::<BatchOp>(r#"{"op":"rename","path":"a"}"#).is_err());
        let conflict = serde_json::to_string(&BatchOutcome::Conflict { current: None }).unwrap();
        assert_eq!(conflict, r#"{"outcome":"conflict"}"#);
    }
}
