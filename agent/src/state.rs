//! The agent's local state in `<dir>/.sf/state.db` (SQLite): what was last
//! synced per path, the hub's entries as last read, the last applied seq,
//! and problems to report. `<dir>/.sf` doubles as the folder marker.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use sf_protocol::chunking::ChunkRef;
use sf_protocol::platform::fold_case;
use sf_protocol::v1::{Entry, EntryKind};
use sf_protocol::{Sha256Hex, SyncPath};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

use crate::model::SyncedFile;

/// The folder marker and state directory inside the synced folder.
pub const STATE_DIR: &str = ".sf";

/// Meta key of the identity of the hub the folder was last synced with.
pub const HUB_ID: &str = "hub_id";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

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
    /// Held while this process syncs the folder: two agents on one folder
    /// would each take the other's writes for the user's.
    lock: Option<Arc<std::fs::File>>,
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

    pub async fn meta(&self, key: &str) -> Result<Option<String>, StateError> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> Result<(), StateError> {
        let mut conn = self.pool.acquire().await?;
        upsert_meta(&mut conn, key, value).await
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
            upsert_remote(&mut tx, entry).await?;
        }
        upsert_meta(&mut tx, "last_seq", &last_seq.to_string()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records an entry the hub answered with (our own commit or delete),
    /// without moving `last_seq`: the feed still delivers it in order.
    pub async fn note_remote(&self, entry: &Entry) -> Result<(), StateError> {
        let mut conn = self.pool.acquire().await?;
        upsert_remote(&mut conn, entry).await
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

    /// Starts over with another hub (`hub_id`, a different identity at the
    /// hub's URL): forgets every hub entry, every synced record and the
    /// applied seq, in one transaction, so the next scan merges the folder
    /// with that hub as at a first sync.
    pub async fn adopt_hub(&self, hub_id: &str) -> Result<(), StateError> {
        let mut tx = self.pool.begin().await?;
        for table in ["remote", "synced", "chunk_index"] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM meta WHERE key = 'last_seq'")
            .execute(&mut *tx)
            .await?;
        upsert_meta(&mut tx, HUB_ID, hub_id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A live hub path other than `path` that is the same name on a
    /// case-insensitive file system, for `path` or a folder above it.
    pub async fn case_twin(&self, path: &SyncPath) -> Result<Option<String>, StateError> {
        let mut conn = self.pool.acquire().await?;
        for name in path.ancestors().chain([path.as_str()]) {
            let twin: Option<String> = sqlx::query_scalar(
                "SELECT path FROM remote WHERE fold = ? AND path <> ? \
                 AND json_extract(entry, '$.deleted') = 0 LIMIT 1",
            )
            .bind(fold_case(name))
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
            if twin.is_some() {
                return Ok(twin);
            }
        }
        Ok(None)
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
        raw.as_deref().map(parse_entry).transpose()
    }

    /// The hub entries of `paths`, for those that have one.
    pub async fn remote_of<'a>(
        &self,
        paths: impl IntoIterator<Item = &'a SyncPath>,
    ) -> Result<HashMap<SyncPath, Entry>, StateError> {
        let mut conn = self.pool.acquire().await?;
        let mut found = HashMap::new();
        for path in paths {
            let raw: Option<String> = sqlx::query_scalar("SELECT entry FROM remote WHERE path = ?")
                .bind(path.as_str())
                .fetch_optional(&mut *conn)
                .await?;
            if let Some(raw) = raw {
                found.insert(path.clone(), parse_entry(&raw)?);
            }
        }
        Ok(found)
    }

    pub async fn all_remote(&self) -> Result<Vec<Entry>, StateError> {
        let rows: Vec<String> = sqlx::query_scalar("SELECT entry FROM remote ORDER BY path")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| parse_entry(r)).collect()
    }

    /// Live hub paths that start with `prefix` (conflict copies of a file
    /// are named by a shared prefix).
    pub async fn live_remote_with_prefix(
        &self,
        prefix: &str,
    ) -> Result<HashSet<SyncPath>, StateError> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT entry FROM remote WHERE path >= ?1 AND path < ?2 \
             AND substr(path, 1, length(?1)) = ?1",
        )
        .bind(prefix)
        .bind(prefix_end(prefix))
        .fetch_all(&self.pool)
        .await?;
        let mut live = HashSet::new();
        for raw in &rows {
            let entry = parse_entry(raw)?;
            if !entry.deleted {
                live.insert(entry.path);
            }
        }
        Ok(live)
    }

    /// Up to `limit` synced records directly inside the folder `prefix`
    /// (see [`folder_prefix`]), in path order, from the first path above
    /// `after` ("" for the start).
    pub async fn synced_children(
        &self,
        prefix: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<(SyncPath, SyncedFile)>, StateError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT * FROM synced WHERE {PARENT_KEY} = ? AND path > ? ORDER BY path LIMIT ?"
        )))
        .bind(prefix)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(synced_from_row).collect()
    }

    /// [`State::synced_children`] for the hub's entries.
    pub async fn remote_children(
        &self,
        prefix: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<Entry>, StateError> {
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT entry FROM remote WHERE {PARENT_KEY} = ? AND path > ? ORDER BY path LIMIT ?"
        )))
        .bind(prefix)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| parse_entry(r)).collect()
    }

    /// Names of the folders directly inside the folder `prefix` (see
    /// [`folder_prefix`]) that hold synced records or live hub entries
    /// further down, whether or not the folder itself has a record (a legacy
    /// client can create `a/b.txt` without `a`). One index seek per such
    /// folder: their contents are skipped, not read. Hub tombstones alone do
    /// not count: a deleted tree holds nothing to do unless something of it
    /// is synced or on disk.
    pub async fn folders_with_records(&self, prefix: &str) -> Result<Vec<String>, StateError> {
        let mut names = Vec::new();
        for (table, live) in [
            ("synced", ""),
            ("remote", "AND json_extract(entry, '$.deleted') = 0"),
        ] {
            // The first key strictly above `prefix`: `prefix` itself holds
            // the records directly inside, not below.
            let mut from = prefix.to_owned();
            let mut inclusive = false;
            loop {
                let op = if inclusive { ">=" } else { ">" };
                let below: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT {PARENT_KEY} FROM {table} WHERE {PARENT_KEY} {op} ? {live} \
                     ORDER BY {PARENT_KEY} LIMIT 1"
                )))
                .bind(&from)
                .fetch_optional(&self.pool)
                .await?;
                let Some(below) = below else { break };
                let Some(rest) = below.strip_prefix(prefix) else {
                    break;
                };
                let Some((name, _)) = rest.split_once('/') else {
                    break;
                };
                names.push(name.to_owned());
                // Past every key inside `prefix/name/`.
                from = prefix_end(&format!("{prefix}{name}/"));
                inclusive = true;
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// The paths of `entries` that are synced at exactly that entry's
    /// version and content (the hub telling us what we committed or
    /// downloaded ourselves), or at a later version: nothing to look at.
    pub async fn synced_as(&self, entries: &[Entry]) -> Result<HashSet<SyncPath>, StateError> {
        let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        let paths =
            serde_json::to_string(&paths).map_err(|e| StateError::Corrupt(e.to_string()))?;
        let rows =
            sqlx::query("SELECT * FROM synced WHERE path IN (SELECT value FROM json_each(?))")
                .bind(paths)
                .fetch_all(&self.pool)
                .await?;
        let mut synced = HashMap::new();
        for row in &rows {
            let (path, file) = synced_from_row(row)?;
            synced.insert(path, file);
        }
        Ok(entries
            .iter()
            .filter(|entry| {
                synced.get(&entry.path).is_some_and(|s| {
                    s.version > entry.version
                        || (s.version == entry.version
                            && !entry.deleted
                            && entry.kind == s.kind
                            && entry.sha256 == Some(s.sha256)
                            && entry.executable == s.executable)
                })
            })
            .map(|entry| entry.path.clone())
            .collect())
    }

    /// Whether anything was ever synced: a folder without records gets a
    /// first sync.
    pub async fn has_synced(&self) -> Result<bool, StateError> {
        let found = sqlx::query("SELECT 1 FROM synced LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    /// How many live files the hub holds and their total size, as last read.
    pub async fn live_remote_files(&self) -> Result<(u64, u64), StateError> {
        // TOTAL, not SUM: sizes a broken hub sends must not overflow.
        let (files, bytes): (i64, f64) = sqlx::query_as(
            "SELECT COUNT(*), TOTAL(json_extract(entry, '$.size')) FROM remote \
             WHERE json_extract(entry, '$.deleted') = 0 AND json_extract(entry, '$.kind') = 'file'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((files as u64, bytes as u64))
    }

    pub async fn synced(&self, path: &SyncPath) -> Result<Option<SyncedFile>, StateError> {
        Ok(self.synced_of([path]).await?.remove(path))
    }

    /// The synced records of `paths`, for those that have one.
    pub async fn synced_of<'a>(
        &self,
        paths: impl IntoIterator<Item = &'a SyncPath>,
    ) -> Result<HashMap<SyncPath, SyncedFile>, StateError> {
        let mut conn = self.pool.acquire().await?;
        let mut found = HashMap::new();
        for path in paths {
            let row = sqlx::query("SELECT * FROM synced WHERE path = ?")
                .bind(path.as_str())
                .fetch_optional(&mut *conn)
                .await?;
            if let Some(row) = row {
                let (path, file) = synced_from_row(&row)?;
                found.insert(path, file);
            }
        }
        Ok(found)
    }

    pub async fn all_synced(&self) -> Result<Vec<(SyncPath, SyncedFile)>, StateError> {
        let rows = sqlx::query("SELECT * FROM synced ORDER BY path")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(synced_from_row).collect()
    }

    /// Records that `path` on disk and the hub agree on `file`, made of
    /// `chunks`.
    pub async fn record(
        &self,
        path: &SyncPath,
        file: &SyncedFile,
        chunks: &[ChunkRef],
    ) -> Result<(), StateError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO synced (path, kind, sha256, size, mtime_ns, inode, executable, version) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET kind = excluded.kind, \
             sha256 = excluded.sha256, size = excluded.size, mtime_ns = excluded.mtime_ns, \
             inode = excluded.inode, executable = excluded.executable, version = excluded.version",
        )
        .bind(path.as_str())
        .bind(file.kind.as_str())
        .bind(file.sha256.to_hex())
        .bind(file.size as i64)
        .bind(file.mtime_ns)
        .bind(file.inode as i64)
        .bind(i64::from(file.executable))
        .bind(file.version as i64)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM chunk_index WHERE path = ?")
            .bind(path.as_str())
            .execute(&mut *tx)
            .await?;
        let mut start = 0u64;
        for chunk in chunks {
            sqlx::query(
                "INSERT INTO chunk_index (path, start, hash) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(path.as_str())
            .bind(start as i64)
            .bind(chunk.hash.to_hex())
            .execute(&mut *tx)
            .await?;
            start += chunk.len;
        }
        sqlx::query("DELETE FROM problems WHERE path = ? AND kind = 'error'")
            .bind(path.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn forget(&self, path: &SyncPath) -> Result<(), StateError> {
        let mut tx = self.pool.begin().await?;
        for table in ["synced", "chunk_index"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE path = ?"
            )))
            .bind(path.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Synced files that hold chunk `hash`, with the chunk's offset in each:
    /// downloads copy such chunks instead of fetching them.
    pub async fn find_local_chunk(
        &self,
        hash: &Sha256Hex,
    ) -> Result<Vec<(SyncPath, SyncedFile, u64)>, StateError> {
        let rows = sqlx::query(
            "SELECT s.*, c.start FROM chunk_index c JOIN synced s ON s.path = c.path \
             WHERE c.hash = ? LIMIT 4",
        )
        .bind(hash.to_hex())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let (path, file) = synced_from_row(row)?;
                Ok((path, file, row.try_get::<i64, _>("start")? as u64))
            })
            .collect()
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

/// Stores the hub's `entry` for its path unless a newer one is stored.
async fn upsert_remote(conn: &mut SqliteConnection, entry: &Entry) -> Result<(), StateError> {
    sqlx::query(
        "INSERT INTO remote (path, seq, entry, fold) VALUES (?, ?, ?, ?) ON CONFLICT (path) \
         DO UPDATE SET seq = excluded.seq, entry = excluded.entry, fold = excluded.fold \
         WHERE excluded.seq > remote.seq",
    )
    .bind(entry.path.as_str())
    .bind(entry.seq as i64)
    .bind(serde_json::to_string(entry).expect("entries serialise"))
    .bind(fold_case(entry.path.as_str()))
    .execute(conn)
    .await?;
    Ok(())
}

async fn upsert_meta(
    conn: &mut SqliteConnection,
    key: &str,
    value: &str,
) -> Result<(), StateError> {
    sqlx::query(
        "INSERT INTO meta (key, value) VALUES (?, ?) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(conn)
    .await?;
    Ok(())
}

/// The SQL key of a path's parent folder, as indexed by migration 0003:
/// the path up to and including its last '/', "" at the top level.
const PARENT_KEY: &str = "rtrim(path, replace(path, '/', ''))";

/// The parent key (see [`PARENT_KEY`]) of the paths directly inside `dir`;
/// `None` is the top level.
pub fn folder_prefix(dir: Option<&SyncPath>) -> String {
    dir.map(|d| format!("{d}/")).unwrap_or_default()
}

/// The least string above every string that starts with `prefix`, in byte
/// order (SQLite's), for a range scan; the prefix itself when there is none.
fn prefix_end(prefix: &str) -> String {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0x7f {
            bytes.push(last + 1);
            return String::from_utf8(bytes).expect("an ASCII byte after a char boundary");
        }
    }
    // No ASCII byte to raise: unbounded (U+10FFFF sorts above every name).
    format!("{prefix}\u{10FFFF}")
}

fn parse_entry(raw: &str) -> Result<Entry, StateError> {
    serde_json::from_str(raw).map_err(|e| StateError::Corrupt(e.to_string()))
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

fn synced_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<(SyncPath, SyncedFile), StateError> {
    let corrupt = |what: &str| StateError::Corrupt(what.to_owned());
    let path: String = row.try_get("path")?;
    let kind: String = row.try_get("kind")?;
    let sha: String = row.try_get("sha256")?;
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
    #[tokio::test]
    async fn a_second_agent_on_the_same_folder_is_refused() {
        let folder = tempfile::tempdir().unwrap();
        let registry = tempfile::tempdir().unwrap();
        let first = State::open(folder.path(), registry.path()).await.unwrap();
        let err = State::open(folder.path(), registry.path())
            .await
            .err()
            .expect("the folder is locked");
        assert!(matches!(err, StateError::InUse { .. }), "{err}");
        assert!(err.to_string().contains("already syncing"), "{err}");
        // `status` still reads the state of a folder in use, and says who
        // holds it.
        State::open_existing(folder.path()).await.unwrap();
        assert_eq!(
            State::running_agent(folder.path()),
            Some(std::process::id())
        );
        drop(first);
        assert_eq!(State::running_agent(folder.path()), None);
        State::open(folder.path(), registry.path())
            .await
            .expect("free again once the first agent is gone");
    }

    fn file(version: u64) -> SyncedFile {
        SyncedFile {
            kind: EntryKind::File,
            sha256: Sha256Hex::empty(),
            size: 30,
            mtime_ns: 1,
            inode: 2,
            executable: false,
            version,
        }
    }

    fn chunk(byte: u8, len: u64) -> ChunkRef {
        ChunkRef {
            hash: Sha256Hex::of(&[byte]),
            len,
        }
    }

    #[tokio::test]
    async fn chunks_are_found_where_they_sit_until_the_file_is_forgotten() {
        let folder = tempfile::tempdir().unwrap();
        let registry = tempfile::tempdir().unwrap();
        let state = State::open(folder.path(), registry.path()).await.unwrap();
        let a = SyncPath::parse("a").unwrap();
        let b = SyncPath::parse("dir/b").unwrap();
        state
            .record(&a, &file(1), &[chunk(1, 10), chunk(2, 20)])
            .await
            .unwrap();
        state
            .record(&b, &file(1), &[chunk(3, 5), chunk(2, 20), chunk(2, 20)])
            .await
            .unwrap();
        let mut found: Vec<(String, u64)> = state
            .find_local_chunk(&chunk(2, 20).hash)
            .await
            .unwrap()
            .into_iter()
            .map(|(p, _, at)| (p.to_string(), at))
            .collect();
        found.sort();
        assert_eq!(
            found,
            [("a".into(), 10), ("dir/b".into(), 5), ("dir/b".into(), 25)]
        );
        // A new version of `a` replaces its chunks; forgetting `b` drops its.
        state.record(&a, &file(2), &[chunk(4, 30)]).await.unwrap();
        state.forget(&b).await.unwrap();
        assert!(
            state
                .find_local_chunk(&chunk(2, 20).hash)
                .await
                .unwrap()
                .is_empty()
        );
        let found = state.find_local_chunk(&chunk(4, 30).hash).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].0.as_str(), found[0].1.version, found[0].2),
            ("a", 2, 0)
        );
        assert!(state.synced(&b).await.unwrap().is_none());
        assert_eq!(state.synced(&a).await.unwrap().unwrap().version, 2);
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
        sqlx::raw_sql(include_str!("../migrations/0001_init.sql"))
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
        sqlx::raw_sql(include_str!("../migrations/0002_chunk_index.sql"))
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

    /// Version 1 of an empty file at `path` (a tombstone when `deleted`).
    fn empty_file_entry(path: &str, seq: u64, deleted: bool) -> Entry {
        Entry {
            path: SyncPath::parse(path).unwrap(),
            kind: EntryKind::File,
            version: 1,
            seq,
            sha256: (!deleted).then(Sha256Hex::empty),
            size: 0,
            mtime_ns: 0,
            executable: false,
            deleted,
            origin: "x".into(),
            committed_ms: 0,
            chunks: (!deleted).then(Vec::new),
        }
    }

    #[tokio::test]
    async fn conflict_copies_on_the_hub_are_found_by_prefix() {
        let folder = tempfile::tempdir().unwrap();
        let registry = tempfile::tempdir().unwrap();
        let state = State::open(folder.path(), registry.path()).await.unwrap();
        let entry = empty_file_entry;
        let changes = [
            entry("d/Ünï (conflict a 2026-01-01 000000).txt", 1, false),
            entry("d/Ünï (conflict b 2026-01-01 000000).txt", 2, true),
            entry("d/Ünï (conflicts).txt", 3, false),
            entry("d/Ünï.txt", 4, false),
            entry("d/Ünï (conflict!).txt", 5, false),
        ];
        state.apply_changes(&changes, 5).await.unwrap();
        let found = state
            .live_remote_with_prefix("d/Ünï (conflict ")
            .await
            .unwrap();
        let found: Vec<&str> = found.iter().map(|p| p.as_str()).collect();
        assert_eq!(found, ["d/Ünï (conflict a 2026-01-01 000000).txt"]);
        assert_eq!(prefix_end("a (conflict "), "a (conflict!");
        assert_eq!(prefix_end("é"), "é\u{10FFFF}");
    }

    #[tokio::test]
    async fn a_folder_is_read_by_its_direct_children_in_windows() {
        let folder = tempfile::tempdir().unwrap();
        let registry = tempfile::tempdir().unwrap();
        let state = State::open(folder.path(), registry.path()).await.unwrap();
        let synced = [
            "top.txt", "a", "a.txt", "a/1", "a/2", "a/b/deep", "é", "é/ü/x", "z",
        ];
        for path in synced {
            state
                .record(&SyncPath::parse(path).unwrap(), &file(1), &[])
                .await
                .unwrap();
        }
        // Hub entries only: "h/i/j" has no record for "h" or "h/i" at all
        // (a legacy client's upload).
        let entry = |path: &str, seq: u64| Entry {
            path: SyncPath::parse(path).unwrap(),
            kind: EntryKind::File,
            version: 1,
            seq,
            sha256: Some(Sha256Hex::empty()),
            size: 7,
            mtime_ns: 0,
            executable: false,
            deleted: false,
            origin: "x".into(),
            committed_ms: 0,
            chunks: None,
        };
        let mut tombstone = entry("gone/x", 3);
        tombstone.deleted = true;
        tombstone.sha256 = None;
        state
            .apply_changes(&[entry("h/i/j", 1), entry("a/3", 2), tombstone], 3)
            .await
            .unwrap();

        let names = |rows: Vec<(SyncPath, SyncedFile)>| -> Vec<String> {
            rows.into_iter().map(|(p, _)| p.to_string()).collect()
        };
        let top = state.synced_children("", "", 100).await.unwrap();
        assert_eq!(names(top), ["a", "a.txt", "top.txt", "z", "é"]);
        // Paged: two at a time from after "a.txt".
        let page = state.synced_children("", "a.txt", 2).await.unwrap();
        assert_eq!(names(page), ["top.txt", "z"]);
        let inside_a = state.synced_children("a/", "", 100).await.unwrap();
        assert_eq!(names(inside_a), ["a/1", "a/2"]);
        let remote_a: Vec<String> = state
            .remote_children("a/", "", 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.path.to_string())
            .collect();
        assert_eq!(remote_a, ["a/3"]);

        // Folders holding records further down, with or without their own.
        assert_eq!(
            state.folders_with_records("").await.unwrap(),
            ["a", "h", "é"]
        );
        assert_eq!(state.folders_with_records("a/").await.unwrap(), ["b"]);
        assert_eq!(state.folders_with_records("h/").await.unwrap(), ["i"]);
        assert_eq!(state.folders_with_records("é/").await.unwrap(), ["ü"]);
        assert!(state.folders_with_records("z/").await.unwrap().is_empty());

        assert!(state.has_synced().await.unwrap());

        // The feed echoing what is synced is recognised; news is not.
        let mut echo = entry("a.txt", 10);
        echo.sha256 = Some(Sha256Hex::empty());
        let mut newer = entry("top.txt", 11);
        newer.version = 2;
        let mut other_content = entry("z", 12);
        other_content.sha256 = Some(Sha256Hex::of(b"other"));
        let never_synced = entry("new.txt", 13);
        let agreed = state
            .synced_as(&[echo, newer, other_content, never_synced])
            .await
            .unwrap();
        let agreed: Vec<&str> = agreed.iter().map(|p| p.as_str()).collect();
        assert_eq!(agreed, ["a.txt"]);
        assert_eq!(state.live_remote_files().await.unwrap(), (2, 14));

        // The walk's queries read by index, not by scanning every row.
        for table in ["synced", "remote"] {
            let plan = explain(&state, table).await;
            assert!(
                plan.contains(&format!("{table}_by_parent")),
                "{table}: {plan}"
            );
        }
    }

    #[tokio::test]
    async fn another_hub_starts_the_folder_afresh() {
        let folder = tempfile::tempdir().unwrap();
        let registry = tempfile::tempdir().unwrap();
        let state = State::open(folder.path(), registry.path()).await.unwrap();
        let a = SyncPath::parse("a").unwrap();
        state.record(&a, &file(3), &[chunk(1, 30)]).await.unwrap();
        state.set_meta(HUB_ID, "one").await.unwrap();
        state.set_meta("scope", "write").await.unwrap();
        let entry = Entry {
            path: a.clone(),
            kind: EntryKind::File,
            version: 3,
            seq: 9,
            sha256: Some(Sha256Hex::empty()),
            size: 30,
            mtime_ns: 0,
            executable: false,
            deleted: false,
            origin: "x".into(),
            committed_ms: 0,
            chunks: None,
        };
        state.apply_changes(&[entry], 9).await.unwrap();

        state.adopt_hub("two").await.unwrap();
        assert!(!state.has_synced().await.unwrap(), "a first sync again");
        assert!(state.all_remote().await.unwrap().is_empty());
        assert_eq!(state.last_seq().await.unwrap(), 0);
        assert!(
            state
                .find_local_chunk(&chunk(1, 30).hash)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(state.meta(HUB_ID).await.unwrap().as_deref(), Some("two"));
        assert_eq!(state.meta("scope").await.unwrap().as_deref(), Some("write"));
    }

    #[tokio::test]
    async fn names_that_differ_only_in_case_are_found_even_in_entries_from_before_the_fold() {
        let folder = tempfile::tempdir().unwrap();
        let registry = tempfile::tempdir().unwrap();
        let state = State::open(folder.path(), registry.path()).await.unwrap();
        let entry = empty_file_entry;
        let changes = [
            entry("Notes.txt", 1, false),
            entry("notes.txt", 2, false),
            entry("dir", 3, false),
            entry("Dir/x", 4, false),
            entry("gone.TXT", 5, true),
            entry("gone.txt", 6, false),
            entry("Ärger.md", 7, false),
            entry("ärger.md", 8, false),
            entry("alone.txt", 9, false),
        ];
        state.apply_changes(&changes, 9).await.unwrap();
        // As stored by an agent from before migration 0004.
        sqlx::query("UPDATE remote SET fold = NULL")
            .execute(&state.pool)
            .await
            .unwrap();
        state.close().await;
        let state = State::open(folder.path(), registry.path()).await.unwrap();
        let twin = async |path: &str| {
            state
                .case_twin(&SyncPath::parse(path).unwrap())
                .await
                .unwrap()
        };
        assert_eq!(twin("notes.txt").await.as_deref(), Some("Notes.txt"));
        assert_eq!(twin("Notes.txt").await.as_deref(), Some("notes.txt"));
        // A folder above meets another spelling.
        assert_eq!(twin("Dir/x").await.as_deref(), Some("dir"));
        assert_eq!(twin("ärger.md").await.as_deref(), Some("Ärger.md"));
        // A tombstone holds no name on disk; the live one meets nothing.
        assert_eq!(twin("gone.txt").await, None);
        assert_eq!(twin("gone.TXT").await.as_deref(), Some("gone.txt"));
        assert_eq!(twin("alone.txt").await, None);
    }

    async fn explain(state: &State, table: &str) -> String {
        use sqlx::Row as _;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN SELECT path FROM {table} \
             WHERE {PARENT_KEY} = 'a/' AND path > '' ORDER BY path LIMIT 10"
        )))
        .fetch_all(&state.pool)
        .await
        .unwrap();
        rows.iter()
            .map(|r| r.try_get::<String, _>("detail").unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    }
}
