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
/// wait for it. Time the link was booked for but the sender overslept
/// (timers tick in milliseconds, a step takes about one at 100 Mbit/s) is
/// credited back, up to [`CATCH_UP_STEPS`] steps, so the link runs at its
/// rate rather than at the timer's.
struct Bucket {
    rate: u64,
    /// When the link is free again.
    free_at: Instant,
}

/// Steps of oversleep the link may catch up on.
const CATCH_UP_STEPS: u64 = 4;

impl Bucket {
    fn new(rate: u64) -> Self {
        Bucket {
            rate,
            free_at: Instant::now(),
        }
    }

    fn take(&mut self, bytes: u64) -> Duration {
        self.take_at(Instant::now(), bytes)
    }

    fn take_at(&mut self, now: Instant, bytes: u64) -> Duration {
        let credit = self.seconds_for(CATCH_UP_STEPS * STEP as u64);
        let start = self.free_at.max(now.checked_sub(credit).unwrap_or(now));
        self.free_at = start + self.seconds_for(bytes);
        self.free_at.saturating_duration_since(now)
    }

    fn seconds_for(&self, bytes: u64) -> Duration {
        Duration::from_secs_f64(bytes as f64 / self.rate as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversleeping_does_not_slow_the_link() {
        // 16 KiB per millisecond; every sleep overshoots by half a step.
        let mut bucket = Bucket::new(STEP as u64 * 1000);
        let step = Duration::from_millis(1);
        let start = Instant::now();
        bucket.free_at = start;
        let mut now = start;
        for _ in 0..1000 {
            let wait = bucket.take_at(now, STEP as u64);
            now += wait + step / 2;
        }
        // 1000 steps at one per millisecond: one second, plus the last
        // oversleep, not the 1.5 s the oversleeps would add up to.
        assert!(
            now - start < Duration::from_millis(1010),
            "{:?}",
            now - start
        );
    }

    #[test]
    fn an_idle_link_gives_no_more_than_its_catch_up_credit() {
        let mut bucket = Bucket::new(STEP as u64 * 1000);
        let start = Instant::now();
        bucket.free_at = start;
        // Idle for a second, then a burst of 10 steps at once.
        let now = start + Duration::from_secs(1);
        let waits: Vec<Duration> = (0..10).map(|_| bucket.take_at(now, STEP as u64)).collect();
        assert_eq!(waits[0], Duration::ZERO);
        assert_eq!(waits[(CATCH_UP_STEPS - 1) as usize], Duration::ZERO);
        assert!(waits[9] >= Duration::from_millis(5), "{waits:?}");
    }
}
