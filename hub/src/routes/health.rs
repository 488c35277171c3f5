//! Liveness and readiness probes.

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
        head: Some(hub.db.head().await?),
    }))
}
