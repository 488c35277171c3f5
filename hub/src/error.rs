//! Every way a request can fail, and the JSON body and status it answers with.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sf_protocol::Sha256Hex;
use sf_protocol::v1::{Entry, ErrorBody, ErrorCode};

use crate::db::{DbError, WriteError};
use crate::ingest::IngestError;
use crate::store::{ChunkReadError, PutError, StoreFull, VerifyError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidPath(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("base_version is not the current version; fetch the current entry and retry")]
    Conflict(Option<Box<Entry>>),
    #[error("{0}")]
    PathConflict(String),
    #[error("the hub does not hold {} of the listed chunks; upload them with PUT /v1/chunks/{{hash}} first", .0.len())]
    MissingChunks(Vec<Sha256Hex>),
    #[error("{0}")]
    ContentMismatch(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("range not satisfiable: the content is {0} bytes")]
    RangeNotSatisfiable(u64),
    #[error("{0}")]
    NotReady(String),
    /// The chunk store reached `--max-store-bytes`.
    #[error("{0}")]
    InsufficientStorage(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Busy(String),
    #[error("database error: {0}")]
    Database(#[from] DbError),
    #[error("storage error: {0}")]
    Storage(#[from] std::io::Error),
    /// A bug: a handler or its blocking work panicked. Not a storage error,
    /// so nobody goes looking at the disk.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        match self {
            ApiError::InvalidRequest(_) => (StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest),
            ApiError::InvalidPath(_) => (StatusCode::BAD_REQUEST, ErrorCode::InvalidPath),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            ApiError::MethodNotAllowed(_) => {
                (StatusCode::METHOD_NOT_ALLOWED, ErrorCode::InvalidRequest)
            }
            ApiError::Conflict(_) => (StatusCode::CONFLICT, ErrorCode::Conflict),
            ApiError::PathConflict(_) => (StatusCode::CONFLICT, ErrorCode::PathConflict),
            ApiError::MissingChunks(_) => (StatusCode::BAD_REQUEST, ErrorCode::MissingChunks),
            ApiError::ContentMismatch(_) => (StatusCode::BAD_REQUEST, ErrorCode::ContentMismatch),
            ApiError::PayloadTooLarge(_) => {
                (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge)
            }
            ApiError::RangeNotSatisfiable(_) => (
                StatusCode::RANGE_NOT_SATISFIABLE,
                ErrorCode::RangeNotSatisfiable,
            ),
            ApiError::NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::NotReady),
            ApiError::InsufficientStorage(_) => (
                StatusCode::INSUFFICIENT_STORAGE,
                ErrorCode::InsufficientStorage,
            ),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
            ApiError::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Busy),
            ApiError::Database(_) | ApiError::Storage(_) | ApiError::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal)
            }
        }
    }

    /// The JSON body this error answers with, for a batch's refused
    /// operation: the same `error`, `detail` and extra fields as the
    /// single route's answer.
    pub fn body(self) -> ErrorBody {
        let (_, error) = self.status_and_code();
        let detail = self.to_string();
        self.into_body(error, detail)
    }

    fn into_body(self, error: ErrorCode, detail: String) -> ErrorBody {
        let (current, missing) = match self {
            ApiError::Conflict(current) => (current.map(|c| *c), None),
            ApiError::MissingChunks(missing) => (None, Some(missing)),
            _ => (None, None),
        };
        ErrorBody {
            error,
            detail,
            current,
            missing,
        }
    }

    /// Whether the hub itself failed (database, storage, a bug, shutting
    /// down) rather than the request being refused: a batch then fails
    /// whole instead of refusing one operation.
    pub fn is_hub_failure(&self) -> bool {
        matches!(
            self,
            ApiError::Database(_)
                | ApiError::Storage(_)
                | ApiError::Internal(_)
                | ApiError::NotReady(_)
        )
    }

    /// A caught panic, from its payload: the panic message when it has one.
    pub fn panicked(payload: &(dyn std::any::Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("no message");
        ApiError::Internal(format!(
            "a bug in the hub panicked ({message}); this request failed, the hub keeps serving"
        ))
    }
}

