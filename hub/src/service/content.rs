//! A commit's content checked against the chunk store: the chunk list
//! against the declared size, each distinct chunk looked up once, the bytes
//! hashed by a bounded number of workers, all before the commit lock is
//! taken; and, under the lock, a re-check of the chunks if garbage
//! collection removed any meanwhile.

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
    /// Its chunks, each once.
    pub(super) distinct: Vec<ChunkRef>,
    /// [`crate::store::ChunkStore::removals`] before the chunks were looked up.
    pub(super) removals: u64,
}

impl Hub {
    /// Validates a commit and verifies its content against the store, before
    /// any lock is taken: hashing a large file must not stall other commits.
    pub(super) async fn checked_commit(&self, request: CommitRequest) -> Result<Checked, ApiError> {
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
        tokio::task::spawn_blocking(move || store.check_present_blocking(&lookup)).await??;
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
        tokio::task::spawn_blocking(move || store.verify_blocking(&chunks, &sha256)).await??;
        Ok(distinct)
    }

    /// Called with the commit lock held: if chunks were removed since
    /// `removals` was read, makes sure none of `distinct` was among them.
    pub(super) async fn recheck_chunks(
        &self,
        removals: u64,
        distinct: &[ChunkRef],
    ) -> Result<(), ApiError> {
        if self.store.removals() == removals || distinct.is_empty() {
            return Ok(());
        }
        let store = Arc::clone(&self.store);
        let distinct = distinct.to_vec();
        tokio::task::spawn_blocking(move || store.check_present_blocking(&distinct)).await??;
        Ok(())
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
