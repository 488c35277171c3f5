//! Queries that serve people rather than agents: one folder's children a
//! page at a time, a search over paths, recently deleted paths, live
//! conflict copies, and every live entry under a folder.
//!
//! Folders need not be committed: a file `a/b/c.txt` implies `a` and `a/b`.
//! A listing therefore walks `files` in path order (byte order on both back
//! ends: SQLite's default, PostgreSQL's `COLLATE "C"` column) and, on
//! meeting a path below a child folder, lists the folder once and jumps past
//! everything under it, so a page costs one query per folder it shows, not
//! one row per file below.

use sf_protocol::SyncPath;
use sf_protocol::v1::{Deleted, Entry, EntryKind, Listed};
use sqlx::Row;

use super::read::{ENTRY_COLUMNS, entry_from_row};
use super::{Database, DbError, to_i64, to_u64};

/// Rows read per query while listing.
const LIST_BATCH: i64 = 256;

/// Where a listing resumes: strictly after a path, or at a bound that is
/// no path (just past a folder's contents). Encoded in cursors as `>`PATH
/// or `=`BOUND so a client can hand it back opaquely.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resume {
    After(String),
    From(String),
}

impl Resume {
    fn encode(&self) -> String {
        match self {
            Resume::After(key) => format!(">{key}"),
            Resume::From(key) => format!("={key}"),
        }
    }

    fn key(&self) -> &str {
        match self {
            Resume::After(key) | Resume::From(key) => key,
        }
    }

    fn decode(cursor: &str) -> Option<Self> {
        if let Some(key) = cursor.strip_prefix('>') {
            Some(Resume::After(key.to_owned()))
        } else {
            cursor
                .strip_prefix('=')
                .map(|key| Resume::From(key.to_owned()))
        }
    }
}

/// A cursor that is not one `/v1/list` gave.
#[derive(Debug, thiserror::Error)]
#[error("the cursor {0:?} is not one a listing gave; start the listing again without it")]
pub struct BadCursor(pub String);

impl Database {
    /// Up to `limit` live children of the folder whose paths start with
    /// `prefix` (`""` for the top, else `"a/b/"`), after `cursor`; and the
    /// cursor of the next page when there is one.
    pub async fn list_folder(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Result<(Vec<Listed>, Option<String>), BadCursor>, DbError> {
        let mut resume = match cursor {
            None => Resume::After(prefix.to_owned()),
            Some(raw) => match Resume::decode(raw) {
                // Another folder's cursor would list outside this one.
                Some(resume) if resume.key().starts_with(prefix) => resume,
                _ => return Ok(Err(BadCursor(raw.to_owned()))),
            },
        };
        // Every path under `a/b/` sorts before `a/b0` ('0' follows '/').
        let end = prefix.strip_suffix('/').map(|folder| format!("{folder}0"));
        let mut listed: Vec<(Listed, Resume)> = Vec::new();
        'pages: while listed.len() <= limit {
            let rows = self.rows_from(&resume, end.as_deref()).await?;
            if rows.is_empty() {
                break;
            }
            // The rows under a folder just listed, skipped without a query.
            let mut under_listed: Option<String> = None;
            for entry in rows {
                let path = entry.path.as_str();
                if under_listed
                    .as_deref()
                    .is_some_and(|under| path.starts_with(under))
                {
                    continue;
                }
                let before = resume.clone();
                let Some(rest) = path.strip_prefix(prefix) else {
                    break 'pages; // past the folder: the range says it cannot be
                };
                match rest.split_once('/') {
                    None => {
                        resume = Resume::After(path.to_owned());
                        under_listed = None;
                        listed.push((Listed::from_entry(&entry), before));
                    }
                    Some((child, _)) => {
                        let folder = format!("{prefix}{child}");
                        resume = Resume::From(format!("{folder}0"));
                        under_listed = Some(format!("{folder}/"));
                        // A committed folder sorts before what it holds: it
                        // was listed from its own row, on this page or an
                        // earlier one (siblings such as `docs.txt` may lie
                        // between).
                        if !self.is_live(&folder).await? {
                            let path = SyncPath::parse(folder.clone())
                                .map_err(|e| DbError::Corrupt(format!("path {folder:?}: {e}")))?;
                            listed.push((Listed::implied_folder(path), before));
                        }
                    }
                }
                if listed.len() > limit {
                    break 'pages;
                }
            }
        }
        let next = if listed.len() > limit {
            listed.truncate(limit + 1);
            listed.pop().map(|(_, before)| before.encode())
        } else {
            None
        };
        Ok(Ok((listed.into_iter().map(|(l, _)| l).collect(), next)))
    }

