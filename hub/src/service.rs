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

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use opentelemetry::KeyValue;
use sf_protocol::chunking::{ChunkListError, ChunkRef, check_chunk_list};
use sf_protocol::conflict::conflict_copy_path;
use sf_protocol::legacy::{LEGACY_ORIGIN, UploadMeta, UploadResponse};
use sf_protocol::v1::{CommitRequest, DeleteRequest, Entry, EntryKind, RestoreRequest, WS_MAX_LAG};
use sf_protocol::{Sha256Hex, SyncPath};
use tokio::sync::{Mutex, Semaphore, broadcast, watch};

use crate::db::{Action, Database, NewVersion, WriteError};
use crate::error::ApiError;
use crate::ingest::Ingested;
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
}

pub struct Hub {
    pub db: Database,
    pub store: Arc<ChunkStore>,
    pub metrics: Arc<Metrics>,
    pub max_file_size: u64,
    /// Who may ask, and the hub's identity and client caps.
    pub access: Access,
    changes: broadcast::Sender<Entry>,
    commit_lock: Mutex<()>,
    /// One permit per content verification running (reading and hashing a
    /// whole file): at most one per CPU, so commits cannot crowd out the rest.
    verify_permits: Semaphore,
    shutdown: watch::Receiver<bool>,
}

