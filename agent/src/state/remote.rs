//! The hub's entries as last read (the `remote` table), one per path, and
//! the change-feed seq applied (`last_seq`): what the change feed brought,
//! and what the hub answered to our own commits.

use std::collections::{HashMap, HashSet};

use sf_protocol::SyncPath;
use sf_protocol::platform::fold_case;
use sf_protocol::v1::Entry;

use super::children::prefix_end;
use super::meta::upsert_meta;
use super::{MetaKey, State, StateError, write};

impl State {
    /// The last change-feed seq whose entries are in `remote`.
    pub async fn last_seq(&self) -> Result<u64, StateError> {
        Ok(self
            .meta(MetaKey::LastSeq)
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Stores a page of the change feed and advances `last_seq`, atomically.
    /// An entry older than the one stored for its path is ignored.
    pub async fn apply_changes<'a>(
        &self,
        changes: impl IntoIterator<Item = &'a Entry>,
        last_seq: u64,
    ) -> Result<(), StateError> {
        let entries: Vec<&Entry> = changes.into_iter().collect();
        let mut tx = self.pool.begin().await?;
        write::upsert_remotes(&mut tx, &entries).await?;
        upsert_meta(&mut tx, MetaKey::LastSeq, &last_seq.to_string()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records an entry the hub answered with (our own commit or delete),
    /// without moving `last_seq`: the feed still delivers it in order.
    pub async fn note_remote(&self, entry: &Entry) -> Result<(), StateError> {
        let mut conn = self.pool.acquire().await?;
        write::upsert_remotes(&mut conn, &[entry]).await
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
        sqlx::query("DELETE FROM meta WHERE key = ?")
            .bind(MetaKey::LastSeq.as_str())
            .execute(&mut *tx)
            .await?;
        upsert_meta(&mut tx, MetaKey::HubId, hub_id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Drops every hub entry and the applied seq, to re-read the feed from
    /// the start (after the hub was reset or restored).
    pub async fn reset_remote(&self) -> Result<(), StateError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM remote").execute(&mut *tx).await?;
        sqlx::query("DELETE FROM meta WHERE key = ?")
            .bind(MetaKey::LastSeq.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The hub entries of `paths`, for those that have one: a query per
    /// [`PATHS_PER_QUERY`] paths, not per path.
    pub async fn remote_of<'a>(
        &self,
        paths: impl IntoIterator<Item = &'a SyncPath>,
    ) -> Result<HashMap<SyncPath, Entry>, StateError> {
        let mut conn = self.pool.acquire().await?;
        let mut found = HashMap::new();
        let paths: Vec<&SyncPath> = paths.into_iter().collect();
        for group in paths.chunks(super::PATHS_PER_QUERY) {
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT path, entry FROM remote WHERE path IN (SELECT value FROM json_each(?))",
            )
            .bind(super::json_list(group)?)
            .fetch_all(&mut *conn)
            .await?;
            for (path, raw) in rows {
                let entry = parse_entry(&raw)?;
                if entry.path.as_str() != path {
                    return Err(StateError::Corrupt(format!(
                        "the hub entry stored for {path} is about {}",
                        entry.path
                    )));
                }
                found.insert(entry.path.clone(), entry);
            }
        }
        Ok(found)
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
}

/// Stores the hub's `entry` for its path unless a newer one is stored.
pub(super) fn parse_entry(raw: &str) -> Result<Entry, StateError> {
    serde_json::from_str(raw).map_err(|e| StateError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::fixtures::{chunk, empty_file_entry, file, fresh};

    #[tokio::test]
    async fn feed_pages_never_move_an_entry_backwards() {
        let (_dirs, state) = fresh().await;
        let entry = |seq: u64, version: u64| Entry {
            version,
            ..empty_file_entry("a", seq, false)
        };
        state.note_remote(&entry(5, 2)).await.unwrap();
        state.apply_changes(&[entry(3, 1)], 3).await.unwrap();
        let path = SyncPath::parse("a").unwrap();
        assert_eq!(state.remote_of([&path]).await.unwrap()[&path].version, 2);
        assert_eq!(state.last_seq().await.unwrap(), 3);
        state
            .apply_changes(&[entry(5, 2), entry(7, 3)], 7)
            .await
            .unwrap();
        assert_eq!(state.remote_of([&path]).await.unwrap()[&path].version, 3);
    }

    #[tokio::test]
    async fn conflict_copies_on_the_hub_are_found_by_prefix() {
        let (_dirs, state) = fresh().await;
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
    async fn another_hub_starts_the_folder_afresh() {
        let (_dirs, state) = fresh().await;
        let a = SyncPath::parse("a").unwrap();
        state.record(&a, &file(3), &[chunk(1, 30)]).await.unwrap();
        state.set_meta(MetaKey::HubId, "one").await.unwrap();
        state.set_meta(MetaKey::Scope, "write").await.unwrap();
        let entry = Entry {
            version: 3,
            size: 30,
            chunks: None,
            ..empty_file_entry("a", 9, false)
        };
        state.apply_changes(&[entry], 9).await.unwrap();

        state.adopt_hub("two").await.unwrap();
        assert!(!state.has_synced().await.unwrap(), "a first sync again");
        let remote: i64 = sqlx::query_scalar("SELECT count(*) FROM remote")
            .fetch_one(&state.pool)
            .await
            .unwrap();
        assert_eq!(remote, 0);
        assert_eq!(state.last_seq().await.unwrap(), 0);
        assert!(
            state
                .find_local_chunk(&chunk(1, 30).hash)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            state.meta(MetaKey::HubId).await.unwrap().as_deref(),
            Some("two")
        );
        assert_eq!(
            state.meta(MetaKey::Scope).await.unwrap().as_deref(),
            Some("write")
        );
    }

    #[tokio::test]
    async fn names_that_differ_only_in_case_are_found_even_in_entries_from_before_the_fold() {
        let (dirs, state) = fresh().await;
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
        let state = dirs.open().await.unwrap();
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
}
