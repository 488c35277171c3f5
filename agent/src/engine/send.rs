//! Sending a batch to the hub: the small files are read and chunked on a
//! blocking thread (each checked against the digest its decision was made
//! on), the hub is asked once which chunks it lacks, those go up in packs,
//! and every commit and delete goes in one `POST /v1/batch`, whose outcomes
//! are recorded in one state transaction.
//!
//! The reading and the requests run on a task of their own ([`Sending`]),
//! so the engine can go on deciding the next batch (hashing its files)
//! while the hub stores this one: a first sync or a burst of new files then
//! costs about the larger of the agent's and the hub's work, not their
//! sum. At most two batches are on their way (`MAX_SENDING`): the next
//! one's files are read and its chunks go up meanwhile, but its commits go
//! only once the hub answered the previous batch's, so the hub takes
//! commits in decision order. Outcomes are recorded ("landed") oldest
//! first, before anything is carried out alone and at the end of every
//! cycle.

use std::collections::HashSet;
use std::path::PathBuf;

use sf_protocol::chunking::{Chunk, Chunker, MIN_CHUNK_SIZE};
use sf_protocol::v1::{
    BatchOp, BatchOutcome, CommitRequest, DeleteRequest, EntryKind, ErrorCode, PACK_MAX_CHUNKS,
};
use sf_protocol::{Sha256Hex, SyncPath};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::act::{ActError, synced_from};
use super::batch::Send;
use super::{CycleError, Engine};
use crate::hub_client::{HubClient, HubError, refused};
use crate::reconcile::Action;
use crate::scan::local_path;
use crate::state::Settled;

/// The most chunk bytes one `POST /v1/chunks/pack` carries.
const PACK_MAX_BYTES: usize = 8 << 20;

/// A small file as read for sending.
enum Read {
    /// Its size and chunks, with their bytes.
    Whole(u64, Vec<Chunk>),
    /// Not what the decision saw (it changed since): looked at again.
    Changed,
}

/// A batch on its way to the hub (see the module doc).
pub(super) struct Sending {
    task: JoinHandle<Sent>,
    /// Told whether the hub answered the batch's request (each operation
    /// may still have met a conflict): the batch after it sends its own
    /// commits only then, so the hub takes commits in decision order (a
    /// folder before what is inside it).
    committed: Option<oneshot::Receiver<bool>>,
}

impl Sending {
    /// The signal the batch after this one waits for (given once).
    pub(super) fn take_committed(&mut self) -> Option<oneshot::Receiver<bool>> {
        self.committed.take()
    }
}

/// What became of a batch sent: its items, the operation each became
/// (`None`: its file changed since it was decided) with the hub's outcome
/// of each operation sent, or why the batch as a whole failed.
struct Sent {
    items: Vec<(SyncPath, Send)>,
    result: Result<(Vec<Option<BatchOp>>, Vec<BatchOutcome>), ActError>,
}

/// What the sending task needs from the engine.
struct Sender {
    hub: HubClient,
    origin: String,
}

impl Engine {
    /// Carries out `items` at once: see the module doc.
    pub(super) async fn send_batch(
        &mut self,
        items: Vec<(SyncPath, Send)>,
    ) -> Result<(), CycleError> {
        let sending = self.start_sending(items, None);
        self.land(sending).await
    }

    /// Starts sending `items`, whose commits go once `after` (the batch
    /// sent before, if still on its way: [`Sending::take_committed`]) was
    /// answered; [`Engine::land`] records the outcomes.
    pub(super) fn start_sending(
        &self,
        items: Vec<(SyncPath, Send)>,
        after: Option<oneshot::Receiver<bool>>,
    ) -> Sending {
        let (committed, committed_rx) = oneshot::channel();
        let has_deletes = items
            .iter()
            .any(|(_, send)| matches!(send, Send::Delete { .. }));
        // Checked here, on the engine, after every decision of the batch
        // was made: deletions decided while the folder was gone (unmounted,
        // deleted) never go.
        let marker = if has_deletes {
            self.check_marker()
        } else {
            Ok(())
        };
        let files: Vec<(PathBuf, Sha256Hex, u64)> = items
            .iter()
            .filter_map(|(path, send)| match send {
                Send::Upload { local, .. } if local.kind == EntryKind::File => {
                    Some((local_path(&self.root, path), local.sha256, local.size))
                }
                _ => None,
            })
            .collect();
        let sender = Sender {
            hub: self.hub.clone(),
            origin: self.origin.clone(),
        };
        let task = tokio::spawn(async move {
            let result = match marker {
                Ok(()) => sender.send(&items, files, after).await,
                Err(err) => Err(err.into()),
            };
            // The batch after this one may have gone already.
            let _ = committed.send(result.is_ok());
            Sent { items, result }
        });
        Sending {
            task,
            committed: Some(committed_rx),
        }
    }

