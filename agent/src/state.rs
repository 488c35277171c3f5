//! The agent's local state in `<dir>/.sf/state.db` (SQLite): what was last
//! synced per path, the hub's entries as last read, the last applied seq,
//! and problems to report. `<dir>/.sf` doubles as the folder marker.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sf_protocol::chunking::ChunkRef;
use sf_protocol::v1::{Entry, EntryKind};
use sf_protocol::{Sha256Hex, SyncPath};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::model::SyncedFile;

/// The folder marker and state directory inside the synced folder.
pub const STATE_DIR: &str = ".sf";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "the folder marker {marker} is missing, but this agent has synced {dir} before: the disk \
         may be unmounted or the folder deleted. Refusing to sync, so nothing is deleted on the \
         hub. Mount the disk again, or remove {registry} to start this folder afresh"
    )]
    MarkerMissing {
        marker: PathBuf,
        dir: PathBuf,
        registry: PathBuf,
    },
    #[error("{path} does not exist or is not a directory; create it or pass another --dir")]
    NotADirectory { path: PathBuf },
    #[error("cannot prepare {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("state database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("state database holds a value the agent cannot read ({0})")]
    Corrupt(String),
}

/// A problem kept for `sf-agent status`.
#[derive(Debug, Clone)]
pub struct Problem {
    pub path: String,
    pub kind: String,
    pub detail: String,
    pub at_ms: i64,
}

#[derive(Clone)]
pub struct State {
    pool: SqlitePool,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where the agent remembers, outside the folder, that it synced `dir`: if
/// the folder's own marker vanishes, this is how the agent knows to refuse.
pub fn registry_entry(registry_dir: &Path, dir: &Path) -> PathBuf {
    let key = Sha256Hex::of(dir.as_os_str().as_encoded_bytes()).to_hex();
    registry_dir.join("folders").join(&key[..32])
}

impl State {
    /// Opens the state of `dir`, creating it on first use. Refuses when the
    /// folder was synced before (per `registry_dir`) but its marker is gone.
    pub async fn open(dir: &Path, registry_dir: &Path) -> Result<Self, StateError> {
        if !dir.is_dir() {
            return Err(StateError::NotADirectory {
                path: dir.to_owned(),
            });
        }
        let dir = dir.canonicalize().map_err(io_error(dir))?;
        let marker = dir.join(STATE_DIR);
        let registry = registry_entry(registry_dir, &dir);
        if !marker.is_dir() && registry.exists() {
            return Err(StateError::MarkerMissing {
                marker,
                dir,
                registry,
            });
        }
        for sub in ["", "tmp", "trash"] {
            let path = marker.join(sub);
            std::fs::create_dir_all(&path).map_err(io_error(&path))?;
        }
        let parent = registry.parent().expect("registry entries have a parent");
        std::fs::create_dir_all(parent).map_err(io_error(parent))?;
        std::fs::write(&registry, dir.as_os_str().as_encoded_bytes())
            .map_err(io_error(&registry))?;
        Self::open_database(&marker).await
    }

    /// Opens an existing state database read-mostly, for `status`.
    pub async fn open_existing(dir: &Path) -> Result<Self, StateError> {
        let marker = dir.join(STATE_DIR);
        if !marker.join("state.db").is_file() {
            return Err(StateError::NotADirectory { path: marker });
        }
        Self::open_database(&marker).await
    }

