//! Committing a write transaction: every version it decided becomes its
//! rows — the history row, the audit row, the path's pointer (its last
//! version only), the chunks it references — in a few multi-row
//! statements, then the new head, then one durable commit.

use std::collections::HashSet;

use sf_protocol::SyncPath;

use super::read::HASHES_PER_QUERY;
use super::write::{WriteTx, Written};
use super::{Backend, DbError, to_i64};

/// Rows per multi-row `INSERT`: 12 columns each stay far below both back
/// ends' parameter limits (SQLite 32766, PostgreSQL 65535).
const ROWS_PER_INSERT: usize = 500;

impl WriteTx {
    /// Writes every version decided, records the new head and commits:
    /// every version is durable when this returns.
    pub async fn commit(mut self) -> Result<(), DbError> {
        if !self.written.is_empty() {
            self.flush().await?;
            sqlx::query("UPDATE hub_state SET head_seq = $1 WHERE id = 1")
                .bind(self.head)
                .execute(&mut *self.tx)
                .await?;
            if self.backend == Backend::Postgres {
                // Delivered to every listening hub when (and only if) this
                // commits, in commit order (see `crate::service::follow`).
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(super::FEED_CHANNEL)
                    .bind(self.head.to_string())
                    .execute(&mut *self.tx)
                    .await?;
            }
        }
        self.tx.commit().await?;
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), DbError> {
        let backend = self.backend;
        for rows in self.written.chunks(ROWS_PER_INSERT) {
            insert_versions(&mut self.tx, backend, rows).await?;
        }
        // The audit log's ids follow seq: rows are inserted in seq order.
        for rows in self.written.chunks(ROWS_PER_INSERT) {
            insert_log(&mut self.tx, backend, rows).await?;
        }
        // Each path points at its last version; a path written twice here
        // gets one row (PostgreSQL refuses to upsert a row twice in one
        // statement).
        let mut last: Vec<&Written> = Vec::new();
        let mut seen: HashSet<&SyncPath> = HashSet::new();
        for row in self.written.iter().rev() {
            if seen.insert(&row.entry.path) {
                last.push(row);
            }
        }
        last.reverse();
        for rows in last.chunks(ROWS_PER_INSERT) {
            upsert_files(&mut self.tx, backend, rows).await?;
        }
        let mut hashes: Vec<String> = Vec::new();
        let mut seen = HashSet::new();
        for row in &self.written {
            for chunk in &row.chunks {
                if seen.insert(chunk.hash) {
                    hashes.push(chunk.hash.to_hex());
                }
            }
        }
        for batch in hashes.chunks(HASHES_PER_QUERY) {
            record_chunk_refs(&mut self.tx, backend, batch).await?;
        }
        Ok(())
    }
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// `($1, …, $cols), ($cols+1, …), …` (see [`Backend::params`]) for `rows`
/// rows.
fn value_rows(backend: Backend, rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|row| format!("({})", backend.params(row * cols + 1, cols)))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn insert_versions(tx: &mut Tx, backend: Backend, rows: &[Written]) -> Result<(), DbError> {
    let sql = format!(
        "INSERT INTO versions (seq, path, version, kind, sha256, size, mtime_ns, executable, \
         deleted, origin, committed_ms, chunks) VALUES {}",
        value_rows(backend, rows.len(), 12)
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
    for row in rows {
        let e = &row.entry;
        let chunks = serde_json::to_string(&row.chunks)
            .map_err(|err| DbError::Corrupt(format!("chunk list of {}: {err}", e.path)))?;
        query = query
            .bind(to_i64(e.seq))
            .bind(e.path.as_str().to_owned())
            .bind(to_i64(e.version))
            .bind(e.kind.as_str())
            .bind(e.sha256.map(|s| s.to_hex()))
            .bind(to_i64(e.size))
            .bind(e.mtime_ns)
            .bind(i64::from(e.executable))
            .bind(i64::from(e.deleted))
            .bind(e.origin.clone())
            .bind(e.committed_ms)
            .bind(chunks);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

async fn insert_log(tx: &mut Tx, backend: Backend, rows: &[Written]) -> Result<(), DbError> {
    let sql = format!(
        "INSERT INTO files_log (action, path, version, sha, ts_ms, origin, size, seq) VALUES {}",
        value_rows(backend, rows.len(), 8)
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
    for row in rows {
        let e = &row.entry;
        query = query
            .bind(row.action.as_str())
            .bind(e.path.as_str().to_owned())
            .bind(to_i64(e.version))
            .bind(e.sha256.map(|s| s.to_hex()))
            .bind(e.committed_ms)
            .bind(e.origin.clone())
            .bind(to_i64(e.size))
            .bind(to_i64(e.seq));
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

async fn upsert_files(tx: &mut Tx, backend: Backend, rows: &[&Written]) -> Result<(), DbError> {
    let sql = format!(
        "INSERT INTO files (path, seq, version, kind, deleted) VALUES {} \
         ON CONFLICT (path) DO UPDATE SET seq = excluded.seq, version = excluded.version, \
         kind = excluded.kind, deleted = excluded.deleted",
        value_rows(backend, rows.len(), 5)
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
    for row in rows {
        let e = &row.entry;
        query = query
            .bind(e.path.as_str().to_owned())
            .bind(to_i64(e.seq))
            .bind(to_i64(e.version))
            .bind(e.kind.as_str())
            .bind(i64::from(e.deleted));
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// Adds chunks the new versions reference to `chunk_refs` (which garbage
/// collection keeps), each once.
async fn record_chunk_refs(
    tx: &mut Tx,
    backend: Backend,
    hashes: &[String],
) -> Result<(), DbError> {
    let values = value_rows(backend, hashes.len(), 1);
    let sql = format!("INSERT INTO chunk_refs (hash) VALUES {values} ON CONFLICT DO NOTHING");
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
    for hash in hashes {
        query = query.bind(hash.as_str());
    }
    query.execute(&mut **tx).await?;
    Ok(())
}
