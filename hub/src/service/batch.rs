//! `POST /v1/batch`: many commits and deletes in one request and one
//! database transaction, each with its own outcome.
//!
//! Every operation is checked exactly as its single route checks it, before
//! the commit lock: a commit's chunk list, the presence of its chunks (one
//! look-up pass for the whole batch) and its content (by the bounded
//! verification workers). Under the lock, each operation is decided in
//! request order against the state the earlier ones left, inside one write
//! transaction, which commits once: a batch of a thousand small files costs
//! one durable write. A refused operation writes nothing and takes no seq,
//! so seq stays free of gaps; only a failure of the hub itself (database,
//! storage) fails the whole batch, and then nothing of it is committed.

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use sf_protocol::SyncPath;
use sf_protocol::chunking::ChunkRef;
use sf_protocol::v1::{
    BATCH_MAX_OPS, BatchOp, BatchOutcome, BatchRequest, BatchResponse, EntryKind,
};

use super::content::{Checked, Planned, RemovalMark};
use super::v1::Applied;
use super::{Hub, Loudness, clean_origin};
use crate::db::{Action, PathUse, WriteTx};
use crate::error::ApiError;
use crate::store::VerifyError;

/// Commits verified at once, at most: the verification permits bound the
/// hashing itself; this bounds the futures waiting for them.
const VERIFY_AT_ONCE: usize = 16;

/// One operation of a batch, checked and ready to be decided under the lock.
enum Ready {
    /// Refused by a check before the lock.
    Refused(ApiError),
    /// A commit that passed every check before the lock.
    Commit(Checked),
    Delete {
        path: SyncPath,
        base_version: u64,
        origin: String,
    },
}

/// One operation of a batch while it is checked: a commit whose chunks are
/// still to be looked up and verified, or already ready.
enum Pending {
    Planned(Planned),
    Ready(Ready),
}

/// The operations of a batch, decided (not yet committed).
struct Decided {
    outcomes: Vec<BatchOutcome>,
    /// Which outcomes are new versions, to announce once committed.
    written: Vec<(usize, Action)>,
    tally: Tally,
}

/// What a batch committed: how many of each, for its log line.
#[derive(Debug, Default)]
struct Tally {
    written: usize,
    unchanged: usize,
    conflicts: usize,
    refused: usize,
}

impl Hub {
    /// `POST /v1/batch`: applies the operations in order, in one
    /// transaction; one outcome each.
    pub async fn batch(&self, request: BatchRequest) -> Result<BatchResponse, ApiError> {
        let count = request.ops.len();
        if count > BATCH_MAX_OPS {
            return Err(ApiError::InvalidRequest(format!(
                "a batch carries at most {BATCH_MAX_OPS} operations, not {count}; split it"
            )));
        }
        let removals = self.removal_mark().await?;
        let steps = self.check_before_lock(request.ops, removals).await?;

        let started = Instant::now();
        let _order = self.commit_lock.lock().await;
        let mut tx = self.db.begin_write().await?;
        let steps = match self.recheck_batch(steps, removals, tx.removals).await {
            Ok(steps) => steps,
            Err(err) => {
                tx.rollback().await;
                return Err(err);
            }
        };
        if let Err(err) = tx.prefetch(&uses(&steps)).await {
            tx.rollback().await;
            return Err(err.into());
        }
        let Decided {
            outcomes,
            written,
            tally,
        } = match self.decide(&mut tx, steps).await {
            Ok(decided) => decided,
            Err(err) => {
                // Nothing of the batch is committed.
                tx.rollback().await;
                return Err(err);
            }
        };
        if written.is_empty() {
            tx.rollback().await;
        } else {
            tx.commit().await?;
        }
        // Still under the lock: broadcasts leave in seq order.
        let mut outcomes = outcomes;
        for (index, action) in written {
            if let Some(BatchOutcome::Done { entry }) = outcomes.get_mut(index) {
                self.announce(entry, action, started, Loudness::Debug);
            }
        }
        tracing::info!(
            operations = count,
            committed = tally.written,
            unchanged = tally.unchanged,
            conflicts = tally.conflicts,
            refused = tally.refused,
            ms = started.elapsed().as_millis() as u64,
            "batch"
        );
        Ok(BatchResponse { outcomes })
    }

    /// Decides every operation in order in `tx`, each against the state
    /// the earlier ones left. Fails only for a failure of the hub itself.
    async fn decide(&self, tx: &mut WriteTx, steps: Vec<Ready>) -> Result<Decided, ApiError> {
        let mut decided = Decided {
            outcomes: Vec::with_capacity(steps.len()),
            written: Vec::new(),
            tally: Tally::default(),
        };
        for step in steps {
            let applied = match step {
                Ready::Refused(err) => Err(err),
                Ready::Commit(checked) => {
                    self.apply_commit(tx, checked.new, checked.base_version)
                        .await
                }
                Ready::Delete {
                    path,
                    base_version,
                    origin,
                } => self.apply_delete(tx, &path, base_version, origin).await,
            };
            let tally = &mut decided.tally;
            let outcome = match applied {
                Ok(Applied::Written(entry, action)) => {
                    tally.written += 1;
                    decided.written.push((decided.outcomes.len(), action));
                    BatchOutcome::Done { entry }
                }
                Ok(Applied::Unchanged(entry)) => {
                    tally.unchanged += 1;
                    BatchOutcome::Done { entry }
                }
                Err(ApiError::Conflict(current)) => {
                    tally.conflicts += 1;
                    BatchOutcome::Conflict {
                        current: current.map(|c| *c),
                    }
                }
                Err(err) if err.is_hub_failure() => return Err(err),
                Err(err) => {
                    tally.refused += 1;
                    BatchOutcome::Refused { error: err.body() }
                }
            };
            decided.outcomes.push(outcome);
        }
        Ok(decided)
    }

