//! A TCP relay on loopback that limits the rate of what it forwards: a
//! slow link between a client and a server on one machine, for measuring
//! whether transfers keep the link busy or stall on round trips.
//!
//! Each direction of each connection passes through one token bucket per
//! direction shared by all connections (a link has one capacity), filled at
//! `bytes_per_second`; reads are at most 16 KiB so the rate is smooth.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Bytes read per step.
const STEP: usize = 16 * 1024;

/// A running relay; stops when dropped.
pub struct Relay {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Listens on a free loopback port and forwards every connection to
    /// `target`, each direction limited to `bytes_per_second` in total.
    pub async fn start(target: SocketAddr, bytes_per_second: u64) -> std::io::Result<Relay> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let up = Arc::new(Mutex::new(Bucket::new(bytes_per_second)));
        let down = Arc::new(Mutex::new(Bucket::new(bytes_per_second)));
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (up, down) = (Arc::clone(&up), Arc::clone(&down));
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        pump(client_read, server_write, up),
                        pump(server_read, client_write, down)
                    );
                });
            }
        });
        Ok(Relay { addr, task })
    }

    /// `http://127.0.0.1:PORT`: the relay's address as a base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to`, paying `bucket` for every byte.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    bucket: Arc<Mutex<Bucket>>,
) {
    let mut buf = vec![0u8; STEP];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let wait = bucket.lock().await.take(n as u64);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// A link's capacity: bytes become available at `rate` per second; taking
/// more than is there books the link further ahead and says how long to
/// wait for it.
struct Bucket {
    rate: u64,
    /// When the link is free again.
    free_at: Instant,
}

impl Bucket {
    fn new(rate: u64) -> Self {
        Bucket {
            rate,
            free_at: Instant::now(),
        }
    }

    fn take(&mut self, bytes: u64) -> Duration {
        let now = Instant::now();
        let start = self.free_at.max(now);
        self.free_at = start + Duration::from_secs_f64(bytes as f64 / self.rate as f64);
        self.free_at.saturating_duration_since(now)
    }
}
