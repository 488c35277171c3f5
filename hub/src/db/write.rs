//! The commit transaction: one new version of one path, its history row, the
//! pointer to it, its audit row, its seq and the chunks it references (which
//! garbage collection keeps), all or nothing.

use sf_protocol::chunking::ChunkRef;
use sf_protocol::v1::{Entry, EntryKind};
use sf_protocol::{Sha256Hex, SyncPath};
use sqlx::Row;

use super::read::{HASHES_PER_QUERY, placeholders};
use super::{Database, DbError, to_i64, to_u64};

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
    /// Commits `new` if `base_version` is the path's current version (0 also
    /// matches an absent path or a tombstone). Returns the committed entry.
    pub async fn write(&self, new: NewVersion, base_version: u64) -> Result<Entry, WriteError> {
        let mut tx = self.pool.begin().await?;
        // Bumping the counter first takes the write lock on both back ends, so
        // concurrent commits queue here and seq follows commit order.
        let seq: i64 = sqlx::query_scalar(
            "UPDATE hub_state SET head_seq = head_seq + 1 WHERE id = 1 RETURNING head_seq",
        )
        .fetch_one(&mut *tx)
        .await?;

        let current = sqlx::query("SELECT version, deleted FROM files WHERE path = $1")
            .bind(new.path.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| -> Result<(u64, bool), DbError> {
                Ok((
                    to_u64(row.try_get("version")?, "version")?,
                    row.try_get::<i64, _>("deleted")? != 0,
                ))
            })
            .transpose()?;
        let base_matches = match current {
            None => base_version == 0,
            Some((version, true)) => base_version == 0 || base_version == version,
            Some((version, false)) => base_version == version,
        };
        if !base_matches {
            tx.rollback().await?;
            let current = self.current(&new.path).await?;
            return Err(WriteError::Conflict(current.map(Box::new)));
        }
        if new.sha256.is_some() {
            self.check_path_is_possible(&mut tx, &new).await?;
        }

        let version = current.map_or(1, |(v, _)| v + 1);
        let committed_ms = now_ms();
        let chunks_json = serde_json::to_string(&new.chunks).expect("chunk refs serialise");
        let sha = new.sha256.map(|s| s.to_hex());
        let deleted = i64::from(new.sha256.is_none());
        sqlx::query(
            "INSERT INTO versions (seq, path, version, kind, sha256, size, mtime_ns, executable, \
             deleted, origin, committed_ms, chunks) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(seq)
        .bind(new.path.as_str())
        .bind(to_i64(version))
        .bind(new.kind.as_str())
        .bind(sha.clone())
        .bind(to_i64(new.size))
        .bind(new.mtime_ns)
        .bind(i64::from(new.executable))
        .bind(deleted)
        .bind(new.origin.as_str())
        .bind(committed_ms)
        .bind(chunks_json)
        .execute(&mut *tx)
        .await?;
        record_chunk_refs(&mut tx, &new.chunks).await?;
        sqlx::query(
            "INSERT INTO files (path, seq, version, kind, deleted) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (path) DO UPDATE SET seq = excluded.seq, version = excluded.version, \
             kind = excluded.kind, deleted = excluded.deleted",
        )
        .bind(new.path.as_str())
        .bind(seq)
        .bind(to_i64(version))
        .bind(new.kind.as_str())
        .bind(deleted)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO files_log (action, path, version, sha, ts_ms, origin, size, seq) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(new.action.as_str())
        .bind(new.path.as_str())
        .bind(to_i64(version))
        .bind(sha)
        .bind(committed_ms)
        .bind(new.origin.as_str())
        .bind(to_i64(new.size))
        .bind(seq)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;

        Ok(Entry {
            path: new.path,
            kind: new.kind,
            version,
            seq: to_u64(seq, "seq")?,
            sha256: new.sha256,
            size: new.size,
            mtime_ns: new.mtime_ns,
            executable: new.executable,
            deleted: deleted != 0,
            origin: new.origin,
            committed_ms,
            chunks: Some(new.chunks),
        })
    }

    /// A live file cannot have children, and a file cannot replace a folder
    /// that still has live children: agents could not write either to disk.
    async fn check_path_is_possible(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        new: &NewVersion,
    ) -> Result<(), WriteError> {
        for ancestor in new.path.ancestors() {
            let blocking_file = sqlx::query(
                "SELECT 1 FROM files WHERE path = $1 AND deleted = 0 AND kind = 'file'",
            )
            .bind(ancestor)
            .fetch_optional(&mut **tx)
            .await?;
            if blocking_file.is_some() {
                return Err(WriteError::PathConflict {
                    path: new.path.clone(),
                    blocker: ancestor.to_owned(),
                    reason: "is a file, so it cannot contain other entries",
                });
            }
        }
        if new.kind == EntryKind::File {
            // '0' sorts right after '/', so this range is "everything under path/".
            let child: Option<String> = sqlx::query_scalar(
                "SELECT path FROM files WHERE path > $1 AND path < $2 AND deleted = 0 LIMIT 1",
            )
            .bind(format!("{}/", new.path))
            .bind(format!("{}0", new.path))
            .fetch_optional(&mut **tx)
            .await?;
            if let Some(child) = child {
                return Err(WriteError::PathConflict {
                    path: new.path.clone(),
                    blocker: child,
                    reason: "still exists inside it; delete the folder's contents first",
                });
            }
        }
        Ok(())
    }
}

/// Adds the chunks of a new version to `chunk_refs`, each hash once.
async fn record_chunk_refs(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    chunks: &[ChunkRef],
) -> Result<(), sqlx::Error> {
    let mut seen = std::collections::HashSet::with_capacity(chunks.len());
    let distinct: Vec<String> = chunks
        .iter()
        .filter(|c| seen.insert(c.hash))
        .map(|c| c.hash.to_hex())
        .collect();
    for batch in distinct.chunks(HASHES_PER_QUERY) {
        let values = placeholders(batch.len())
            .split(", ")
            .map(|p| format!("({p})"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("INSERT INTO chunk_refs (hash) VALUES {values} ON CONFLICT DO NOTHING");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for hash in batch {
            query = query.bind(hash.as_str());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
