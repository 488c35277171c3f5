//! `GET /v1/ws`: pushes every committed change to connected agents.
//!
//! Each socket has its own task reading a broadcast channel, so a slow client
//! never blocks commits or other clients: when it falls more than
//! `WS_MAX_LAG` changes behind, or a send stalls, the hub closes it with a
//! reason and the agent catches up through `/v1/changes`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::{IntoResponse, Response};
use sf_protocol::v1::{WS_CLOSE_LAGGED, WsFrame};
use tokio::sync::broadcast::error::RecvError;

use crate::error::ApiError;
use crate::service::Hub;

/// A send that takes longer than this means the client stopped reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Keeps idle connections alive through proxies and detects dead peers.
const PING_INTERVAL: Duration = Duration::from_secs(30);

pub async fn subscribe(
    State(hub): State<Arc<Hub>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match upgrade {
        Ok(upgrade) => upgrade.on_upgrade(move |socket| serve(hub, socket)),
        Err(rejection) => ApiError::InvalidRequest(format!(
            "/v1/ws is a WebSocket endpoint: {}",
            rejection.body_text()
        ))
        .into_response(),
    }
}

async fn serve(hub: Arc<Hub>, mut socket: WebSocket) {
    hub.metrics.websocket_clients.add(1, &[]);
    let reason = push_changes(&hub, &mut socket).await;
    hub.metrics.websocket_clients.add(-1, &[]);
    if let Some((code, reason)) = reason {
        tracing::debug!(code, reason, "closing websocket");
        let close = Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        let _ = tokio::time::timeout(SEND_TIMEOUT, socket.send(close)).await;
    }
}

/// Runs until the socket ends; returns the close frame to send, if any.
async fn push_changes(hub: &Hub, socket: &mut WebSocket) -> Option<(u16, &'static str)> {
    // Subscribe before reading head: a change committed in between arrives
    // on the channel and is skipped below rather than lost.
    let mut changes = hub.subscribe();
    let head = match hub.db.head().await {
        Ok(head) => head,
        Err(err) => {
            tracing::error!(error = %err, "websocket: cannot read head");
            return Some((close_code::ERROR, "hub database unavailable; retry later"));
        }
    };
    if !send(socket, &WsFrame::Hello { head }).await {
        return None;
    }
    let mut shutdown = hub.shutdown_signal();
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.tick().await;
    loop {
        tokio::select! {
            change = changes.recv() => match change {
                Ok(entry) if entry.seq <= head => {}
                Ok(entry) => {
                    if !send(socket, &WsFrame::Change(entry)).await {
                        return Some((close_code::POLICY, "send timed out; catch up with /v1/changes"));
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    hub.metrics.websocket_lagged.add(1, &[]);
                    return Some((WS_CLOSE_LAGGED, "too far behind; catch up with /v1/changes and reconnect"));
                }
                Err(RecvError::Closed) => return Some((close_code::AWAY, "hub shutting down")),
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {} // pings are answered by axum; nothing else is expected
            },
            _ = ping.tick() => {
                if !matches!(
                    tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Ping(Default::default()))).await,
                    Ok(Ok(()))
                ) {
                    return None;
                }
            }
            () = stopping(&mut shutdown) => {
                return Some((close_code::AWAY, "hub shutting down"));
            }
        }
    }
}

async fn stopping(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    // Only completion matters; the borrowed value must not live across awaits.
    let _ = shutdown.wait_for(|stopping| *stopping).await.is_ok();
}

async fn send(socket: &mut WebSocket, frame: &WsFrame) -> bool {
    let text = serde_json::to_string(frame).expect("frames serialise");
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(text.into()))).await,
        Ok(Ok(()))
    )
}
