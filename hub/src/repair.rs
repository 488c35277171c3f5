//! Getting lost chunks back from agents.
//!
//! The store finds chunks lost as it reads them (`store::integrity`: bytes
//! that do not hash to their name, or a chunk a version references that is
//! not there); `sf-hub check --repair` finds them by walking the store. Either
//! way the chunk is *wanted*: this task records it in `wanted_chunks` (so a
//! restart keeps asking), counts it, and announces the wanted chunks to every
//! WebSocket client that may upload, each with committed files that held it.
//! An agent that still has such a file unchanged reads the chunk out of it
//! and uploads it like any other; the store checks its hash, and that upload
//! is the repair. Announcements repeat every few minutes while anything is
//! wanted, for agents that were away or busy.

use std::sync::Arc;
use std::time::Duration;

use sf_protocol::v1::{WS_MAX_WANTED, WS_MAX_WANTED_FILES, WantedChunk};
use tokio::task::JoinHandle;

use crate::db::DbError;
use crate::service::Hub;
use crate::store::{ChunkReadError, Lost, WantedNews};

/// While chunks are wanted, they are announced again this often (and the
/// table re-read for what `sf-hub check --repair` added).
const REANNOUNCE: Duration = Duration::from_secs(120);

/// Runs until the hub shuts down.
pub fn spawn(hub: Arc<Hub>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut shutdown = hub.shutdown_signal();
        let mut repair = Repair { hub, counted: 0 };
        let mut tick = tokio::time::interval(REANNOUNCE);
        loop {
            tokio::select! {
                () = repair.hub.store.wanted_news() => {
                    let news = repair.hub.store.take_wanted_news();
                    repair.record(news).await;
                }
                _ = tick.tick() => repair.reload().await,
                // Only completion matters: the borrow must not live across awaits.
                _ = async { shutdown.wait_for(|stopping| *stopping).await.is_ok() } => return,
            }
            repair.count();
            if let Err(err) = repair.announce().await {
                tracing::warn!(error = %err, "cannot list the files that held lost chunks");
            }
        }
    })
}

struct Repair {
    hub: Arc<Hub>,
    /// Wanted chunks the gauge counts now.
    counted: i64,
}

impl Repair {
    /// Records what the store found lost or got back.
    async fn record(&self, news: WantedNews) {
        let (db, metrics) = (&self.hub.db, &self.hub.metrics);
        for lost in news.lost {
            if lost.why == Lost::Damaged {
                metrics.chunks_damaged.add(1, &[]);
                metrics.chunks_stored.add(-1, &[]);
                metrics.chunk_bytes_stored.add(-(lost.bytes as i64), &[]);
            }
            if let Err(err) = db.want_chunk(&lost.hash, lost.why.as_str()).await {
                warn_unrecorded(&err);
            }
        }
        for hash in news.arrived {
            metrics.chunks_repaired.add(1, &[]);
            tracing::info!(chunk = %hash, "a lost chunk was stored again from a good copy: repaired");
            if let Err(err) = db.unwant_chunk(&hash).await {
                warn_unrecorded(&err);
            }
        }
    }

    /// Takes in the chunks the table lists (from an earlier run, or added by
    /// `sf-hub check --repair`) and lets go of those the store holds again
    /// (put back by an operator).
    async fn reload(&self) {
        let store = &self.hub.store;
        match self.hub.db.wanted_chunks().await {
            Ok(listed) => store.want_known(listed),
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the chunks wanted from the database");
            }
        }
        for hash in store.wanted() {
            let check = Arc::clone(store);
            let read = tokio::task::spawn_blocking(move || check.read_verified_blocking(&hash));
            match read.await {
                Ok(Ok(_)) => store.stored_anew(&hash),
                Ok(Err(ChunkReadError::Missing(_))) => {}
                Ok(Err(err)) => tracing::warn!(error = %err, "a wanted chunk is still lost"),
                Err(_) => return,
            }
        }
        let news = store.take_wanted_news();
        self.record(news).await;
    }

    /// Keeps the wanted gauge at the size of the set.
    fn count(&mut self) {
        let now = self.hub.store.wanted().len() as i64;
        self.hub.metrics.chunks_wanted.add(now - self.counted, &[]);
        self.counted = now;
    }

    /// Tells WebSocket clients what is wanted (an empty list when nothing
    /// is, which sockets do not send).
    async fn announce(&self) -> Result<(), DbError> {
        let mut chunks = Vec::new();
        for hash in self.hub.store.wanted() {
            if chunks.len() == WS_MAX_WANTED {
                break;
            }
            let files = self
                .hub
                .db
                .files_holding(&hash, WS_MAX_WANTED_FILES)
                .await?;
            if !files.is_empty() {
                chunks.push(WantedChunk { hash, files });
            }
        }
        if !chunks.is_empty() {
            tracing::warn!(
                chunks = chunks.len(),
                "asking agents for chunks the hub lost"
            );
        }
        self.hub.announce_wanted(chunks);
        Ok(())
    }
}

fn warn_unrecorded(err: &DbError) {
    tracing::warn!(
        error = %err,
        "cannot record a lost chunk in the database; it is asked for until the hub restarts"
    );
}
