//! The operations that change the hub's state — commit, delete, restore and
//! the legacy upload — and what follows each commit: the WebSocket broadcast,
//! metrics and the log line.
//!
//! Every state change runs under one commit lock: decisions that read the
//! current entry (conflict naming, stale detection) and the write that
//! follows see the same state, and changes are broadcast in seq order. The
//! database transaction re-checks the base version, so the lock is about
//! ordering, not correctness. Garbage collection removes chunks under the same
//! lock, so a commit re-checks its chunks there if any were removed while it
//! was being verified.
//!
//! A commit costs at most what its declared size allows: the chunk list is
//! checked against the size before anything is read, each distinct chunk is
//! looked up once, and content is verified by a bounded number of workers.
//!
//! Layout: this module holds the hub's shared state, the commit lock and
//! what follows every commit; `content` checks a commit's chunks against the
//! store (before the lock, and again under it); `v1` is commit, delete and
//! restore; `batch` is many commits and deletes in one transaction;
//! `legacy` is the original client's upload and delete; `tree` the changes
//! a person makes from the web page (whole-file upload, move and removal of
//! a folder, keeping one side of a conflict); `presence` who is connected.

mod batch;
mod content;
pub mod follow;

pub use content::RemovalMark;
mod legacy;
pub mod presence;
mod recent;
mod tree;
mod v1;

pub use tree::WEB_ORIGIN;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use opentelemetry::KeyValue;
use sf_protocol::Sha256Hex;
use sf_protocol::v1::{Entry, WS_MAX_LAG, WantedChunk};
use tokio::sync::{Mutex, Semaphore, broadcast, watch};

use crate::db::{Action, Database, NewVersion, WriteError};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::store::ChunkStore;

/// The longest origin name kept, in bytes.
const MAX_ORIGIN_BYTES: usize = 64;

/// Who may use the hub, and what it tells them about itself.
pub struct Access {
    pub auth: Arc<crate::auth::Auth>,
    /// This hub's identity (see `sf_protocol::v1::ChangesResponse::hub_id`).
    pub hub_id: String,
    /// One permit per open WebSocket (`--max-websockets`).
    pub websockets: Arc<tokio::sync::Semaphore>,
    /// The clients whose WebSockets are open now.
    pub presence: presence::Presence,
}

pub struct Hub {
    pub db: Database,
    pub store: Arc<ChunkStore>,
    pub metrics: Arc<Metrics>,
    pub max_file_size: u64,
    /// Who may ask, and the hub's identity and client caps.
    pub access: Access,
    changes: broadcast::Sender<Entry>,
    /// The latest list of chunks asked of agents (see `crate::repair`).
    wanted: watch::Sender<Arc<Vec<WantedChunk>>>,
    /// The feed's latest entries, for `GET /v1/changes` (see `recent`).
    recent: recent::RecentFeed,
    commit_lock: Mutex<()>,
    /// With several hubs on one database (PostgreSQL), this hub's commits
    /// go out through the feed follower (`follow`), in seq order among
    /// every hub's; `None` on SQLite, where this hub is the only writer.
    own_commits: Option<follow::OwnCommits>,
    /// The newest seq this hub knows is committed (its own commits, and
    /// what the follower heard): the feed in memory answers only once it
    /// holds it, so a client reads its own commit back at once.
    known_head: std::sync::atomic::AtomicU64,
    /// One permit per content verification running (reading and hashing a
    /// whole file): at most one per CPU, so commits cannot crowd out the rest.
    verify_permits: Semaphore,
    shutdown: watch::Receiver<bool>,
}

impl Hub {
    pub fn new(
        db: Database,
        store: Arc<ChunkStore>,
        metrics: Arc<Metrics>,
        max_file_size: u64,
        access: Access,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let shared_feed = db.backend() == crate::db::Backend::Postgres;
        let (changes, _) = broadcast::channel(WS_MAX_LAG);
        Self {
            db,
            store,
            metrics,
            max_file_size,
            access,
            changes,
            wanted: watch::Sender::new(Arc::default()),
            recent: recent::RecentFeed::default(),
            commit_lock: Mutex::new(()),
            own_commits: shared_feed.then(follow::OwnCommits::default),
            known_head: std::sync::atomic::AtomicU64::new(0),
            verify_permits: Semaphore::new(
                std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            ),
            shutdown,
        }
    }

    /// Every change committed from now on, in seq order.
    pub fn subscribe(&self) -> broadcast::Receiver<Entry> {
        self.changes.subscribe()
    }

    /// The chunks the hub asks agents for, as announced: the latest list,
    /// changed (re-sent) whenever it is announced again.
    pub fn wanted_announcements(&self) -> watch::Receiver<Arc<Vec<WantedChunk>>> {
        self.wanted.subscribe()
    }

    /// Announces `chunks` to every WebSocket client that may upload.
    pub(crate) fn announce_wanted(&self, chunks: Vec<WantedChunk>) {
        self.wanted.send_replace(Arc::new(chunks));
    }

    /// Up to `limit` feed entries after `since`, in seq order: from the
    /// latest entries in memory when they hold the next one, else from the
    /// database.
    pub async fn changes(
        &self,
        since: u64,
        limit: u32,
        with_chunks: bool,
    ) -> Result<Vec<Entry>, crate::db::DbError> {
        let wanted = usize::try_from(limit).unwrap_or(usize::MAX);
        let known_head = self.known_head.load(std::sync::atomic::Ordering::SeqCst);
        if let Some(page) = self.recent.page(since, wanted, with_chunks, known_head) {
            return Ok(page);
        }
        self.db.changes(since, limit, with_chunks).await
    }

