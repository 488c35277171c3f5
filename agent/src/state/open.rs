//! Opening a folder's state: the `.sf` marker and its `tmp` and `trash`
//! directories, the registry entry outside the folder that says it was
//! synced before, the lock that keeps a second agent out, the database and
//! its migrations; and closing it again.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use sf_protocol::Sha256Hex;
use sf_protocol::platform::fold_case;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::{STATE_DIR, State, StateError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where the agent remembers, outside the folder, that it synced `dir`: if
/// the folder's own marker vanishes, this is how the agent knows to refuse.
fn registry_entry(registry_dir: &Path, dir: &Path) -> PathBuf {
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
        let lock = lock_folder(&dir, &marker)?;
        let mut state = Self::open_database(&marker).await?;
        state.lock = Some(Arc::new(lock));
        Ok(state)
    }

    /// Opens an existing state database for `status`, next to a running
    /// agent: no lock, and no migrations (an agent of an older version may
    /// still be using it; every query `status` makes works on each schema).
    pub async fn open_existing(dir: &Path) -> Result<Self, StateError> {
        let marker = dir.join(STATE_DIR);
        if !marker.join("state.db").is_file() {
            return Err(StateError::NotADirectory { path: marker });
        }
        Self::connect(&marker).await
    }

    /// The pid of the agent syncing `dir` now, if one is.
    pub fn running_agent(dir: &Path) -> Option<u32> {
        let path = dir.join(STATE_DIR).join("lock");
        let file = std::fs::File::open(&path).ok()?;
        match file.try_lock_shared() {
            Ok(()) => None,
            Err(_) => Some(
                std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|pid| pid.trim().parse().ok())
                    .unwrap_or(0),
            ),
        }
    }

    async fn open_database(marker: &Path) -> Result<Self, StateError> {
        let state = Self::connect(marker).await?;
        MIGRATOR.run(&state.pool).await?;
        state.fill_folds().await?;
        Ok(state)
    }

    /// Gives hub entries stored before migration 0004 their case-folded key.
    async fn fill_folds(&self) -> Result<(), StateError> {
        loop {
            let paths: Vec<String> =
                sqlx::query_scalar("SELECT path FROM remote WHERE fold IS NULL LIMIT 1000")
                    .fetch_all(&self.pool)
                    .await?;
            if paths.is_empty() {
                return Ok(());
            }
            let mut tx = self.pool.begin().await?;
            for path in &paths {
                sqlx::query("UPDATE remote SET fold = ? WHERE path = ?")
                    .bind(fold_case(path))
                    .bind(path)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        }
    }

    async fn connect(marker: &Path) -> Result<Self, StateError> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(marker.join("state.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode: a power cut may lose the last records, never
            // corrupt the file; lost records are repaired from disk and the
            // change feed (same content on both sides is only recorded).
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Ok(Self { pool, lock: None })
    }

    /// Closes the database and frees the folder for another agent.
    pub async fn close(&self) {
        self.pool.close().await;
        if let Some(lock) = &self.lock {
            let _ = lock.unlock();
        }
    }
}

/// Takes the folder's lock file, `.sf/lock`, for this process's lifetime,
/// and writes our pid into it so the next one can say who holds it.
fn lock_folder(dir: &Path, marker: &Path) -> Result<std::fs::File, StateError> {
    use std::io::Write;
    let path = marker.join("lock");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_error(&path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(StateError::InUse {
                dir: dir.to_owned(),
                lock: path,
            });
        }
        Err(std::fs::TryLockError::Error(source)) => {
            return Err(StateError::Io { path, source });
        }
    }
    file.set_len(0)
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .map_err(io_error(&path))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::MetaKey;
    use crate::state::fixtures::{chunk, fresh};
    use sqlx::sqlite::SqlitePoolOptions;

    #[tokio::test]
    async fn refuses_when_the_marker_vanished() {
        let (dirs, state) = fresh().await;
        state.set_meta(MetaKey::Hub, "x").await.unwrap();
        state.close().await;
        // Reopening with the marker present works and keeps the state.
        let state = dirs.open().await.unwrap();
        assert_eq!(
            state.meta(MetaKey::Hub).await.unwrap().as_deref(),
            Some("x")
        );
        state.close().await;
        // The marker disappears (unmounted disk): refuse.
        std::fs::remove_dir_all(dirs.folder.path().join(STATE_DIR)).unwrap();
        let err = dirs.open().await.err().unwrap();
        assert!(matches!(err, StateError::MarkerMissing { .. }), "{err}");
        assert!(err.to_string().contains("Refusing to sync"));
        assert!(
            !dirs.folder.path().join(STATE_DIR).exists(),
            "nothing recreated"
        );
    }

    #[tokio::test]
    async fn a_second_agent_on_the_same_folder_is_refused() {
        let (dirs, first) = fresh().await;
        let err = dirs.open().await.err().expect("the folder is locked");
        assert!(matches!(err, StateError::InUse { .. }), "{err}");
        assert!(err.to_string().contains("already syncing"), "{err}");
        // `status` still reads the state of a folder in use, and says who
        // holds it.
        State::open_existing(dirs.folder.path()).await.unwrap();
        assert_eq!(
            State::running_agent(dirs.folder.path()),
            Some(std::process::id())
        );
        drop(first);
        assert_eq!(State::running_agent(dirs.folder.path()), None);
        dirs.open()
            .await
            .expect("free again once the first agent is gone");
    }

    #[tokio::test]
    async fn the_chunk_index_migration_keeps_existing_records() {
        // A state database from before the chunk index: its JSON chunk lists
        // become index rows with their offsets.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::raw_sql(include_str!("../../migrations/0001_init.sql"))
            .execute(&pool)
            .await
            .unwrap();
        let chunks = serde_json::to_string(&[chunk(1, 7), chunk(2, 9), chunk(1, 7)]).unwrap();
        sqlx::query(
            "INSERT INTO synced VALUES ('x', 'file', ?, 23, 0, 0, 0, 3, ?), \
             ('empty', 'file', ?, 0, 0, 0, 0, 1, '[]')",
        )
        .bind(Sha256Hex::empty().to_hex())
        .bind(chunks)
        .bind(Sha256Hex::empty().to_hex())
        .execute(&pool)
        .await
        .unwrap();
        sqlx::raw_sql(include_str!("../../migrations/0002_chunk_index.sql"))
            .execute(&pool)
            .await
            .unwrap();
        let rows: Vec<(String, i64, String)> =
            sqlx::query_as("SELECT path, start, hash FROM chunk_index ORDER BY path, start")
                .fetch_all(&pool)
                .await
                .unwrap();
        let one = chunk(1, 7).hash.to_hex();
        let two = chunk(2, 9).hash.to_hex();
        assert_eq!(
            rows,
            [
                ("x".into(), 0, one.clone()),
                ("x".into(), 7, two),
                ("x".into(), 16, one)
            ]
        );
        let synced: i64 = sqlx::query_scalar("SELECT count(*) FROM synced")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(synced, 2);
    }
}