    /// The checks of each operation's single route that come before the
    /// lock, run for the whole batch at once: the request itself, then the
    /// presence of every commit's chunks in one blocking pass, then content
    /// verification, a few commits at a time. A hub failure fails the batch.
    async fn check_before_lock(
        &self,
        ops: Vec<BatchOp>,
        removals: RemovalMark,
    ) -> Result<Vec<Ready>, ApiError> {
        let pending: Vec<Pending> = ops
            .into_iter()
            .map(|op| match op {
                BatchOp::Commit(request) => match self.plan_commit(request) {
                    Ok(planned) => Pending::Planned(planned),
                    Err(err) => Pending::Ready(Ready::Refused(err)),
                },
                BatchOp::Delete(request) => Pending::Ready(match clean_origin(&request.origin) {
                    Ok(origin) => Ready::Delete {
                        path: request.path,
                        base_version: request.base_version,
                        origin,
                    },
                    Err(err) => Ready::Refused(err),
                }),
            })
            .collect();
        let lists = pending
            .iter()
            .map(|step| match step {
                Pending::Planned(planned) => planned.distinct.clone(),
                Pending::Ready(_) => Vec::new(),
            })
            .collect();
        let present = self.check_present(lists).await?;
        let pending =
            pending
                .into_iter()
                .zip(present)
                .map(|(step, present)| match (step, present) {
                    (Pending::Planned(_), Err(err)) => Pending::Ready(Ready::Refused(err)),
                    (step, _) => step,
                });
        let ready = futures_util::stream::iter(pending)
            .map(|step| async move {
                let planned = match step {
                    Pending::Planned(planned) => planned,
                    Pending::Ready(ready) => return Ok(ready),
                };
                match self.verify_planned(&planned).await {
                    Ok(()) => Ok(match planned.finish(removals) {
                        Ok(checked) => Ready::Commit(checked),
                        Err(err) => Ready::Refused(err),
                    }),
                    Err(err) if err.is_hub_failure() => Err(err),
                    Err(err) => Ok(Ready::Refused(err)),
                }
            })
            .buffered(VERIFY_AT_ONCE)
            .collect::<Vec<_>>()
            .await;
        ready.into_iter().collect()
    }

    /// With the write lock held (`tx`): if chunks were removed since the
    /// batch's look-ups, each commit's chunks are looked up again, and a
    /// commit that lost one is refused with `missing_chunks`.
    async fn recheck_batch(
        &self,
        steps: Vec<Ready>,
        removals: RemovalMark,
        shared_now: u64,
    ) -> Result<Vec<Ready>, ApiError> {
        if !self.removed_since(removals, shared_now) {
            return Ok(steps);
        }
        let lists = steps
            .iter()
            .map(|step| match step {
                Ready::Commit(checked) => checked.distinct.clone(),
                _ => Vec::new(),
            })
            .collect();
        let present = self.check_present(lists).await?;
        Ok(steps
            .into_iter()
            .zip(present)
            .map(|(step, present)| match (step, present) {
                (Ready::Commit(_), Err(err)) => Ready::Refused(err),
                (step, _) => step,
            })
            .collect())
    }

    /// For each list of distinct chunks, whether all are stored with their
    /// listed lengths: one blocking pass over the lot. Fails whole only when
    /// the store cannot be read.
    async fn check_present(
        &self,
        lists: Vec<Vec<ChunkRef>>,
    ) -> Result<Vec<Result<(), ApiError>>, ApiError> {
        let store = Arc::clone(&self.store);
        let checked = tokio::task::spawn_blocking(move || {
            lists
                .iter()
                .map(|list| {
                    if list.is_empty() {
                        Ok(())
                    } else {
                        store.check_present_blocking(list)
                    }
                })
                .collect::<Vec<_>>()
        })
        .await?;
        checked
            .into_iter()
            .map(|result| match result {
                Ok(()) => Ok(Ok(())),
                Err(VerifyError::Io(io)) => Err(ApiError::Storage(io)),
                Err(other) => Ok(Err(ApiError::from(other))),
            })
            .collect()
    }
}

/// What each operation that will be decided does to its path, for the
/// transaction's prefetch.
fn uses(steps: &[Ready]) -> Vec<(&SyncPath, PathUse)> {
    steps
        .iter()
        .filter_map(|step| match step {
            Ready::Refused(_) => None,
            Ready::Commit(checked) => Some((
                &checked.new.path,
                match checked.new.kind {
                    EntryKind::File => PathUse::File,
                    EntryKind::Dir => PathUse::Dir,
                },
            )),
            Ready::Delete { path, .. } => Some((path, PathUse::Delete)),
        })
        .collect()
}
