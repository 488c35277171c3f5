//! The v1 API's state changes: `POST /v1/commit`, `/v1/delete` and
//! `/v1/restore`, each deciding against the current entry under the commit
//! lock.

use std::time::Instant;

use sf_protocol::v1::{CommitRequest, DeleteRequest, Entry, RestoreRequest};

use super::content::Checked;
use super::{Hub, clean_origin, tombstone_of};
use crate::db::{Action, NewVersion};
use crate::error::ApiError;

impl Hub {
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
}
