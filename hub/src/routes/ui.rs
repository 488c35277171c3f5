//! The hub's web page: its files, embedded in the binary (no build step, no
//! separate server), and its sign-in (`/ui/session`), which exchanges a
//! token for a session cookie (see `crate::auth::session`).
//!
//! The page is plain HTML, CSS and JavaScript modules without a framework:
//! a few hundred lines each need no toolchain, and there is nothing to
//! rebuild or audit but what is committed. Every response carries a strict Content
//! Security Policy (same-origin scripts only, no inline code, no framing).

use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use sf_protocol::v1::{Scope, SessionInfo, SessionRequest};

use super::extract::Json;
use crate::auth::session::{cross_site, forwarded_https};
use crate::auth::token::Secret;
use crate::error::ApiError;
use crate::service::Hub;

/// The page's policy: nothing from elsewhere, nothing inline, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

/// One embedded file of the page.
pub struct Asset {
    body: &'static str,
    content_type: &'static str,
}

const fn script(body: &'static str) -> Asset {
    Asset {
        body,
        content_type: "text/javascript; charset=utf-8",
    }
}

/// The page's files, by path: `routes::router` gives each one its route.
/// Any other path under `/ui/` is the hub's JSON 404.
pub const ASSETS: &[(&str, Asset)] = &[
    (
        "/ui/",
        Asset {
            body: include_str!("../../ui/index.html"),
            content_type: "text/html; charset=utf-8",
        },
    ),
    (
        "/ui/app.css",
        Asset {
            body: include_str!("../../ui/app.css"),
            content_type: "text/css; charset=utf-8",
        },
    ),
    (
        "/ui/icon.svg",
        Asset {
            body: include_str!("../../ui/icon.svg"),
            content_type: "image/svg+xml",
        },
    ),
    // The script's modules: app.js is the page's entry point and imports
    // the rest.
    ("/ui/app.js", script(include_str!("../../ui/app.js"))),
    ("/ui/api.js", script(include_str!("../../ui/api.js"))),
    ("/ui/state.js", script(include_str!("../../ui/state.js"))),
    ("/ui/dom.js", script(include_str!("../../ui/dom.js"))),
    (
        "/ui/messages.js",
        script(include_str!("../../ui/messages.js")),
    ),
    ("/ui/files.js", script(include_str!("../../ui/files.js"))),
    ("/ui/edits.js", script(include_str!("../../ui/edits.js"))),
    (
        "/ui/history.js",
        script(include_str!("../../ui/history.js")),
    ),
    (
        "/ui/conflicts.js",
        script(include_str!("../../ui/conflicts.js")),
    ),
    (
        "/ui/activity.js",
        script(include_str!("../../ui/activity.js")),
    ),
    ("/ui/live.js", script(include_str!("../../ui/live.js"))),
];

/// `GET /`: the page lives under `/ui/`.
pub async fn root() -> Redirect {
    Redirect::to("/ui/")
}

/// One of [`ASSETS`], with the page's security headers.
pub fn serve(asset: &Asset) -> Response {
    let mut response = (StatusCode::OK, asset.body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    security_headers(headers);
    // Small files: always ask, so a new hub's page is never mixed with an
    // old script.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// `POST /ui/session`: signs in with a token; sets the session cookie.
pub async fn sign_in(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Json(request): Json<SessionRequest>,
) -> Result<Response, ApiError> {
    let auth = &hub.access.auth;
    if cross_site(&headers) {
        return Err(ApiError::Forbidden(
            "a sign-in requested by a page of another site is refused".into(),
        ));
    }
    if !auth.enabled() {
        return Ok(axum::Json(open_session()).into_response());
    }
    let caller = auth
        .authenticate(&request.token)
        .await
        .map_err(|err| match err {
            // The agents' wording speaks of token files; a person pasted it.
            ApiError::Unauthorized(_) if Secret::parse(&request.token).is_none() => {
                ApiError::Unauthorized(
                    "that is not a whole access token (they are sft_ and 43 more characters): \
                     paste all of it, or make one with sf-hub token create NAME"
                        .into(),
                )
            }
            ApiError::Unauthorized(_) => ApiError::Unauthorized(
                "the hub does not know this token, or it was revoked; ask the hub's operator \
                 for one (sf-hub token create NAME)"
                    .into(),
            ),
            other => other,
        })?;
    // A new sign-in replaces the one this browser had.
    auth.end_session(&headers).await?;
    let over_tls = forwarded_https(&headers);
    let started = auth.start_session(&caller, over_tls).await?;
    tracing::info!(
        token = caller.token_name.as_deref().unwrap_or_default(),
        "web page signed in"
    );
    let info = SessionInfo {
        auth: true,
        token_name: caller.token_name,
        scope: caller.scope,
        csrf: started.csrf,
    };
    let mut response = axum::Json(info).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, started.cookie);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /ui/session`: who the page is signed in as, and its anti-forgery
/// secret; 401 when not signed in.
pub async fn current(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let auth = &hub.access.auth;
    let info = if auth.enabled() {
        let signed_in = auth.session(&headers).await?;
        SessionInfo {
            auth: true,
            token_name: signed_in.caller.token_name,
            scope: signed_in.caller.scope,
            csrf: signed_in.csrf,
        }
    } else {
        open_session()
    };
    let mut response = axum::Json(info).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `DELETE /ui/session`: signs out (the session ends on every hub).
pub async fn sign_out(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let auth = &hub.access.auth;
    if auth.enabled() && auth.session_cookie(&headers).is_some() {
        if cross_site(&headers) || !auth.session_allows_change(&headers).await? {
            return Err(ApiError::Forbidden(
                "signing out needs the page's X-SF-CSRF header; reload the page and sign out \
                 there"
                    .into(),
            ));
        }
        auth.end_session(&headers).await?;
    }
    let secure = auth.serves_tls() || forwarded_https(&headers);
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, auth.clearing_cookie(secure));
    Ok(response)
}

/// The page's session under `--no-auth`: no sign-in, write access, and a
/// per-process anti-forgery value the page sends like a signed-in one.
fn open_session() -> SessionInfo {
    static CSRF: OnceLock<String> = OnceLock::new();
    SessionInfo {
        auth: false,
        token_name: None,
        scope: Scope::Write,
        csrf: CSRF
            .get_or_init(|| hex::encode(rand::random::<[u8; 16]>()))
            .clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::ASSETS;

    fn served(path: &str) -> bool {
        ASSETS.iter().any(|(served, _)| *served == path)
    }

    /// A file added under `hub/ui/`, or a module a script imports, needs
    /// its line in [`ASSETS`]: without it the page would not load.
    #[test]
    fn every_file_of_the_page_and_every_imported_module_is_served() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
        for file in std::fs::read_dir(&dir).unwrap() {
            let name = file.unwrap().file_name().into_string().unwrap();
            let path = if name == "index.html" {
                "/ui/".to_owned()
            } else {
                format!("/ui/{name}")
            };
            assert!(served(&path), "{name} is in hub/ui/ but not in ASSETS");
        }
        let scripts = ASSETS
            .iter()
            .filter(|(_, asset)| asset.content_type.starts_with("text/javascript"));
        for (path, asset) in scripts {
            for imported in asset.body.split(" from './").skip(1) {
                let name = imported.split('\'').next().unwrap();
                assert!(
                    served(&format!("/ui/{name}")),
                    "{path} imports {name}, which is not served"
                );
            }
        }
    }
}