    /// Records the outcomes of the batch `sending` (waiting for it).
    pub(super) async fn land(&mut self, sending: Sending) -> Result<(), CycleError> {
        let Sent { items, result } = match sending.task.await {
            Ok(sent) => sent,
            // A bug: the agent stops as if it had happened here.
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(err) => {
                // Cancelled: the runtime is shutting down. Nothing is known
                // of the batch's outcome, so nothing is recorded; the next
                // start's scan decides its paths again.
                return Err(CycleError::HubDown(HubError::Io(std::io::Error::other(
                    format!("the batch sender was cancelled: {err}"),
                ))));
            }
        };
        match result {
            Ok((ops, outcomes)) => {
                if let Some(progress) = &self.batch {
                    // The files read: the bytes that moved (or that the
                    // hub held already).
                    let read = ops.iter().flatten().map(|op| match op {
                        BatchOp::Commit(commit) => commit.size,
                        _ => 0,
                    });
                    progress.add_bytes(read.sum());
                }
                self.commit_batch(items, ops, outcomes).await
            }
            Err(err) => {
                let first_action = action_of(&items[0].1);
                let paths = items.into_iter().map(|item| item.0);
                self.batch_failed(paths, first_action, err).await
            }
        }
    }
}

impl Sender {
    /// Reads the batch's files, sends the chunks the hub lacks, then the
    /// batch; returns each item's operation and the outcomes of those sent.
    async fn send(
        &self,
        items: &[(SyncPath, Send)],
        files: Vec<(PathBuf, Sha256Hex, u64)>,
        after: Option<oneshot::Receiver<bool>>,
    ) -> Result<(Vec<Option<BatchOp>>, Vec<BatchOutcome>), ActError> {
        let ops = self.prepare(items, files).await?;
        if let Some(after) = after {
            // Dropped unanswered: the task before panicked.
            if !after.await.unwrap_or(false) {
                return Err(ActError::Retry("the batch before it was not committed"));
            }
        }
        let to_send: Vec<BatchOp> = ops.iter().flatten().cloned().collect();
        let outcomes = if to_send.is_empty() {
            Vec::new()
        } else {
            self.hub.batch(to_send).await?
        };
        Ok((ops, outcomes))
    }

