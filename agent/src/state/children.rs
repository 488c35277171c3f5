//! Both tables read a folder at a time: the records and hub entries
//! directly inside a folder, a window at a time, and the folders below
//! that hold any, by the parent-folder index of migration 0003. The walk
//! goes through the folder this way, so its memory stays flat.

use sf_protocol::SyncPath;
use sf_protocol::v1::Entry;

use super::remote::parse_entry;
use super::synced::synced_from_row;
use super::{State, StateError};
use crate::model::SyncedFile;

impl State {
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
pub(super) fn prefix_end(prefix: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::fixtures::{empty_file_entry, file, fresh};
    use sf_protocol::Sha256Hex;

    #[tokio::test]
    async fn a_folder_is_read_by_its_direct_children_in_windows() {
        let (_dirs, state) = fresh().await;
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
            size: 7,
            chunks: None,
            ..empty_file_entry(path, seq, false)
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
