//! Every way a request can fail, and the JSON body and status it answers with.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sf_protocol::Sha256Hex;
use sf_protocol::v1::{Entry, ErrorBody, ErrorCode};

use crate::db::{DbError, WriteError};
use crate::ingest::IngestError;
use crate::store::{PutError, StoreFull, VerifyError};

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
            ApiError::Database(_) | ApiError::Storage(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal)
            }
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
        let (current, missing) = match self {
            ApiError::Conflict(current) => (current.map(|c| *c), None),
            ApiError::MissingChunks(missing) => (None, Some(missing)),
            _ => (None, None),
        };
        let body = Json(ErrorBody {
            error,
            detail,
            current,
            missing,
        });
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

impl From<PutError> for ApiError {
    fn from(err: PutError) -> Self {
        match err {
            PutError::HashMismatch { .. } => ApiError::ContentMismatch(err.to_string()),
            PutError::TooLarge { .. } => ApiError::PayloadTooLarge(err.to_string()),
            PutError::Body(_) | PutError::Empty => ApiError::InvalidRequest(err.to_string()),
            PutError::Full(_) => ApiError::InsufficientStorage(err.to_string()),
            PutError::Io(io) => ApiError::Storage(io),
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
        }
    }
}
