//! The HTTP surface: which route goes to which handler, and the layers every
//! request passes through (metrics by route template, panic isolation, JSON
//! 404s).

mod content;
mod extract;
mod health;
mod legacy;
mod v1;
mod ws;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::ApiError;
use crate::service::Hub;

/// JSON request bodies (commits list chunks) stay below this; file bytes go
/// through streaming endpoints that this limit does not apply to.
const JSON_BODY_LIMIT: usize = 64 * 1024 * 1024;

pub fn router(hub: Arc<Hub>) -> Router {
    let metrics = Arc::clone(&hub.metrics);
    Router::new()
        .route("/index", get(legacy::index))
        .route("/download", get(legacy::download))
        .route("/upload", post(legacy::upload))
        .route("/delete", post(legacy::delete))
        .route("/logs", get(legacy::logs))
        .route("/v1/changes", get(v1::changes))
        .route("/v1/chunks/missing", post(v1::missing_chunks))
        .route("/v1/chunks/{hash}", get(v1::get_chunk).put(v1::put_chunk))
        .route("/v1/commit", post(v1::commit))
        .route("/v1/delete", post(v1::delete))
        .route("/v1/file", get(v1::file))
        .route("/v1/history", get(v1::history))
        .route("/v1/restore", post(v1::restore))
        .route("/v1/ws", get(ws::subscribe))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&metrics),
            crate::metrics::track_requests,
        ))
        .fallback(move |request: axum::extract::Request| {
            let metrics = Arc::clone(&metrics);
            async move {
                metrics.record_request(request.method().as_str(), "unmatched", 0.0);
                ApiError::NotFound(format!(
                    "no route for {} {}",
                    request.method(),
                    request.uri().path()
                ))
            }
        })
        .method_not_allowed_fallback(|request: axum::extract::Request| async move {
            ApiError::MethodNotAllowed(format!(
                "{} does not accept {}",
                request.uri().path(),
                request.method()
            ))
        })
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(hub)
}

/// A panicking handler answers 500 and the hub keeps serving.
fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = message, "request handler panicked");
    ApiError::Storage(std::io::Error::other(format!("internal error: {message}"))).into_response()
}
