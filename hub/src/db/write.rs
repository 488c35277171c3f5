//! The write transaction: new versions of paths, each with its history row,
//! the pointer to it, its audit row, its seq and the chunks it references
//! (which garbage collection keeps), all or nothing. A single commit writes
//! one version ([`Database::write`]); a batch writes many in one
//! transaction ([`Database::begin_write`]), so it costs one durable commit.
//!
//! A transaction holds the hub's write lock from its start, so what it reads
//! stays true until it commits. It therefore decides in memory: it loads
//! the rows a decision needs (in a few queries for a whole batch, see
//! `known`), decides each version against them and against the versions it
//! decided before, and writes every row at commit with a few multi-row
//! statements (see `flush`). A batch of a thousand small files costs a
//! dozen statements, not eight per file.

use std::collections::{BTreeMap, HashMap};

use sf_protocol::chunking::ChunkRef;
use sf_protocol::v1::{Entry, EntryKind};
use sf_protocol::{Sha256Hex, SyncPath};

use super::known::{Below, Known};
use super::{Backend, Database, DbError};

/// What a change is, as recorded in `files_log.action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Upload,
    Delete,
    Conflict,
    Restore,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Upload => "upload",
            Action::Delete => "delete",
            Action::Conflict => "conflict",
            Action::Restore => "restore",
        }
    }
}

/// A version to commit. `sha256: None` makes a tombstone.
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub path: SyncPath,
    pub kind: EntryKind,
    pub sha256: Option<Sha256Hex>,
    pub size: u64,
    pub mtime_ns: i64,
    pub executable: bool,
    pub origin: String,
    pub chunks: Vec<ChunkRef>,
    pub action: Action,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// `base_version` is not the path's current version.
    #[error("version conflict on {}", .0.as_ref().map(|e| e.path.as_str()).unwrap_or("a new path"))]
    Conflict(Option<Box<Entry>>),
    /// Another live entry makes the path impossible on a file system.
    #[error("{path} cannot be written: {blocker} {reason}")]
    PathConflict {
        path: SyncPath,
        blocker: String,
        reason: &'static str,
    },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for WriteError {
    fn from(err: sqlx::Error) -> Self {
        WriteError::Db(DbError::Query(err))
    }
}

impl Database {
    /// Starts a write transaction: it holds the hub's write lock (the
    /// `hub_state` row) until it commits or is dropped, so concurrent
    /// writers, from this process or another one sharing the database,
    /// queue here and seq follows commit order.
    pub async fn begin_write(&self) -> Result<WriteTx, DbError> {
        let mut tx = self.pool.begin().await?;
        let lock = match self.backend {
            // SQLite takes its write lock with the first write; rewriting the
            // row takes it now, before anything is read.
            Backend::Sqlite => {
                "UPDATE hub_state SET head_seq = head_seq WHERE id = 1 \
                 RETURNING head_seq, chunk_removals"
            }
            // A row lock, without writing a new row version.
            Backend::Postgres => {
                "SELECT head_seq, chunk_removals FROM hub_state WHERE id = 1 FOR UPDATE"
            }
        };
        let (head, removals): (i64, i64) = sqlx::query_as(lock).fetch_one(&mut *tx).await?;
        Ok(WriteTx {
            tx,
            backend: self.backend,
            head,
            removals: super::to_u64(removals, "chunk_removals")?,
            known: BTreeMap::new(),
            below: HashMap::new(),
            written: Vec::new(),
            tombstones: 0,
        })
    }

    /// Commits `new` if `base_version` is the path's current version (0 also
    /// matches an absent path or a tombstone), in a transaction of its own.
    /// Returns the committed entry.
    pub async fn write(&self, new: NewVersion, base_version: u64) -> Result<Entry, WriteError> {
        let mut tx = self.begin_write().await?;
        let entry = tx.write(new, base_version).await?;
        tx.commit().await?;
        Ok(entry)
    }
}

/// A write transaction (see [`Database::begin_write`]): any number of
/// versions, each decided against the state the earlier ones left, made
/// durable together by [`WriteTx::commit`]. Dropped without a commit, it
/// rolls back.
pub struct WriteTx {
    pub(super) tx: sqlx::Transaction<'static, sqlx::Any>,
    pub(super) backend: Backend,
    /// The last seq handed out, in this transaction included.
    pub(super) head: i64,
    /// The shared count of chunk removals when the lock was taken (see
    /// [`Database::begin_removal`]).
    pub removals: u64,
    /// The current entry of every path looked at, as this transaction left
    /// it, by path (byte order, as the database sorts them).
    pub(super) known: BTreeMap<String, Known>,
    /// Live paths under a path as the database had them (for a file that
    /// would replace a folder).
    pub(super) below: HashMap<String, Below>,
    /// The versions decided, in seq order, written at commit.
    pub(super) written: Vec<Written>,
    /// Tombstones among them.
    pub(super) tombstones: usize,
}

/// A version this transaction decided; its rows are written at commit.
pub(super) struct Written {
    /// Without its chunk list (that is in `chunks`).
    pub(super) entry: Entry,
    pub(super) chunks: Vec<ChunkRef>,
    pub(super) action: Action,
}

