//! The v1 API's state changes: `POST /v1/commit`, `/v1/delete` and
//! `/v1/restore`, each deciding against the current entry under the commit
//! lock. The decisions of commit and delete ([`Hub::apply_commit`],
//! [`Hub::apply_delete`]) are made inside a write transaction, so a batch
//! makes the same ones for each of its changes in its one transaction.

use std::time::Instant;

use sf_protocol::SyncPath;
use sf_protocol::v1::{CommitRequest, DeleteRequest, Entry, EntryKind, RestoreRequest};

use super::content::Checked;
use super::{Hub, clean_origin, tombstone_of};
use crate::db::{Action, NewVersion, PathUse, WriteTx};
use crate::error::ApiError;

/// What a commit or delete came to, decided in a write transaction.
pub(super) enum Applied {
    /// A new version, written in the transaction (not yet committed).
    Written(Entry, Action),
    /// Nothing to write: the path already is what was asked (an identical
    /// commit, a delete of a tombstone). The answer is the current entry.
    Unchanged(Entry),
}

impl Hub {
    /// `POST /v1/commit`: a new version of a file or directory whose chunks
    /// the hub already holds.
    pub async fn commit(&self, request: CommitRequest) -> Result<Entry, ApiError> {
        let Checked {
            new,
            base_version,
            distinct,
            removals,
        } = self.checked_commit(request).await?;
        let started = Instant::now();
        let _order = self.commit_lock.lock().await;
        let mut tx = self.db.begin_write().await?;
        self.recheck_chunks(removals, tx.removals, &distinct)
            .await?;
        let usage = match new.kind {
            EntryKind::File => PathUse::File,
            EntryKind::Dir => PathUse::Dir,
        };
        let applied = match tx.prefetch(&[(&new.path, usage)]).await {
            Ok(()) => self.apply_commit(&mut tx, new, base_version).await,
            Err(err) => Err(err.into()),
        };
        self.finish_one(tx, applied, started).await
    }

    /// `POST /v1/delete`: a tombstone, if `base_version` is current.
    pub async fn delete(&self, request: DeleteRequest) -> Result<Entry, ApiError> {
        let origin = clean_origin(&request.origin)?;
        let started = Instant::now();
        let _order = self.commit_lock.lock().await;
        let mut tx = self.db.begin_write().await?;
        let applied = self
            .apply_delete(&mut tx, &request.path, request.base_version, origin)
            .await;
        self.finish_one(tx, applied, started).await
    }

    /// Decides a checked commit against the path's current entry in `tx`,
    /// and writes it there unless refused or already current.
    pub(super) async fn apply_commit(
        &self,
        tx: &mut WriteTx,
        new: NewVersion,
        base_version: u64,
    ) -> Result<Applied, ApiError> {
        if let Some(current) = tx.peek(&new.path).await?
            && !current.deleted
            && current.version == base_version
            && current.kind == new.kind
            && current.sha256 == new.sha256
            && current.executable == new.executable
        {
            // The content it already has, on the current version: nothing to
            // record. (A retry after a lost answer finds its own write as
            // `current` in the 409 instead.)
            let current = tx.current(&new.path).await?.unwrap_or(current);
            return Ok(Applied::Unchanged(current));
        }
        match tx.write(new, base_version).await {
            Ok(entry) => Ok(Applied::Written(entry, Action::Upload)),
            Err(err) => Err(self.refused(err)),
        }
    }

    /// Decides a delete against the path's current entry in `tx`, and
    /// writes the tombstone there unless refused or already deleted.
    pub(super) async fn apply_delete(
        &self,
        tx: &mut WriteTx,
        path: &SyncPath,
        base_version: u64,
        origin: String,
    ) -> Result<Applied, ApiError> {
        let Some(current) = tx.peek(path).await? else {
            return Err(ApiError::NotFound(format!("{path} does not exist")));
        };
        if current.deleted && (base_version == 0 || base_version == current.version) {
            let current = tx.current(path).await?.unwrap_or(current);
            return Ok(Applied::Unchanged(current));
        }
        let tombstone = tombstone_of(&current, origin);
        match tx.write(tombstone, base_version).await {
            Ok(entry) => Ok(Applied::Written(entry, Action::Delete)),
            Err(err) => Err(self.refused(err)),
        }
    }

    /// Ends the transaction of a single change: committed if it wrote, and
    /// then announced; rolled back otherwise.
    async fn finish_one(
        &self,
        tx: WriteTx,
        applied: Result<Applied, ApiError>,
        started: Instant,
    ) -> Result<Entry, ApiError> {
        match applied {
            Ok(Applied::Written(entry, action)) => {
                tx.commit().await?;
                Ok(self.committed(entry, action, started))
            }
            Ok(Applied::Unchanged(entry)) => {
                tx.rollback().await;
                Ok(entry)
            }
            Err(err) => {
                tx.rollback().await;
                Err(err)
            }
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
}
