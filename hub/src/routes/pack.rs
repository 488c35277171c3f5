//! Chunk packs: `POST /v1/chunks/pack` stores many chunks from one streamed
//! body, `POST /v1/chunks/fetch` sends many in one streamed answer. Both
//! use the frames of `sf_protocol::v1` (a 36-byte header naming the chunk
//! and its length, then its bytes).
//!
//! An upload is read a frame at a time and handed to the store in groups
//! of at most [`GROUP_BYTES`]: the hub holds no more than one chunk's worth
//! of a pack in memory, however long the pack.

use std::io;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use futures_util::TryStreamExt;
use sf_protocol::chunking::MAX_CHUNK_SIZE;
use sf_protocol::v1::{
    FETCH_MAX_CHUNKS, FetchChunksRequest, PACK_HEADER_LEN, PACK_MAX_CHUNKS, PackResponse,
    decode_pack_header,
};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::io::StreamReader;

use super::extract::Json;
use super::v1::{HASH_JSON_BYTES, SMALL_BODY_LIMIT};
use crate::error::ApiError;
use crate::service::Hub;
use crate::store::{Pack, PackFrame};

/// Chunk bytes read from a pack before they are handed to the store: one
/// chunk's worth at most, so a pack costs the memory of one chunk.
const GROUP_BYTES: usize = MAX_CHUNK_SIZE;

/// Body limit of `POST /v1/chunks/fetch`: `FETCH_MAX_CHUNKS` hashes.
pub const FETCH_BODY_LIMIT: usize = FETCH_MAX_CHUNKS * HASH_JSON_BYTES + SMALL_BODY_LIMIT;

/// `POST /v1/chunks/pack`: stores every chunk of the body after checking
/// its bytes; answers once all are durable.
pub async fn pack(
    State(hub): State<Arc<Hub>>,
    body: Body,
) -> Result<axum::Json<PackResponse>, ApiError> {
    let metrics = Arc::clone(&hub.metrics);
    let frames = body
        .into_data_stream()
        .inspect_ok(move |frame| metrics.bytes_received.add(frame.len() as u64, &[]))
        .map_err(io::Error::other);
    let mut pack = Pack::new(Arc::clone(&hub.store));
    let received = receive(&mut StreamReader::new(frames), &mut pack).await;
    // What was published is stored, whether or not the rest was refused.
    hub.metrics.chunks_stored.add(pack.stored as i64, &[]);
    hub.metrics
        .chunk_bytes_stored
        .add(pack.stored_bytes as i64, &[]);
    hub.metrics.dedup_saved_bytes.add(pack.present_bytes, &[]);
    received?;
    tracing::debug!(
        chunks = pack.chunks,
        stored = pack.stored,
        bytes = pack.stored_bytes,
        "pack stored"
    );
    Ok(axum::Json(PackResponse {
        chunks: pack.chunks,
        stored: pack.stored,
    }))
}

/// Reads the pack's frames into `pack`, a group at a time, and publishes
/// what it staged.
async fn receive(body: &mut (impl AsyncRead + Unpin), pack: &mut Pack) -> Result<(), ApiError> {
    let mut group: Vec<PackFrame> = Vec::new();
    let mut group_bytes = 0usize;
    let mut frames = 0usize;
    while let Some((hash, len)) = read_header(body).await? {
        frames += 1;
        if frames > PACK_MAX_CHUNKS {
            return Err(ApiError::InvalidRequest(format!(
                "a pack carries at most {PACK_MAX_CHUNKS} chunks; split it"
            )));
        }
        if group_bytes + len > GROUP_BYTES {
            let full = std::mem::take(&mut group);
            in_blocking(pack, move |pack| pack.add_blocking(full)).await??;
            group_bytes = 0;
        }
        let mut data = vec![0; len];
        body.read_exact(&mut data).await.map_err(|err| {
            body_error(
                err,
                &format!("the pack ends inside chunk {hash} ({len} bytes declared)"),
            )
        })?;
        group.push(PackFrame { hash, data });
        group_bytes += len;
    }
    in_blocking(pack, move |pack| {
        pack.add_blocking(group)?;
        pack.publish_blocking()
            .map_err(crate::store::PutError::from)
    })
    .await??;
    Ok(())
}

/// Runs `work` on `pack` on a blocking thread (file writes and flushes).
async fn in_blocking<T: Send + 'static>(
    pack: &mut Pack,
    work: impl FnOnce(&mut Pack) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let mut taken = pack.take();
    let (taken, result) = tokio::task::spawn_blocking(move || {
        let result = work(&mut taken);
        (taken, result)
    })
    .await?;
    *pack = taken;
    Ok(result)
}

/// The next frame's header: `None` where the body ends between frames.
async fn read_header(
    body: &mut (impl AsyncRead + Unpin),
) -> Result<Option<(sf_protocol::Sha256Hex, usize)>, ApiError> {
    let mut header = [0u8; PACK_HEADER_LEN];
    let mut filled = 0;
    while filled < PACK_HEADER_LEN {
        let n = body
            .read(&mut header[filled..])
            .await
            .map_err(|err| body_error(err, ""))?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    match filled {
        0 => Ok(None),
        PACK_HEADER_LEN => {
            let (hash, len) =
                decode_pack_header(&header).map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
            Ok(Some((hash, len as usize)))
        }
        _ => Err(ApiError::InvalidRequest(format!(
            "the pack ends inside a frame header ({filled} of {PACK_HEADER_LEN} bytes)"
        ))),
    }
}

/// A body that could not be read: cut short (`truncated` says where), or
/// failed (the client went away, or sent too slowly).
fn body_error(err: io::Error, truncated: &str) -> ApiError {
    if err.kind() == io::ErrorKind::UnexpectedEof && !truncated.is_empty() {
        ApiError::InvalidRequest(truncated.to_owned())
    } else {
        ApiError::InvalidRequest(format!("reading the request body failed: {err}"))
    }
}

/// `POST /v1/chunks/fetch`: the chunks asked for, as one pack. Every one
/// is looked up before the answer starts.
pub async fn fetch(
    State(hub): State<Arc<Hub>>,
    Json(request): Json<FetchChunksRequest>,
) -> Result<Response, ApiError> {
    if request.chunks.len() > FETCH_MAX_CHUNKS {
        return Err(ApiError::InvalidRequest(format!(
            "at most {FETCH_MAX_CHUNKS} chunks per fetch; split the list"
        )));
    }
    let store = Arc::clone(&hub.store);
    let plan = tokio::task::spawn_blocking(move || store.plan_fetch_blocking(&request.chunks))
        .await??
        .map_err(|hash| ApiError::NotFound(format!("the hub holds no chunk {hash}")))?;
    let len = plan.body_len();
    let stream = hub.store.fetch_stream(plan);
    Ok(super::v1::octet_stream(&hub, stream, len))
}
