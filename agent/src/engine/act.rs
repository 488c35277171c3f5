//! Carrying decisions out: each [`Decision`] holds what it acts on, so this
//! is where the hub, the folder ([`crate::apply`]) and the state database
//! change, one path at a time, and where a failure is sorted into "retry
//! shortly", "retry when the hub is back", "report and go on" or "stop".

use sf_protocol::SyncPath;
use sf_protocol::v1::{Entry, EntryKind, Scope};

use super::batch::{Flush, Pending};
use super::{CycleError, Engine, EngineError};
use crate::apply::{self, ApplyError};
use crate::hub_client::{CommitOutcome, HubError};
use crate::model::{LocalFile, SyncedFile};
use crate::reconcile::{Action, Decision, Direction};
use crate::scan::local_path;
use crate::state::{ProblemKind, StateError};

/// Why carrying out one decision failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum ActError {
    #[error(transparent)]
    Hub(#[from] HubError),
    /// A change to the folder failed (it may have failed talking to the
    /// hub or the state database while downloading: see [`ApplyError`]).
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Marker(#[from] EngineError),
    #[error("{0}")]
    Retry(&'static str),
}

impl Engine {
    /// Carries out `decisions` in their order. Small files, folders and
    /// deletions are gathered into batches ([`super::batch`]); anything
    /// else first carries out what was gathered before it. Returns early,
    /// with everything done so far recorded, when the stop signal fires.
    pub(super) async fn act(
        &mut self,
        decisions: Vec<(SyncPath, Decision)>,
    ) -> Result<(), CycleError> {
        let mut pending = Pending::default();
        self.gather(&mut pending, decisions).await?;
        self.flush(&mut pending, Flush::All).await
    }

    /// [`Engine::act`], leaving the last batch in `pending` for the caller
    /// to add to or carry out: a full scan's batches span its windows, so
    /// a tree of small folders still moves in batches of hundreds.
    pub(super) async fn gather(
        &mut self,
        pending: &mut Pending,
        decisions: Vec<(SyncPath, Decision)>,
    ) -> Result<(), CycleError> {
        for (path, decision) in decisions {
            if *self.stop.borrow() {
                // Each operation leaves state consistent on its own; what
                // is left is found again by the next start's scan.
                return Ok(());
            }
            let action = decision.action();
            if action.writes_to_hub() && self.direction() == Direction::ReceiveOnly {
                // Decided before a 403 turned this agent receive-only; the
                // scan it asked for decides the path again.
                continue;
            }
            if pending.takes(&decision) {
                if pending.push(path, decision) {
                    self.flush(pending, Flush::Overlap).await?;
                }
                continue;
            }
            self.flush(pending, Flush::All).await?;
            let moves_content = decision.transfer_bytes().is_some();
            tracing::debug!(%path, ?action, "deciding");
            let result = self.execute(&path, decision).await;
            self.settle(path, action, moves_content, result).await?;
        }
        Ok(())
    }

    /// Sorts the result of carrying out one decision: done, or "retry
    /// shortly", "retry when the hub is back", "report and go on", "stop".
    pub(super) async fn settle(
        &mut self,
        path: SyncPath,
        action: Action,
        moves_content: bool,
        result: Result<(), ActError>,
    ) -> Result<(), CycleError> {
        // What the engine left at `path` stands only when this outcome is
        // its own download or trash; anything else decided about the path
        // makes a later event worth a look.
        if !matches!(
            (&result, action),
            (Ok(()), Action::Download | Action::TrashLocal)
        ) {
            self.echoes.forget(&path);
        }
        match result {
            Ok(()) => {
                self.attempts.remove(&path);
                // Its bytes were counted as they moved.
                if let (Some(batch), true) = (&self.batch, moves_content) {
                    batch.file_done(0);
                }
            }
            Err(
                ActError::Hub(HubError::Unauthorized(refused))
                | ActError::Apply(ApplyError::Hub(HubError::Unauthorized(refused))),
            ) => {
                return Err(CycleError::Fatal(EngineError::Unauthorized(refused)));
            }
            Err(ActError::Hub(err)) if err.is_forbidden() && action.writes_to_hub() => {
                // The token lost its write scope (or the hub keeps it
                // read-only): stop sending rather than retry.
                tracing::warn!(%path, error = %err, "the hub refused a change");
                // A change of direction has every path decided again.
                self.set_scope(Scope::Read).await?;
                self.defer(path);
            }
            Err(ActError::Hub(err) | ActError::Apply(ApplyError::Hub(err)))
                if err.is_retryable() =>
            {
                return Err(CycleError::HubDown(err));
            }
            Err(ActError::State(err) | ActError::Apply(ApplyError::State(err))) => {
                return Err(err.into());
            }
            Err(ActError::Marker(err)) => return Err(CycleError::Fatal(err)),
            Err(ActError::Apply(
                err @ (ApplyError::Blocked { .. } | ApplyError::StateDirBlocked { .. }),
            )) => {
                // Not retried: the next scan or hub change looks again.
                self.refuse(&path, &err.to_string()).await?;
            }
            Err(ActError::Retry(reason)) => {
                tracing::debug!(%path, reason, "looking at it again shortly");
                self.defer(path);
            }
            Err(ActError::Apply(ApplyError::ChangedMeanwhile { .. })) => {
                tracing::debug!(%path, "changed on disk meanwhile; looking at it again shortly");
                self.defer(path);
            }
            Err(err) => {
                tracing::warn!(%path, error = %err, "could not sync; will retry");
                self.state
                    .set_problem(path.as_str(), ProblemKind::Error, &err.to_string())
                    .await?;
                self.defer(path);
            }
        }
        Ok(())
    }

    async fn execute(&mut self, path: &SyncPath, decision: Decision) -> Result<(), ActError> {
        match decision {
            Decision::Nothing => Ok(()),
            Decision::Upload {
                local,
                base_version,
            } => self.upload(path, &local, base_version).await,
            Decision::Download { entry, replacing } => {
                self.download(path, &entry, replacing.as_ref()).await?;
                self.log_file(path, "downloaded", entry.version);
                Ok(())
            }
            Decision::ConflictCopyThenDownload { local, remote } => {
                let copy = self.set_aside(path, &local).await?;
                tracing::warn!(%path, copy = %copy, "conflict: both sides changed; kept the local version as a copy");
                let detail = format!("local version of {path}, edited on both sides");
                self.state
                    .set_problem(copy.as_str(), ProblemKind::Conflict, &detail)
                    .await?;
                self.upload(&copy, &local, 0).await?;
                self.download(path, &remote, None).await
            }
            Decision::SetAsideThenDownload { local, remote } => {
                let copy = self.set_aside(path, &local).await?;
                tracing::warn!(%path, copy = %copy, "the hub changed a file changed here; kept the local version as a copy, not sent (read-only token)");
                let detail = format!(
                    "local version of {path}, changed here and on the hub; not sent (read-only token)"
                );
                self.state
                    .set_problem(copy.as_str(), ProblemKind::Conflict, &detail)
                    .await?;
                self.download(path, &remote, None).await
            }
            Decision::DeleteRemote { .. } | Decision::TrashLocal { .. } => {
                // Removals are always gathered (`Pending::takes`): a folder
                // goes after the files inside it, in their batch's wake.
                debug_assert!(false, "a removal was not batched");
                Err(ActError::Retry("removals are carried out in batches"))
            }
            Decision::Record { local, entry } => {
                let file = synced_from(&local, entry.version);
                let chunks = entry.chunks.as_deref().unwrap_or_default();
                Ok(self.state.record(path, &file, chunks).await?)
            }
            Decision::Forget => Ok(self.state.forget(path).await?),
        }
    }

    /// Writes the hub's `entry` at `path` in place of `replacing` and
    /// records it as synced.
    async fn download(
        &mut self,
        path: &SyncPath,
        entry: &Entry,
        replacing: Option<&LocalFile>,
    ) -> Result<(), ActError> {
        let (file, chunks) = apply::download(
            &self.root,
            &self.hub,
            &self.state,
            entry,
            replacing,
            self.batch.as_ref(),
        )
        .await?;
        self.state.record(path, &file, &chunks).await?;
        self.echoes.wrote(path, &file);
        Ok(())
    }

    /// Renames the local version of `path` to a conflict copy whose name
    /// no live hub path has; returns the copy's path.
    async fn set_aside(
        &mut self,
        path: &SyncPath,
        local: &LocalFile,
    ) -> Result<SyncPath, ActError> {
        let taken = self
            .state
            .live_remote_with_prefix(&sf_protocol::conflict::conflict_copy_prefix(path))
            .await?;
        let copy = apply::rename_to_conflict_copy(&self.root, path, &self.origin, local, |c| {
            taken.contains(c)
        })?;
        self.new_copies.insert(copy.clone());
        self.notifier.send(
            "synced-folder: conflict",
            &format!("{path} changed here and on the hub; this side's version is kept as {copy}"),
        );
        if local.kind == EntryKind::Dir {
            // A folder moved with what is in it: no event names its
            // contents, so the next cycle looks at everything.
            self.full_scan = true;
        }
        Ok(copy)
    }

    async fn upload(
        &mut self,
        path: &SyncPath,
        local: &LocalFile,
        base_version: u64,
    ) -> Result<(), ActError> {
        let outcome = match local.kind {
            EntryKind::Dir => {
                self.hub
                    .commit_dir(path, base_version, local.mtime_ns, &self.origin)
                    .await?
            }
            EntryKind::File => {
                self.hub
                    .upload_file(
                        &local_path(&self.root, path),
                        path,
                        base_version,
                        local.sha256,
                        local.mtime_ns,
                        local.executable,
                        &self.origin,
                        self.batch.as_ref(),
                    )
                    .await?
            }
        };
        match outcome {
            CommitOutcome::Committed(entry) => {
                self.state.note_remote(&entry).await?;
                let file = synced_from(local, entry.version);
                self.state
                    .record(path, &file, entry.chunks.as_deref().unwrap_or_default())
                    .await?;
                self.answered.recorded(entry.seq);
                self.log_file(path, "uploaded", entry.version);
                Ok(())
            }
            CommitOutcome::Conflict(current) => self.conflicted(current).await,
            CommitOutcome::FileChanged => Err(ActError::Retry("changed while uploading")),
        }
    }

    /// The hub moved on meanwhile: note its entry and decide again.
    pub(super) async fn conflicted(&mut self, current: Option<Entry>) -> Result<(), ActError> {
        if let Some(current) = current {
            self.state.note_remote(&current).await?;
        }
        self.remote_news = true;
        Err(ActError::Retry("the hub changed meanwhile"))
    }

    /// One line per file moved, unless a progress display covers them.
    pub(super) fn log_file(&self, path: &SyncPath, what: &'static str, version: u64) {
        if self.batch.is_some() {
            tracing::debug!(%path, version, "{what}");
        } else {
            tracing::info!(%path, version, "{what}");
        }
    }
}

pub(super) fn synced_from(local: &LocalFile, version: u64) -> SyncedFile {
    SyncedFile {
        kind: local.kind,
        sha256: local.sha256,
        size: local.size,
        mtime_ns: local.mtime_ns,
        inode: local.inode,
        executable: local.executable,
        version,
    }
}