/// Blocking work moved to its own thread (`spawn_blocking`) panicked, or the
/// runtime dropped it while shutting down.
impl From<tokio::task::JoinError> for ApiError {
    fn from(err: tokio::task::JoinError) -> Self {
        match err.try_into_panic() {
            Ok(payload) => ApiError::panicked(payload.as_ref()),
            Err(_) => ApiError::NotReady("the hub is shutting down".into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let detail = self.to_string();
        let range_size = match &self {
            ApiError::RangeNotSatisfiable(size) => Some(*size),
            _ => None,
        };
        let extra_header = match &self {
            // RFC 6750: tell the client which scheme to use.
            ApiError::Unauthorized(_) => Some((
                header::WWW_AUTHENTICATE,
                r#"Bearer realm="synced-folder""#.to_owned(),
            )),
            ApiError::Busy(_) => Some((header::RETRY_AFTER, "1".to_owned())),
            _ => None,
        };
        let body = Json(self.into_body(error, detail));
        match (range_size, extra_header) {
            (Some(size), _) => (
                status,
                [(header::CONTENT_RANGE, format!("bytes */{size}"))],
                body,
            )
                .into_response(),
            (None, Some(extra)) => (status, [extra], body).into_response(),
            (None, None) => (status, body).into_response(),
        }
    }
}

/// Serde's message for a bad path carries the path rule's wording; report
/// such failures as `invalid_path` so clients can tell them apart.
fn classify_body_error(detail: String) -> ApiError {
    if detail.contains(sf_protocol::path::PATH_ERROR_PREFIX) {
        ApiError::InvalidPath(detail)
    } else {
        ApiError::InvalidRequest(detail)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::PayloadTooLarge(rejection.body_text());
        }
        classify_body_error(rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        classify_body_error(rejection.body_text())
    }
}

impl From<WriteError> for ApiError {
    fn from(err: WriteError) -> Self {
        match err {
            WriteError::Conflict(current) => ApiError::Conflict(current),
            err @ WriteError::PathConflict { .. } => ApiError::PathConflict(err.to_string()),
            WriteError::Db(db) => ApiError::Database(db),
        }
    }
}

impl From<VerifyError> for ApiError {
    fn from(err: VerifyError) -> Self {
        match err {
            VerifyError::Missing(missing) => ApiError::MissingChunks(missing),
            VerifyError::Io(io) => ApiError::Storage(io),
            other => ApiError::ContentMismatch(other.to_string()),
        }
    }
}

impl From<ChunkReadError> for ApiError {
    fn from(err: ChunkReadError) -> Self {
        match err {
            ChunkReadError::Missing(hash) => ApiError::NotReady(format!(
                "chunk {hash} of this content is missing from the hub's store; the hub asks \
                 agents for a copy: retry later, or tell the hub's operator (sf-hub check)"
            )),
            ChunkReadError::Damaged { .. } => ApiError::NotReady(format!(
                "{err}; retry later, or tell the hub's operator (sf-hub check)"
            )),
            ChunkReadError::Io { source, .. } => ApiError::Storage(source),
        }
    }
}

impl From<PutError> for ApiError {
    fn from(err: PutError) -> Self {
        match err {
            PutError::HashMismatch { .. } => ApiError::ContentMismatch(err.to_string()),
            PutError::TooLarge { .. } => ApiError::PayloadTooLarge(err.to_string()),
            PutError::Body(_) | PutError::Empty => ApiError::InvalidRequest(err.to_string()),
            PutError::Full(_) => ApiError::InsufficientStorage(err.to_string()),
            PutError::Io(io) => ApiError::Storage(io),
            PutError::Worker(worker) => worker.into(),
        }
    }
}

impl From<StoreFull> for ApiError {
    fn from(err: StoreFull) -> Self {
        ApiError::InsufficientStorage(err.to_string())
    }
}

impl From<IngestError> for ApiError {
    fn from(err: IngestError) -> Self {
        match err {
            IngestError::TooLarge { .. } => ApiError::PayloadTooLarge(err.to_string()),
            IngestError::Read(_) => ApiError::InvalidRequest(err.to_string()),
            IngestError::Full(_) => ApiError::InsufficientStorage(err.to_string()),
            IngestError::Store(io) => ApiError::Storage(io),
            IngestError::Worker(worker) => worker.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch's refusals carry no status; clients take it from the code
    /// (`ErrorCode::http_status`), which must be what the single routes
    /// answer. (A wrong method is the one code with two statuses.)
    #[test]
    fn statuses_are_the_ones_clients_derive_from_codes() {
        let errors = [
            ApiError::InvalidRequest(String::new()),
            ApiError::InvalidPath(String::new()),
            ApiError::NotFound(String::new()),
            ApiError::Conflict(None),
            ApiError::PathConflict(String::new()),
            ApiError::MissingChunks(Vec::new()),
            ApiError::ContentMismatch(String::new()),
            ApiError::PayloadTooLarge(String::new()),
            ApiError::RangeNotSatisfiable(0),
            ApiError::NotReady(String::new()),
            ApiError::InsufficientStorage(String::new()),
            ApiError::Unauthorized(String::new()),
            ApiError::Forbidden(String::new()),
            ApiError::Busy(String::new()),
            ApiError::Internal(String::new()),
        ];
        for err in errors {
            let (status, code) = err.status_and_code();
            assert_eq!(status.as_u16(), code.http_status(), "{err:?}");
        }
        let (status, code) = ApiError::MethodNotAllowed(String::new()).status_and_code();
        assert_eq!((status.as_u16(), code), (405, ErrorCode::InvalidRequest));
    }

    async fn panicked_blocking_work() -> tokio::task::JoinError {
        tokio::task::spawn_blocking(|| panic!("a bug in blocking work"))
            .await
            .unwrap_err()
    }

    /// A panic on a blocking thread reaches the client as `internal` with its
    /// message, whichever layer (service, chunk store, legacy ingest) saw it.
    #[tokio::test]
    async fn a_panic_in_blocking_work_is_an_internal_error() {
        let cases = [
            ("service", ApiError::from(panicked_blocking_work().await)),
            (
                "store",
                ApiError::from(PutError::from(panicked_blocking_work().await)),
            ),
            (
                "ingest",
                ApiError::from(IngestError::Worker(panicked_blocking_work().await)),
            ),
        ];
        for (layer, err) in cases {
            assert!(matches!(err, ApiError::Internal(_)), "{layer}: {err:?}");
            assert_eq!(
                err.status_and_code(),
                (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
                "{layer}"
            );
            let detail = err.to_string();
            assert!(
                detail.starts_with("internal error: ") && detail.contains("a bug in blocking work"),
                "{layer}: {detail}"
            );
        }
    }
}