    /// Whether `path` has a live entry (a committed folder, say).
    async fn is_live(&self, path: &str) -> Result<bool, DbError> {
        let found = sqlx::query("SELECT 1 FROM files WHERE path = $1 AND deleted = 0")
            .bind(path)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    /// Live entries from `resume` on, below `end`, by path.
    async fn rows_from(&self, resume: &Resume, end: Option<&str>) -> Result<Vec<Entry>, DbError> {
        let (op, key) = match resume {
            Resume::After(key) => (">", key),
            Resume::From(key) => (">=", key),
        };
        let upper = if end.is_some() {
            " AND f.path < $2"
        } else {
            ""
        };
        let limit = if end.is_some() { "$3" } else { "$2" };
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM files f JOIN versions v ON v.seq = f.seq \
             WHERE f.deleted = 0 AND f.path {op} $1{upper} ORDER BY f.path LIMIT {limit}"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(key.as_str());
        if let Some(end) = end {
            query = query.bind(end);
        }
        let rows = query.bind(LIST_BATCH).fetch_all(&self.pool).await?;
        rows.iter().map(|r| entry_from_row(r, false)).collect()
    }

    /// Up to `limit` live entries whose path contains `text` (ASCII letters
    /// in any case), by path; and whether more matched.
    pub async fn search_paths(
        &self,
        text: &str,
        limit: usize,
    ) -> Result<(Vec<Listed>, bool), DbError> {
        let pattern = format!("%{}%", escape_like(&text.to_ascii_lowercase()));
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM files f JOIN versions v ON v.seq = f.seq \
             WHERE f.deleted = 0 AND lower(f.path) LIKE $1 ESCAPE '!' \
             ORDER BY f.path LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(pattern)
            .bind(limit as i64 + 1)
            .fetch_all(&self.pool)
            .await?;
        let more = rows.len() > limit;
        let found = rows
            .iter()
            .take(limit)
            .map(|r| entry_from_row(r, false).map(|e| Listed::from_entry(&e)))
            .collect::<Result<_, _>>()?;
        Ok((found, more))
    }

    /// Up to `limit` paths whose current version is a tombstone, newest
    /// deletion first, deleted before seq `before`; and the next cursor.
    pub async fn deleted_paths(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<Deleted>, Option<u64>), DbError> {
        let rows = sqlx::query(
            "SELECT f.path, f.kind, f.seq, v.version, v.committed_ms, v.origin, \
                    r.version AS restorable, r.size AS restorable_size \
             FROM files f JOIN versions v ON v.seq = f.seq \
             LEFT JOIN versions r ON r.path = f.path AND r.version = \
                 (SELECT MAX(x.version) FROM versions x \
                  WHERE x.path = f.path AND x.deleted = 0 AND x.kind = 'file') \
             WHERE f.deleted = 1 AND f.seq < $1 ORDER BY f.seq DESC LIMIT $2",
        )
        .bind(before.map_or(i64::MAX, to_i64))
        .bind(limit as i64 + 1)
        .fetch_all(&self.pool)
        .await?;
        let mut found = Vec::with_capacity(rows.len().min(limit));
        let mut next = None;
        for row in &rows {
            if found.len() == limit {
                next = found.last().map(|(_, seq)| *seq);
                break;
            }
            let path: String = row.try_get("path")?;
            let kind: String = row.try_get("kind")?;
            let restorable: Option<i64> = row.try_get("restorable")?;
            let size: Option<i64> = row.try_get("restorable_size")?;
            let seq = to_u64(row.try_get("seq")?, "seq")?;
            found.push((
                Deleted {
                    path: SyncPath::parse(path.clone())
                        .map_err(|e| DbError::Corrupt(format!("path {path:?}: {e}")))?,
                    kind: EntryKind::parse(&kind)
                        .ok_or_else(|| DbError::Corrupt(format!("kind {kind:?} of {path}")))?,
                    version: to_u64(row.try_get("version")?, "version")?,
                    deleted_ms: row.try_get("committed_ms")?,
                    deleted_by: row.try_get("origin")?,
                    restorable_version: restorable.map(|v| to_u64(v, "version")).transpose()?,
                    size: size.map(|s| to_u64(s, "size")).transpose()?.unwrap_or(0),
                },
                seq,
            ));
        }
        Ok((found.into_iter().map(|(d, _)| d).collect(), next))
    }

    /// Up to `limit` live files named like conflict copies, by path, after
    /// `after` when given.
    pub async fn conflict_like_files(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Entry>, DbError> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM files f JOIN versions v ON v.seq = f.seq \
             WHERE f.deleted = 0 AND f.kind = 'file' AND f.path LIKE '% (conflict %' \
             AND f.path > $1 ORDER BY f.path LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after.unwrap_or(""))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| entry_from_row(r, false)).collect()
    }

    /// `path` and every live entry below it, without chunk lists, by path;
    /// at most `limit` + 1 so a caller can tell "too many".
    pub async fn live_tree(&self, path: &SyncPath, limit: usize) -> Result<Vec<Entry>, DbError> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM files f JOIN versions v ON v.seq = f.seq \
             WHERE f.deleted = 0 AND (f.path = $1 OR (f.path > $2 AND f.path < $3)) \
             ORDER BY f.path LIMIT $4"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(path.as_str())
            .bind(format!("{path}/"))
            .bind(format!("{path}0"))
            .bind(limit as i64 + 1)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| entry_from_row(r, false)).collect()
    }

    /// The live entry at `path`, without its chunk list.
    pub async fn live_entry(&self, path: &SyncPath) -> Result<Option<Entry>, DbError> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM files f JOIN versions v ON v.seq = f.seq \
             WHERE f.path = $1 AND f.deleted = 0"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(path.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| entry_from_row(&r, false)).transpose()
    }
}

/// `text` with LIKE's wildcards and the escape character `!` escaped (not
/// a backslash: how PostgreSQL reads one in a literal depends on a setting).
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '!') {
            escaped.push('!');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_others() {
        for resume in [Resume::After("a/b".into()), Resume::From("a/c0".into())] {
            assert_eq!(Resume::decode(&resume.encode()), Some(resume));
        }
        assert_eq!(Resume::decode("a/b"), None);
        assert_eq!(Resume::decode(""), None);
    }

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(escape_like("50%_off!\\x"), "50!%!_off!!\\x");
    }
}
