//! The agent's local state in `<dir>/.sf/state.db` (SQLite): what was last
//! synced per path, the hub's entries as last read, the last applied seq,
//! and problems to report. `<dir>/.sf` doubles as the folder marker.
//!
//! Layout: this module holds [`State`] (a pool on the database) and its
//! error; each table has a module of its own, adding methods to `State`:
//!
//! - `open`: opening a folder's state (migrations, the registry of folders
//!   synced before, the lock that keeps a second agent out) and closing it.
//! - `synced`: the `synced` table and its chunk index, what disk and hub
//!   last agreed on per path.
//! - `remote`: the hub's entries as last read from the change feed, and
//!   the seq applied.
//! - `children`: both tables read a folder at a time, for the walk.
//! - `write`: the writes of both tables, many rows per statement.
//! - `meta`: the `meta` keys ([`MetaKey`]) and the problems kept for
//!   `sf-agent status` ([`ProblemKind`]).

use std::path::PathBuf;
use std::sync::Arc;

use sqlx::sqlite::SqlitePool;

mod children;
#[cfg(test)]
mod fixtures;
mod meta;
mod open;
mod remote;
mod synced;
mod write;

pub use children::folder_prefix;
pub use meta::{MetaKey, ProblemKind};
pub use synced::Settled;

/// The folder marker and state directory inside the synced folder.
pub const STATE_DIR: &str = ".sf";

/// Why the state cannot be opened, read or written. Only the state's own
/// files: failures on the synced folder's contents have errors of their own
/// (`AgentError::FolderUnreadable`, `EngineError::FolderUnreadable`, the
/// walk's and the scan's).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "another sf-agent is already syncing {dir} (its lock is {lock}); stop it first, \
         or give this one another --dir"
    )]
    InUse { dir: PathBuf, lock: PathBuf },
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
    /// `.sf` (or `tmp`, `trash`, the lock inside it), or the folder's
    /// registry entry, cannot be made, written or locked.
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

impl StateError {
    /// Whether this failed because the disk is full (SQLite's
    /// `SQLITE_FULL`, or `ENOSPC`): a condition that passes, not a reason
    /// to stop.
    pub fn is_disk_full(&self) -> bool {
        let io_full = |err: &std::io::Error| {
            err.kind() == std::io::ErrorKind::StorageFull || err.raw_os_error() == Some(28)
        };
        match self {
            StateError::Db(sqlx::Error::Database(db)) => {
                // Extended result codes keep the primary code in the low byte.
                db.code()
                    .and_then(|code| code.parse::<i32>().ok())
                    .is_some_and(|code| code & 0xff == 13)
            }
            StateError::Db(sqlx::Error::Io(err)) | StateError::Io { source: err, .. } => {
                io_full(err)
            }
            _ => false,
        }
    }
}

/// A folder's state database, shared by the engine's tasks (clones share
/// one pool and one lock).
#[derive(Clone)]
pub struct State {
    pool: SqlitePool,
    /// Held while this process syncs the folder: two agents on one folder
    /// would each take the other's writes for the user's.
    lock: Option<Arc<std::fs::File>>,
}

/// Milliseconds since the epoch, as the state stores times.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Paths looked up per query by the functions that take many.
const PATHS_PER_QUERY: usize = 500;

/// `paths` as a JSON list, for `json_each(?)`.
fn json_list(paths: &[&sf_protocol::SyncPath]) -> Result<String, StateError> {
    let raw: Vec<&str> = paths.iter().map(|p| p.as_str()).collect();
    serde_json::to_string(&raw).map_err(|e| StateError::Corrupt(e.to_string()))
}