    /// Reads the batch's files, sends the chunks the hub lacks, and returns
    /// each item's operation (`None`: its file changed since it was decided).
    async fn prepare(
        &self,
        items: &[(SyncPath, Send)],
        files: Vec<(PathBuf, Sha256Hex, u64)>,
    ) -> Result<Vec<Option<BatchOp>>, ActError> {
        let mut reads = tokio::task::spawn_blocking(move || {
            files
                .iter()
                .map(|(disk, sha, size)| read_small(disk, *sha, *size))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|err| {
            HubError::Io(std::io::Error::other(format!(
                "the file reader failed: {err}"
            )))
        })?
        .into_iter();
        let mut ops = Vec::with_capacity(items.len());
        let mut chunks: Vec<Chunk> = Vec::new();
        for (path, send) in items {
            let op = match send {
                Send::Delete { synced } => Some(BatchOp::Delete(DeleteRequest {
                    path: path.clone(),
                    base_version: synced.version,
                    origin: self.origin.clone(),
                })),
                Send::Upload {
                    local,
                    base_version,
                } => {
                    let mut commit = CommitRequest {
                        path: path.clone(),
                        kind: local.kind,
                        base_version: *base_version,
                        sha256: local.sha256,
                        size: 0,
                        mtime_ns: local.mtime_ns,
                        executable: local.executable && local.kind == EntryKind::File,
                        chunks: Vec::new(),
                        origin: self.origin.clone(),
                    };
                    if local.kind == EntryKind::Dir {
                        commit.sha256 = Sha256Hex::empty();
                        Some(BatchOp::Commit(commit))
                    } else {
                        match reads.next() {
                            Some(Ok(Read::Whole(size, file_chunks))) => {
                                commit.size = size;
                                commit.chunks = file_chunks.iter().map(Chunk::to_ref).collect();
                                chunks.extend(file_chunks);
                                Some(BatchOp::Commit(commit))
                            }
                            Some(Ok(Read::Changed)) => None,
                            Some(Err(err)) => return Err(HubError::Io(err).into()),
                            None => {
                                return Err(HubError::Io(std::io::Error::other(
                                    "a file of the batch was not read",
                                ))
                                .into());
                            }
                        }
                    }
                }
            };
            ops.push(op);
        }
        self.send_chunks(chunks).await?;
        Ok(ops)
    }

    /// Uploads those of `chunks` the hub lacks, each once, in packs.
    async fn send_chunks(&self, chunks: Vec<Chunk>) -> Result<(), ActError> {
        if chunks.is_empty() {
            return Ok(());
        }
        let hashes: Vec<Sha256Hex> = chunks.iter().map(|c| c.hash).collect();
        let mut missing: HashSet<Sha256Hex> =
            self.hub.missing_chunks(hashes).await?.into_iter().collect();
        let mut pack: Vec<Chunk> = Vec::new();
        let mut pack_bytes = 0;
        for chunk in chunks {
            let len = chunk.data.len();
            if missing.remove(&chunk.hash) {
                if !pack.is_empty()
                    && (pack.len() >= PACK_MAX_CHUNKS || pack_bytes + len > PACK_MAX_BYTES)
                {
                    self.hub.put_pack(std::mem::take(&mut pack)).await?;
                    pack_bytes = 0;
                }
                pack_bytes += len;
                pack.push(chunk);
            }
        }
        if !pack.is_empty() {
            self.hub.put_pack(pack).await?;
        }
        Ok(())
    }
}

impl Engine {
    /// Settles each item of a batch sent by the hub's outcome of its
    /// operation.
    async fn commit_batch(
        &mut self,
        items: Vec<(SyncPath, Send)>,
        ops: Vec<Option<BatchOp>>,
        outcomes: Vec<BatchOutcome>,
    ) -> Result<(), CycleError> {
        let mut outcomes = outcomes.into_iter();
        // Each item's outcome, or `None` when it was not sent.
        let matched: Vec<Option<BatchOutcome>> = ops
            .iter()
            .map(|op| op.as_ref().and_then(|_| outcomes.next()))
            .collect();

        let settled: Vec<Settled<'_>> = items
            .iter()
            .zip(&matched)
            .filter_map(|((path, send), outcome)| match (send, outcome.as_ref()?) {
                (Send::Upload { local, .. }, BatchOutcome::Done { entry }) => {
                    Some(Settled::Recorded {
                        path,
                        file: synced_from(local, entry.version),
                        chunks: entry.chunks.as_deref().unwrap_or_default(),
                        remote: Some(entry),
                    })
                }
                (Send::Delete { .. }, BatchOutcome::Done { entry }) => Some(Settled::Forgotten {
                    path,
                    remote: Some(entry),
                }),
                (Send::Delete { .. }, BatchOutcome::Refused { error })
                    if error.error == ErrorCode::NotFound =>
                {
                    Some(Settled::Forgotten { path, remote: None })
                }
                (
                    _,
                    BatchOutcome::Conflict {
                        current: Some(current),
                    },
                ) => Some(Settled::Noted(current)),
                _ => None,
            })
            .collect();
        self.state.settle(&settled).await?;
        drop(settled);
        for outcome in matched.iter().flatten() {
            if let BatchOutcome::Done { entry } = outcome {
                self.answered.recorded(entry.seq);
            }
        }

        let alone = items.len() == 1;
        let (mut uploaded, mut deleted) = (0usize, 0usize);
        for ((path, send), outcome) in items.into_iter().zip(matched) {
            let action = action_of(&send);
            let moves_content =
                matches!(&send, Send::Upload { local, .. } if local.kind == EntryKind::File);
            let result = match (outcome, &send) {
                (None, _) => Err(ActError::Retry("changed while uploading")),
                (Some(BatchOutcome::Done { entry }), Send::Upload { .. }) => {
                    uploaded += 1;
                    if alone {
                        self.log_file(&path, "uploaded", entry.version);
                    } else {
                        tracing::debug!(%path, version = entry.version, "uploaded");
                    }
                    Ok(())
                }
                (Some(BatchOutcome::Done { .. }), Send::Delete { .. }) => {
                    deleted += 1;
                    if alone {
                        tracing::info!(%path, "deleted on the hub");
                    } else {
                        tracing::debug!(%path, "deleted on the hub");
                    }
                    Ok(())
                }
                (Some(BatchOutcome::Conflict { .. }), _) => {
                    self.remote_news = true;
                    Err(ActError::Retry("the hub changed meanwhile"))
                }
                (Some(BatchOutcome::Refused { error }), Send::Delete { .. })
                    if error.error == ErrorCode::NotFound =>
                {
                    Ok(())
                }
                (Some(BatchOutcome::Refused { error }), Send::Delete { synced })
                    if synced.kind == EntryKind::Dir && error.error == ErrorCode::PathConflict =>
                {
                    // Something inside is still on the hub: a file whose
                    // deletion failed, or one added elsewhere meanwhile.
                    Err(ActError::Retry("folder not empty yet"))
                }
                (Some(BatchOutcome::Refused { error }), _)
                    if error.error == ErrorCode::MissingChunks =>
                {
                    // Removed by the hub between upload and commit: sent
                    // again on the next look.
                    Err(ActError::Retry("the hub lost chunks before the commit"))
                }
                (Some(BatchOutcome::Refused { error }), _) => Err(refused(error).into()),
            };
            self.settle(path, action, moves_content, result).await?;
        }
        if !alone && uploaded + deleted > 0 {
            // One line per batch; each path's is at debug.
            tracing::info!(uploaded, deleted, "sent a batch to the hub");
        }
        Ok(())
    }
}

fn action_of(send: &Send) -> Action {
    match send {
        Send::Upload { base_version, .. } => Action::Upload {
            base_version: *base_version,
        },
        Send::Delete { synced } => Action::DeleteRemote {
            base_version: synced.version,
        },
    }
}

/// Reads the file at `disk` whole, chunk by chunk. A file that is no longer
/// `expected_size` bytes hashing to `expected_sha` is [`Read::Changed`]; one
/// that grew is not read past that size, so a batch's memory stays bounded.
fn read_small(
    disk: &std::path::Path,
    expected_sha: Sha256Hex,
    expected_size: u64,
) -> std::io::Result<Read> {
    let file = match std::fs::File::open(disk) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Read::Changed),
        Err(err) => return Err(err),
    };
    if expected_size <= MIN_CHUNK_SIZE as u64 {
        return read_one_chunk(file, expected_sha, expected_size);
    }
    let mut chunker = Chunker::new(file);
    let mut chunks = Vec::new();
    let mut read = 0u64;
    for chunk in &mut chunker {
        let chunk = chunk?;
        read += chunk.data.len() as u64;
        if read > expected_size {
            return Ok(Read::Changed);
        }
        chunks.push(chunk);
    }
    let (sha, size) = chunker.finish();
    if sha != expected_sha || size != expected_size {
        return Ok(Read::Changed);
    }
    Ok(Read::Whole(size, chunks))
}

