//! What a write transaction knows of the paths it decides about: their
//! current entries (without chunk lists, which are read only for the
//! answers that carry them) and the live paths under a path a file would
//! replace, loaded from the database in a few queries for a whole batch
//! ([`WriteTx::prefetch`]) or path by path as decisions need them. The
//! transaction's own versions overlay what was loaded.

use sf_protocol::SyncPath;
use sf_protocol::v1::Entry;
use sqlx::Row;

use super::read::{HASHES_PER_QUERY, entry_from_row};
use super::write::WriteTx;
use super::{Backend, DbError, to_i64};

/// Paths under a file commit per query: one `UNION ALL` term each (SQLite
/// allows 500 terms in one statement).
const BELOW_PER_QUERY: usize = 100;

/// A path's current entry as the transaction sees it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Known {
    /// Without its chunk list; `None` when the path has no entry.
    pub(super) entry: Option<Entry>,
    /// The index in `WriteTx::written` of the version this transaction
    /// wrote for it, if it wrote one.
    pub(super) written: Option<usize>,
    /// Whether the database held it live when it was loaded (what its
    /// `files` row says until the transaction commits).
    pub(super) live_in_db: bool,
}

impl Known {
    fn is_live(&self) -> bool {
        self.entry.as_ref().is_some_and(|entry| !entry.deleted)
    }
}

/// Live paths under a path, as the database had them: the first `limit`
/// in byte order, so `paths.len() < limit` means all of them.
#[derive(Debug, Clone)]
pub(crate) struct Below {
    paths: Vec<String>,
    limit: usize,
}

impl WriteTx {
    /// Loads, in a few queries, what deciding writes to `paths` needs: each
    /// path's current entry, its ancestors' (for the commits among them),
    /// and the first live path under those that commit a file. Deciding
    /// works without it, loading path by path.
    pub async fn prefetch(&mut self, paths: &[(&SyncPath, PathUse)]) -> Result<(), DbError> {
        let mut needed: Vec<&str> = Vec::with_capacity(paths.len() * 2);
        for (path, usage) in paths {
            needed.push(path.as_str());
            if *usage != PathUse::Delete {
                needed.extend(path.ancestors());
            }
        }
        self.ensure_known(&needed).await?;
        let files: Vec<&str> = paths
            .iter()
            .filter(|(path, usage)| {
                *usage == PathUse::File && !self.below.contains_key(path.as_str())
            })
            .map(|(path, _)| path.as_str())
            .collect();
        // The first live path under each is enough unless this transaction
        // deletes it; then `first_live_below` loads past it.
        self.load_first_below(&files).await
    }

