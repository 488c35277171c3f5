//! Writes of many rows at once: each statement takes its rows as one JSON
//! array and reads them back with `json_each`, so a batch of 500 files
//! costs a handful of statements instead of a few thousand. Every
//! statement is a hand-off to SQLite's worker thread and back; one per
//! row was most of an agent's time on a burst of small files.

use serde_json::{Value, json};
use sf_protocol::SyncPath;
use sf_protocol::chunking::ChunkRef;
use sf_protocol::platform::fold_case;
use sf_protocol::v1::Entry;
use sqlx::sqlite::SqliteConnection;

use super::{ProblemKind, StateError};
use crate::model::SyncedFile;

/// Stores hub entries; one never replaces a newer one (by seq) for its path.
pub(super) async fn upsert_remotes(
    conn: &mut SqliteConnection,
    entries: &[&Entry],
) -> Result<(), StateError> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut rows = Vec::with_capacity(entries.len());
    for entry in entries {
        let stored = serde_json::to_string(entry).map_err(corrupt)?;
        let path = entry.path.as_str();
        rows.push(json!([path, entry.seq as i64, stored, fold_case(path)]));
    }
    // `WHERE true` tells SQLite's parser that `ON CONFLICT` is the upsert's.
    sqlx::query(
        "INSERT INTO remote (path, seq, entry, fold) \
         SELECT value->>0, value->>1, value->>2, value->>3 FROM json_each(?) WHERE true \
         ON CONFLICT (path) DO UPDATE SET seq = excluded.seq, entry = excluded.entry, \
         fold = excluded.fold WHERE excluded.seq > remote.seq",
    )
    .bind(array(rows)?)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that each path's disk and hub agree on its file, made of its
/// chunks, and clears the path's error (not its conflict).
pub(super) async fn record_many(
    conn: &mut SqliteConnection,
    records: &[(&SyncPath, &SyncedFile, &[ChunkRef])],
) -> Result<(), StateError> {
    if records.is_empty() {
        return Ok(());
    }
    let mut rows = Vec::with_capacity(records.len());
    let mut chunk_rows = Vec::new();
    for (path, file, chunks) in records {
        rows.push(json!([
            path.as_str(),
            file.kind.as_str(),
            file.sha256.to_hex(),
            file.size as i64,
            file.mtime_ns,
            file.inode as i64,
            i64::from(file.executable),
            file.version as i64,
        ]));
        let mut start = 0u64;
        for chunk in *chunks {
            chunk_rows.push(json!([path.as_str(), start as i64, chunk.hash.to_hex()]));
            start += chunk.len;
        }
    }
    sqlx::query(
        "INSERT INTO synced (path, kind, sha256, size, mtime_ns, inode, executable, version) \
         SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, \
         value->>7 FROM json_each(?) WHERE true \
         ON CONFLICT (path) DO UPDATE SET kind = excluded.kind, sha256 = excluded.sha256, \
         size = excluded.size, mtime_ns = excluded.mtime_ns, inode = excluded.inode, \
         executable = excluded.executable, version = excluded.version",
    )
    .bind(array(rows)?)
    .execute(&mut *conn)
    .await?;
    let paths = path_list(records.iter().map(|(path, _, _)| *path))?;
    sqlx::query("DELETE FROM chunk_index WHERE path IN (SELECT value FROM json_each(?))")
        .bind(&paths)
        .execute(&mut *conn)
        .await?;
    if !chunk_rows.is_empty() {
        sqlx::query(
            "INSERT INTO chunk_index (path, start, hash) \
             SELECT value->>0, value->>1, value->>2 FROM json_each(?) WHERE true \
             ON CONFLICT DO NOTHING",
        )
        .bind(array(chunk_rows)?)
        .execute(&mut *conn)
        .await?;
    }
    // Synced now: its errors and refusals are over, not its conflicts.
    sqlx::query("DELETE FROM problems WHERE kind = ? AND path IN (SELECT value FROM json_each(?))")
        .bind(ProblemKind::Error.as_stored())
        .bind(&paths)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Forgets the synced records of `paths` and their chunks.
pub(super) async fn forget_many(
    conn: &mut SqliteConnection,
    paths: &[&SyncPath],
) -> Result<(), StateError> {
    if paths.is_empty() {
        return Ok(());
    }
    let paths = path_list(paths.iter().copied())?;
    for table in ["synced", "chunk_index"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE path IN (SELECT value FROM json_each(?))"
        )))
        .bind(&paths)
        .execute(&mut *conn)
        .await?;
    }
    // A conflict copy gone from both sides (resolved) is no conflict any more.
    sqlx::query("DELETE FROM problems WHERE kind = ? AND path IN (SELECT value FROM json_each(?))")
        .bind(ProblemKind::Conflict.as_stored())
        .bind(&paths)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn path_list<'a>(paths: impl Iterator<Item = &'a SyncPath>) -> Result<String, StateError> {
    array(paths.map(|path| Value::from(path.as_str())).collect())
}

fn array(rows: Vec<Value>) -> Result<String, StateError> {
    serde_json::to_string(&Value::Array(rows)).map_err(corrupt)
}

fn corrupt(err: serde_json::Error) -> StateError {
    StateError::Corrupt(err.to_string())
}
