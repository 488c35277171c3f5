//! The original client's state changes: `POST /upload` (whole files, with
//! the stale-upload and conflict-copy rules of the protocol README) and
//! `POST /delete` (no base version).

use std::collections::HashSet;
use std::time::Instant;

use super::content::RemovalMark;

use sf_protocol::conflict::conflict_copy_path;
use sf_protocol::legacy::{LEGACY_ORIGIN, UploadMeta, UploadResponse};
use sf_protocol::v1::{Entry, EntryKind};
use sf_protocol::{Sha256Hex, SyncPath};

use super::content::distinct_chunks;
use super::{Hub, tombstone_of};
use crate::db::{Action, NewVersion};
use crate::error::ApiError;
use crate::ingest::Ingested;

impl Hub {
    /// `POST /upload`: the original client's whole-file upload, already
    /// stored as chunks. See the protocol README for the stale-upload rule.
    pub async fn legacy_upload(
        &self,
        meta: UploadMeta,
        content: Ingested,
    ) -> Result<UploadResponse, ApiError> {
        self.check_file_size(content.size)?;
        let started = Instant::now();
        let _order = self.commit_lock.lock().await;
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
                let copy = self
                    .conflict_copy(&path, LEGACY_ORIGIN, legacy_mtime(), content, started)
                    .await?;
                return Ok(UploadResponse {
                    conflict: Some(copy.path.to_string()),
                    ..accepted(cur)
                });
            }
            Some(cur) => cur.version,
            None => 0,
        };
        let removals = content.removals;
        let new = ingested_version(path, content, Action::Upload, LEGACY_ORIGIN, legacy_mtime());
        let entry = self.write_ingested(new, base, removals).await?;
        Ok(accepted(&self.committed(entry, Action::Upload, started)))
    }

    /// Refuses a whole-file upload larger than `--max-file-size`.
    pub(super) fn check_file_size(&self, size: u64) -> Result<(), ApiError> {
        if size > self.max_file_size {
            return Err(ApiError::PayloadTooLarge(format!(
                "the file is larger than this hub's limit of {} bytes",
                self.max_file_size
            )));
        }
        Ok(())
    }

    /// An old client is replaying content the hub has already seen at this
    /// path (an earlier version, or the bytes of one of its conflict copies).
    async fn is_stale(&self, path: &SyncPath, sha256: &Sha256Hex) -> Result<bool, ApiError> {
        Ok(self.db.path_ever_held(path, sha256).await?
            || self.db.conflict_copy_holds(path, sha256).await?)
    }

    /// Writes an uploaded file (by `origin`) that conflicts with `path` as a
    /// conflict copy beside it, under the first free copy name.
    pub(super) async fn conflict_copy(
        &self,
        path: &SyncPath,
        origin: &str,
        mtime_ns: i64,
        content: Ingested,
        started: Instant,
    ) -> Result<Entry, ApiError> {
        let now = time::OffsetDateTime::now_utc();
        let mut taken = HashSet::new();
        let copy_path = loop {
            let candidate = conflict_copy_path(path, origin, now, |c| taken.contains(c))
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
        let removals = content.removals;
        let new = ingested_version(copy_path, content, Action::Conflict, origin, mtime_ns);
        let entry = self.write_ingested(new, 0, removals).await?;
        Ok(self.committed(entry, Action::Conflict, started))
    }

    /// Writes an uploaded version, once its chunks are known to be still
    /// stored if any were removed since the upload stored them.
    pub(super) async fn write_ingested(
        &self,
        new: NewVersion,
        base: u64,
        removals: RemovalMark,
    ) -> Result<Entry, ApiError> {
        let mut tx = self.db.begin_write().await?;
        if let Err(err) = self
            .recheck_chunks(removals, tx.removals, &distinct_chunks(&new.chunks)?)
            .await
        {
            tx.rollback().await;
            return Err(match err {
                ApiError::MissingChunks(_) => ApiError::NotReady(
                    "part of the upload was removed by garbage collection while it was \
                     stored; send it again"
                        .into(),
                ),
                other => other,
            });
        }
        let entry = tx.write(new, base).await?;
        tx.commit().await?;
        Ok(entry)
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
}

/// The original protocol carries no mtime: the hub records when it got it.
fn legacy_mtime() -> i64 {
    crate::db::now_ms() * 1_000_000
}

/// A whole uploaded file as the version to write.
pub(super) fn ingested_version(
    path: SyncPath,
    content: Ingested,
    action: Action,
    origin: &str,
    mtime_ns: i64,
) -> NewVersion {
    NewVersion {
        path,
        kind: EntryKind::File,
        sha256: Some(content.sha256),
        size: content.size,
        mtime_ns,
        executable: false,
        origin: origin.to_owned(),
        chunks: content.chunks,
        action,
    }
}
