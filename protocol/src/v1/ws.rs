//! The frames the hub sends on `/v1/ws`, their close codes, and how a
//! client decodes what a hub sends (frames and change-feed pages).

use serde::{Deserialize, Serialize};

use super::{ChangesResponse, Entry, EntryError};
use crate::{Sha256Hex, SyncPath};

/// Frames the hub sends on `/v1/ws`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WsFrame {
    /// First frame: every change with a seq above `head` follows on this socket.
    Hello {
        /// The hub's head when the socket opened: catch up through
        /// `/v1/changes` to here; frames for seqs above it follow.
        head: u64,
        /// The hub's identity (see [`ChangesResponse::hub_id`]); empty from
        /// hubs older than the field.
        #[serde(default)]
        hub_id: String,
    },
    /// A committed change, in seq order.
    Change(Entry),
    /// Chunks the hub found damaged or missing in its store and asks
    /// clients to upload again (`PUT /v1/chunks/{hash}`), each with files
    /// that held it. Sent after `hello` while any are wanted, and again
    /// whenever the list changes or a few minutes pass.
    Wanted {
        /// The chunks wanted (at most [`WS_MAX_WANTED`] per frame).
        chunks: Vec<WantedChunk>,
    },
    /// A frame of a type this version does not know (from a newer hub):
    /// ignored, so new frames never break older clients.
    #[serde(other)]
    Unknown,
}

/// A chunk the hub lost, and committed files whose content contains it: a
/// client holding one of them unchanged can read the chunk back out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WantedChunk {
    /// The chunk's name: the sha256 of its bytes.
    pub hash: Sha256Hex,
    /// Files (at most a few, current versions first) whose content, of the
    /// given sha256, contains the chunk.
    pub files: Vec<WantedFile>,
}

/// A committed file that contains a wanted chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WantedFile {
    /// Where the file is (or was) committed.
    pub path: SyncPath,
    /// The file's content, which contains the chunk.
    pub sha256: Sha256Hex,
    /// The content's size in bytes: a file of another size cannot be it.
    pub size: u64,
}

/// Why a WebSocket frame or a change-feed page from a hub cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// Not JSON of the expected shape (this includes a path that breaks the
    /// path rules; a frame of an unknown type is [`WsFrame::Unknown`]).
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
/// Most chunks one `wanted` frame lists; more wait for the next.
pub const WS_MAX_WANTED: usize = 64;
/// Most files listed for one wanted chunk.
pub const WS_MAX_WANTED_FILES: usize = 4;
/// How many changes a WebSocket client may lag behind before it is closed.
pub const WS_MAX_LAG: usize = 4096;
