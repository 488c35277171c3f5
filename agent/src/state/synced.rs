//! What disk and hub last agreed on, per path (the `synced` table), and
//! which chunks each synced file is made of (`chunk_index`), for downloads
//! to copy from disk instead of fetching.

use std::collections::{HashMap, HashSet};

use sf_protocol::chunking::ChunkRef;
use sf_protocol::v1::{Entry, EntryKind};
use sf_protocol::{Sha256Hex, SyncPath};
use sqlx::Row;

use super::{State, StateError, write};
use crate::model::SyncedFile;

impl State {
    /// Whether anything was ever synced: a folder without records gets a
    /// first sync.
    pub async fn has_synced(&self) -> Result<bool, StateError> {
        let found = sqlx::query("SELECT 1 FROM synced LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    /// How many files and how many folders are synced.
    pub async fn synced_counts(&self) -> Result<(u64, u64), StateError> {
        let (files, folders): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*) FILTER (WHERE kind = 'file'), COUNT(*) FILTER (WHERE kind <> 'file') \
             FROM synced",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((files as u64, folders as u64))
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

    pub async fn synced(&self, path: &SyncPath) -> Result<Option<SyncedFile>, StateError> {
        Ok(self.synced_of([path]).await?.remove(path))
    }

    /// The synced records of `paths`, for those that have one: a query per
    /// [`super::PATHS_PER_QUERY`] paths, not per path.
    pub async fn synced_of<'a>(
        &self,
        paths: impl IntoIterator<Item = &'a SyncPath>,
    ) -> Result<HashMap<SyncPath, SyncedFile>, StateError> {
        let mut conn = self.pool.acquire().await?;
        let mut found = HashMap::new();
        let paths: Vec<&SyncPath> = paths.into_iter().collect();
        for group in paths.chunks(super::PATHS_PER_QUERY) {
            let rows =
                sqlx::query("SELECT * FROM synced WHERE path IN (SELECT value FROM json_each(?))")
                    .bind(super::json_list(group)?)
                    .fetch_all(&mut *conn)
                    .await?;
            for row in &rows {
                let (path, file) = synced_from_row(row)?;
                found.insert(path, file);
            }
        }
        Ok(found)
    }

    /// The paths of `entries` that are synced at exactly that entry's
    /// version and content (the hub telling us what we committed or
    /// downloaded ourselves), or at a later version: nothing to look at.
    pub async fn synced_as<'a>(
        &self,
        entries: impl IntoIterator<Item = &'a Entry>,
    ) -> Result<HashSet<SyncPath>, StateError> {
        let entries: Vec<&Entry> = entries.into_iter().collect();
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

    /// Records that `path` on disk and the hub agree on `file`, made of
    /// `chunks`.
    pub async fn record(
        &self,
        path: &SyncPath,
        file: &SyncedFile,
        chunks: &[ChunkRef],
    ) -> Result<(), StateError> {
        let mut tx = self.pool.begin().await?;
        write::record_many(&mut tx, &[(path, file, chunks)]).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn forget(&self, path: &SyncPath) -> Result<(), StateError> {
        let mut tx = self.pool.begin().await?;
        write::forget_many(&mut tx, &[path]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// What a batch of operations settled, in one transaction of a few
    /// statements: a batch of a thousand files costs one write of the
    /// state database, not a thousand. Where a path is settled twice, the
    /// later item wins.
    pub async fn settle(&self, settled: &[Settled<'_>]) -> Result<(), StateError> {
        if settled.is_empty() {
            return Ok(());
        }
        let mut remotes: Vec<&Entry> = Vec::new();
        let mut last_of: HashMap<&SyncPath, usize> = HashMap::new();
        for (at, item) in settled.iter().enumerate() {
            match item {
                Settled::Recorded { path, remote, .. } | Settled::Forgotten { path, remote } => {
                    remotes.extend(*remote);
                    last_of.insert(*path, at);
                }
                Settled::Noted(entry) => remotes.push(entry),
            }
        }
        let mut records = Vec::new();
        let mut forgotten = Vec::new();
        for (at, item) in settled.iter().enumerate() {
            match item {
                Settled::Recorded {
                    path, file, chunks, ..
                } if last_of[path] == at => records.push((*path, file, *chunks)),
                Settled::Forgotten { path, .. } if last_of[path] == at => forgotten.push(*path),
                _ => {}
            }
        }
        let mut tx = self.pool.begin().await?;
        write::upsert_remotes(&mut tx, &remotes).await?;
        write::record_many(&mut tx, &records).await?;
        write::forget_many(&mut tx, &forgotten).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Which of `hashes` some synced file holds (according to its record):
    /// one query for a whole batch of downloads, so only the others are
    /// fetched.
    pub async fn chunks_on_disk(
        &self,
        hashes: &[Sha256Hex],
    ) -> Result<HashSet<Sha256Hex>, StateError> {
        let hex: Vec<String> = hashes.iter().map(Sha256Hex::to_hex).collect();
        let hex = serde_json::to_string(&hex).map_err(|e| StateError::Corrupt(e.to_string()))?;
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT hash FROM chunk_index WHERE hash IN (SELECT value FROM json_each(?))",
        )
        .bind(hex)
        .fetch_all(&self.pool)
        .await?;
        found
            .iter()
            .map(|h| Sha256Hex::parse(h).map_err(|e| StateError::Corrupt(e.to_string())))
            .collect()
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
}

/// One path's outcome for [`State::settle`].
#[derive(Debug)]
pub enum Settled<'a> {
    /// Disk and hub agree on `file` (see [`State::record`]); `remote` is the
    /// hub's answer to note first, if any.
    Recorded {
        path: &'a SyncPath,
        file: SyncedFile,
        chunks: &'a [ChunkRef],
        remote: Option<&'a Entry>,
    },
    /// Gone on both sides (see [`State::forget`]).
    Forgotten {
        path: &'a SyncPath,
        remote: Option<&'a Entry>,
    },
    /// Only the hub's answer (a conflict's current entry) to note.
    Noted(&'a Entry),
}

pub(super) fn synced_from_row(
    row: &sqlx::sqlite::SqliteRow,
) -> Result<(SyncPath, SyncedFile), StateError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ProblemKind;
    use crate::state::fixtures::{chunk, file, fresh};

    #[tokio::test]
    async fn chunks_are_found_where_they_sit_until_the_file_is_forgotten() {
        let (_dirs, state) = fresh().await;
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
    async fn a_settled_batch_records_forgets_and_notes_in_one_go() {
        let (_dirs, state) = fresh().await;
        let path = |raw: &str| SyncPath::parse(raw).unwrap();
        let (kept, gone, twice, conflicted) =
            (path("kept"), path("gone"), path("twice"), path("c"));
        state.record(&gone, &file(1), &[chunk(9, 1)]).await.unwrap();
        state
            .set_problem("kept", ProblemKind::Error, "failed before")
            .await
            .unwrap();
        let answer = crate::state::fixtures::empty_file_entry("kept", 7, false);
        let current = crate::state::fixtures::empty_file_entry("c", 8, false);
        let chunks = [chunk(1, 10), chunk(2, 20)];
        state
            .settle(&[
                Settled::Recorded {
                    path: &kept,
                    file: file(3),
                    chunks: &chunks,
                    remote: Some(&answer),
                },
                Settled::Forgotten {
                    path: &gone,
                    remote: None,
                },
                Settled::Recorded {
                    path: &twice,
                    file: file(1),
                    chunks: &[],
                    remote: None,
                },
                Settled::Noted(&current),
                // The later settlement of a path wins.
                Settled::Forgotten {
                    path: &twice,
                    remote: None,
                },
            ])
            .await
            .unwrap();

        assert_eq!(state.synced(&kept).await.unwrap().unwrap().version, 3);
        assert!(state.synced(&gone).await.unwrap().is_none());
        assert!(state.synced(&twice).await.unwrap().is_none());
        assert!(
            state
                .find_local_chunk(&chunk(9, 1).hash)
                .await
                .unwrap()
                .is_empty()
        );
        let at: Vec<u64> = state
            .find_local_chunk(&chunk(2, 20).hash)
            .await
            .unwrap()
            .into_iter()
            .map(|(_, _, at)| at)
            .collect();
        assert_eq!(at, [10], "chunk offsets follow the chunks' lengths");
        let remote = state.remote_of([&kept, &conflicted]).await.unwrap();
        assert_eq!(remote[&kept].seq, 7);
        assert_eq!(remote[&conflicted].seq, 8);
        assert!(
            state.problems().await.unwrap().is_empty(),
            "a recorded path's error is over"
        );
    }
}
