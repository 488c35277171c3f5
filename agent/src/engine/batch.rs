//! Batches: decisions that move small things — files up to
//! [`SMALL_FILE`], folders, deletions — are gathered as a cycle
//! produces them and carried out together, so ten thousand small files cost
//! a few dozen requests, flushes and state transactions instead of tens of
//! thousands. What goes to the hub is in `send`; what comes from it is
//! here. Each path still gets its own outcome, sorted by
//! [`Engine::settle`] like a decision carried out alone. A folder deleted
//! here goes in the same batch as its contents, after them (decisions come
//! in that order): the hub refuses to delete a folder that still holds
//! something, so one whose contents did not all go is looked at again.

use sf_protocol::SyncPath;
use sf_protocol::v1::{Entry, EntryKind};

use super::act::ActError;
use super::{CycleError, Engine, worse};
use crate::apply::{self, Wanted};
use crate::model::{LocalFile, SyncedFile};
use crate::reconcile::{Action, Decision};
use crate::state::Settled;

/// Files up to this size travel in batches; larger ones stream alone.
pub(super) const SMALL_FILE: u64 = 4 << 20;
/// A batch is carried out once it holds this many paths…
const BATCH_MAX_ITEMS: usize = 500;
/// …or this many bytes of files.
const BATCH_MAX_BYTES: u64 = 16 << 20;
/// Batches on their way to the hub at once (see `send`): one committing
/// while the next one's chunks go up is enough to keep the hub busy.
const MAX_SENDING: usize = 2;

/// How much of a [`Pending`] a flush carries out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flush {
    /// Everything, and its outcomes recorded.
    All,
    /// Everything, but a batch that only sends may still be on its way
    /// when the flush returns (see `send`): the engine goes on deciding
    /// while the hub stores it.
    Overlap,
}

/// Something to tell the hub.
pub(super) enum Send {
    /// A file of at most [`SMALL_FILE`] bytes, or a folder.
    Upload { local: LocalFile, base_version: u64 },
    /// A file deleted here.
    Delete { synced: SyncedFile },
}

/// Decisions gathered and not carried out yet.
#[derive(Default)]
pub(super) struct Pending {
    pub(super) sends: Vec<(SyncPath, Send)>,
    receives: Vec<(SyncPath, Entry, Option<LocalFile>)>,
    /// Files and folders deleted on the hub, to move to the trash (in
    /// decision order: a folder after what was inside it).
    trashes: Vec<(SyncPath, LocalFile)>,
    bytes: u64,
}

impl Pending {
    /// Whether `decision` goes into a batch.
    pub(super) fn takes(&self, decision: &Decision) -> bool {
        match decision {
            Decision::Upload { local, .. } => {
                local.kind == EntryKind::Dir || local.size <= SMALL_FILE
            }
            Decision::DeleteRemote { .. } | Decision::TrashLocal { .. } => true,
            Decision::Download { entry, .. } => {
                entry.kind == EntryKind::Dir || entry.size <= SMALL_FILE
            }
            _ => false,
        }
    }

    /// Adds a decision [`Pending::takes`]; true when the batch is full.
    pub(super) fn push(&mut self, path: SyncPath, decision: Decision) -> bool {
        self.bytes += decision.transfer_bytes().unwrap_or(0);
        match decision {
            Decision::Upload {
                local,
                base_version,
            } => self.sends.push((
                path,
                Send::Upload {
                    local,
                    base_version,
                },
            )),
            Decision::DeleteRemote { synced } => self.sends.push((path, Send::Delete { synced })),
            Decision::Download { entry, replacing } => self.receives.push((path, entry, replacing)),
            Decision::TrashLocal { local } => self.trashes.push((path, local)),
            other => debug_assert!(false, "not a batch decision: {other:?}"),
        }
        self.sends.len() + self.receives.len() + self.trashes.len() >= BATCH_MAX_ITEMS
            || self.bytes >= BATCH_MAX_BYTES
    }
}

impl Engine {
    /// Carries out what `pending` gathered: what goes to the hub first,
    /// then removals the hub asked for, then what comes from it (which may
    /// need the room the removals make). A batch that only sends stays on
    /// its way under `Flush::Overlap`; anything else first records the
    /// batches on their way.
    pub(super) async fn flush(
        &mut self,
        pending: &mut Pending,
        flush: Flush,
    ) -> Result<(), CycleError> {
        let sends = std::mem::take(&mut pending.sends);
        let receives = std::mem::take(&mut pending.receives);
        let trashes = std::mem::take(&mut pending.trashes);
        pending.bytes = 0;
        let only_sends = trashes.is_empty() && receives.is_empty();
        if !sends.is_empty() && flush == Flush::Overlap && only_sends {
            while self.sending.len() >= MAX_SENDING {
                self.land_oldest().await?;
            }
            let after = self.sending.back_mut().and_then(|b| b.take_committed());
            let sending = self.start_sending(sends, after);
            self.sending.push_back(sending);
            return Ok(());
        }
        // Batches on their way are recorded first: outcomes land in
        // decision order.
        self.land_sending().await?;
        if !sends.is_empty() {
            self.send_batch(sends).await?;
        }
        if !trashes.is_empty() {
            self.trash_batch(trashes).await?;
        }
        if !receives.is_empty() {
            self.receive_batch(receives).await?;
        }
        Ok(())
    }

    /// Records the outcomes of every batch on its way to the hub; the
    /// first failure is returned once all are recorded.
    pub(super) async fn land_sending(&mut self) -> Result<(), CycleError> {
        let mut result = Ok(());
        while !self.sending.is_empty() {
            let landed = self.land_oldest().await;
            result = worse(result, landed);
        }
        result
    }