impl WriteTx {
    /// The current entry of `path` as this transaction sees it, with its
    /// chunks.
    pub async fn current(&mut self, path: &SyncPath) -> Result<Option<Entry>, DbError> {
        self.ensure_known(&[path.as_str()]).await?;
        let known = self.known.get(path.as_str()).cloned().unwrap_or_default();
        self.with_chunks(known).await
    }

    /// The current entry of `path` as this transaction sees it, without
    /// its chunks: enough to decide on.
    pub async fn peek(&mut self, path: &SyncPath) -> Result<Option<Entry>, DbError> {
        self.ensure_known(&[path.as_str()]).await?;
        Ok(self
            .known
            .get(path.as_str())
            .and_then(|known| known.entry.clone()))
    }

    /// Writes `new` if `base_version` is the path's current version (0 also
    /// matches an absent path or a tombstone) and the path is possible.
    /// A refused version changes nothing and takes no seq.
    pub async fn write(&mut self, new: NewVersion, base_version: u64) -> Result<Entry, WriteError> {
        let mut needed = vec![new.path.as_str()];
        if new.sha256.is_some() {
            needed.extend(new.path.ancestors());
        }
        self.ensure_known(&needed).await?;
        let current = self
            .known
            .get(new.path.as_str())
            .and_then(|known| known.entry.as_ref());
        let base_matches = match current {
            None => base_version == 0,
            Some(cur) if cur.deleted => base_version == 0 || base_version == cur.version,
            Some(cur) => base_version == cur.version,
        };
        if !base_matches {
            let current = self.current(&new.path).await?;
            return Err(WriteError::Conflict(current.map(Box::new)));
        }
        let version = current.map_or(1, |cur| cur.version + 1);
        if new.sha256.is_some() {
            self.check_path_is_possible(&new).await?;
        } else if new.kind == EntryKind::Dir {
            // A folder's tombstone.
            self.check_folder_is_empty(&new.path).await?;
        }

        let seq = self.head + 1;
        let entry = Entry {
            path: new.path,
            kind: new.kind,
            version,
            seq: u64::try_from(seq).map_err(|_| DbError::Corrupt(format!("seq {seq}")))?,
            sha256: new.sha256,
            size: new.size,
            mtime_ns: new.mtime_ns,
            executable: new.executable,
            deleted: new.sha256.is_none(),
            origin: new.origin,
            committed_ms: super::now_ms(),
            chunks: None,
        };
        self.head = seq;
        self.tombstones += usize::from(entry.deleted);
        self.known.insert(
            entry.path.as_str().to_owned(),
            Known {
                entry: Some(entry.clone()),
                written: Some(self.written.len()),
                live_in_db: self
                    .known
                    .get(entry.path.as_str())
                    .is_some_and(|known| known.live_in_db),
            },
        );
        let answer = Entry {
            chunks: Some(new.chunks.clone()),
            ..entry.clone()
        };
        self.written.push(Written {
            entry,
            chunks: new.chunks,
            action: new.action,
        });
        Ok(answer)
    }

    /// Ends the transaction without writing anything; what was decided in
    /// it is discarded. A failure to roll back is logged: the connection is
    /// then closed, which rolls back too.
    pub async fn rollback(self) {
        if let Err(err) = self.tx.rollback().await {
            tracing::warn!(error = %err, "rolling back a write transaction failed");
        }
    }

    /// A folder is deleted only once nothing inside it is live: otherwise
    /// the hub would hold files inside a folder that is gone. An agent
    /// deletes a folder after its contents, in the same batch (each
    /// operation sees the earlier ones) or an earlier one.
    async fn check_folder_is_empty(&mut self, path: &SyncPath) -> Result<(), WriteError> {
        if self.nothing_live_below(path.as_str()).await? {
            return Ok(());
        }
        match self.first_live_below(path.as_str()).await? {
            Some(child) => Err(WriteError::PathConflict {
                path: path.clone(),
                blocker: child,
                reason: "still exists inside it; delete the folder's contents first",
            }),
            None => Ok(()),
        }
    }

    /// A live file cannot have children, and a file cannot replace a folder
    /// that still has live children: agents could not write either to disk.
    async fn check_path_is_possible(&mut self, new: &NewVersion) -> Result<(), WriteError> {
        for ancestor in new.path.ancestors() {
            let blocking = self
                .known
                .get(ancestor)
                .and_then(|known| known.entry.as_ref())
                .is_some_and(|entry| !entry.deleted && entry.kind == EntryKind::File);
            if blocking {
                return Err(WriteError::PathConflict {
                    path: new.path.clone(),
                    blocker: ancestor.to_owned(),
                    reason: "is a file, so it cannot contain other entries",
                });
            }
        }
        if new.kind == EntryKind::File
            && let Some(child) = self.first_live_below(new.path.as_str()).await?
        {
            return Err(WriteError::PathConflict {
                path: new.path.clone(),
                blocker: child,
                reason: "still exists inside it; delete the folder's contents first",
            });
        }
        Ok(())
    }
}
