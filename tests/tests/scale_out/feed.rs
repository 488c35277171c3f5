//! What the push tests use to watch a hub and to write through another:
//! a `/v1/ws` client that stamps every `change` frame with the moment it
//! arrived ([`PushClient`]), a commit through the v1 HTTP API as an agent
//! makes one ([`commit_file`]), and percentiles of the measured delays.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sf_protocol::chunking::Chunker;
use sf_protocol::v1::{CommitRequest, Entry, EntryKind, WsFrame, decode_ws_frame};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A hang guard for one frame or one request, not a speed check.
pub const FRAME_DEADLINE: Duration = Duration::from_secs(30);

/// A `change` frame, stamped when the socket delivered it.
#[derive(Debug)]
pub struct Arrival {
    pub seq: u64,
    pub path: String,
    pub at: Instant,
}

/// A WebSocket client of one hub's `/v1/ws`. A task reads the socket all
/// the time, so a frame's stamp does not depend on when the test looks.
pub struct PushClient {
    /// The head the `hello` frame named: changes above it follow.
    pub head: u64,
    /// The socket's URL, for messages.
    url: String,
    frames: mpsc::UnboundedReceiver<Result<Arrival, String>>,
    reader: tokio::task::JoinHandle<()>,
}

impl PushClient {
    /// Opens `/v1/ws` on the hub at `hub_url` (`http://…`) with `token`,
    /// as an agent does, and reads its `hello`.
    pub async fn connect(hub_url: &str, token: &str) -> PushClient {
        let url = format!("{}/v1/ws", hub_url.replacen("http://", "ws://", 1));
        let mut request = url.as_str().into_client_request().expect("a ws:// URL");
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {token}")
                .parse()
                .expect("a token is a header value"),
        );
        let (mut socket, _) =
            tokio::time::timeout(FRAME_DEADLINE, tokio_tungstenite::connect_async(request))
                .await
                .unwrap_or_else(|_| panic!("{url}: no handshake within {FRAME_DEADLINE:?}"))
                .unwrap_or_else(|e| panic!("{url}: {e}"));
        let head = loop {
            let message = tokio::time::timeout(FRAME_DEADLINE, socket.next())
                .await
                .unwrap_or_else(|_| panic!("{url}: no hello within {FRAME_DEADLINE:?}"))
                .unwrap_or_else(|| panic!("{url}: closed before its hello"))
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            if let Message::Text(text) = message {
                match decode_ws_frame(&text) {
                    Ok(WsFrame::Hello { head, .. }) => break head,
                    other => panic!("{url}: the first frame is {other:?}, not a hello"),
                }
            }
        };
        let (sender, frames) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            while let Some(message) = socket.next().await {
                let at = Instant::now();
                let event = match message {
                    Ok(Message::Text(text)) => match decode_ws_frame(&text) {
                        Ok(WsFrame::Change(entry)) => Ok(Arrival {
                            seq: entry.seq,
                            path: entry.path.as_str().to_owned(),
                            at,
                        }),
                        Ok(WsFrame::Wanted { .. } | WsFrame::Unknown) => continue,
                        Ok(hello @ WsFrame::Hello { .. }) => Err(format!("a second {hello:?}")),
                        Err(err) => Err(format!("a frame it cannot read: {err}")),
                    },
                    Ok(Message::Close(frame)) => Err(format!("the hub closed it: {frame:?}")),
                    Ok(_) => continue,
                    Err(err) => Err(format!("the socket failed: {err}")),
                };
                let end = event.is_err();
                if sender.send(event).is_err() || end {
                    return;
                }
            }
            let _ = sender.send(Err("the socket ended".into()));
        });
        PushClient {
            head,
            url,
            frames,
            reader,
        }
    }

    /// The next `change` frame; panics if the socket ends, or after `within`
    /// (a hang guard).
    pub async fn next(&mut self, within: Duration) -> Arrival {
        match tokio::time::timeout(within, self.frames.recv()).await {
            Ok(Some(Ok(arrival))) => arrival,
            Ok(Some(Err(why))) => panic!("{}: the WebSocket stopped: {why}", self.url),
            Ok(None) => panic!("{}: the WebSocket's reader stopped", self.url),
            Err(_) => panic!("{}: no change frame within {within:?}", self.url),
        }
    }

    /// Frames that have arrived and not been taken yet, without waiting.
    pub fn arrived(&mut self) -> Vec<Arrival> {
        let mut arrived = Vec::new();
        while let Ok(event) = self.frames.try_recv() {
            match event {
                Ok(arrival) => arrived.push(arrival),
                Err(why) => panic!("{}: the WebSocket stopped: {why}", self.url),
            }
        }
        arrived
    }
}

impl Drop for PushClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Commits `bytes` at the new path `path` on the hub at `hub_url` as the
/// v1 API is used: each chunk `PUT /v1/chunks/{hash}`, then `POST
/// /v1/commit`. Returns the hub's answer (with its seq) and when it came.
pub async fn commit_file(
    http: &reqwest::Client,
    hub_url: &str,
    path: &str,
    bytes: &[u8],
) -> (Entry, Instant) {
    let chunks: Vec<_> = Chunker::new(bytes)
        .map(|chunk| chunk.expect("chunking bytes in memory"))
        .collect();
    for chunk in &chunks {
        http.put(format!("{hub_url}/v1/chunks/{}", chunk.hash))
            .body(chunk.data.clone())
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .unwrap_or_else(|e| panic!("PUT chunk of {path} to {hub_url}: {e}"));
    }
    let request = CommitRequest {
        path: path.parse().expect("a valid path"),
        kind: EntryKind::File,
        base_version: 0,
        sha256: sf_protocol::Sha256Hex::of(bytes),
        size: bytes.len() as u64,
        mtime_ns: 1_700_000_000_000_000_000,
        executable: false,
        chunks: chunks.iter().map(|c| c.to_ref()).collect(),
        origin: "scale-out-test".into(),
    };
    let answer = http
        .post(format!("{hub_url}/v1/commit"))
        .json(&request)
        .send()
        .await
        .unwrap_or_else(|e| panic!("commit {path} on {hub_url}: {e}"));
    let at = Instant::now();
    let status = answer.status();
    let body = answer.bytes().await.expect("the commit's answer");
    assert!(
        status.is_success(),
        "commit {path} on {hub_url}: {status}: {}",
        String::from_utf8_lossy(&body)
    );
    let entry: Entry = serde_json::from_slice(&body).expect("the commit's answer is an entry");
    (entry, at)
}

/// `arrival - answered` in milliseconds; negative when the frame came
/// before the commit's HTTP answer.
pub fn delay_ms(answered: Instant, arrival: Instant) -> f64 {
    match arrival.checked_duration_since(answered) {
        Some(after) => after.as_secs_f64() * 1e3,
        None => -(answered.duration_since(arrival).as_secs_f64() * 1e3),
    }
}

/// The nearest-rank percentile `p` (0–100) of `values`.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
