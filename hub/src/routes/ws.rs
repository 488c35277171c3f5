//! `GET /v1/ws`: pushes every committed change to connected agents.
//!
//! Each socket has its own task reading a broadcast channel, so a slow client
//! never blocks commits or other clients: when it falls more than
//! `WS_MAX_LAG` changes behind, or a send stalls, the hub closes it with a
//! reason and the agent catches up through `/v1/changes`.
//!
//! A socket is closed with [`WS_CLOSE_REVOKED`] as soon as the token it was
//! opened with is revoked, or the web page's session it was opened with
//! ends. An upgrade from a web page of another site is
//! refused (cross-site WebSocket hijacking: browsers send cookies and the
//! page's `Origin`, never a bearer token, but a hub behind a cookie-setting
//! proxy must still not be readable from any page), and clients may send
//! only small control messages.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use sf_protocol::v1::{ConnectedClient, Scope, WS_CLOSE_LAGGED, WS_CLOSE_REVOKED, WsFrame};
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::service::Hub;

/// Clients send nothing but pongs and a close; anything larger is refused.
const MAX_CLIENT_MESSAGE: usize = 4 * 1024;

/// A send that takes longer than this means the client stopped reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Keeps idle connections alive through proxies and detects dead peers.
const PING_INTERVAL: Duration = Duration::from_secs(30);
/// Change frames written together at most.
const MAX_BURST: usize = 256;

/// The header an agent names itself in when it opens the socket.
const AGENT_HEADER: &str = "x-sf-agent";

pub async fn subscribe(
    State(hub): State<Arc<Hub>>,
    Extension(caller): Extension<Caller>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if let Err(refusal) = check_origin(&headers) {
        return refusal.into_response();
    }
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            return ApiError::InvalidRequest(format!(
                "/v1/ws is a WebSocket endpoint: {}",
                rejection.body_text()
            ))
            .into_response();
        }
    };
    let Ok(permit) = Arc::clone(&hub.access.websockets).try_acquire_owned() else {
        return ApiError::Busy(
            "the hub has as many WebSocket clients as it allows (--max-websockets); retry later"
                .into(),
        )
        .into_response();
    };
    let client = ConnectedClient {
        token: caller.token_name.clone(),
        agent: client_name(&headers),
        address: peer.map(|Extension(ConnectInfo(addr))| addr.to_string()),
        connected_ms: crate::db::now_ms(),
    };
    upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| {
            let present = hub.access.presence.join(client);
            async move {
                serve(hub, caller, permit, socket).await;
                drop(present);
            }
        })
}

/// What the client calls itself: an agent's `X-SF-Agent` (printable, at
/// most 64 bytes), or `web` for a browser (it sends an `Origin`).
fn client_name(headers: &HeaderMap) -> Option<String> {
    let named = headers
        .get(AGENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|name| !name.is_empty() && name.len() <= 64 && !name.contains(char::is_control));
    match named {
        Some(name) => Some(name.to_owned()),
        None if headers.contains_key(header::ORIGIN) => Some(crate::service::WEB_ORIGIN.into()),
        None => None,
    }
}

/// Refuses an upgrade whose `Origin` is present and names another host than
/// the one the request was sent to.
fn check_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(()); // not a browser: agents send no Origin
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin = origin.to_str().ok();
    match (origin, host) {
        (Some(origin), Some(host)) if crate::auth::session::same_origin(origin, host) => Ok(()),
        _ => Err(ApiError::Forbidden(
            "a WebSocket from a page of another site (its Origin does not match this hub's \
             host) is refused"
                .into(),
        )),
    }
}

