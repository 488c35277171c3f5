//! Liveness and readiness probes: open to anyone (orchestrators send no
//! token), so they say whether the hub works and which database back end it
//! was configured with, nothing about what it holds.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use sf_protocol::v1::HealthResponse;

use crate::error::ApiError;
use crate::service::Hub;

/// `GET /healthz`: the process is up and serving.
pub async fn healthz() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok".into(),
        database: None,
        head: None,
    })
}

/// `GET /readyz`: the database answers and the content store is writable.
pub async fn readyz(State(hub): State<Arc<Hub>>) -> Result<Json<HealthResponse>, ApiError> {
    hub.db
        .ping()
        .await
        .map_err(|e| ApiError::NotReady(format!("database unavailable: {e}")))?;
    hub.store
        .probe()
        .await
        .map_err(|e| ApiError::NotReady(format!("content store not writable: {e}")))?;
    Ok(Json(HealthResponse {
        status: "ready".into(),
        database: Some(hub.db.backend().name().into()),
        head: None,
    }))
}
