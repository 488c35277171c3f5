//! Changes a person makes from the hub's web page, built from the agents'
//! own operations so they are decided, recorded and pushed alike: a whole
//! file uploaded over what the person saw (a conflict copy when it changed
//! meanwhile), a file or folder moved or removed with everything under it,
//! and one side of a conflict kept.
//!
//! Nothing is lost: a move writes every destination before any source is
//! deleted, deletes only what arrived, and a removal writes tombstones, so
//! every old version stays in history and "recently deleted".

use std::time::Instant;

use sf_protocol::conflict::parse_conflict_copy;
use sf_protocol::v1::{
    BATCH_MAX_OPS, BatchOp, BatchOutcome, BatchRequest, CommitRequest, DeleteRequest, Entry,
    EntryKind, Keep, MoveRequest, RemoveRequest, ResolveRequest, UploadQuery, UploadResponse,
};
use sf_protocol::{Sha256Hex, SyncPath};

use super::legacy::ingested_version;
use super::{Hub, clean_origin};
use crate::db::Action;
use crate::error::ApiError;
use crate::ingest::Ingested;

pub use sf_protocol::v1::WEB_ORIGIN;
/// The most files and folders one move or removal touches: a bigger tree is
/// a job for an agent, which works through it in batches of its own.
pub const TREE_MAX_ENTRIES: usize = 10_000;
/// Chunk references a move holds at once, at most (a few MiB).
const MOVE_GROUP_CHUNKS: usize = 50_000;

impl Hub {
    /// `POST /v1/upload`: a whole file, already stored as chunks, written
    /// over the version the uploader saw; a conflict copy beside it when
    /// the path has changed since.
    pub async fn web_upload(
        &self,
        query: UploadQuery,
        content: Ingested,
    ) -> Result<UploadResponse, ApiError> {
        self.check_file_size(content.size)?;
        let origin = clean_origin(&query.origin)?;
        let mtime_ns = query
            .mtime_ms
            .unwrap_or_else(crate::db::now_ms)
            .saturating_mul(1_000_000);
        let started = Instant::now();
        let _order = self.commit_lock.lock().await;
        let path = query.path;
        let current = self.db.current(&path).await?.filter(|c| !c.deleted);
        let entry = match current {
            Some(current) if current.kind == EntryKind::Dir => {
                return Err(ApiError::PathConflict(format!(
                    "{path} is a folder; upload into it, or choose another name"
                )));
            }
            Some(current) if current.sha256 == Some(content.sha256) => {
                return Ok(UploadResponse {
                    entry: without_chunks(current),
                    conflict: false,
                });
            }
            Some(current) if current.version != query.base_version => {
                let copy = self
                    .conflict_copy(&path, &origin, mtime_ns, content, started)
                    .await?;
                return Ok(UploadResponse {
                    entry: without_chunks(copy),
                    conflict: true,
                });
            }
            current => {
                // A deleted or new path takes the upload whatever was seen.
                let base = match current {
                    Some(current) => current.version,
                    None => self.db.current(&path).await?.map_or(0, |c| c.version),
                };
                let removals = content.removals;
                let new = ingested_version(path, content, Action::Upload, &origin, mtime_ns);
                let entry = self.write_ingested(new, base, removals).await?;
                self.committed(entry, Action::Upload, started)
            }
        };
        Ok(UploadResponse {
            entry: without_chunks(entry),
            conflict: false,
        })
    }

