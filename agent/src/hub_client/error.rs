//! How a call to the hub fails ([`HubError`]), and reading the hub's error
//! answers and WebSocket failures into it.

use reqwest::StatusCode;
use sf_protocol::v1::{ErrorBody, ErrorCode};
use tokio_tungstenite::tungstenite;

use crate::credentials::TokenRefused;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The hub could not be reached or the connection broke: retry later with backoff.
    #[error("the hub is unreachable: {0}")]
    Unreachable(#[source] reqwest::Error),
    /// The hub answered with an error body (4xx/5xx) other than the cases
    /// the call maps to an outcome (boxed to keep `Result`s small). A 5xx answer without a hub error body (a
    /// proxy's page) is reported here too, with a made-up `internal` body.
    #[error("the hub refused the request (HTTP {status} {:?}): {}", body.error, body.detail)]
    Refused { status: u16, body: Box<ErrorBody> },
    /// The hub's answer does not have the expected shape.
    #[error("unexpected answer from the hub: {0}")]
    Protocol(String),
    /// An answer stopped short (the connection broke, or the hub lost a
    /// chunk while sending it): ask again later.
    #[error("the hub's answer stopped short: {0}")]
    Interrupted(String),
    /// Reading the local file failed.
    #[error("local I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The WebSocket could not be opened, broke, or went silent: reconnect
    /// later with backoff.
    #[error("the hub WebSocket failed: {0}")]
    WebSocket(#[source] Box<tungstenite::Error>),
    /// The TLS handshake with an `https://` hub (a request or the `wss://`
    /// socket) failed: the certificate was rejected,
    /// the other side does not speak TLS, or it aborted the handshake. The
    /// message says what failed and what to do. Retryable (the hub's
    /// certificate may be fixed meanwhile), but usually needs someone to act.
    #[error("TLS with the hub failed: {0}")]
    Tls(String),
    /// The hub URL or the client set-up is unusable; retrying cannot help.
    #[error("invalid hub client configuration: {0}")]
    Config(String),
    /// The hub refused the token (401, or a WebSocket closed because the
    /// token was revoked): retrying with the same token cannot help.
    #[error(transparent)]
    Unauthorized(TokenRefused),
}

impl HubError {
    /// True when the same request may succeed later: the hub was unreachable,
    /// the connection broke, or it answered 5xx (or 408/429).
    pub fn is_retryable(&self) -> bool {
        match self {
            HubError::Unreachable(_)
            | HubError::Interrupted(_)
            | HubError::WebSocket(_)
            | HubError::Tls(_) => true,
            HubError::Refused { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            HubError::Protocol(_)
            | HubError::Io(_)
            | HubError::Config(_)
            | HubError::Unauthorized(_) => false,
        }
    }

    /// True when the hub did not answer, or answered that it cannot serve
    /// now: the connection was refused, reset or timed out, the TLS
    /// handshake failed, or the answer was 502, 503 (`not_ready`) or 504
    /// (a proxy in front of a dead hub, or a hub without its database).
    /// Then another hub given with `--hub` may do (see `endpoints`).
    /// Every other answer (401, 403, 409, 500, …) came from a hub that
    /// works: the agent stays with it.
    pub fn means_hub_gone(&self) -> bool {
        match self {
            HubError::Unreachable(_) | HubError::WebSocket(_) | HubError::Tls(_) => true,
            HubError::Refused { status, body } => {
                is_gone_status(*status) || body.error == ErrorCode::NotReady
            }
            // An answer cut short may be the hub dying or one lost chunk:
            // the next request tells.
            HubError::Interrupted(_)
            | HubError::Protocol(_)
            | HubError::Io(_)
            | HubError::Config(_)
            | HubError::Unauthorized(_) => false,
        }
    }

    /// True for a 403 `forbidden`: the token may not change anything (a
    /// read-only token).
    pub fn is_forbidden(&self) -> bool {
        matches!(self, HubError::Refused { status: 403, body } if body.error == ErrorCode::Forbidden)
    }

    /// The hub's error code, when it answered with an error body.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            HubError::Refused { body, .. } => Some(body.error),
            _ => None,
        }
    }
}

/// An HTTP status that says the hub cannot serve now (see
/// [`HubError::means_hub_gone`]).
pub(super) fn is_gone_status(status: u16) -> bool {
    matches!(status, 502..=504)
}

/// `err` and its causes, for the log line of a switch to another hub
/// (reqwest's own message stops at "error sending request").
pub(super) fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some errors repeat their source's message in their own.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

pub(super) fn refusal_from(status: StatusCode, body: &[u8]) -> HubError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(parsed) => HubError::Refused {
            status: status.as_u16(),
            body: Box::new(parsed),
        },
        // Not the hub's own answer (a proxy or load balancer in between):
        // keep 5xx retryable, call anything else a protocol error.
        Err(_) if status.is_server_error() => HubError::Refused {
            status: status.as_u16(),
            body: Box::new(ErrorBody {
                error: if status == StatusCode::SERVICE_UNAVAILABLE {
                    ErrorCode::NotReady
                } else {
                    ErrorCode::Internal
                },
                detail: format!("HTTP {status} without a hub error body: {}", snippet(body)),
                current: None,
                missing: None,
            }),
        },
        Err(_) => HubError::Protocol(format!(
            "HTTP {status} without a hub error body: {}",
            snippet(body)
        )),
    }
}