async fn serve(
    hub: Arc<Hub>,
    caller: Caller,
    _permit: OwnedSemaphorePermit,
    mut socket: WebSocket,
) {
    hub.metrics.websocket_clients.add(1, &[]);
    let reason = push_changes(&hub, &caller, &mut socket).await;
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
async fn push_changes(
    hub: &Hub,
    caller: &Caller,
    socket: &mut WebSocket,
) -> Option<(u16, &'static str)> {
    // Subscribe before reading head: a change committed in between arrives
    // on the channel and is skipped below rather than lost.
    let mut changes = hub.subscribe();
    let mut revocations = hub.access.auth.revocations();
    // Revoked between the request's authentication and this subscription:
    // that revocation's signal is already marked seen.
    if !hub.access.auth.is_live(caller) {
        return Some((
            WS_CLOSE_REVOKED,
            "token revoked; get a new token from the hub's operator",
        ));
    }
    let head = match hub.db.head().await {
        Ok(head) => head,
        Err(err) => {
            tracing::error!(error = %err, "websocket: cannot read head");
            return Some((close_code::ERROR, "hub database unavailable; retry later"));
        }
    };
    if !send(
        socket,
        &WsFrame::Hello {
            head,
            hub_id: hub.access.hub_id.clone(),
        },
    )
    .await
    {
        return None;
    }
    // Chunks the hub lost, for clients that may upload them (`crate::repair`).
    let mut wanted = hub.wanted_announcements();
    if caller.scope != Scope::Write {
        // Never changes for a read-only client: nothing to send it.
        wanted = tokio::sync::watch::Sender::new(Default::default()).subscribe();
    }
    wanted.mark_changed();
    let mut shutdown = hub.shutdown_signal();
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.tick().await;
    loop {
        tokio::select! {
            change = changes.recv() => match change {
                Ok(entry) if entry.seq <= head => {}
                Ok(entry) => {
                    // A batch commits hundreds of entries at once: those
                    // already queued go out in one write, not one each.
                    let mut burst = vec![entry];
                    let mut lagged = false;
                    while burst.len() < MAX_BURST {
                        match changes.try_recv() {
                            Ok(entry) if entry.seq <= head => {}
                            Ok(entry) => burst.push(entry),
                            // Reported here only (the next recv would go
                            // on past the gap): the client must not
                            // miss that it missed changes.
                            Err(TryRecvError::Lagged(_)) => {
                                lagged = true;
                                break;
                            }
                            // Empty, or closed (the next recv says so).
                            Err(_) => break,
                        }
                    }
                    if !send_all(socket, burst).await {
                        return Some((close_code::POLICY, "send timed out; catch up with /v1/changes"));
                    }
                    if lagged {
                        hub.metrics.websocket_lagged.add(1, &[]);
                        return Some((WS_CLOSE_LAGGED, "too far behind; catch up with /v1/changes and reconnect"));
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    hub.metrics.websocket_lagged.add(1, &[]);
                    return Some((WS_CLOSE_LAGGED, "too far behind; catch up with /v1/changes and reconnect"));
                }
                Err(RecvError::Closed) => return Some((close_code::AWAY, "hub shutting down")),
            },
            Ok(()) = wanted.changed() => {
                let chunks = wanted.borrow_and_update().clone();
                if !chunks.is_empty() && !send(socket, &WsFrame::Wanted { chunks: chunks.to_vec() }).await {
                    return Some((close_code::POLICY, "send timed out; catch up with /v1/changes"));
                }
            }
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
            Ok(()) = revocations.changed() => {
                if !hub.access.auth.is_live(caller) {
                    return Some((WS_CLOSE_REVOKED, "token revoked; get a new token from the hub's operator"));
                }
                if !hub.access.auth.still_allowed(caller).await {
                    return Some((WS_CLOSE_REVOKED, "signed out; sign in again"));
                }
            }
        }
    }
}

async fn stopping(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    // Only completion matters; the borrowed value must not live across awaits.
    let _ = shutdown.wait_for(|stopping| *stopping).await.is_ok();
}

/// Sends a change frame for each of `entries`, flushed once at the end.
async fn send_all(socket: &mut WebSocket, entries: Vec<sf_protocol::v1::Entry>) -> bool {
    use futures_util::SinkExt;
    let all = async {
        for entry in entries {
            let text = serde_json::to_string(&WsFrame::Change(entry)).expect("frames serialise");
            socket.feed(Message::Text(text.into())).await?;
        }
        socket.flush().await
    };
    matches!(tokio::time::timeout(SEND_TIMEOUT, all).await, Ok(Ok(())))
}

async fn send(socket: &mut WebSocket, frame: &WsFrame) -> bool {
    let text = serde_json::to_string(frame).expect("frames serialise");
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(text.into()))).await,
        Ok(Ok(()))
    )
}

#[cfg(test)]
mod tests {
    use crate::auth::session::same_origin;

    #[test]
    fn origins() {
        assert!(same_origin("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(same_origin("https://Hub.Example", "hub.example"));
        assert!(same_origin("https://hub.example", "hub.example:443"));
        assert!(same_origin("http://[::1]:8080", "[::1]:8080"));
        assert!(!same_origin("http://evil.example", "hub.example"));
        assert!(!same_origin("http://hub.example:8081", "hub.example:8080"));
        assert!(!same_origin("https://hub.example", "hub.example:80"));
        assert!(!same_origin("null", "hub.example"));
        assert!(!same_origin("file://hub.example", "hub.example"));
        assert!(!same_origin("http://hub.example/x", "hub.example"));
    }
}