    /// Records the outcomes of the oldest batch on its way to the hub.
    async fn land_oldest(&mut self) -> Result<(), CycleError> {
        match self.sending.pop_front() {
            Some(sending) => self.land(sending).await,
            None => Ok(()),
        }
    }

    /// Writes the hub's entries of a batch (see [`apply::download_many`])
    /// and records them in one state transaction.
    async fn receive_batch(
        &mut self,
        items: Vec<(SyncPath, Entry, Option<LocalFile>)>,
    ) -> Result<(), CycleError> {
        let wanted: Vec<Wanted<'_>> = items
            .iter()
            .map(|(_, entry, replacing)| Wanted {
                entry,
                expected: replacing.as_ref(),
            })
            .collect();
        let written = apply::download_many(
            &self.root,
            &self.hub,
            &self.state,
            &wanted,
            self.batch.as_ref(),
        )
        .await;
        let written = match written {
            Ok(written) => written,
            Err(err) => {
                let paths = items.into_iter().map(|item| item.0);
                return self.batch_failed(paths, Action::Download, err.into()).await;
            }
        };
        let settled: Vec<Settled<'_>> = items
            .iter()
            .zip(&written)
            .filter_map(|((path, _, _), result)| {
                let (file, chunks) = result.as_ref().ok()?;
                Some(Settled::Recorded {
                    path,
                    file: file.clone(),
                    chunks,
                    remote: None,
                })
            })
            .collect();
        self.state.settle(&settled).await?;
        drop(settled);
        for ((path, _, _), result) in items.iter().zip(&written) {
            if let Ok((file, _)) = result {
                self.echoes.wrote(path, file);
            }
        }
        let alone = items.len() == 1;
        let downloaded = written.iter().filter(|r| r.is_ok()).count();
        for ((path, entry, _), result) in items.into_iter().zip(written) {
            if result.is_ok() {
                if alone {
                    self.log_file(&path, "downloaded", entry.version);
                } else {
                    tracing::debug!(%path, version = entry.version, "downloaded");
                }
            }
            let moves_content = entry.kind == EntryKind::File;
            let result = result.map(drop).map_err(ActError::from);
            self.settle(path, Action::Download, moves_content, result)
                .await?;
        }
        if !alone && downloaded > 0 {
            // One line per batch; each path's is at debug.
            tracing::info!(downloaded, "received a batch from the hub");
        }
        Ok(())
    }

    /// Moves files and folders the hub deleted to the trash, made durable
    /// together, and forgets them in one state transaction. A folder still
    /// holding something that is not ignored stays: it is looked at again
    /// while synced files inside it are on their way out, and otherwise
    /// (only new files inside) forgotten, to be uploaded again with them.
    async fn trash_batch(&mut self, items: Vec<(SyncPath, LocalFile)>) -> Result<(), CycleError> {
        let borrowed: Vec<(&SyncPath, &LocalFile)> = items.iter().map(|(p, l)| (p, l)).collect();
        let trashed = match self
            .check_marker()
            .map_err(ActError::from)
            .and_then(|()| Ok(apply::trash_many(&self.root, &borrowed, &self.rules)?))
        {
            Ok(trashed) => trashed,
            Err(err) => {
                let paths = items.into_iter().map(|item| item.0);
                return self.batch_failed(paths, Action::TrashLocal, err).await;
            }
        };
        let kept = |local: &LocalFile, result: &Result<Option<_>, _>| {
            local.kind == EntryKind::Dir && matches!(result, Ok(None))
        };
        let settled: Vec<Settled<'_>> = items
            .iter()
            .zip(&trashed)
            .filter(|((_, local), result)| result.is_ok() && !kept(local, result))
            .map(|((path, _), _)| Settled::Forgotten { path, remote: None })
            .collect();
        self.state.settle(&settled).await?;
        drop(settled);
        for ((path, _), result) in items.iter().zip(&trashed) {
            if matches!(result, Ok(Some(_))) {
                self.echoes.removed(path);
            }
        }
        let alone = items.len() == 1;
        let moved = trashed.iter().filter(|r| matches!(r, Ok(Some(_)))).count();
        for ((path, local), result) in items.into_iter().zip(trashed) {
            // Asked once the files trashed with it are forgotten.
            let result = if !kept(&local, &result) {
                result
            } else if self.state.has_synced_under(&path).await? {
                self.settle(
                    path,
                    Action::TrashLocal,
                    false,
                    Err(ActError::Retry("folder not empty yet")),
                )
                .await?;
                continue;
            } else {
                self.state.forget(&path).await?;
                result
            };
            if let Ok(Some(dest)) = &result {
                if alone {
                    tracing::info!(%path, trash = %dest.display(), "deleted on the hub; moved to trash");
                } else {
                    tracing::debug!(%path, trash = %dest.display(), "deleted on the hub; moved to trash");
                }
            }
            let result = result.map(drop).map_err(ActError::from);
            self.settle(path, Action::TrashLocal, false, result).await?;
        }
        if !alone && moved > 0 {
            tracing::info!(moved, "deleted on the hub; moved a batch to the trash");
        }
        Ok(())
    }

    /// A batch that failed as a whole: its first path carries the error
    /// (which may stop the cycle), the others are looked at again shortly.
    pub(super) async fn batch_failed(
        &mut self,
        paths: impl IntoIterator<Item = SyncPath>,
        action: Action,
        err: ActError,
    ) -> Result<(), CycleError> {
        let mut paths = paths.into_iter();
        let Some(first) = paths.next() else {
            return Ok(());
        };
        for path in paths {
            self.defer(path);
        }
        self.settle(first, action, false, Err(err)).await
    }
}
