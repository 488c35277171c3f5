//! The change feed's most recent entries, kept in memory as they are
//! committed, so the agents' `GET /v1/changes` right after a commit (every
//! agent reads every entry) is answered without the database: reading the
//! rows back through the database driver was a sixth of the hub's work
//! while a tree of thousands of files was deleted.
//!
//! What is kept is always a run of consecutive seqs. An entry whose seq
//! does not follow the last one kept (a commit this hub did not announce,
//! such as another process writing the same database) starts the run
//! over, and a page is answered from memory only when the run holds the
//! seq right after `since`; otherwise, and for an empty answer, the
//! database is asked. So a page never skips a seq, and a reader is never
//! told "nothing new" by the cache.

use std::collections::VecDeque;
use std::sync::Mutex;

use sf_protocol::v1::Entry;

/// Entries kept at most…
const MAX_ENTRIES: usize = 20_000;
/// …and chunk references kept at most (a huge file's list is long).
const MAX_CHUNK_REFS: usize = 200_000;

#[derive(Default)]
pub(super) struct RecentFeed {
    run: Mutex<Run>,
}

#[derive(Default)]
struct Run {
    entries: VecDeque<Entry>,
    chunk_refs: usize,
}

impl RecentFeed {
    /// Keeps `entry`, just committed, with its chunk list; called in seq
    /// order (under the commit lock).
    pub(super) fn committed(&self, entry: &Entry) {
        let mut run = self.run.lock().unwrap_or_else(|e| e.into_inner());
        let follows = run
            .entries
            .back()
            .is_none_or(|last| last.seq + 1 == entry.seq);
        if !follows || entry.chunks.is_none() {
            // A gap, or not what the feed answers with: start over.
            *run = Run::default();
        }
        let Some(chunks) = &entry.chunks else {
            return;
        };
        run.chunk_refs += chunks.len();
        run.entries.push_back(entry.clone());
        while run.entries.len() > MAX_ENTRIES || run.chunk_refs > MAX_CHUNK_REFS {
            let Some(oldest) = run.entries.pop_front() else {
                break;
            };
            run.chunk_refs -= oldest.chunks.as_ref().map_or(0, Vec::len);
        }
    }

    /// Up to `limit` entries after `since`, in seq order, with or without
    /// their chunk lists; `None` when the run does not start at or before
    /// `since + 1`, holds nothing after it, or ends before `known_head`, a
    /// seq known to be committed (ask the database).
    pub(super) fn page(
        &self,
        since: u64,
        limit: usize,
        with_chunks: bool,
        known_head: u64,
    ) -> Option<Vec<Entry>> {
        let run = self.run.lock().unwrap_or_else(|e| e.into_inner());
        let first = run.entries.front()?.seq;
        let last = run.entries.back()?.seq;
        if since + 1 < first || since >= last || last < known_head {
            return None;
        }
        let start = usize::try_from(since + 1 - first).ok()?;
        Some(
            run.entries
                .iter()
                .skip(start)
                .take(limit)
                .map(|entry| {
                    let mut entry = entry.clone();
                    if !with_chunks {
                        entry.chunks = None;
                    }
                    entry
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, chunks: Option<usize>) -> Entry {
        let mut entry: Entry = serde_json::from_value(serde_json::json!({
            "path": format!("f{seq}"), "version": 1, "kind": "file",
            "sha256": sf_protocol::Sha256Hex::of(b"x").to_hex(), "size": 1,
            "mtime_ns": 0, "executable": false, "deleted": false,
            "origin": "a", "seq": seq, "committed_ms": 0
        }))
        .unwrap();
        entry.chunks = chunks.map(|n| {
            (0..n)
                .map(|_| sf_protocol::chunking::ChunkRef {
                    hash: sf_protocol::Sha256Hex::of(b"x"),
                    len: 1,
                })
                .collect()
        });
        entry
    }

    fn seqs(page: Option<Vec<Entry>>) -> Option<Vec<u64>> {
        page.map(|p| p.iter().map(|e| e.seq).collect())
    }

    /// Pages come from memory only when the run holds the seq right after
    /// `since`; a gap starts the run over, so no page ever skips a seq.
    #[test]
    fn pages_never_skip_a_seq() {
        let recent = RecentFeed::default();
        assert_eq!(seqs(recent.page(0, 10, true, 0)), None, "nothing kept");
        for seq in 5..=9 {
            recent.committed(&entry(seq, Some(1)));
        }
        assert_eq!(seqs(recent.page(3, 10, true, 0)), None, "seq 4 is not kept");
        assert_eq!(seqs(recent.page(4, 2, true, 0)), Some(vec![5, 6]));
        assert_eq!(seqs(recent.page(7, 10, true, 0)), Some(vec![8, 9]));
        // Seq 10 is committed (another hub's, not passed on yet): the
        // database answers, so a reader never misses it.
        assert_eq!(seqs(recent.page(7, 10, true, 10)), None, "behind the head");
        assert_eq!(seqs(recent.page(7, 10, true, 9)), Some(vec![8, 9]));
        assert_eq!(seqs(recent.page(9, 10, true, 0)), None, "nothing after");
        let bare = recent.page(8, 10, false, 0).unwrap();
        assert!(bare[0].chunks.is_none());
        assert_eq!(
            recent.page(8, 10, true, 0).unwrap()[0]
                .chunks
                .as_ref()
                .unwrap()
                .len(),
            1
        );

        // Seq 10 was written by someone else: the run starts over at 11.
        recent.committed(&entry(11, Some(1)));
        assert_eq!(seqs(recent.page(9, 10, true, 0)), None);
        assert_eq!(seqs(recent.page(10, 10, true, 0)), Some(vec![11]));
        // An entry without its chunk list is not what the feed answers.
        recent.committed(&entry(12, None));
        assert_eq!(seqs(recent.page(10, 10, true, 0)), None);
    }

    #[test]
    fn memory_stays_bounded() {
        let recent = RecentFeed::default();
        for seq in 1..=(MAX_ENTRIES as u64 + 5) {
            recent.committed(&entry(seq, Some(0)));
        }
        // Seqs 1 to 5 made room.
        assert_eq!(
            seqs(recent.page(4, 1, true, 0)),
            None,
            "the oldest are gone"
        );
        assert_eq!(seqs(recent.page(5, 1, true, 0)), Some(vec![6]));
        let big = MAX_CHUNK_REFS / 2 + 1;
        let last = MAX_ENTRIES as u64 + 5;
        recent.committed(&entry(last + 1, Some(big)));
        recent.committed(&entry(last + 2, Some(big)));
        assert_eq!(
            seqs(recent.page(last + 1, 1, true, 0)),
            Some(vec![last + 2])
        );
        assert_eq!(
            seqs(recent.page(last, 1, true, 0)),
            None,
            "too many chunk refs"
        );
    }
}
