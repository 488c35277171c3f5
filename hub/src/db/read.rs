//! Queries that read: current entries, history, the change feed, the index,
//! the audit log and which chunks versions reference. Chunk lists are
//! selected only by the queries whose answers carry them.

use std::collections::HashSet;

use sf_protocol::chunking::ChunkRef;
use sf_protocol::v1::{Entry, EntryKind};
use sf_protocol::{Sha256Hex, SyncPath};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Database, DbError, to_i64, to_u64};

/// The columns `entry_from_row` reads, from `versions v`, without the chunk
/// list: add `v.chunks` where the answer carries it.
macro_rules! entry_columns {
    () => {
        "v.seq, v.path, v.version, v.kind, v.sha256, v.size, v.mtime_ns, v.executable, \
         v.deleted, v.origin, v.committed_ms"
    };
}

/// [`entry_columns!`] as a value, for queries built at run time.
pub(super) const ENTRY_COLUMNS: &str = entry_columns!();

/// Hashes per `IN (...)` list: far below both back ends' parameter limits.
pub(super) const HASHES_PER_QUERY: usize = 500;

/// One page of a path's history (see [`Database::history`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryPage {
    /// The newest versions below this one (`u64::MAX`: the newest of all).
    Before(u64),
    /// The oldest versions above this one.
    After(u64),
}

/// One row of `files_log`.
#[derive(Debug, Clone)]
pub struct LogRow {
    pub id: i64,
    pub action: String,
    pub path: String,
    pub version: u64,
    pub sha: Option<String>,
    pub ts_ms: i64,
}

pub(super) fn entry_from_row(row: &AnyRow, with_chunks: bool) -> Result<Entry, DbError> {
    let path: String = row.try_get("path")?;
    let kind: String = row.try_get("kind")?;
    let sha256: Option<String> = row.try_get("sha256")?;
    let chunks = if with_chunks {
        let raw: String = row.try_get("chunks")?;
        Some(
            serde_json::from_str::<Vec<ChunkRef>>(&raw)
                .map_err(|e| DbError::Corrupt(format!("chunk list of {path}: {e}")))?,
        )
    } else {
        None
    };
    Ok(Entry {
        kind: EntryKind::parse(&kind)
            .ok_or_else(|| DbError::Corrupt(format!("kind {kind:?} of {path}")))?,
        version: to_u64(row.try_get("version")?, "version")?,
        seq: to_u64(row.try_get("seq")?, "seq")?,
        sha256: sha256
            .map(|s| Sha256Hex::parse(&s))
            .transpose()
            .map_err(|e| DbError::Corrupt(e.to_string()))?,
        size: to_u64(row.try_get("size")?, "size")?,
        mtime_ns: row.try_get("mtime_ns")?,
        executable: row.try_get::<i64, _>("executable")? != 0,
        deleted: row.try_get::<i64, _>("deleted")? != 0,
        origin: row.try_get("origin")?,
        committed_ms: row.try_get("committed_ms")?,
        chunks,
        path: SyncPath::parse(path.clone())
            .map_err(|e| DbError::Corrupt(format!("path {path:?}: {e}")))?,
    })
}

/// The current entry of `path` (live or tombstone), with its chunks, as
/// `executor` (the pool, or a write transaction) sees it.
pub(super) async fn current_with<'e, E>(
    executor: E,
    path: &SyncPath,
) -> Result<Option<Entry>, DbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let row = sqlx::query(concat!(
        "SELECT ",
        entry_columns!(),
        ", v.chunks FROM files f JOIN versions v ON v.seq = f.seq WHERE f.path = $1"
    ))
    .bind(path.as_str())
    .fetch_optional(executor)
    .await?;
    row.map(|r| entry_from_row(&r, true)).transpose()
}

