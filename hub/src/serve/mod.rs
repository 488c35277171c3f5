//! The API listener's accept loop: TLS, timeouts and caps that keep slow or
//! greedy clients from holding the hub (axum's own `serve` has none of
//! these knobs).
//!
//! Layout:
//! - this module: accepting, the connection caps, per-connection hyper
//!   set-up (header and keep-alive timeout), graceful shutdown;
//! - [`tls`]: loading the PEM certificate and key into a rustls acceptor;
//! - [`body_rate`]: cutting off request bodies that trickle in;
//! - [`send_timeout`]: cutting off clients that stop reading answers;
//! - [`per_ip`]: the cap on connections from one address.

pub mod body_rate;
pub mod per_ip;
pub mod send_timeout;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use send_timeout::SendTimeout;

/// How the listener treats its clients.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time for a request's headers (and a TLS handshake) to arrive. Hyper
    /// also applies it to a keep-alive connection waiting for its next
    /// request, so it bounds idle connections too.
    pub header_timeout: Duration,
    /// Connections served at once; beyond it a client gets 503 and is closed.
    pub max_connections: usize,
    /// Connections from one address at once (0: no cap).
    pub max_connections_per_ip: usize,
    /// A write to a client that makes no progress for this long ends the
    /// connection.
    pub send_timeout: Duration,
    /// How long shutdown waits for requests in flight before closing.
    pub shutdown_grace: Duration,
}

/// Serves `app` on `listener` (through `tls` when given) until `stop` flips,
/// then stops accepting and waits (up to the grace period) for requests in
/// flight.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    // HTTP/1.1 only: every client (agents, the original client, browsers
    // over TLS with our ALPN) speaks it, and the header timeout that also
    // closes idle connections exists only there; an HTTP/2 connection could
    // sit idle, answering pings, forever.
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_ip = per_ip::PerIp::new(limits.max_connections_per_ip);
    let graceful = GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        // Without TCP_NODELAY, small responses on a reused connection wait
        // for the peer's delayed ACK (~40 ms each): agents fetch many small chunks.
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "cannot set TCP_NODELAY");
        }
        let Some(ip_slot) = per_ip.acquire(peer.ip()) else {
            tokio::spawn(refuse_busy(tcp, tls.is_some(), PER_IP_BUSY));
            continue;
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            tokio::spawn(refuse_busy(tcp, tls.is_some(), ALL_BUSY));
            continue;
        };
        let tcp = SendTimeout::new(tcp, limits.send_timeout);
        // Handlers that show who is connected (the WebSocket's presence)
        // read the peer's address as axum's `ConnectInfo`.
        let service = TowerToHyperService::new(tower::ServiceExt::map_request(
            app.clone(),
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                request
            },
        ));
        let builder = Arc::clone(&builder);
        let tls = tls.clone();
        let watcher = graceful.watcher();
        let handshake_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let _slots = (permit, ip_slot);
            match tls {
                None => {
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
                    let _ = watcher.watch(conn.into_owned()).await;
                }
                Some(acceptor) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await
                    else {
                        return; // a failed or stalled handshake: nothing to answer
                    };
                    let conn =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    let _ = watcher.watch(conn.into_owned()).await;
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace = ?limits.shutdown_grace,
            "requests still running at shutdown were cut off"
        );
    }
    Ok(())
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await.is_ok();
}

const ALL_BUSY: &str = r#"{"error":"busy","detail":"the hub is serving as many connections as it allows (--max-connections); retry in a moment"}"#;
const PER_IP_BUSY: &str = r#"{"error":"busy","detail":"too many connections from your address (the hub's --max-connections-per-ip); close some and retry"}"#;

/// Answers a connection over a cap with a 503 and `body`, and closes it.
/// Over TLS there is no cheap way to answer: the connection is just closed.
async fn refuse_busy(mut tcp: TcpStream, tls: bool, body: &'static str) {
    if tls {
        return;
    }
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        tcp.write_all(response.as_bytes()).await?;
        tcp.shutdown().await
    })
    .await;
}
