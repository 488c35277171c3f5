//! Streaming stored content out: whole files, byte ranges, single chunks.
//! Bytes flow from chunk files to the socket without being gathered, and
//! every byte sent is counted.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use sf_protocol::range::{RangeRequest, parse_range};
use sf_protocol::v1::Entry;

use crate::error::ApiError;
use crate::service::Hub;

/// A response streaming `entry`'s content, honouring a `Range` header when
/// `ranges` is true (the legacy download always sends the whole file).
pub async fn file_response(
    hub: &Arc<Hub>,
    entry: &Entry,
    headers: &HeaderMap,
    ranges: bool,
) -> Result<Response, ApiError> {
    let size = entry.size;
    let chunks = entry.chunks.as_deref().unwrap_or_default();
    let requested = if ranges {
        headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .map(|raw| parse_range(raw, size))
    } else {
        None
    };
    let (status, start, end) = match requested {
        None | Some(RangeRequest::Ignored) => (StatusCode::OK, 0, size),
        Some(RangeRequest::Unsatisfiable) => return Err(ApiError::RangeNotSatisfiable(size)),
        Some(RangeRequest::Bytes(start, end)) => (StatusCode::PARTIAL_CONTENT, start, end),
    };
    let stream = hub.store.read_range(chunks, start, end).await?;
    let mut response = (status, Body::from_stream(counted(hub, stream))).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if let Some(sha) = entry.sha256 {
        h.insert(
            header::ETAG,
            HeaderValue::from_str(&format!("\"{sha}\"")).expect("hex is a valid header"),
        );
    }
    if ranges {
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    if status == StatusCode::PARTIAL_CONTENT {
        let value = format!("bytes {start}-{}/{size}", end - 1);
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&value).expect("ascii"),
        );
    }
    Ok(response)
}

/// Counts bytes as they leave.
pub fn counted<S, E>(
    hub: &Arc<Hub>,
    stream: S,
) -> impl Stream<Item = Result<bytes::Bytes, E>> + Send + 'static
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Send + 'static,
{
    let metrics = Arc::clone(&hub.metrics);
    stream.inspect(move |frame| {
        if let Ok(bytes) = frame {
            metrics.bytes_sent.add(bytes.len() as u64, &[]);
        }
    })
}
