//! Garbage collection of the chunk store: chunks that no version references
//! (uploads never committed, what refused uploads left) are removed once
//! their mtime is older than the grace period (`--chunk-grace`), every
//! `--gc-interval`.
//!
//! Why this cannot remove a chunk a commit needs: a chunk's mtime is renewed
//! whenever it is uploaded again or reported present to a client, so a commit
//! on its way keeps its chunks for the grace period; removal happens under
//! the commit lock after the database says no version references the chunk;
//! and a commit verified before a removal re-checks its chunks under that
//! lock (see [`crate::service`]), answering `missing_chunks` if one is gone.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;

use crate::error::ApiError;
use crate::service::Hub;

/// Chunks checked against the database and removed per turn of the commit lock.
const BATCH: usize = 256;

/// The first pass comes at most this long after start, then every interval.
const FIRST_PASS_AFTER: Duration = Duration::from_secs(60);

/// What one pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Collected {
    pub chunks: u64,
    pub bytes: u64,
}

/// Runs [`collect`] every `interval` (none when it is zero) until the hub
/// shuts down, starting once the store's start-up census is done (removals
/// before it would be counted wrong).
pub fn spawn(hub: Arc<Hub>, grace: Duration, interval: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        if interval.is_zero() {
            tracing::info!("garbage collection of the chunk store is off (--gc-interval 0)");
            return;
        }
        let mut shutdown = hub.shutdown_signal();
        tokio::select! {
            () = hub.store.counted() => {}
            _ = shutdown.wait_for(|stopping| *stopping) => return,
        }
        let mut wait = interval.min(FIRST_PASS_AFTER);
        loop {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.wait_for(|stopping| *stopping) => return,
            }
            wait = interval;
            match collect(&hub, grace).await {
                Ok(collected) => {
                    if collected.chunks > 0 {
                        tracing::info!(
                            chunks = collected.chunks,
                            bytes = collected.bytes,
                            grace = ?grace,
                            "removed chunks no version references"
                        );
                    }
                    hub.metrics.gc_runs.add(1, &[]);
                }
                // The database closes as the hub stops: not worth a warning.
                Err(_) if *shutdown.borrow() => return,
                Err(err) => tracing::warn!(
                    error = %err,
                    retry_in = ?interval,
                    "garbage collection of the chunk store failed"
                ),
            }
        }
    })
}

/// One pass over the store: removes every chunk older than `grace` that no
/// version references. Walks one 256th of the store at a time, so memory
/// stays small however many chunks there are.
pub async fn collect(hub: &Hub, grace: Duration) -> Result<Collected, ApiError> {
    let Some(cutoff) = SystemTime::now().checked_sub(grace) else {
        return Ok(Collected::default());
    };
    let shutdown = hub.shutdown_signal();
    let mut total = Collected::default();
    for prefix in 0..=u8::MAX {
        if *shutdown.borrow() {
            break;
        }
        let store = Arc::clone(&hub.store);
        let old = tokio::task::spawn_blocking(move || store.old_chunks_blocking(prefix, cutoff))
            .await??;
        for batch in old.chunks(BATCH) {
            let (chunks, bytes) = hub.remove_unreferenced(batch, Some(cutoff)).await?;
            total.chunks += chunks;
            total.bytes += bytes;
        }
    }
    Ok(total)
}
