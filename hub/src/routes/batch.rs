//! `POST /v1/batch`: many commits and deletes in one request (see
//! `crate::service` for what it does), and the body limit it is held to.

use std::sync::Arc;

use axum::extract::State;
use sf_protocol::v1::{BATCH_MAX_OPS, BatchRequest, BatchResponse};

use super::extract::Json;
use super::v1::commit_body_limit;
use crate::error::ApiError;
use crate::service::Hub;

/// Body limit of `POST /v1/batch`: [`BATCH_MAX_OPS`] times what one
/// `POST /v1/commit` may send, at most 64 MiB. The cap is what binds but
/// for a tiny `--max-file-size`: a batch of many small files is far below
/// it, and a file with a long chunk list is best committed on its own.
pub fn batch_body_limit(max_file_size: u64) -> usize {
    commit_body_limit(max_file_size)
        .saturating_mul(BATCH_MAX_OPS)
        .min(super::JSON_BODY_LIMIT)
}

/// `POST /v1/batch`. The batch runs on a task of its own: a client that
/// goes away mid-way does not cut it between its commit and the broadcast
/// of what it committed.
pub async fn batch(
    State(hub): State<Arc<Hub>>,
    Json(request): Json<BatchRequest>,
) -> Result<axum::Json<BatchResponse>, ApiError> {
    let answer = tokio::spawn(async move { hub.batch(request).await }).await??;
    Ok(axum::Json(answer))
}