impl Database {
    /// The newest seq committed (0 on an empty hub).
    pub async fn head(&self) -> Result<u64, DbError> {
        let head: i64 = sqlx::query_scalar("SELECT head_seq FROM hub_state WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        to_u64(head, "head_seq")
    }

    /// The current entry of `path` (live or tombstone), with its chunks.
    pub async fn current(&self, path: &SyncPath) -> Result<Option<Entry>, DbError> {
        current_with(&self.pool, path).await
    }

    /// One version of `path`, with its chunks.
    pub async fn version(&self, path: &SyncPath, version: u64) -> Result<Option<Entry>, DbError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            entry_columns!(),
            ", v.chunks FROM versions v WHERE v.path = $1 AND v.version = $2"
        ))
        .bind(path.as_str())
        .bind(to_i64(version))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| entry_from_row(&r, true)).transpose()
    }

    /// Up to `limit` versions of `path` on one side of a cursor, oldest
    /// first, tombstones included, without chunk lists; and whether more lie
    /// beyond them in the direction paged.
    pub async fn history(
        &self,
        path: &SyncPath,
        page: HistoryPage,
        limit: u32,
    ) -> Result<(Vec<Entry>, bool), DbError> {
        let (query, cursor) = match page {
            HistoryPage::Before(version) => (
                sqlx::query(concat!(
                    "SELECT ",
                    entry_columns!(),
                    " FROM versions v WHERE v.path = $1 AND v.version < $2 \
                      ORDER BY v.version DESC LIMIT $3"
                )),
                version,
            ),
            HistoryPage::After(version) => (
                sqlx::query(concat!(
                    "SELECT ",
                    entry_columns!(),
                    " FROM versions v WHERE v.path = $1 AND v.version > $2 \
                      ORDER BY v.version LIMIT $3"
                )),
                version,
            ),
        };
        // One row past the page says whether there is more.
        let rows = query
            .bind(path.as_str())
            .bind(to_i64(cursor))
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        let more = rows.len() > limit as usize;
        let mut versions = rows
            .iter()
            .take(limit as usize)
            .map(|r| entry_from_row(r, false))
            .collect::<Result<Vec<_>, _>>()?;
        if matches!(page, HistoryPage::Before(_)) {
            versions.reverse();
        }
        Ok((versions, more))
    }

    /// Whether `path` has any version at all.
    pub async fn has_history(&self, path: &SyncPath) -> Result<bool, DbError> {
        let found = sqlx::query("SELECT 1 FROM versions WHERE path = $1 LIMIT 1")
            .bind(path.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    /// Committed changes with seq above `since`, in seq order.
    pub async fn changes(
        &self,
        since: u64,
        limit: u32,
        with_chunks: bool,
    ) -> Result<Vec<Entry>, DbError> {
        let query = if with_chunks {
            sqlx::query(concat!(
                "SELECT ",
                entry_columns!(),
                ", v.chunks FROM versions v WHERE v.seq > $1 ORDER BY v.seq LIMIT $2"
            ))
        } else {
            sqlx::query(concat!(
                "SELECT ",
                entry_columns!(),
                " FROM versions v WHERE v.seq > $1 ORDER BY v.seq LIMIT $2"
            ))
        };
        let rows = query
            .bind(to_i64(since))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| entry_from_row(r, with_chunks))
            .collect()
    }

    /// Every live file (not directories, not tombstones), by path, without
    /// chunk lists.
    pub async fn live_files(&self) -> Result<Vec<Entry>, DbError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            entry_columns!(),
            " FROM files f JOIN versions v ON v.seq = f.seq \
              WHERE f.deleted = 0 AND f.kind = 'file' ORDER BY f.path"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| entry_from_row(r, false)).collect()
    }

    /// Whether `path` ever held file content `sha256`, in any version.
    pub async fn path_ever_held(
        &self,
        path: &SyncPath,
        sha256: &Sha256Hex,
    ) -> Result<bool, DbError> {
        let found = sqlx::query(
            "SELECT 1 FROM versions WHERE path = $1 AND sha256 = $2 AND kind = 'file' LIMIT 1",
        )
        .bind(path.as_str())
        .bind(sha256.to_hex())
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    /// A chunk list the hub already verified for content `sha256`, if any.
    pub async fn verified_chunks(
        &self,
        sha256: &Sha256Hex,
    ) -> Result<Option<Vec<ChunkRef>>, DbError> {
        let raw: Option<String> = sqlx::query_scalar(
            "SELECT chunks FROM versions WHERE sha256 = $1 AND kind = 'file' LIMIT 1",
        )
        .bind(sha256.to_hex())
        .fetch_optional(&self.pool)
        .await?;
        raw.map(|raw| {
            serde_json::from_str(&raw)
                .map_err(|e| DbError::Corrupt(format!("chunk list of {sha256}: {e}")))
        })
        .transpose()
    }

    /// Which of `hashes` some version's chunk list references (now or in
    /// the past: versions are kept, so a referenced chunk stays referenced).
    pub async fn referenced_chunks(
        &self,
        hashes: &[Sha256Hex],
    ) -> Result<HashSet<Sha256Hex>, DbError> {
        let mut conn = self.pool.acquire().await?;
        referenced_chunks_on(&mut conn, self.backend, hashes).await
    }

    /// The newest audit rows, optionally for one path.
    pub async fn logs(&self, limit: u32, path: Option<&SyncPath>) -> Result<Vec<LogRow>, DbError> {
        let query = match path {
            Some(path) => sqlx::query(
                "SELECT id, action, path, version, sha, ts_ms FROM files_log \
                 WHERE path = $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(path.as_str()),
            None => sqlx::query(
                "SELECT id, action, path, version, sha, ts_ms FROM files_log \
                 ORDER BY id DESC LIMIT $1",
            ),
        };
        let rows = query.bind(i64::from(limit)).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(LogRow {
                    id: row.try_get("id")?,
                    action: row.try_get("action")?,
                    path: row.try_get("path")?,
                    version: to_u64(row.try_get("version")?, "version")?,
                    sha: row.try_get("sha")?,
                    ts_ms: row.try_get("ts_ms")?,
                })
            })
            .collect()
    }
}

