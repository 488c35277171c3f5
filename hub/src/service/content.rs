//! A commit's content checked against the chunk store: the chunk list
//! against the declared size, each distinct chunk looked up once, the bytes
//! hashed by a bounded number of workers, all before the commit lock is
//! taken; and, under the lock, a re-check of the chunks if garbage
//! collection removed any meanwhile.
//!
//! The checks come in steps ([`Hub::plan_commit`], the presence check,
//! [`Hub::verify_planned`], [`Planned::finish`]) so that a batch can run
//! each step for all its commits at once; a single commit runs them in turn
//! ([`Hub::checked_commit`]). Either way a commit is refused for the same
//! reason, checked in the same order.

use std::collections::HashMap;
use std::sync::Arc;

use sf_protocol::Sha256Hex;
use sf_protocol::chunking::{ChunkListError, ChunkRef, check_chunk_list};
use sf_protocol::v1::{CommitRequest, EntryKind};

use super::{Hub, clean_origin};
use crate::db::{Action, NewVersion};
use crate::error::ApiError;

/// A commit that passed its checks, ready to write.
pub(super) struct Checked {
    pub(super) new: NewVersion,
    pub(super) base_version: u64,
    /// Its chunks, each once.
    pub(super) distinct: Vec<ChunkRef>,
    /// Where chunk removals stood before the chunks were looked up.
    pub(super) removals: RemovalMark,
}

/// Where chunk removals stood before a commit's chunks were looked up: the
/// count shared through the database (garbage collection on any hub) and
/// this store's own (damaged chunks moved aside). If either moved by the
/// time the commit holds the write lock, its chunks are looked up again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemovalMark {
    pub shared: u64,
    pub local: u64,
}

/// A commit whose request passed the checks that need neither the store nor
/// the database; its chunks are still to be looked up and verified.
pub(super) struct Planned {
    pub(super) request: CommitRequest,
    /// Its chunks, each once (none for a directory).
    pub(super) distinct: Vec<ChunkRef>,
}

impl Planned {
    /// The version to write, once the content is verified. The origin is
    /// checked last, as it always was.
    pub(super) fn finish(self, removals: RemovalMark) -> Result<Checked, ApiError> {
        let request = self.request;
        let origin = clean_origin(&request.origin)?;
        Ok(Checked {
            new: NewVersion {
                path: request.path,
                kind: request.kind,
                sha256: Some(request.sha256),
                size: request.size,
                mtime_ns: request.mtime_ns,
                executable: request.executable && request.kind == EntryKind::File,
                origin,
                chunks: request.chunks,
                action: Action::Upload,
            },
            base_version: request.base_version,
            distinct: self.distinct,
            removals,
        })
    }
}

impl Hub {
    /// Validates a commit and verifies its content against the store, before
    /// any lock is taken: hashing a large file must not stall other commits.
    pub(super) async fn checked_commit(&self, request: CommitRequest) -> Result<Checked, ApiError> {
        let removals = self.removal_mark().await?;
        let planned = self.plan_commit(request)?;
        if !planned.distinct.is_empty() {
            let store = Arc::clone(&self.store);
            let lookup = planned.distinct.clone();
            tokio::task::spawn_blocking(move || store.check_present_blocking(&lookup)).await??;
        }
        self.verify_planned(&planned).await?;
        planned.finish(removals)
    }

    /// The checks that cost nothing but the request: the size limit, a
    /// directory's emptiness, a file's chunk list against its size. Nothing
    /// is looked up before the list is known to fit the size.
    pub(super) fn plan_commit(&self, request: CommitRequest) -> Result<Planned, ApiError> {
        if request.size > self.max_file_size {
            return Err(ApiError::PayloadTooLarge(format!(
                "{} is {} bytes; this hub accepts files up to {} bytes (--max-file-size)",
                request.path, request.size, self.max_file_size
            )));
        }
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
            EntryKind::File => {
                check_chunk_list(&request.chunks, request.size).map_err(|err| {
                    let detail = format!("{}: {err}", request.path);
                    match err {
                        ChunkListError::SizeMismatch { .. } => ApiError::ContentMismatch(detail),
                        _ => ApiError::InvalidRequest(detail),
                    }
                })?;
                distinct_chunks(&request.chunks)?
            }
        };
        Ok(Planned { request, distinct })
    }

    /// Checks that a file commit's stored chunks concatenate to its sha256;
    /// call once every chunk is known to be stored with its listed length.
    pub(super) async fn verify_planned(&self, planned: &Planned) -> Result<(), ApiError> {
        let request = &planned.request;
        if request.kind == EntryKind::Dir || needs_no_reading(request) {
            return Ok(());
        }
        // The same chunk list for the same content was verified before (a
        // rename, a restore, a copy): the chunks are immutable, skip re-reading.
        if self.db.verified_chunks(&request.sha256).await?.as_ref() == Some(&request.chunks) {
            return Ok(());
        }
        let _permit = self
            .verify_permits
            .acquire()
            .await
            .map_err(|_| ApiError::NotReady("the hub is shutting down".into()))?;
        let store = Arc::clone(&self.store);
        let chunks = request.chunks.clone();
        let sha256 = request.sha256;
        tokio::task::spawn_blocking(move || store.verify_blocking(&chunks, &sha256)).await??;
        Ok(())
    }

    /// Where chunk removals stand now; read before looking chunks up.
    pub async fn removal_mark(&self) -> Result<RemovalMark, ApiError> {
        Ok(RemovalMark {
            shared: self.db.chunk_removals().await?,
            local: self.store.removals(),
        })
    }

    /// Whether chunks were removed since `mark`, given the shared count a
    /// write transaction read as it took the write lock (`WriteTx::removals`:
    /// no removal can happen until it ends).
    pub(super) fn removed_since(&self, mark: RemovalMark, shared_now: u64) -> bool {
        shared_now != mark.shared
            || crate::db::removal_under_way(shared_now)
            || self.store.removals() != mark.local
    }

    /// Called with the write lock held (`shared_now` read as it was taken):
    /// if chunks were removed since `mark`, makes sure none of `distinct`
    /// was among them.
    pub(super) async fn recheck_chunks(
        &self,
        mark: RemovalMark,
        shared_now: u64,
        distinct: &[ChunkRef],
    ) -> Result<(), ApiError> {
        if !self.removed_since(mark, shared_now) || distinct.is_empty() {
            return Ok(());
        }
        let store = Arc::clone(&self.store);
        let distinct = distinct.to_vec();
        tokio::task::spawn_blocking(move || store.check_present_blocking(&distinct)).await??;
        Ok(())
    }
}

/// Content whose digest the store has already proven, so verifying it would
/// re-read bytes for nothing: a file of one chunk whose hash is the file's
/// sha256 and whose length is its size (a chunk is stored only under the
/// hash of its bytes, and its length was just checked on disk), or an empty
/// file with the empty digest. Thousands of small files commit this way.
fn needs_no_reading(request: &CommitRequest) -> bool {
    match request.chunks.as_slice() {
        [] => request.sha256 == Sha256Hex::empty(),
        [only] => only.hash == request.sha256 && only.len == request.size,
        _ => false,
    }
}

/// Each chunk of `chunks` once, in first-listed order. A hash listed with two
/// lengths cannot be right.
pub(super) fn distinct_chunks(chunks: &[ChunkRef]) -> Result<Vec<ChunkRef>, ApiError> {
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
