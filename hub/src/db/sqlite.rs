//! SQLite, the embedded default: a file in the data dir, in WAL mode, with
//! full fsync on commit so a committed change survives a power cut. It is
//! for one hub: a serving hub holds a lock next to the file, and a second
//! one is refused (the `sf-hub token` and `check` commands still work).

use std::time::Duration;

use sqlx::AnyPool;
use sqlx::Executor;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Held while a hub serves a SQLite database file (an OS lock on
/// `<file>-hub.lock`, released when the process ends, however it ends).
pub struct ServingLock {
    _file: std::fs::File,
}

/// Claims the SQLite database of `url` for this hub; `None` for an
/// in-memory database.
pub fn claim_serving(url: &str) -> Result<Option<ServingLock>, super::DbError> {
    let Some(path) = file_path(url) else {
        return Ok(None);
    };
    let mut lock_path = path.into_os_string();
    lock_path.push("-hub.lock");
    let lock_path = std::path::PathBuf::from(lock_path);
    let lock_error = |source| super::DbError::ServingLock {
        path: lock_path.display().to_string(),
        source,
    };
    if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(lock_error)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(lock_error)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(ServingLock { _file: file })),
        Err(std::fs::TryLockError::WouldBlock) => Err(super::DbError::AlreadyServed(
            lock_path.display().to_string(),
        )),
        Err(std::fs::TryLockError::Error(source)) => Err(lock_error(source)),
    }
}

/// The file of a `sqlite:` URL; `None` for an in-memory database.
fn file_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| path.into())
}

pub async fn connect(url: &str) -> Result<AnyPool, sqlx::Error> {
    let pool = AnyPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute("PRAGMA busy_timeout = 30000").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                conn.execute("PRAGMA synchronous = FULL").await?;
                Ok(())
            })
        })
        .connect(url)
        .await?;
    // WAL lets readers (feeds, downloads) proceed while a commit writes; the
    // setting is stored in the file, so once is enough.
    pool.execute("PRAGMA journal_mode = WAL").await?;
    Ok(pool)
}