    /// Flips to `true` when the hub starts shutting down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }

    /// Removes those of `hashes` that no version references (and, given
    /// `older_than`, whose mtime is older): stale uploads for garbage
    /// collection, or what a failed legacy upload stored. Runs under the
    /// write lock of every hub on the database, so no commit can come to
    /// reference a chunk meanwhile.
    /// Returns the chunks and bytes removed.
    pub async fn remove_unreferenced(
        &self,
        hashes: &[Sha256Hex],
        older_than: Option<SystemTime>,
    ) -> Result<(u64, u64), ApiError> {
        let (mut count, mut bytes) = (0u64, 0u64);
        let result = async {
            let _order = self.commit_lock.lock().await;
            // The protocol every hub's commits rely on: see `crate::db`'s
            // `removal` module. The count is odd before anything goes.
            self.db.removals_starting().await?;
            let mut removal = self.db.begin_removal().await?;
            let referenced = removal.referenced(hashes).await?;
            let unreferenced: Vec<Sha256Hex> = hashes
                .iter()
                .filter(|h| !referenced.contains(h))
                .copied()
                .collect();
            // Whatever the removals did, the lock is released and the count
            // made even; a failed removal is reported after.
            let removed = self.store.remove_many(&unreferenced, older_than).await;
            removal.finish().await?;
            let mut failed = None;
            for result in removed {
                match result {
                    Ok(Some(len)) => {
                        count += 1;
                        bytes += len;
                    }
                    Ok(None) => {}
                    Err(err) => failed = Some(err),
                }
            }
            match failed {
                Some(err) => Err(ApiError::Storage(err)),
                None => Ok::<_, ApiError>(()),
            }
        }
        .await;
        if count > 0 {
            self.metrics.chunks_stored.add(-(count as i64), &[]);
            self.metrics.chunk_bytes_stored.add(-(bytes as i64), &[]);
            self.metrics.gc_removed_chunks.add(count, &[]);
            self.metrics.gc_removed_bytes.add(bytes, &[]);
        }
        result.map(|()| (count, bytes))
    }

    /// After a commit: broadcast, count, log. Called with the commit lock
    /// held, so broadcasts leave in seq order.
    fn committed(&self, mut entry: Entry, action: Action, started: Instant) -> Entry {
        self.announce(&mut entry, action, started, Loudness::Info);
        entry
    }

    /// Broadcasts a committed entry (without its chunk list), counts it and
    /// logs it: at info for a single change, at debug for a batch's (which
    /// logs one info line of its own).
    fn announce(&self, entry: &mut Entry, action: Action, started: Instant, loudness: Loudness) {
        self.metrics.commit_duration.record(
            started.elapsed().as_secs_f64(),
            &[KeyValue::new("action", action.as_str())],
        );
        match action {
            Action::Upload => self.metrics.uploads.add(1, &[]),
            Action::Conflict => {
                self.metrics.uploads.add(1, &[]);
                self.metrics.conflicts.add(1, &[]);
            }
            Action::Delete => self.metrics.deletes.add(1, &[]),
            Action::Restore => self.metrics.restores.add(1, &[]),
        }
        macro_rules! log_commit {
            ($level:ident, $message:literal) => {
                tracing::$level!(
                    action = action.as_str(),
                    path = %entry.path,
                    version = entry.version,
                    seq = entry.seq,
                    size = entry.size,
                    origin = %entry.origin,
                    $message
                )
            };
        }
        match loudness {
            Loudness::Info => log_commit!(info, "committed"),
            Loudness::Debug => log_commit!(debug, "committed in a batch"),
        }
        match &self.own_commits {
            Some(own) => {
                self.note_head(entry.seq);
                own.committed(entry);
            }
            None => self.publish(entry.clone()),
        }
    }

    /// Records that `seq` is committed (see `known_head`).
    fn note_head(&self, seq: u64) {
        self.known_head
            .fetch_max(seq, std::sync::atomic::Ordering::SeqCst);
    }

    /// Passes a committed entry (with its chunk list) to the feed in memory
    /// and to WebSocket subscribers; called in seq order, with no gap.
    fn publish(&self, mut entry: Entry) {
        self.recent.committed(&entry);
        entry.chunks = None;
        // No receivers is fine: nobody is listening.
        let _ = self.changes.send(entry);
    }

    fn refused(&self, err: WriteError) -> ApiError {
        if matches!(err, WriteError::Conflict(_)) {
            self.metrics.conflicts.add(1, &[]);
        }
        err.into()
    }
}

/// The level a committed change is logged at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loudness {
    Info,
    Debug,
}

fn tombstone_of(current: &Entry, origin: String) -> NewVersion {
    NewVersion {
        path: current.path.clone(),
        kind: current.kind,
        sha256: None,
        size: 0,
        mtime_ns: current.mtime_ns,
        executable: false,
        origin,
        chunks: Vec::new(),
        action: Action::Delete,
    }
}

fn clean_origin(origin: &str) -> Result<String, ApiError> {
    let origin = origin.trim();
    if origin.is_empty() || origin.len() > MAX_ORIGIN_BYTES || origin.chars().any(char::is_control)
    {
        return Err(ApiError::InvalidRequest(format!(
            "origin must be 1 to {MAX_ORIGIN_BYTES} bytes of printable text, e.g. the agent's name"
        )));
    }
    Ok(origin.to_owned())
}
