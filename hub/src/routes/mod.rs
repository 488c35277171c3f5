//! The HTTP surface: which route goes to which handler, who may call it, and
//! the layers every request passes through (authentication, metrics by
//! route template, slow-body cut-off, panic isolation, JSON 404s).
//!
//! Three groups of routes: the API proper, behind `Authorization: Bearer`
//! or the web page's session cookie; the legacy API again under
//! `/t/{token}/`, for the original client that cannot send headers; and the
//! open ones: health probes, and the web page with its sign-in.

mod batch;
mod browse;
mod content;
mod extract;
mod health;
mod legacy;
mod pack;
mod ui;
mod v1;
mod ws;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;

use sf_protocol::v1::WhoAmI;

use crate::auth::{self, Caller};
use crate::error::ApiError;
use crate::serve::body_rate;
use crate::service::Hub;

/// JSON request bodies (commits list chunks) stay below this; file bytes go
/// through streaming endpoints that this limit does not apply to.
const JSON_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The API router. Request bodies slower than `min_body_rate` bytes/s
/// (after `grace`) are cut off.
pub fn router(hub: Arc<Hub>, min_body_rate: u64, grace: Duration) -> Router {
    let metrics = Arc::clone(&hub.metrics);
    let auth = Arc::clone(&hub.access.auth);
    let by_path_token = legacy_routes(Router::new(), "/t/{token}").route_layer(
        axum::middleware::from_fn_with_state(Arc::clone(&auth), auth::path_token),
    );
    let mut open = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        // The page and its sign-in authenticate for themselves.
        .route("/", get(ui::root))
        .route(
            "/ui/session",
            get(ui::current)
                .post(ui::sign_in)
                .delete(ui::sign_out)
                .layer(DefaultBodyLimit::max(v1::SMALL_BODY_LIMIT)),
        );
    // The page's files (index.html at `/ui/`, its script's modules, style
    // and icon): a route each, so metrics name the file.
    for (path, asset) in ui::ASSETS {
        open = open.route(path, get(move || async move { ui::serve(asset) }));
    }
    legacy_routes(Router::new(), "")
        .route("/v1/changes", get(v1::changes))
        .route(
            "/v1/chunks/missing",
            post(v1::missing_chunks).layer(DefaultBodyLimit::max(v1::MISSING_CHUNKS_BODY_LIMIT)),
        )
        .route(
            "/v1/chunks/fetch",
            post(pack::fetch).layer(DefaultBodyLimit::max(pack::FETCH_BODY_LIMIT)),
        )
        .route("/v1/chunks/pack", post(pack::pack))
        .route("/v1/chunks/{hash}", get(v1::get_chunk).put(v1::put_chunk))
        .route(
            "/v1/batch",
            post(batch::batch).layer(DefaultBodyLimit::max(batch::batch_body_limit(
                hub.max_file_size,
            ))),
        )
        .route(
            "/v1/commit",
            post(v1::commit).layer(DefaultBodyLimit::max(v1::commit_body_limit(
                hub.max_file_size,
            ))),
        )
        .route(
            "/v1/delete",
            post(v1::delete).layer(DefaultBodyLimit::max(v1::SMALL_BODY_LIMIT)),
        )
        .route("/v1/file", get(v1::file))
        .route("/v1/history", get(v1::history))
        .route(
            "/v1/restore",
            post(v1::restore).layer(DefaultBodyLimit::max(v1::SMALL_BODY_LIMIT)),
        )
        .route("/v1/whoami", get(whoami))
        .route("/v1/list", get(browse::list))
        .route("/v1/search", get(browse::search))
        .route("/v1/deleted", get(browse::deleted))
        .route("/v1/conflicts", get(browse::conflicts))
        .route(
            "/v1/conflicts/resolve",
            post(browse::resolve).layer(DefaultBodyLimit::max(v1::SMALL_BODY_LIMIT)),
        )
        .route("/v1/activity", get(browse::activity))
        .route("/v1/upload", post(browse::upload))
        .route(
            "/v1/move",
            post(browse::move_tree).layer(DefaultBodyLimit::max(v1::SMALL_BODY_LIMIT)),
        )
        .route(
            "/v1/remove",
            post(browse::remove_tree).layer(DefaultBodyLimit::max(v1::SMALL_BODY_LIMIT)),
        )
        .route("/v1/ws", get(ws::subscribe))
        .route_layer(axum::middleware::from_fn_with_state(auth, auth::bearer))
        .merge(by_path_token)
        .merge(open)
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
                    redact_path_token(request.uri().path())
                ))
            }
        })
        .method_not_allowed_fallback(|request: axum::extract::Request| async move {
            ApiError::MethodNotAllowed(format!(
                "{} does not accept {}",
                redact_path_token(request.uri().path()),
                request.method()
            ))
        })
        .layer(axum::middleware::map_request(move |request| async move {
            body_rate::limit(request, min_body_rate, grace)
        }))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(hub)
}

/// The original client's routes, under `prefix` ("" or "/t/{token}").
fn legacy_routes(router: Router<Arc<Hub>>, prefix: &str) -> Router<Arc<Hub>> {
    router
        .route(&format!("{prefix}/index"), get(legacy::index))
        .route(&format!("{prefix}/download"), get(legacy::download))
        .route(&format!("{prefix}/upload"), post(legacy::upload))
        .route(
            &format!("{prefix}/delete"),
            post(legacy::delete).layer(DefaultBodyLimit::max(v1::SMALL_BODY_LIMIT)),
        )
        .route(&format!("{prefix}/logs"), get(legacy::logs))
}

/// `GET /v1/whoami`: the token's name and scope, and the hub's identity.
async fn whoami(
    axum::extract::State(hub): axum::extract::State<Arc<Hub>>,
    axum::Extension(caller): axum::Extension<Caller>,
) -> axum::Json<WhoAmI> {
    axum::Json(WhoAmI {
        token: caller.token_name,
        scope: caller.scope,
        hub_id: hub.access.hub_id.clone(),
    })
}

/// A path for messages and logs, with the token of `/t/<token>/…` hidden.
fn redact_path_token(path: &str) -> String {
    match path.strip_prefix("/t/") {
        Some(rest) => match rest.split_once('/') {
            Some((_token, tail)) => format!("/t/<token>/{tail}"),
            None => "/t/<token>".to_owned(),
        },
        None => path.to_owned(),
    }
}

/// A panicking handler answers 500 `internal` and the hub keeps serving.
fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::panicked(panic.as_ref()).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use sf_protocol::v1::{ErrorBody, ErrorCode};
    use tower::ServiceExt;

    use super::*;

    /// The layer [`router`] puts around every route, around a handler that
    /// panics: the answer is a 500 `internal` error naming the panic, not a
    /// storage error.
    #[tokio::test]
    async fn a_panicking_handler_answers_internal_not_storage() {
        async fn boom() -> &'static str {
            panic!("the handler's own bug")
        }
        let app = Router::new()
            .route("/boom", get(boom))
            .layer(CatchPanicLayer::custom(panic_response));
        let request = Request::get("/boom").body(Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: ErrorBody = serde_json::from_slice(&body).unwrap();
        assert_eq!(body.error, ErrorCode::Internal);
        assert!(
            body.detail.starts_with("internal error: ")
                && body.detail.contains("the handler's own bug")
                && !body.detail.contains("storage"),
            "{}",
            body.detail
        );
    }
}
