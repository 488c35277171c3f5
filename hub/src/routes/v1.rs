//! The v1 API for agents: change feed, chunks, commits, deletes, file
//! content, history and restore.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use sf_protocol::Sha256Hex;
use sf_protocol::chunking::{MAX_CHUNK_SIZE, max_chunks_for};
use sf_protocol::v1::{
    CHANGES_DEFAULT_LIMIT, CHANGES_MAX_LIMIT, ChangesQuery, ChangesResponse, CommitRequest,
    DeleteRequest, Entry, FileQuery, HISTORY_DEFAULT_LIMIT, HISTORY_MAX_LIMIT, HistoryResponse,
    MISSING_CHUNKS_MAX, MissingChunksRequest, MissingChunksResponse, PathQuery, RestoreRequest,
};

use super::content::{counted, file_response};
use super::extract::{Json, Query};
use crate::db::HistoryPage;
use crate::error::ApiError;
use crate::service::Hub;
use crate::store::Stored;

/// Body limit of the JSON routes that carry a path and little else (delete,
/// restore, the legacy delete): a 4 KiB path, escaped, and an origin.
pub const SMALL_BODY_LIMIT: usize = 64 * 1024;

/// Bytes one listed hash takes in JSON (`"<64 hex>",`), with room to spare.
pub const HASH_JSON_BYTES: usize = 80;

/// Body limit of `POST /v1/chunks/missing`: `MISSING_CHUNKS_MAX` hashes.
pub const MISSING_CHUNKS_BODY_LIMIT: usize =
    MISSING_CHUNKS_MAX * HASH_JSON_BYTES + SMALL_BODY_LIMIT;

/// Body limit of `POST /v1/commit`: the chunk list of the largest file the hub
/// accepts (each `{"hash":"<64 hex>","len":N}` within 100 bytes), at most 64 MiB.
pub fn commit_body_limit(max_file_size: u64) -> usize {
    let refs = usize::try_from(max_chunks_for(max_file_size)).unwrap_or(usize::MAX);
    refs.saturating_mul(100)
        .saturating_add(SMALL_BODY_LIMIT)
        .min(64 * 1024 * 1024)
}

/// `GET /v1/changes?since=SEQ&limit=N&chunks=BOOL`
pub async fn changes(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<ChangesQuery>,
) -> Result<axum::Json<ChangesResponse>, ApiError> {
    let limit = query.limit.unwrap_or(CHANGES_DEFAULT_LIMIT);
    if !(1..=CHANGES_MAX_LIMIT).contains(&limit) {
        return Err(ApiError::InvalidRequest(format!(
            "limit must be from 1 to {CHANGES_MAX_LIMIT}"
        )));
    }
    // Read the page first, then head: head is never below a seq in the page.
    let changes = hub.changes(query.since, limit, query.chunks).await?;
    let head = hub.db.head().await?;
    Ok(axum::Json(ChangesResponse {
        changes,
        head,
        hub_id: hub.access.hub_id.clone(),
    }))
}

/// `POST /v1/chunks/missing`
pub async fn missing_chunks(
    State(hub): State<Arc<Hub>>,
    Json(request): Json<MissingChunksRequest>,
) -> Result<axum::Json<MissingChunksResponse>, ApiError> {
    if request.chunks.len() > MISSING_CHUNKS_MAX {
        return Err(ApiError::InvalidRequest(format!(
            "at most {MISSING_CHUNKS_MAX} chunks per request; split the list"
        )));
    }
    let store = Arc::clone(&hub.store);
    let (missing, present_bytes) =
        tokio::task::spawn_blocking(move || store.missing_blocking(&request.chunks)).await??;
    hub.metrics.dedup_saved_bytes.add(present_bytes, &[]);
    Ok(axum::Json(MissingChunksResponse { missing }))
}

fn parse_hash(raw: &str) -> Result<Sha256Hex, ApiError> {
    Sha256Hex::parse(raw).map_err(|e| ApiError::InvalidRequest(e.to_string()))
}

/// `PUT /v1/chunks/{hash}`: stores one chunk after checking its bytes.
pub async fn put_chunk(
    State(hub): State<Arc<Hub>>,
    Path(hash): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let hash = parse_hash(&hash)?;
    let metrics = Arc::clone(&hub.metrics);
    let frames = body
        .into_data_stream()
        .inspect_ok(move |frame| metrics.bytes_received.add(frame.len() as u64, &[]));
    let (stored, len) = hub
        .store
        .put_stream(hash, frames, MAX_CHUNK_SIZE as u64)
        .await?;
    match stored {
        Stored::New => {
            hub.metrics.chunks_stored.add(1, &[]);
            hub.metrics.chunk_bytes_stored.add(len as i64, &[]);
        }
        Stored::AlreadyPresent => hub.metrics.dedup_saved_bytes.add(len, &[]),
    }
    let status = match stored {
        Stored::New => axum::http::StatusCode::CREATED,
        Stored::AlreadyPresent => axum::http::StatusCode::OK,
    };
    Ok((
        status,
        axum::Json(serde_json::json!({"hash": hash, "len": len})),
    )
        .into_response())
}

