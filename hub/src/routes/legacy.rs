//! The original REST API, byte-compatible with the first Python client:
//! `/index`, `/download`, `/upload`, `/delete`, `/logs`.

use std::io;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use futures_util::TryStreamExt;
use sf_protocol::legacy::{
    DeleteRequest, DownloadQuery, IndexEntry, IndexResponse, LOGS_DEFAULT_LIMIT, LOGS_MAX_LIMIT,
    LogEntry, LogsQuery, LogsResponse, META_LENGTH_HEADER, OkResponse, UploadFramingError,
    UploadResponse, decode_upload_meta, parse_meta_length,
};
use tokio::io::AsyncReadExt;
use tokio_util::io::StreamReader;

use super::content::file_response;
use super::extract::{Json, Query};
use crate::error::ApiError;
use crate::ingest::{Ingested, ingest};
use crate::service::Hub;

/// `GET /index`: every live file with its sha, mtime and version.
pub async fn index(State(hub): State<Arc<Hub>>) -> Result<axum::Json<IndexResponse>, ApiError> {
    let index = hub
        .db
        .live_files()
        .await?
        .into_iter()
        .filter_map(|entry| {
            Some((
                entry.path.to_string(),
                IndexEntry {
                    sha: entry.sha256?,
                    mtime: entry.mtime_ns as f64 / 1e9,
                    version: entry.version,
                },
            ))
        })
        .collect();
    Ok(axum::Json(IndexResponse {
        index,
        ts: crate::db::now_ms() as f64 / 1e3,
    }))
}

/// `GET /download?path=P`: the file's bytes, streamed.
pub async fn download(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<DownloadQuery>,
) -> Result<Response, ApiError> {
    match hub.db.current(&query.path).await? {
        Some(entry) if !entry.deleted && entry.kind == sf_protocol::v1::EntryKind::File => {
            file_response(&hub, &entry, &HeaderMap::new(), false).await
        }
        _ => Err(ApiError::NotFound(format!("{} does not exist", query.path))),
    }
}

/// `POST /upload`: `X-Meta-Length` bytes of JSON metadata, then the file.
pub async fn upload(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<UploadResponse>, ApiError> {
    let meta_length = parse_meta_length(headers.get(META_LENGTH_HEADER).map(|v| v.as_bytes()))
        .map_err(|err| ApiError::InvalidRequest(err.to_string()))?;
    if let Some(declared) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if declared < meta_length {
            return Err(meta_longer_than_body(meta_length));
        }
        if declared - meta_length > hub.max_file_size {
            return Err(ApiError::PayloadTooLarge(format!(
                "the file is {} bytes; this hub accepts files up to {} bytes",
                declared - meta_length,
                hub.max_file_size
            )));
        }
    }

    let metrics = Arc::clone(&hub.metrics);
    let frames = body
        .into_data_stream()
        .inspect_ok(move |frame| metrics.bytes_received.add(frame.len() as u64, &[]))
        .map_err(io::Error::other);
    let mut reader = StreamReader::new(frames);
    let mut meta = vec![0u8; meta_length as usize];
    reader.read_exact(&mut meta).await.map_err(|err| {
        if err.kind() == io::ErrorKind::UnexpectedEof {
            meta_longer_than_body(meta_length)
        } else {
            ApiError::InvalidRequest(format!("reading the upload failed: {err}"))
        }
    })?;
    let meta = decode_upload_meta(&meta).map_err(|err| match err {
        UploadFramingError::InvalidPath(_) => ApiError::InvalidPath(err.to_string()),
        _ => ApiError::InvalidRequest(err.to_string()),
    })?;

    let content = ingest_or_clean_up(&hub, reader).await?;
    Ok(axum::Json(hub.legacy_upload(meta, content).await?))
}

/// Stores the upload's content and counts it; if that fails (store full, client gone),
/// removes the chunks it newly stored, so a refused upload stores nothing.
/// Runs as its own task, so that happens even when the client is gone and
/// this request's future is dropped.
pub(super) async fn ingest_or_clean_up<R>(hub: &Arc<Hub>, reader: R) -> Result<Ingested, ApiError>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    hub.store.ensure_room()?;
    let hub = Arc::clone(hub);
    tokio::spawn(async move {
        let removals = hub.removal_mark().await?;
        let failed = match ingest(Arc::clone(&hub.store), reader, hub.max_file_size, removals).await {
            Ok(content) => {
                hub.metrics
                    .dedup_saved_bytes
                    .add(content.deduplicated_bytes, &[]);
                hub.metrics
                    .chunks_stored
                    .add(content.new_chunks as i64, &[]);
                hub.metrics
                    .chunk_bytes_stored
                    .add(content.new_bytes as i64, &[]);
                return Ok(content);
            }
            Err(failed) => failed,
        };
        if !failed.created.is_empty() {
            // They were stored, so they count until removed.
            let bytes: u64 = failed.created.iter().map(|c| c.len).sum();
            hub.metrics
                .chunks_stored
                .add(failed.created.len() as i64, &[]);
            hub.metrics.chunk_bytes_stored.add(bytes as i64, &[]);
            let hashes: Vec<_> = failed.created.iter().map(|c| c.hash).collect();
            if let Err(err) = hub.remove_unreferenced(&hashes, None).await {
                tracing::warn!(error = %err, "could not remove the chunks of a failed upload; garbage collection will");
            }
        }
        Err(ApiError::from(failed.reason))
    })
    .await?
}

fn meta_longer_than_body(meta_length: u64) -> ApiError {
    ApiError::InvalidRequest(format!(
        "X-Meta-Length is {meta_length} but the body is shorter than that"
    ))
}

/// `POST /delete` `{"path": P}`
pub async fn delete(
    State(hub): State<Arc<Hub>>,
    Json(request): Json<DeleteRequest>,
) -> Result<axum::Json<OkResponse>, ApiError> {
    hub.legacy_delete(request.path).await?;
    Ok(axum::Json(OkResponse { ok: true }))
}

/// `GET /logs?limit=N&path=P`: the newest audit rows first.
pub async fn logs(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<LogsQuery>,
) -> Result<axum::Json<LogsResponse>, ApiError> {
    let limit = query.limit.unwrap_or(LOGS_DEFAULT_LIMIT);
    if !(1..=LOGS_MAX_LIMIT).contains(&limit) {
        return Err(ApiError::InvalidRequest(format!(
            "limit must be from 1 to {LOGS_MAX_LIMIT}"
        )));
    }
    let rows = hub.db.logs(limit, query.path.as_ref()).await?;
    let logs = rows
        .into_iter()
        .map(|row| LogEntry {
            id: row.id,
            action: row.action,
            path: row.path,
            version: row.version,
            sha: row.sha,
            timestamp: rfc3339_ms(row.ts_ms),
        })
        .collect();
    Ok(axum::Json(LogsResponse { logs }))
}

fn rfc3339_ms(ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    at.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    ))
    .unwrap_or_default()
}