pub(super) fn ws_error(err: tungstenite::Error) -> HubError {
    match err {
        // The upgrade was refused with an HTTP answer, e.g. `400 invalid_request`.
        tungstenite::Error::Http(response) => {
            let status = response.status();
            refusal_from(status, response.body().as_deref().unwrap_or_default())
        }
        // An unusable URL (unsupported scheme, no host name).
        tungstenite::Error::Url(err) => {
            HubError::Config(format!("cannot open the WebSocket: {err}"))
        }
        other => HubError::WebSocket(Box::new(other)),
    }
}

pub(super) fn ws_timeout(what: String) -> HubError {
    HubError::WebSocket(Box::new(tungstenite::Error::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        what,
    ))))
}

/// The start of a body, for error messages.
pub(super) fn snippet(body: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]).into_owned();
    if body.len() > MAX {
        format!("{text}…")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_map_to_refusals_and_retryability() {
        let conflict = br#"{"error":"conflict","detail":"stale","current":null}"#;
        match refusal_from(StatusCode::CONFLICT, conflict) {
            HubError::Refused { status: 409, body } => {
                assert_eq!(body.error, ErrorCode::Conflict);
                assert!(body.current.is_none());
            }
            other => panic!("{other:?}"),
        }
        let internal = refusal_from(
            StatusCode::INTERNAL_SERVER_ERROR,
            br#"{"error":"internal","detail":"db"}"#,
        );
        assert!(internal.is_retryable());
        assert_eq!(internal.code(), Some(ErrorCode::Internal));

        // A proxy's HTML page: 5xx stays retryable, 4xx is a protocol error.
        let gateway = refusal_from(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>");
        assert!(gateway.is_retryable(), "{gateway:?}");
        let unavailable = refusal_from(StatusCode::SERVICE_UNAVAILABLE, b"");
        assert_eq!(unavailable.code(), Some(ErrorCode::NotReady));
        let not_found = refusal_from(StatusCode::NOT_FOUND, b"<html>nope</html>");
        assert!(matches!(not_found, HubError::Protocol(_)), "{not_found:?}");
        assert!(!not_found.is_retryable());

        let bad = refusal_from(
            StatusCode::BAD_REQUEST,
            br#"{"error":"invalid_path","detail":"invalid path"}"#,
        );
        assert!(!bad.is_retryable());
        assert!(!HubError::Io(std::io::Error::other("x")).is_retryable());
        assert!(ws_timeout("quiet".into()).is_retryable());
    }

    fn refused(status: u16, code: ErrorCode) -> HubError {
        HubError::Refused {
            status,
            body: Box::new(ErrorBody {
                error: code,
                detail: String::new(),
                current: None,
                missing: None,
            }),
        }
    }

    /// Which failures send the agent to the next hub: only those where
    /// the hub did not answer, or answered that it cannot serve.
    #[test]
    fn only_a_hub_that_does_not_answer_is_left() {
        let refused_token = HubError::Unauthorized(TokenRefused {
            token: crate::credentials::TokenSource::Env,
            detail: "HTTP 401".into(),
        });
        let table = [
            (ws_timeout("opening took too long".into()), true),
            (
                ws_error(tungstenite::Error::Io(std::io::Error::from(
                    std::io::ErrorKind::ConnectionRefused,
                ))),
                true,
            ),
            (HubError::Tls("certificate expired".into()), true),
            (refused(503, ErrorCode::NotReady), true),
            (refusal_from(StatusCode::BAD_GATEWAY, b"<html>"), true),
            (refusal_from(StatusCode::SERVICE_UNAVAILABLE, b""), true),
            (refusal_from(StatusCode::GATEWAY_TIMEOUT, b""), true),
            // The hub answered: stay with it.
            (refused(500, ErrorCode::Internal), false),
            (refused(409, ErrorCode::Conflict), false),
            (refused(403, ErrorCode::Forbidden), false),
            (refused(429, ErrorCode::Internal), false),
            (refused_token, false),
            (HubError::Protocol("not JSON".into()), false),
            (HubError::Interrupted("cut short".into()), false),
            (HubError::Io(std::io::Error::other("disk")), false),
            (HubError::Config("bad URL".into()), false),
        ];
        for (err, gone) in table {
            assert_eq!(err.means_hub_gone(), gone, "{err:?}");
        }
    }

    #[test]
    fn causes_are_spelt_out_once() {
        let inner = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let err = HubError::WebSocket(Box::new(tungstenite::Error::Io(inner)));
        let text = with_causes(&err);
        assert!(text.starts_with("the hub WebSocket failed"), "{text}");
        assert_eq!(text.matches("connection refused").count(), 1, "{text}");
    }

    #[test]
    fn snippets_are_bounded() {
        assert_eq!(snippet(b"short"), "short");
        let long = vec![b'a'; 1000];
        assert_eq!(snippet(&long).chars().count(), 201);
    }
}