/// `GET /v1/chunks/{hash}`
pub async fn get_chunk(
    State(hub): State<Arc<Hub>>,
    Path(hash): Path<String>,
) -> Result<Response, ApiError> {
    let hash = parse_hash(&hash)?;
    let Some(data) = hub.store.read_chunk(&hash).await? else {
        return Err(ApiError::NotFound(format!("the hub holds no chunk {hash}")));
    };
    let len = data.len() as u64;
    let body = futures_util::stream::once(async move { Ok::<_, std::io::Error>(data) });
    Ok(octet_stream(&hub, body, len))
}

/// A `200` whose body is `stream`, `len` bytes of `application/octet-stream`,
/// counted in the bytes-sent metric as it goes.
pub(super) fn octet_stream<S, E>(hub: &Arc<Hub>, stream: S, len: u64) -> Response
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Send + 'static,
    E: Into<axum::BoxError> + 'static,
{
    let mut response = Body::from_stream(counted(hub, stream)).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    response
}

/// `POST /v1/commit`
pub async fn commit(
    State(hub): State<Arc<Hub>>,
    Json(request): Json<CommitRequest>,
) -> Result<axum::Json<Entry>, ApiError> {
    Ok(axum::Json(hub.commit(request).await?))
}

/// `POST /v1/delete`
pub async fn delete(
    State(hub): State<Arc<Hub>>,
    Json(request): Json<DeleteRequest>,
) -> Result<axum::Json<Entry>, ApiError> {
    Ok(axum::Json(hub.delete(request).await?))
}

/// `GET /v1/file?path=P[&version=N]`, with `Range` support.
pub async fn file(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<FileQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let entry = match query.version {
        Some(version) => hub.db.version(&query.path, version).await?,
        None => hub.db.current(&query.path).await?,
    };
    match entry {
        Some(entry) if !entry.deleted && entry.kind == sf_protocol::v1::EntryKind::File => {
            file_response(&hub, &entry, &headers, true).await
        }
        Some(entry) if entry.deleted => Err(ApiError::NotFound(format!(
            "{} was deleted at version {}; GET /v1/history lists versions with content",
            entry.path, entry.version
        ))),
        Some(entry) => Err(ApiError::InvalidRequest(format!(
            "{} is a directory",
            entry.path
        ))),
        None => Err(ApiError::NotFound(match query.version {
            Some(v) => format!("{} has no version {v}", query.path),
            None => format!("{} does not exist", query.path),
        })),
    }
}

/// `GET /v1/history?path=P[&limit=N][&before=V | &after=V]`: one page of
/// versions, oldest first; the newest page unless a cursor says otherwise.
pub async fn history(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<PathQuery>,
) -> Result<axum::Json<HistoryResponse>, ApiError> {
    let limit = query.limit.unwrap_or(HISTORY_DEFAULT_LIMIT);
    if !(1..=HISTORY_MAX_LIMIT).contains(&limit) {
        return Err(ApiError::InvalidRequest(format!(
            "limit must be from 1 to {HISTORY_MAX_LIMIT}"
        )));
    }
    let page = match (query.before, query.after) {
        (Some(_), Some(_)) => {
            return Err(ApiError::InvalidRequest(
                "give before or after, not both: before pages to older versions, after to newer"
                    .into(),
            ));
        }
        (Some(version), None) => HistoryPage::Before(version),
        (None, Some(version)) => HistoryPage::After(version),
        (None, None) => HistoryPage::Before(u64::MAX),
    };
    let (versions, more) = hub.db.history(&query.path, page, limit).await?;
    if versions.is_empty() && !hub.db.has_history(&query.path).await? {
        return Err(ApiError::NotFound(format!("{} has no history", query.path)));
    }
    Ok(axum::Json(HistoryResponse {
        path: query.path,
        versions,
        more,
    }))
}

/// `POST /v1/restore`
pub async fn restore(
    State(hub): State<Arc<Hub>>,
    Json(request): Json<RestoreRequest>,
) -> Result<axum::Json<Entry>, ApiError> {
    Ok(axum::Json(hub.restore(request).await?))
}
