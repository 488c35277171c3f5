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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sf_protocol::Sha256Hex;
use sf_protocol::v1::{WS_MAX_WANTED, WS_MAX_WANTED_FILES, WantedChunk, WantedFile};
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
        let mut repair = Repair {
            hub,
            counted: 0,
            files: HashMap::new(),
            next: 0,
            announced: Vec::new(),
        };
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
    /// Files that held each wanted chunk, looked up once (a scan of the
    /// versions).
    files: HashMap<Sha256Hex, Vec<WantedFile>>,
    /// Where the next announcement starts in the wanted list, so a long
    /// list is announced a part at a time, all of it in turn.
    next: usize,
    /// What the last announcement named.
    announced: Vec<Sha256Hex>,
}

impl Repair {
    /// Records what the store found lost or got back, in order.
    async fn record(&mut self, news: Vec<WantedNews>) {
        let (db, metrics) = (&self.hub.db, &self.hub.metrics);
        for event in news {
            match event {
                WantedNews::Lost(lost) => {
                    if lost.why == Lost::Damaged {
                        metrics.chunks_damaged.add(1, &[]);
                    }
                    if let Some(bytes) = lost.counted_bytes {
                        metrics.chunks_stored.add(-1, &[]);
                        metrics.chunk_bytes_stored.add(-(bytes as i64), &[]);
                    }
                    // Only a chunk a version references is worth asking for
                    // (a damaged upload never committed is garbage).
                    match db.referenced_chunks(&[lost.hash]).await {
                        Ok(referenced) if referenced.is_empty() => {
                            self.hub.store.forget_wanted(&lost.hash);
                            continue;
                        }
                        Ok(_) => {}
                        Err(err) => warn_unrecorded(&err),
                    }
                    if let Err(err) = db.want_chunk(&lost.hash, lost.why.as_str()).await {
                        warn_unrecorded(&err);
                    }
                }
                WantedNews::Arrived(hash) => {
                    metrics.chunks_repaired.add(1, &[]);
                    self.files.remove(&hash);
                    tracing::info!(chunk = %hash, "a lost chunk was stored again from a good copy: repaired");
                    if let Err(err) = db.unwant_chunk(&hash).await {
                        warn_unrecorded(&err);
                    }
                }
            }
        }
    }

    /// Takes in the chunks the table lists (from an earlier run, or added by
    /// `sf-hub check --repair`) and lets go of those the store holds again
    /// (put back by an operator).
    async fn reload(&mut self) {
        // What happened since first: a chunk that just arrived has its row
        // deleted before the table is read again.
        let news = self.hub.store.take_wanted_news();
        self.record(news).await;
        let store = Arc::clone(&self.hub.store);
        match self.hub.db.wanted_chunks().await {
            Ok(listed) => store.want_known(listed),
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the chunks wanted from the database");
            }
        }
        for hash in store.wanted() {
            let check = Arc::clone(&store);
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

    /// Tells WebSocket clients what is wanted: up to [`WS_MAX_WANTED`]
    /// chunks, the next part of the list each time (an empty list when
    /// nothing is, which sockets do not send).
    async fn announce(&mut self) -> Result<(), DbError> {
        let wanted = self.hub.store.wanted();
        self.files
            .retain(|hash, _| wanted.binary_search(hash).is_ok());
        let mut chunks = Vec::new();
        let start = if wanted.is_empty() {
            0
        } else {
            self.next % wanted.len()
        };
        for hash in wanted
            .iter()
            .cycle()
            .skip(start)
            .take(wanted.len().min(WS_MAX_WANTED))
        {
            let files = match self.files.get(hash) {
                Some(files) => files.clone(),
                None => {
                    let files = self.hub.db.files_holding(hash, WS_MAX_WANTED_FILES).await?;
                    self.files.insert(*hash, files.clone());
                    files
                }
            };
            if !files.is_empty() {
                chunks.push(WantedChunk { hash: *hash, files });
            }
        }
        self.next = start + WS_MAX_WANTED;
        let named: Vec<Sha256Hex> = chunks.iter().map(|c| c.hash).collect();
        if named != self.announced && !named.is_empty() {
            tracing::warn!(
                chunks = named.len(),
                wanted = wanted.len(),
                "asking agents for chunks the hub lost"
            );
        }
        self.announced = named;
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