    /// `POST /v1/move`: `from` (a file, or a folder and everything under
    /// it) to `to`, where nothing may be. Returns how many entries moved.
    pub async fn move_tree(&self, request: MoveRequest) -> Result<u64, ApiError> {
        let origin = clean_origin(&request.origin)?;
        let (from, to) = (&request.from, &request.to);
        if to == from || to.as_str().starts_with(&format!("{from}/")) {
            return Err(ApiError::InvalidRequest(format!(
                "cannot move {from} into itself ({to})"
            )));
        }
        let sources = self.tree_of(from, "move").await?;
        if !self.db.live_tree(to, 0).await?.is_empty() {
            return Err(ApiError::PathConflict(format!(
                "{to} already exists; choose another name or remove it first"
            )));
        }
        // Chunk lists are read a group at a time: a tree of big files
        // holds millions of chunk references.
        let mut arrived = Vec::with_capacity(sources.len());
        let (mut group, mut group_chunks) = (Vec::new(), 0);
        for (index, source) in sources.iter().enumerate() {
            let rest = &source.path.as_str()[from.as_str().len()..];
            let path = SyncPath::parse(format!("{to}{rest}"))
                .map_err(|e| ApiError::InvalidPath(format!("{to}{rest}: {e}")))?;
            let content = match source.kind {
                EntryKind::File => self.db.version(&source.path, source.version).await?,
                EntryKind::Dir => None,
            };
            let source = content.as_ref().unwrap_or(source);
            group_chunks += source.chunks.as_ref().map_or(0, Vec::len);
            group.push(BatchOp::Commit(copy_of(source, path, 0, &origin)));
            if group_chunks >= MOVE_GROUP_CHUNKS || index + 1 == sources.len() {
                arrived.extend(self.run_batches(std::mem::take(&mut group)).await?);
                group_chunks = 0;
            }
        }
        // Only what arrived leaves; innermost first, so no folder goes
        // before its contents.
        let deletes: Vec<BatchOp> = sources
            .iter()
            .zip(&arrived)
            .filter(|(_, outcome)| outcome.is_ok())
            .rev()
            .map(|(source, _)| delete_of(source, &origin))
            .collect();
        let left = self.run_batches(deletes).await?;
        let moved = left.iter().filter(|outcome| outcome.is_ok()).count();
        summarise("move", sources.len(), moved, arrived.iter().chain(&left))?;
        Ok(moved as u64)
    }

    /// `POST /v1/remove`: tombstones for `path` and everything under it.
    pub async fn remove_tree(&self, request: RemoveRequest) -> Result<u64, ApiError> {
        let origin = clean_origin(&request.origin)?;
        let entries = self.tree_of(&request.path, "remove").await?;
        let deletes: Vec<BatchOp> = entries
            .iter()
            .rev()
            .map(|entry| delete_of(entry, &origin))
            .collect();
        let outcomes = self.run_batches(deletes).await?;
        let removed = outcomes.iter().filter(|o| o.is_ok()).count();
        summarise("removal", entries.len(), removed, outcomes.iter())?;
        Ok(removed as u64)
    }

    /// `POST /v1/conflicts/resolve`: keeps one side of a conflict; the
    /// copy goes (a tombstone: it stays in history). Returns the original's
    /// entry afterwards.
    pub async fn resolve_conflict(&self, request: ResolveRequest) -> Result<Entry, ApiError> {
        let origin = clean_origin(&request.origin)?;
        let Some(named) = parse_conflict_copy(&request.copy) else {
            return Err(ApiError::InvalidRequest(format!(
                "{} is not named as a conflict copy",
                request.copy
            )));
        };
        let copy = match self.db.current(&request.copy).await? {
            Some(copy) if !copy.deleted && copy.kind == EntryKind::File => copy,
            _ => {
                return Err(ApiError::NotFound(format!(
                    "{} is no longer there; reload the list of conflicts",
                    request.copy
                )));
            }
        };
        let original = self
            .db
            .current(&named.original)
            .await?
            .filter(|o| !o.deleted);
        let kept = match (request.keep, original) {
            (Keep::Original, Some(original)) => original,
            (Keep::Original, None) => {
                return Err(ApiError::PathConflict(format!(
                    "{} is gone, so there is no original to keep; keep the copy instead",
                    named.original
                )));
            }
            (Keep::Copy, original) => {
                if original.as_ref().is_some_and(|o| o.kind == EntryKind::Dir) {
                    return Err(ApiError::PathConflict(format!(
                        "{} is now a folder; move the copy by hand",
                        named.original
                    )));
                }
                let base = original.as_ref().map_or(0, |o| o.version);
                self.commit(copy_of(&copy, named.original.clone(), base, &origin))
                    .await?
            }
        };
        self.delete(DeleteRequest {
            path: copy.path.clone(),
            base_version: copy.version,
            origin,
        })
        .await?;
        Ok(without_chunks(kept))
    }