    /// Loads the current entries of those of `paths` not known yet.
    pub(super) async fn ensure_known(&mut self, paths: &[&str]) -> Result<(), DbError> {
        let mut missing: Vec<&str> = paths
            .iter()
            .copied()
            .filter(|path| !self.known.contains_key(*path))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        for batch in missing.chunks(HASHES_PER_QUERY) {
            let sql = format!(
                "SELECT {} FROM files f JOIN versions v ON v.seq = f.seq WHERE f.path IN ({})",
                super::read::ENTRY_COLUMNS,
                self.backend.params(1, batch.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
            for path in batch {
                query = query.bind(*path);
            }
            for row in query.fetch_all(&mut *self.tx).await? {
                let entry = entry_from_row(&row, false)?;
                self.known.insert(
                    entry.path.as_str().to_owned(),
                    Known {
                        live_in_db: !entry.deleted,
                        entry: Some(entry),
                        written: None,
                    },
                );
            }
            for path in batch {
                self.known.entry((*path).to_owned()).or_default();
            }
        }
        Ok(())
    }

    /// `known` as an answer carries it: with its chunk list, from this
    /// transaction's version or read from the database.
    pub(super) async fn with_chunks(&mut self, known: Known) -> Result<Option<Entry>, DbError> {
        let Some(mut entry) = known.entry else {
            return Ok(None);
        };
        if let Some(index) = known.written {
            entry.chunks = self.written.get(index).map(|w| w.chunks.clone());
            return Ok(Some(entry));
        }
        let raw: String = sqlx::query_scalar("SELECT chunks FROM versions WHERE seq = $1")
            .bind(to_i64(entry.seq))
            .fetch_one(&mut *self.tx)
            .await?;
        entry.chunks = Some(
            serde_json::from_str(&raw)
                .map_err(|e| DbError::Corrupt(format!("chunk list of {}: {e}", entry.path)))?,
        );
        Ok(Some(entry))
    }

    /// The first live path under `path/` (byte order) as this transaction
    /// sees it, if any.
    pub(super) async fn first_live_below(&mut self, path: &str) -> Result<Option<String>, DbError> {
        let (low, high) = (format!("{path}/"), format!("{path}0"));
        loop {
            if !self.below.contains_key(path) {
                self.load_below(&[path], self.tombstones + 1).await?;
            }
            let Some(below) = self.below.get(path) else {
                return Ok(None);
            };
            // The database's, unless this transaction deleted them; and
            // what this transaction wrote there.
            let from_db = below
                .paths
                .iter()
                .find(|p| self.known.get(p.as_str()).is_none_or(Known::is_live));
            let written = self
                .known
                .range(low.clone()..high.clone())
                .find(|(_, known)| known.is_live())
                .map(|(p, _)| p);
            if let Some(first) = from_db.into_iter().chain(written).min() {
                return Ok(Some(first.clone()));
            }
            if below.paths.len() < below.limit {
                return Ok(None);
            }
            // Every one loaded was deleted here, and there are more: load
            // past them.
            let limit = below.paths.len() + self.tombstones + 1;
            self.below.remove(path);
            self.load_below(&[path], limit).await?;
        }
    }

    /// Whether nothing under `path/` is live as this transaction sees it:
    /// the database's live paths there, counted in one query, are all
    /// deleted by this transaction, and it made none live. Cheaper than
    /// [`WriteTx::first_live_below`] for a folder whose contents the same
    /// batch just deleted: a count, not a load of every one of them.
    pub(super) async fn nothing_live_below(&mut self, path: &str) -> Result<bool, DbError> {
        let (low, high) = (format!("{path}/"), format!("{path}0"));
        let mut deleted_here = 0i64;
        for known in self.known.range(low.clone()..high.clone()).map(|(_, k)| k) {
            match (known.live_in_db, known.is_live()) {
                (false, true) => return Ok(false),
                (true, false) => deleted_here += 1,
                _ => {}
            }
        }
        let sql = format!(
            "SELECT COUNT(*) FROM files WHERE path > {} AND path < {} AND deleted = 0",
            self.backend.param(1),
            self.backend.param(2)
        );
        let live_in_db: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(low)
            .bind(high)
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(live_in_db == deleted_here)
    }

    /// Loads the first live path under each of `paths`, in one query per
    /// [`HASHES_PER_QUERY`] of them: a correlated subquery run for each
    /// row of a `VALUES` list (planned once, unlike a `UNION` of one
    /// subquery per path).
    async fn load_first_below(&mut self, paths: &[&str]) -> Result<(), DbError> {
        // VALUES columns are plain text on PostgreSQL; paths compare in
        // byte order ("C"), as the column does.
        let collate = match self.backend {
            Backend::Postgres => " COLLATE \"C\"",
            Backend::Sqlite => "",
        };
        for batch in paths.chunks(HASHES_PER_QUERY) {
            let rows: Vec<String> = (0..batch.len())
                .map(|i| format!("({})", self.backend.params(2 * i + 1, 2)))
                .collect();
            let sql = format!(
                "SELECT r.column1, (SELECT path FROM files WHERE path > r.column1{collate} \
                 AND path < r.column2{collate} AND deleted = 0 ORDER BY path LIMIT 1) \
                 FROM (VALUES {}) AS r",
                rows.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
            for path in batch {
                query = query.bind(format!("{path}/")).bind(format!("{path}0"));
            }
            for row in query.fetch_all(&mut *self.tx).await? {
                let low: String = row.try_get(0)?;
                let first: Option<String> = row.try_get(1)?;
                let path = low.strip_suffix('/').unwrap_or(&low).to_owned();
                self.below.insert(
                    path,
                    Below {
                        paths: first.into_iter().collect(),
                        limit: 1,
                    },
                );
            }
        }
        Ok(())
    }

    /// Loads the first `limit` live paths under each of `paths`, a query
    /// per [`BELOW_PER_QUERY`] of them.
    async fn load_below(&mut self, paths: &[&str], limit: usize) -> Result<(), DbError> {
        for batch in paths.chunks(BELOW_PER_QUERY) {
            let terms: Vec<String> = (0..batch.len())
                .map(|i| {
                    let (low, high) =
                        (self.backend.param(2 * i + 1), self.backend.param(2 * i + 2));
                    format!(
                        "SELECT path FROM (SELECT path FROM files WHERE path > {low} AND \
                         path < {high} AND deleted = 0 ORDER BY path LIMIT {limit}) AS below{i}"
                    )
                })
                .collect();
            let mut query =
                sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(terms.join(" UNION ALL ")))
                    .persistent(false);
            for path in batch {
                query = query.bind(format!("{path}/")).bind(format!("{path}0"));
            }
            let mut found = query.fetch_all(&mut *self.tx).await?;
            found.sort_unstable();
            found.dedup();
            for path in batch {
                // A path under another of the batch is listed in both
                // terms' rows; each keeps those under itself.
                let prefix = format!("{path}/");
                let paths = found
                    .iter()
                    .filter(|p| p.starts_with(&prefix))
                    .cloned()
                    .collect();
                self.below
                    .insert((*path).to_owned(), Below { paths, limit });
            }
        }
        Ok(())
    }
}

/// What a batch does to a path, for [`WriteTx::prefetch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathUse {
    /// Commits a file: its ancestors and what lives under it matter.
    File,
    /// Commits a directory: its ancestors matter.
    Dir,
    /// Deletes it: only its entry matters.
    Delete,
}

#[cfg(test)]
mod tests {
    use crate::db::{Action, Database, NewVersion};

