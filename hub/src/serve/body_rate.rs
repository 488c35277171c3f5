//! Cuts off request bodies that arrive slower than a minimum rate, so a
//! client trickling bytes cannot hold a connection (and a request slot)
//! for long.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The error a too-slow body ends with; handlers answer it as a bad request.
#[derive(Debug, thiserror::Error)]
#[error(
    "the request body arrived slower than {rate} bytes/s and was cut off; check the network \
     or raise the hub's --min-body-rate"
)]
pub struct TooSlow {
    rate: u64,
}

/// Replaces `request`'s body with one that fails once fewer than `rate`
/// bytes per second have arrived since `grace` after the start. `rate` 0
/// leaves the request alone.
pub fn limit(request: Request, rate: u64, grace: Duration) -> Request {
    if rate == 0 {
        return request;
    }
    let (parts, body) = request.into_parts();
    let start = Instant::now();
    let body = MinRate {
        inner: body,
        rate,
        received: 0,
        start,
        grace,
        timer: Box::pin(tokio::time::sleep_until(start + grace)),
    };
    Request::from_parts(parts, Body::new(body))
}

struct MinRate {
    inner: Body,
    rate: u64,
    received: u64,
    start: Instant,
    grace: Duration,
    timer: Pin<Box<Sleep>>,
}

impl MinRate {
    /// When the bytes received so far stop being enough.
    fn deadline(&self) -> Instant {
        let earned = Duration::from_secs_f64(self.received as f64 / self.rate as f64);
        self.start + self.grace + earned
    }
}

impl http_body::Body for MinRate {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(other) => Poll::Ready(other),
            Poll::Pending => {
                let deadline = this.deadline();
                this.timer.as_mut().reset(deadline);
                match this.timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        Poll::Ready(Some(Err(axum::Error::new(TooSlow { rate: this.rate }))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use http_body_util::BodyExt;

    fn trickle(pieces: usize, every: Duration) -> Request {
        let stream = futures_util::stream::iter(0..pieces).then(move |_| async move {
            tokio::time::sleep(every).await;
            Ok::<_, std::io::Error>(Bytes::from_static(b"x"))
        });
        Request::new(Body::from_stream(stream))
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_is_cut_off_after_the_grace_period() {
        let request = limit(
            trickle(1000, Duration::from_secs(1)),
            100,
            Duration::from_secs(5),
        );
        let err = request.into_body().collect().await.unwrap_err();
        assert!(err.to_string().contains("slower than 100 bytes/s"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_body_passes() {
        let request = limit(
            trickle(50, Duration::from_millis(1)),
            100,
            Duration::from_secs(5),
        );
        let body = request.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body.len(), 50);
    }
}
