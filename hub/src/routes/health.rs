//! Liveness and readiness probes: open to anyone (orchestrators send no
//! token), so they say whether the hub works and which database back end it
//! and store it was configured with, nothing about what it holds.

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
        store: None,
        head: None,
    })
}

/// `GET /readyz`: the database answers and the content store is writable.
pub async fn readyz(State(hub): State<Arc<Hub>>) -> Result<Json<HealthResponse>, ApiError> {
    // The details (host names, paths) go to the operator's log, not to
    // whoever asks: the probe is open to anyone.
    hub.db.ping().await.map_err(|err| {
        tracing::warn!(error = %err, "readiness: the database does not answer");
        ApiError::NotReady("database unavailable; the hub's log says why".into())
    })?;
    hub.store.probe().await.map_err(|err| {
        tracing::warn!(error = %err, "readiness: the content store is not writable");
        ApiError::NotReady("content store not writable; the hub's log says why".into())
    })?;
    Ok(Json(HealthResponse {
        status: "ready".into(),
        database: Some(hub.db.backend().name().into()),
        store: Some(hub.store.kind().into()),
        head: None,
    }))
}