    async fn open_database(marker: &Path) -> Result<Self, StateError> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(marker.join("state.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub async fn meta(&self, key: &str) -> Result<Option<String>, StateError> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> Result<(), StateError> {
        sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The last change-feed seq whose entries are in `remote`.
    pub async fn last_seq(&self) -> Result<u64, StateError> {
        Ok(self
            .meta("last_seq")
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Stores a page of the change feed and advances `last_seq`, atomically.
    /// An entry older than the one stored for its path is ignored.
    pub async fn apply_changes(&self, changes: &[Entry], last_seq: u64) -> Result<(), StateError> {
        let mut tx = self.pool.begin().await?;
        for entry in changes {
            sqlx::query(
                "INSERT INTO remote (path, seq, entry) VALUES (?, ?, ?) ON CONFLICT (path) \
                 DO UPDATE SET seq = excluded.seq, entry = excluded.entry WHERE excluded.seq > remote.seq",
            )
            .bind(entry.path.as_str())
            .bind(entry.seq as i64)
            .bind(serde_json::to_string(entry).expect("entries serialise"))
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("INSERT INTO meta (key, value) VALUES ('last_seq', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(last_seq.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records an entry the hub answered with (our own commit or delete),
    /// without moving `last_seq`: the feed still delivers it in order.
    pub async fn note_remote(&self, entry: &Entry) -> Result<(), StateError> {
        sqlx::query(
            "INSERT INTO remote (path, seq, entry) VALUES (?, ?, ?) ON CONFLICT (path) \
             DO UPDATE SET seq = excluded.seq, entry = excluded.entry WHERE excluded.seq > remote.seq",
        )
        .bind(entry.path.as_str())
        .bind(entry.seq as i64)
        .bind(serde_json::to_string(entry).expect("entries serialise"))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether any synced record lies inside folder `path`.
    pub async fn has_synced_under(&self, path: &SyncPath) -> Result<bool, StateError> {
        // '0' follows '/' in byte order: the range is exactly "path/...".
        let found = sqlx::query("SELECT 1 FROM synced WHERE path > ? AND path < ? LIMIT 1")
            .bind(format!("{path}/"))
            .bind(format!("{path}0"))
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    /// Drops every hub entry and the applied seq, to re-read the feed from
    /// the start (after the hub was reset or restored).
    pub async fn reset_remote(&self) -> Result<(), StateError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM remote").execute(&mut *tx).await?;
        sqlx::query("DELETE FROM meta WHERE key = 'last_seq'")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn remote(&self, path: &SyncPath) -> Result<Option<Entry>, StateError> {
        let raw: Option<String> = sqlx::query_scalar("SELECT entry FROM remote WHERE path = ?")
            .bind(path.as_str())
            .fetch_optional(&self.pool)
            .await?;
        raw.map(|r| serde_json::from_str(&r).map_err(|e| StateError::Corrupt(e.to_string())))
            .transpose()
    }

    pub async fn all_remote(&self) -> Result<Vec<Entry>, StateError> {
        let rows: Vec<String> = sqlx::query_scalar("SELECT entry FROM remote ORDER BY path")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| serde_json::from_str(r).map_err(|e| StateError::Corrupt(e.to_string())))
            .collect()
    }

    pub async fn synced(
        &self,
        path: &SyncPath,
    ) -> Result<Option<(SyncedFile, Vec<ChunkRef>)>, StateError> {
        let row = sqlx::query("SELECT * FROM synced WHERE path = ?")
            .bind(path.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| synced_from_row(&r).map(|(_, s, c)| (s, c)))
            .transpose()
    }

    pub async fn all_synced(&self) -> Result<Vec<(SyncPath, SyncedFile)>, StateError> {
        let rows = sqlx::query("SELECT * FROM synced ORDER BY path")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| synced_from_row(r).map(|(p, s, _)| (p, s)))
            .collect()
    }

    pub async fn record(
        &self,
        path: &SyncPath,
        file: &SyncedFile,
        chunks: &[ChunkRef],
    ) -> Result<(), StateError> {
        sqlx::query(
            "INSERT INTO synced (path, kind, sha256, size, mtime_ns, inode, executable, version, chunks) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET kind = excluded.kind, \
             sha256 = excluded.sha256, size = excluded.size, mtime_ns = excluded.mtime_ns, \
             inode = excluded.inode, executable = excluded.executable, version = excluded.version, \
             chunks = excluded.chunks",
        )
        .bind(path.as_str())
        .bind(file.kind.as_str())
        .bind(file.sha256.to_hex())
        .bind(file.size as i64)
        .bind(file.mtime_ns)
        .bind(file.inode as i64)
        .bind(i64::from(file.executable))
        .bind(file.version as i64)
        .bind(serde_json::to_string(chunks).expect("chunk refs serialise"))
        .execute(&self.pool)
        .await?;
        sqlx::query("DELETE FROM problems WHERE path = ? AND kind = 'error'")
            .bind(path.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn forget(&self, path: &SyncPath) -> Result<(), StateError> {
        sqlx::query("DELETE FROM synced WHERE path = ?")
            .bind(path.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A synced file elsewhere in the folder that holds chunk `hash`, with
    /// the chunk's offset in it: downloads copy such chunks instead of
    /// fetching them.
    pub async fn find_local_chunk(
        &self,
        hash: &Sha256Hex,
    ) -> Result<Option<(SyncPath, SyncedFile, u64)>, StateError> {
        // The chunk lists are JSON; a LIKE narrows the rows, the parse decides.
        let pattern = format!("%{}%", hash.to_hex());
        let rows = sqlx::query("SELECT * FROM synced WHERE chunks LIKE ? LIMIT 8")
            .bind(pattern)
            .fetch_all(&self.pool)
            .await?;
        for row in &rows {
            let (path, file, chunks) = synced_from_row(row)?;
            let mut offset = 0;
            for chunk in &chunks {
                if chunk.hash == *hash {
                    return Ok(Some((path, file, offset)));
                }
                offset += chunk.len;
            }
        }
        Ok(None)
    }

    pub async fn set_problem(
        &self,
        path: &str,
        kind: &str,
        detail: &str,
    ) -> Result<(), StateError> {
        sqlx::query(
            "INSERT INTO problems (path, kind, detail, at_ms) VALUES (?, ?, ?, ?) ON CONFLICT (path) \
             DO UPDATE SET kind = excluded.kind, detail = excluded.detail, at_ms = excluded.at_ms",
        )
        .bind(path)
        .bind(kind)
        .bind(detail)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn problems(&self) -> Result<Vec<Problem>, StateError> {
        let rows =
            sqlx::query("SELECT path, kind, detail, at_ms FROM problems ORDER BY at_ms DESC")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(Problem {
                    path: r.try_get("path")?,
                    kind: r.try_get("kind")?,
                    detail: r.try_get("detail")?,
                    at_ms: r.try_get("at_ms")?,
                })
            })
            .collect()
    }
}

fn synced_from_row(
    row: &sqlx::sqlite::SqliteRow,
) -> Result<(SyncPath, SyncedFile, Vec<ChunkRef>), StateError> {
    let corrupt = |what: &str| StateError::Corrupt(what.to_owned());
    let path: String = row.try_get("path")?;
    let kind: String = row.try_get("kind")?;
    let sha: String = row.try_get("sha256")?;
    let chunks: String = row.try_get("chunks")?;
    Ok((
        SyncPath::parse(path).map_err(|e| corrupt(&e.to_string()))?,
        SyncedFile {
            kind: EntryKind::parse(&kind).ok_or_else(|| corrupt("kind"))?,
            sha256: Sha256Hex::parse(&sha).map_err(|e| corrupt(&e.to_string()))?,
            size: row.try_get::<i64, _>("size")? as u64,
            mtime_ns: row.try_get("mtime_ns")?,
            inode: row.try_get::<i64, _>("inode")? as u64,
            executable: row.try_get::<i64, _>("executable")? != 0,
            version: row.try_get::<i64, _>("version")? as u64,
        },
        serde_json::from_str(&chunks).map_err(|e| corrupt(&e.to_string()))?,
    ))
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_when_the_marker_vanished() {
        let folder = tempfile::tempdir().unwrap();
        let registry = tempfile::tempdir().unwrap();
        let state = State::open(folder.path(), registry.path()).await.unwrap();
        state.set_meta("hub", "x").await.unwrap();
        state.close().await;
        // Reopening with the marker present works and keeps the state.
        let state = State::open(folder.path(), registry.path()).await.unwrap();
        assert_eq!(state.meta("hub").await.unwrap().as_deref(), Some("x"));
        state.close().await;
        // The marker disappears (unmounted disk): refuse.
        std::fs::remove_dir_all(folder.path().join(STATE_DIR)).unwrap();
        let err = State::open(folder.path(), registry.path())
            .await
            .err()
            .unwrap();
        assert!(matches!(err, StateError::MarkerMissing { .. }), "{err}");
        assert!(err.to_string().contains("Refusing to sync"));
        assert!(!folder.path().join(STATE_DIR).exists(), "nothing recreated");
    }

    #[tokio::test]
    async fn feed_pages_never_move_an_entry_backwards() {
        let folder = tempfile::tempdir().unwrap();
        let registry = tempfile::tempdir().unwrap();
        let state = State::open(folder.path(), registry.path()).await.unwrap();
        let entry = |seq: u64, version: u64| Entry {
            path: SyncPath::parse("a").unwrap(),
            kind: EntryKind::File,
            version,
            seq,
            sha256: Some(Sha256Hex::empty()),
            size: 0,
            mtime_ns: 0,
            executable: false,
            deleted: false,
            origin: "x".into(),
            committed_ms: 0,
            chunks: Some(vec![]),
        };
        state.note_remote(&entry(5, 2)).await.unwrap();
        state.apply_changes(&[entry(3, 1)], 3).await.unwrap();
        let path = SyncPath::parse("a").unwrap();
        assert_eq!(state.remote(&path).await.unwrap().unwrap().version, 2);
        assert_eq!(state.last_seq().await.unwrap(), 3);
        state
            .apply_changes(&[entry(5, 2), entry(7, 3)], 7)
            .await
            .unwrap();
        assert_eq!(state.remote(&path).await.unwrap().unwrap().version, 3);
    }
}
