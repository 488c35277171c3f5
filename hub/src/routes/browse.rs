//! The routes a person's tools use beyond the agents' API (the hub's web
//! page first): listing a folder, searching paths, recently deleted files,
//! conflict copies, who is connected, and the tree-shaped changes (a whole
//! file uploaded, a folder moved or removed, one side of a conflict kept).
//! See `sf_protocol::v1::browse` for each request and answer.

use std::io;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use futures_util::TryStreamExt;
use sf_protocol::SyncPath;
use sf_protocol::conflict::parse_conflict_copy;
use sf_protocol::v1::{
    ACTIVITY_RECENT, ActivityResponse, CONFLICTS_MAX, Conflict, ConflictsResponse, DeletedQuery,
    DeletedResponse, LIST_DEFAULT_LIMIT, LIST_MAX_LIMIT, ListQuery, ListResponse, Listed,
    MoveRequest, MoveResponse, RemoveRequest, RemoveResponse, ResolveRequest, ResolveResponse,
    SearchQuery, SearchResponse, UploadQuery, UploadResponse,
};
use time::format_description::well_known::Rfc3339;
use tokio_util::io::StreamReader;

use super::extract::{Json, Query};
use super::legacy::ingest_or_clean_up;
use crate::error::ApiError;
use crate::service::Hub;

/// Results of a search unless `limit` says otherwise.
const SEARCH_DEFAULT_LIMIT: u32 = 100;
/// The longest text searched for, in bytes.
const SEARCH_MAX_TEXT: usize = 200;

/// `GET /v1/list?dir=D&after=CURSOR&limit=N`
pub async fn list(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<ListResponse>, ApiError> {
    let limit = page_limit(query.limit, LIST_DEFAULT_LIMIT)?;
    let prefix = folder_prefix(&query.dir)?;
    let (entries, next) = hub
        .db
        .list_folder(&prefix, query.after.as_deref(), limit)
        .await?
        .map_err(|bad| ApiError::InvalidRequest(bad.to_string()))?;
    Ok(axum::Json(ListResponse {
        dir: query.dir,
        entries,
        next,
    }))
}

/// `GET /v1/search?q=TEXT&limit=N`
pub async fn search(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<SearchQuery>,
) -> Result<axum::Json<SearchResponse>, ApiError> {
    let limit = page_limit(query.limit, SEARCH_DEFAULT_LIMIT)?;
    let text = query.q.trim();
    if text.is_empty() || text.len() > SEARCH_MAX_TEXT || text.contains(char::is_control) {
        return Err(ApiError::InvalidRequest(format!(
            "q must be 1 to {SEARCH_MAX_TEXT} bytes of printable text"
        )));
    }
    let (entries, more) = hub.db.search_paths(text, limit).await?;
    Ok(axum::Json(SearchResponse {
        q: query.q,
        entries,
        more,
    }))
}

/// `GET /v1/deleted?before=CURSOR&limit=N`
pub async fn deleted(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<DeletedQuery>,
) -> Result<axum::Json<DeletedResponse>, ApiError> {
    let limit = page_limit(query.limit, LIST_DEFAULT_LIMIT)?;
    let (entries, next) = hub.db.deleted_paths(query.before, limit).await?;
    Ok(axum::Json(DeletedResponse { entries, next }))
}

/// `GET /v1/conflicts`
pub async fn conflicts(
    State(hub): State<Arc<Hub>>,
) -> Result<axum::Json<ConflictsResponse>, ApiError> {
    let (mut conflicts, mut more) = (Vec::new(), false);
    let mut after: Option<String> = None;
    // Names that only look like copies are read past, a page at a time.
    'pages: loop {
        let page = hub
            .db
            .conflict_like_files(after.as_deref(), CONFLICTS_MAX)
            .await?;
        let last_page = page.len() < CONFLICTS_MAX;
        for copy in page {
            after = Some(copy.path.to_string());
            // Named like one is not enough: the name must read back as a copy.
            let Some(named) = parse_conflict_copy(&copy.path) else {
                continue;
            };
            if conflicts.len() == CONFLICTS_MAX {
                more = true;
                break 'pages;
            }
            let original = hub
                .db
                .live_entry(&named.original)
                .await?
                .map(|o| Listed::from_entry(&o));
            let made = named.at.format(&Rfc3339).unwrap_or_default();
            conflicts.push(Conflict {
                copy: Listed::from_entry(&copy),
                original,
                copy_origin: named.origin,
                copy_made: made,
            });
        }
        if last_page {
            break;
        }
    }
    Ok(axum::Json(ConflictsResponse { conflicts, more }))
}

