//! The network between one agent and the hub: a loopback TCP relay the
//! scenario controls. Normal, it forwards both ways; cut, it closes every
//! connection and refuses new ones; stalled, it accepts and forwards
//! nothing (the peer sees a silent socket); slow, it forwards at 256 KiB/s.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the link does now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Up,
    Cut,
    Stalled,
    Slow,
}

/// Bytes per second of a slow link.
const SLOW_RATE: u64 = 256 * 1024;

/// A running relay to the hub; stops when dropped.
pub struct Link {
    addr: SocketAddr,
    state: Arc<watch::Sender<LinkState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Link {
    /// Listens on a free loopback port, forwarding to `hub`.
    pub async fn start(hub: SocketAddr) -> std::io::Result<Link> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(watch::Sender::new(LinkState::Up));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let state = shared.subscribe();
                if *state.borrow() == LinkState::Cut {
                    drop(client);
                    continue;
                }
                tokio::spawn(relay(client, hub, state));
            }
        });
        Ok(Link { addr, state, task })
    }

    /// `http://127.0.0.1:PORT`: what the agent is given as its hub.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, state: LinkState) {
        self.state.send_replace(state);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(client: TcpStream, hub: SocketAddr, state: watch::Receiver<LinkState>) {
    let Ok(server) = TcpStream::connect(hub).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        () = pump(client_read, server_write, state.clone()) => {}
        () = pump(server_read, client_write, state) => {}
    }
}

/// Copies one direction until either side closes or the link is cut.
async fn pump(
    mut from: impl AsyncReadExt + Unpin,
    mut to: impl AsyncWriteExt + Unpin,
    mut state: watch::Receiver<LinkState>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        // Wait while stalled; leave when cut.
        loop {
            match *state.borrow_and_update() {
                LinkState::Cut => return,
                LinkState::Stalled => {}
                LinkState::Up | LinkState::Slow => break,
            }
            if state.changed().await.is_err() {
                return;
            }
        }
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            changed = state.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        };
        let n = match read {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if *state.borrow() == LinkState::Slow {
            tokio::time::sleep(Duration::from_micros(n as u64 * 1_000_000 / SLOW_RATE)).await;
        }
        if *state.borrow() == LinkState::Cut || to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}