    /// `path` and every live entry under it, without chunk lists, by path.
    async fn tree_of(&self, path: &SyncPath, what: &str) -> Result<Vec<Entry>, ApiError> {
        let entries = self.db.live_tree(path, TREE_MAX_ENTRIES).await?;
        if entries.is_empty() {
            return Err(ApiError::NotFound(format!("{path} does not exist")));
        }
        if entries.len() > TREE_MAX_ENTRIES {
            return Err(ApiError::InvalidRequest(format!(
                "{path} holds more than {TREE_MAX_ENTRIES} files and folders, too many to \
                 {what} from the page at once; do it in a synced folder instead"
            )));
        }
        Ok(entries)
    }

    /// Runs `ops` as batches in order; for each op, its entry or why not.
    async fn run_batches(&self, ops: Vec<BatchOp>) -> Result<Vec<Result<Entry, String>>, ApiError> {
        let mut outcomes = Vec::with_capacity(ops.len());
        let mut ops = ops.into_iter().peekable();
        while ops.peek().is_some() {
            let group: Vec<BatchOp> = ops.by_ref().take(BATCH_MAX_OPS).collect();
            let paths: Vec<SyncPath> = group.iter().map(|op| op.path().clone()).collect();
            let answer = self.batch(BatchRequest { ops: group }).await?;
            for (outcome, path) in answer.outcomes.into_iter().zip(paths) {
                outcomes.push(match outcome {
                    BatchOutcome::Done { entry } => Ok(entry),
                    BatchOutcome::Conflict { .. } => Err(format!("{path} changed meanwhile")),
                    BatchOutcome::Refused { error } => Err(format!("{path}: {}", error.detail)),
                });
            }
        }
        Ok(outcomes)
    }
}

/// A commit of `source`'s content and kind at `path`.
fn copy_of(source: &Entry, path: SyncPath, base_version: u64, origin: &str) -> CommitRequest {
    CommitRequest {
        path,
        kind: source.kind,
        base_version,
        sha256: source.sha256.unwrap_or_else(Sha256Hex::empty),
        size: source.size,
        mtime_ns: source.mtime_ns,
        executable: source.executable,
        chunks: source.chunks.clone().unwrap_or_default(),
        origin: origin.to_owned(),
    }
}

fn delete_of(entry: &Entry, origin: &str) -> BatchOp {
    BatchOp::Delete(DeleteRequest {
        path: entry.path.clone(),
        base_version: entry.version,
        origin: origin.to_owned(),
    })
}

/// An error naming what was not done, when anything was not.
fn summarise<'a>(
    what: &str,
    total: usize,
    done: usize,
    outcomes: impl Iterator<Item = &'a Result<Entry, String>>,
) -> Result<(), ApiError> {
    let failures: Vec<&String> = outcomes.filter_map(|o| o.as_ref().err()).collect();
    let Some(first) = failures.first() else {
        return Ok(());
    };
    Err(ApiError::PathConflict(format!(
        "the {what} did {done} of {total} entries: {first}{}; nothing was lost — reload and \
         try again",
        if failures.len() > 1 {
            format!(" (and {} more)", failures.len() - 1)
        } else {
            String::new()
        }
    )))
}

fn without_chunks(mut entry: Entry) -> Entry {
    entry.chunks = None;
    entry
}