    fn file(path: &str) -> NewVersion {
        NewVersion {
            path: path.parse().unwrap(),
            kind: sf_protocol::v1::EntryKind::File,
            sha256: Some(sf_protocol::Sha256Hex::empty()),
            size: 0,
            mtime_ns: 0,
            executable: false,
            origin: "t".into(),
            chunks: Vec::new(),
            action: Action::Upload,
        }
    }

    fn tombstone(path: &str) -> NewVersion {
        NewVersion {
            sha256: None,
            action: Action::Delete,
            ..file(path)
        }
    }

    /// Live paths under a folder, loaded before this transaction deleted
    /// the ones it loaded: the rest are loaded, not taken for absent.
    #[tokio::test]
    async fn paths_below_are_reloaded_past_the_deleted_ones() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = Database::connect(&url, std::time::Duration::from_secs(5))
            .await
            .unwrap();
        for i in 1..=3 {
            db.write(file(&format!("f/{i}")), 0).await.unwrap();
        }
        let mut tx = db.begin_write().await.unwrap();
        // Loaded with room for one path, before any delete.
        assert_eq!(
            tx.first_live_below("f").await.unwrap().as_deref(),
            Some("f/1")
        );
        tx.write(tombstone("f/1"), 1).await.unwrap();
        tx.write(tombstone("f/2"), 1).await.unwrap();
        assert_eq!(
            tx.first_live_below("f").await.unwrap().as_deref(),
            Some("f/3")
        );
        tx.write(tombstone("f/3"), 1).await.unwrap();
        assert_eq!(tx.first_live_below("f").await.unwrap(), None);
        // What the transaction writes there counts too.
        tx.write(file("f/4"), 0).await.unwrap();
        assert_eq!(
            tx.first_live_below("f").await.unwrap().as_deref(),
            Some("f/4")
        );
        tx.commit().await.unwrap();
        assert_eq!(db.head().await.unwrap(), 7);
        db.close().await;
    }
}