/// [`read_small`] of a file no larger than the smallest chunk, which is
/// always one chunk whose name is the file's digest: read and hashed once,
/// into a buffer of its size.
fn read_one_chunk(
    file: std::fs::File,
    expected_sha: Sha256Hex,
    expected_size: u64,
) -> std::io::Result<Read> {
    use std::io::Read as _;
    let mut data = Vec::with_capacity(expected_size as usize + 1);
    // One byte more than expected tells a file that grew.
    file.take(expected_size + 1).read_to_end(&mut data)?;
    if data.len() as u64 != expected_size {
        return Ok(Read::Changed);
    }
    let hash = Sha256Hex::of(&data);
    if hash != expected_sha {
        return Ok(Read::Changed);
    }
    if data.is_empty() {
        return Ok(Read::Whole(0, Vec::new()));
    }
    Ok(Read::Whole(expected_size, vec![Chunk { hash, data }]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The short path must cut exactly as the chunker does, or the hub
    /// would hold two names for one file's content.
    #[test]
    fn a_file_up_to_the_smallest_chunk_reads_as_the_chunker_cuts_it() {
        let dir = tempfile::tempdir().unwrap();
        for size in [0, 1, 4096, MIN_CHUNK_SIZE - 1, MIN_CHUNK_SIZE] {
            let bytes: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
            let path = dir.path().join(format!("f{size}"));
            std::fs::write(&path, &bytes).unwrap();
            let sha = Sha256Hex::of(&bytes);
            let mut chunker = Chunker::new(std::fs::File::open(&path).unwrap());
            let by_chunker: Vec<(Sha256Hex, usize)> = (&mut chunker)
                .map(|c| c.map(|c| (c.hash, c.data.len())).unwrap())
                .collect();
            let Read::Whole(read, chunks) = read_small(&path, sha, size as u64).unwrap() else {
                panic!("{size} bytes read as changed");
            };
            let ours: Vec<(Sha256Hex, usize)> =
                chunks.iter().map(|c| (c.hash, c.data.len())).collect();
            assert_eq!((read, ours), (size as u64, by_chunker), "{size} bytes");
            // A file that is not what the decision saw is looked at again.
            assert!(matches!(
                read_small(&path, Sha256Hex::of(b"other"), size as u64).unwrap(),
                Read::Changed
            ));
            if size > 0 {
                assert!(matches!(
                    read_small(&path, sha, size as u64 - 1).unwrap(),
                    Read::Changed
                ));
            }
        }
    }
}