impl Database {
    /// Whether a live conflict copy of `path` holds content `sha256`.
    pub async fn conflict_copy_holds(
        &self,
        path: &SyncPath,
        sha256: &Sha256Hex,
    ) -> Result<bool, DbError> {
        let prefix = sf_protocol::conflict::conflict_copy_prefix(path);
        // Every conflict-copy name continues the prefix; '!' follows ' ', so
        // the range holds exactly the names starting with it. The exact
        // pattern is checked below.
        let upper = format!("{}!", prefix.trim_end_matches(' '));
        let candidates: Vec<String> = sqlx::query_scalar(
            "SELECT f.path FROM files f JOIN versions v ON v.seq = f.seq \
             WHERE f.path >= $1 AND f.path < $2 AND f.deleted = 0 AND f.kind = 'file' \
             AND v.sha256 = $3",
        )
        .bind(prefix)
        .bind(upper)
        .bind(sha256.to_hex())
        .fetch_all(&self.pool)
        .await?;
        Ok(candidates.iter().any(|candidate| {
            SyncPath::parse(candidate.as_str())
                .is_ok_and(|c| sf_protocol::conflict::is_conflict_copy_of(&c, path))
        }))
    }
}

/// [`Database::referenced_chunks`] on one connection (a transaction's).
pub(super) async fn referenced_chunks_on(
    conn: &mut sqlx::AnyConnection,
    backend: super::Backend,
    hashes: &[Sha256Hex],
) -> Result<HashSet<Sha256Hex>, DbError> {
    let mut referenced = HashSet::new();
    for batch in hashes.chunks(HASHES_PER_QUERY) {
        let sql = format!(
            "SELECT hash FROM chunk_refs WHERE hash IN ({})",
            backend.params(1, batch.len())
        );
        let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
        for hash in batch {
            query = query.bind(hash.to_hex());
        }
        for raw in query.fetch_all(&mut *conn).await? {
            referenced.insert(
                Sha256Hex::parse(&raw)
                    .map_err(|e| DbError::Corrupt(format!("chunk_refs hash {raw:?}: {e}")))?,
            );
        }
    }
    Ok(referenced)
}