/// `GET /v1/activity`
pub async fn activity(
    State(hub): State<Arc<Hub>>,
) -> Result<axum::Json<ActivityResponse>, ApiError> {
    let head = hub.db.head().await?;
    let since = head.saturating_sub(u64::from(ACTIVITY_RECENT));
    let mut recent = hub.changes(since, ACTIVITY_RECENT, false).await?;
    recent.reverse();
    Ok(axum::Json(ActivityResponse {
        agents: hub.access.presence.connected(),
        recent,
    }))
}

/// `POST /v1/upload?path=P&base_version=N&mtime_ms=M`, body: the file.
pub async fn upload(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<UploadResponse>, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(declared) = declared
        && declared > hub.max_file_size
    {
        return Err(ApiError::PayloadTooLarge(format!(
            "the file is {declared} bytes; this hub accepts files up to {} bytes",
            hub.max_file_size
        )));
    }
    let metrics = Arc::clone(&hub.metrics);
    let frames = body
        .into_data_stream()
        .inspect_ok(move |frame| metrics.bytes_received.add(frame.len() as u64, &[]))
        .map_err(io::Error::other);
    let content = ingest_or_clean_up(&hub, StreamReader::new(frames)).await?;
    Ok(axum::Json(hub.web_upload(query, content).await?))
}

/// `POST /v1/move`
pub async fn move_tree(
    State(hub): State<Arc<Hub>>,
    Json(request): Json<MoveRequest>,
) -> Result<axum::Json<MoveResponse>, ApiError> {
    let moved = hub.move_tree(request).await?;
    Ok(axum::Json(MoveResponse { moved }))
}

/// `POST /v1/remove`
pub async fn remove_tree(
    State(hub): State<Arc<Hub>>,
    Json(request): Json<RemoveRequest>,
) -> Result<axum::Json<RemoveResponse>, ApiError> {
    let removed = hub.remove_tree(request).await?;
    Ok(axum::Json(RemoveResponse { removed }))
}

/// `POST /v1/conflicts/resolve`
pub async fn resolve(
    State(hub): State<Arc<Hub>>,
    Json(request): Json<ResolveRequest>,
) -> Result<axum::Json<ResolveResponse>, ApiError> {
    let kept = hub.resolve_conflict(request).await?;
    Ok(axum::Json(ResolveResponse { kept }))
}

/// A page size from 1 to [`LIST_MAX_LIMIT`], `default` when not given.
fn page_limit(limit: Option<u32>, default: u32) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(default);
    if !(1..=LIST_MAX_LIMIT).contains(&limit) {
        return Err(ApiError::InvalidRequest(format!(
            "limit must be from 1 to {LIST_MAX_LIMIT}"
        )));
    }
    Ok(limit as usize)
}

/// What the paths of a folder's children start with: `""` for the top,
/// `"a/b/"` for `a/b` (which must be a valid path).
fn folder_prefix(dir: &str) -> Result<String, ApiError> {
    if dir.is_empty() {
        return Ok(String::new());
    }
    let folder = SyncPath::parse(dir).map_err(|e| {
        ApiError::InvalidPath(format!(
            "dir {dir:?} is not a folder path ({e}); use \"\" for the top, or a/b"
        ))
    })?;
    Ok(format!("{folder}/"))
}