/// A commit that passed its checks, ready to write.
struct Checked {
    new: NewVersion,
    /// Its chunks, each once.
    distinct: Vec<ChunkRef>,
    /// [`ChunkStore::removals`] before the chunks were looked up.
    removals: u64,
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
        let (changes, _) = broadcast::channel(WS_MAX_LAG);
        Self {
            db,
            store,
            metrics,
            max_file_size,
            access,
            changes,
            commit_lock: Mutex::new(()),
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

    /// Flips to `true` when the hub starts shutting down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }

    /// `POST /v1/commit`: a new version of a file or directory whose chunks
    /// the hub already holds.
    pub async fn commit(&self, request: CommitRequest) -> Result<Entry, ApiError> {
        let Checked {
            new,
            distinct,
            removals,
        } = self.checked_commit(request.clone()).await?;
        let started = Instant::now();
        let _order = self.commit_lock.lock().await;
        self.recheck_chunks(removals, &distinct).await?;
        if let Some(current) = self.db.current(&request.path).await?
            && !current.deleted
            && current.version == request.base_version
            && current.kind == new.kind
            && current.sha256 == new.sha256
            && current.executable == new.executable
        {
            // The content it already has, on the current version: nothing to
            // record. (A retry after a lost answer finds its own write as
            // `current` in the 409 instead.)
            return Ok(current);
        }
        match self.db.write(new, request.base_version).await {
            Ok(entry) => Ok(self.committed(entry, Action::Upload, started)),
            Err(err) => Err(self.refused(err)),
        }
    }

    /// Validates a commit and verifies its content against the store, before
    /// any lock is taken: hashing a large file must not stall other commits.
    async fn checked_commit(&self, request: CommitRequest) -> Result<Checked, ApiError> {
        if request.size > self.max_file_size {
            return Err(ApiError::PayloadTooLarge(format!(
                "{} is {} bytes; this hub accepts files up to {} bytes (--max-file-size)",
                request.path, request.size, self.max_file_size
            )));
        }
        let removals = self.store.removals();
        let distinct = match request.kind {
            EntryKind::Dir => {
                if request.size != 0
                    || !request.chunks.is_empty()
                    || request.sha256 != Sha256Hex::empty()
                {
                    return Err(ApiError::InvalidRequest(
                        "a dir commit carries no content: size 0, no chunks, and the sha256 of \
                         empty input"
                            .into(),
                    ));
                }
                Vec::new()
            }
            EntryKind::File => self.verify_content(&request).await?,
        };
        let new = NewVersion {
            path: request.path,
            kind: request.kind,
            sha256: Some(request.sha256),
            size: request.size,
            mtime_ns: request.mtime_ns,
            executable: request.executable && request.kind == EntryKind::File,
            origin: clean_origin(&request.origin)?,
            chunks: request.chunks,
            action: Action::Upload,
        };
        Ok(Checked {
            new,
            distinct,
            removals,
        })
    }

    /// Checks a file commit's content against the store; returns its chunks,
    /// each once. Nothing is looked up before the list is known to fit the
    /// size, and nothing is read before every chunk is known to be stored.
    async fn verify_content(&self, request: &CommitRequest) -> Result<Vec<ChunkRef>, ApiError> {
        check_chunk_list(&request.chunks, request.size).map_err(|err| {
            let detail = format!("{}: {err}", request.path);
            match err {
                ChunkListError::SizeMismatch { .. } => ApiError::ContentMismatch(detail),
                _ => ApiError::InvalidRequest(detail),
            }
        })?;
        let distinct = distinct_chunks(&request.chunks)?;
        let store = Arc::clone(&self.store);
        let lookup = distinct.clone();
        tokio::task::spawn_blocking(move || store.check_present_blocking(&lookup))
            .await
            .map_err(|e| ApiError::Storage(std::io::Error::other(e)))??;
        // The same chunk list for the same content was verified before (a
        // rename, a restore, a copy): the chunks are immutable, skip re-reading.
        if self.db.verified_chunks(&request.sha256).await?.as_ref() == Some(&request.chunks) {
            return Ok(distinct);
        }
        let _permit = self
            .verify_permits
            .acquire()
            .await
            .map_err(|_| ApiError::NotReady("the hub is shutting down".into()))?;
        let store = Arc::clone(&self.store);
        let chunks = request.chunks.clone();
        let sha256 = request.sha256;
        tokio::task::spawn_blocking(move || store.verify_blocking(&chunks, &sha256))
            .await
            .map_err(|e| ApiError::Storage(std::io::Error::other(e)))??;
        Ok(distinct)
    }

    /// Called with the commit lock held: if chunks were removed since
    /// `removals` was read, makes sure none of `distinct` was among them.
    async fn recheck_chunks(&self, removals: u64, distinct: &[ChunkRef]) -> Result<(), ApiError> {
        if self.store.removals() == removals || distinct.is_empty() {
            return Ok(());
        }
        let store = Arc::clone(&self.store);
        let distinct = distinct.to_vec();
        tokio::task::spawn_blocking(move || store.check_present_blocking(&distinct))
            .await
            .map_err(|e| ApiError::Storage(std::io::Error::other(e)))??;
        Ok(())
    }

    /// Removes those of `hashes` that no version references (and, given
    /// `older_than`, whose mtime is older): stale uploads for garbage
    /// collection, or what a failed legacy upload stored. Runs under the
    /// commit lock, so no commit can come to reference a chunk meanwhile.
    /// Returns the chunks and bytes removed.
    pub async fn remove_unreferenced(
        &self,
        hashes: &[Sha256Hex],
        older_than: Option<SystemTime>,
    ) -> Result<(u64, u64), ApiError> {
        let (mut count, mut bytes) = (0u64, 0u64);
        let result = async {
            let _order = self.commit_lock.lock().await;
            let referenced = self.db.referenced_chunks(hashes).await?;
            for hash in hashes.iter().filter(|h| !referenced.contains(h)) {
                if let Some(len) = self.store.remove(hash, older_than).await? {
                    count += 1;
                    bytes += len;
                }
            }
            Ok::<_, ApiError>(())
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

    /// `POST /v1/delete`: a tombstone, if `base_version` is current.
    pub async fn delete(&self, request: DeleteRequest) -> Result<Entry, ApiError> {
        let origin = clean_origin(&request.origin)?;
        let started = Instant::now();
        let _order = self.commit_lock.lock().await;
        let Some(current) = self.db.current(&request.path).await? else {
            return Err(ApiError::NotFound(format!(
                "{} does not exist",
                request.path
            )));
        };
        if current.deleted && (request.base_version == 0 || request.base_version == current.version)
        {
            return Ok(current);
        }
        let tombstone = tombstone_of(&current, origin);
        match self.db.write(tombstone, request.base_version).await {
            Ok(entry) => Ok(self.committed(entry, Action::Delete, started)),
            Err(err) => Err(self.refused(err)),
        }
    }

    /// `POST /v1/restore`: an old version's content as a new version.
    pub async fn restore(&self, request: RestoreRequest) -> Result<Entry, ApiError> {
        let origin = clean_origin(&request.origin)?;
        let started = Instant::now();
        let _order = self.commit_lock.lock().await;
        let Some(old) = self.db.version(&request.path, request.version).await? else {
            return Err(ApiError::NotFound(format!(
                "{} has no version {}; see GET /v1/history",
                request.path, request.version
            )));
        };
        if old.deleted {
            return Err(ApiError::InvalidRequest(format!(
                "version {} of {} is a deletion; restore a version that has content",
                request.version, request.path
            )));
        }
        let current = self.db.current(&request.path).await?;
        if let Some(current) = &current
            && !current.deleted
            && current.same_content(&old)
        {
            return Ok(current.clone());
        }
        let base = current.as_ref().map_or(0, |c| c.version);
        let new = NewVersion {
            path: old.path,
            kind: old.kind,
            sha256: old.sha256,
            size: old.size,
            mtime_ns: old.mtime_ns,
            executable: old.executable,
            origin,
            chunks: old.chunks.unwrap_or_default(),
            action: Action::Restore,
        };
        let entry = self.db.write(new, base).await?;
        Ok(self.committed(entry, Action::Restore, started))
    }

    /// `POST /upload`: the original client's whole-file upload, already
    /// stored as chunks. See the protocol README for the stale-upload rule.
    pub async fn legacy_upload(
        &self,
        meta: UploadMeta,
        content: Ingested,
    ) -> Result<UploadResponse, ApiError> {
        if content.size > self.max_file_size {
            return Err(ApiError::PayloadTooLarge(format!(
                "the file is larger than this hub's limit of {} bytes",
                self.max_file_size
            )));
        }
        let started = Instant::now();
        let _order = self.commit_lock.lock().await;
        if let Err(err) = self
            .recheck_chunks(content.removals, &distinct_chunks(&content.chunks)?)
            .await
        {
            return Err(match err {
                ApiError::MissingChunks(_) => ApiError::NotReady(
                    "part of the upload was removed by garbage collection while it was \
                     stored; send it again"
                        .into(),
                ),
                other => other,
            });
        }
        let path = meta.path;
        let current = self.db.current(&path).await?;
        let accepted = |entry: &Entry| UploadResponse {
            ok: true,
            version: entry.version,
            sha: entry.sha256,
            conflict: None,
            stale: None,
        };
        let base = match &current {
            Some(cur)
                if !cur.deleted
                    && cur.kind == EntryKind::File
                    && cur.sha256 == Some(content.sha256) =>
            {
                return Ok(accepted(cur));
            }
            Some(cur) if self.is_stale(&path, &content.sha256).await? => {
                return Ok(UploadResponse {
                    stale: Some(true),
                    ..accepted(cur)
                });
            }
            Some(cur) if !cur.deleted && meta.base_sha != cur.sha256 => {
                let copy = self.legacy_conflict_copy(&path, content, started).await?;
                return Ok(UploadResponse {
                    conflict: Some(copy.path.to_string()),
                    ..accepted(cur)
                });
            }
            Some(cur) => cur.version,
            None => 0,
        };
        let new = legacy_version(path, content, Action::Upload);
        let entry = self.db.write(new, base).await?;
        Ok(accepted(&self.committed(entry, Action::Upload, started)))
    }

    /// An old client is replaying content the hub has already seen at this
    /// path (an earlier version, or the bytes of one of its conflict copies).
    async fn is_stale(&self, path: &SyncPath, sha256: &Sha256Hex) -> Result<bool, ApiError> {
        Ok(self.db.path_ever_held(path, sha256).await?
            || self.db.conflict_copy_holds(path, sha256).await?)
    }

    async fn legacy_conflict_copy(
        &self,
        path: &SyncPath,
        content: Ingested,
        started: Instant,
    ) -> Result<Entry, ApiError> {
        let now = time::OffsetDateTime::now_utc();
        let mut taken = HashSet::new();
        let copy_path = loop {
            let candidate = conflict_copy_path(path, LEGACY_ORIGIN, now, |c| taken.contains(c))
                .map_err(|e| ApiError::InvalidPath(e.to_string()))?;
            if self
                .db
                .current(&candidate)
                .await?
                .is_some_and(|e| !e.deleted)
            {
                taken.insert(candidate);
            } else {
                break candidate;
            }
        };
        let new = legacy_version(copy_path, content, Action::Conflict);
        let entry = self.db.write(new, 0).await?;
        Ok(self.committed(entry, Action::Conflict, started))
    }

    /// `POST /delete`: the original client's delete, with no base version.
    pub async fn legacy_delete(&self, path: SyncPath) -> Result<(), ApiError> {
        let started = Instant::now();
        let _order = self.commit_lock.lock().await;
        let Some(current) = self.db.current(&path).await? else {
            return Err(ApiError::NotFound(format!("{path} does not exist")));
        };
        if current.deleted {
            return Ok(());
        }
        let tombstone = tombstone_of(&current, LEGACY_ORIGIN.to_owned());
        let entry = self.db.write(tombstone, current.version).await?;
        self.committed(entry, Action::Delete, started);
        Ok(())
    }

    /// After a commit: broadcast, count, log. Called with the commit lock
    /// held, so broadcasts leave in seq order.
    fn committed(&self, mut entry: Entry, action: Action, started: Instant) -> Entry {
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
        tracing::info!(
            action = action.as_str(),
            path = %entry.path,
            version = entry.version,
            seq = entry.seq,
            size = entry.size,
            origin = %entry.origin,
            "committed"
        );
        let chunks = entry.chunks.take();
        // No receivers is fine: nobody is listening.
        let _ = self.changes.send(entry.clone());
        entry.chunks = chunks;
        entry
    }

    fn refused(&self, err: WriteError) -> ApiError {
        if matches!(err, WriteError::Conflict(_)) {
            self.metrics.conflicts.add(1, &[]);
        }
        err.into()
    }
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

fn legacy_version(path: SyncPath, content: Ingested, action: Action) -> NewVersion {
    NewVersion {
        path,
        kind: EntryKind::File,
        sha256: Some(content.sha256),
        size: content.size,
        // The original protocol carries no mtime: record when the hub got it.
        mtime_ns: crate::db::now_ms() * 1_000_000,
        executable: false,
        origin: LEGACY_ORIGIN.to_owned(),
        chunks: content.chunks,
        action,
    }
}

/// Each chunk of `chunks` once, in first-listed order. A hash listed with two
/// lengths cannot be right.
fn distinct_chunks(chunks: &[ChunkRef]) -> Result<Vec<ChunkRef>, ApiError> {
    let mut lengths: HashMap<Sha256Hex, u64> = HashMap::with_capacity(chunks.len());
    let mut distinct = Vec::new();
    for chunk in chunks {
        match lengths.insert(chunk.hash, chunk.len) {
            None => distinct.push(*chunk),
            Some(len) if len == chunk.len => {}
            Some(len) => {
                return Err(ApiError::ContentMismatch(format!(
                    "chunk {} is listed with two lengths, {len} and {}; one chunk has one length",
                    chunk.hash, chunk.len
                )));
            }
        }
    }
    Ok(distinct)
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
