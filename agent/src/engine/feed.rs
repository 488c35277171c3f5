//! Reading the hub's change feed into the state database: from the last
//! applied seq towards the head, a page at a time, noticing a hub that was
//! replaced or went back in time, and returning the paths that others
//! changed (our own commits coming back hold nothing new).
//!
//! A cycle reads at most a window of changed paths ([`FEED_WINDOW`]) and
//! says whether more is waiting; the engine acts on that window and reads
//! on in its next cycle. An agent that fell far behind (a first sync from
//! another agent, a big tree arriving) then starts downloading after the
//! first pages instead of after the last, holds one window in memory, and
//! never trades the feed's own paths for a scan of its whole folder (which
//! it did past 10,000 paths: every time it fell that far behind, a walk of
//! everything it had, so catching up grew with the square of the files).
//!
//! The hub's answers to our own commits were recorded when their batch
//! landed, the hub's entry included ([`Answered`]): their feed entries are
//! passed over without a query or a write. Moving a tree of 9,000 files out
//! of the folder made the sending agent read each of its own tombstones
//! back, upsert it again and look at its path once more, while the other
//! agent, on the same two cores, was waiting to trash them.

use std::collections::{BTreeSet, HashSet};

use sf_protocol::SyncPath;
use sf_protocol::v1::Entry;

use super::{CycleError, Engine};

/// A cycle stops reading the feed at the page that brings its changed
/// paths to this many (a page holds at most 1,000 entries); what follows
/// is read in the next cycle.
const FEED_WINDOW: usize = 2_000;

/// Entries per page asked of the hub.
const PAGE_SIZE: u32 = 1_000;

/// What one cycle read of the feed.
pub(super) struct Caught {
    /// The paths that others changed, to look at.
    pub(super) changed: BTreeSet<SyncPath>,
    /// The feed holds more than this cycle read: read on next cycle.
    pub(super) more: bool,
}

/// At most this many answered seqs are remembered; beyond it, answers are
/// read back from the feed like any other entry (memory stays flat).
const MAX_ANSWERED: usize = 100_000;

/// The seqs of the hub's answers to our own commits and deletes whose
/// outcome (the synced record and the hub's entry) is in the state
/// database already. Each is forgotten once the feed has gone past it.
#[derive(Debug, Default)]
pub(super) struct Answered {
    seqs: HashSet<u64>,
}

impl Answered {
    /// The hub's answer `seq` to one of our commits is recorded.
    pub(super) fn recorded(&mut self, seq: u64) {
        if self.seqs.len() < MAX_ANSWERED {
            self.seqs.insert(seq);
        }
    }

    /// Whether `entry` is one of our recorded answers (forgetting it).
    fn take(&mut self, entry: &Entry) -> bool {
        self.seqs.remove(&entry.seq)
    }

    /// The feed was applied up to `seq`: older answers never come back
    /// (their entry was already applied when their batch landed).
    fn applied_up_to(&mut self, seq: u64) {
        self.seqs.retain(|s| *s > seq);
    }
}

impl Engine {
    /// Reads the change feed from the last applied seq, up to the head or
    /// a window of changed paths (see the module doc); returns the paths
    /// it touched and whether more is waiting. With a full scan ahead,
    /// which looks at every path anyway, it reads to the head.
    pub(super) async fn catch_up(&mut self) -> Result<Caught, CycleError> {
        let mut changed = BTreeSet::new();
        let mut more = false;
        let mut since = self.state.last_seq().await?;
        loop {
            let page = self
                .hub
                .changes(since, PAGE_SIZE)
                .await
                .map_err(CycleError::from_hub)?;
            if self.hub_changed(&page.hub_id).await? {
                changed.clear();
                self.answered = Answered::default();
                since = 0;
                continue;
            }
            if page.head < since {
                // The hub's feed is behind what we applied: it was reset or
                // restored from a backup. Forget its old entries and re-read.
                tracing::warn!(
                    head = page.head,
                    applied = since,
                    "the hub's history is older than ours; re-reading it"
                );
                self.state.reset_remote().await?;
                self.answered = Answered::default();
                self.full_scan = true;
                since = 0;
                continue;
            }
            let Some(last) = page.changes.last().map(|e| e.seq) else {
                break;
            };
            let news: Vec<&Entry> = page
                .changes
                .iter()
                .filter(|entry| !self.answered.take(entry))
                .collect();
            if !self.full_scan {
                self.note_changed(&news, &mut changed).await?;
            }
            self.state.apply_changes(news, last).await?;
            since = last;
            if last >= page.head {
                break;
            }
            if !self.full_scan && changed.len() >= FEED_WINDOW {
                tracing::info!(
                    applied = last,
                    head = page.head,
                    changed = changed.len(),
                    "catching up with the hub: acting on this window of the feed, more waiting"
                );
                more = true;
                break;
            }
        }
        self.answered.applied_up_to(since);
        Ok(Caught { changed, more })
    }

    /// Adds to `changed` the paths of `entries` that hold something new:
    /// all of them but our own commits that the synced records agree with
    /// (read back after a restart, or past [`MAX_ANSWERED`]). Only entries
    /// that name us as their origin are checked against the records.
    async fn note_changed(
        &self,
        entries: &[&Entry],
        changed: &mut BTreeSet<SyncPath>,
    ) -> Result<(), CycleError> {
        let (ours, others): (Vec<&Entry>, Vec<&Entry>) = entries
            .iter()
            .partition(|entry| entry.origin == self.origin.trim());
        changed.extend(others.iter().map(|e| e.path.clone()));
        if !ours.is_empty() {
            let agreed = self.state.synced_as(ours.iter().copied()).await?;
            changed.extend(
                ours.iter()
                    .filter(|e| !agreed.contains(&e.path))
                    .map(|e| e.path.clone()),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64) -> Entry {
        serde_json::from_value(serde_json::json!({
            "path": format!("f{seq}"), "version": 1, "kind": "file",
            "sha256": sf_protocol::Sha256Hex::of(b"x").to_hex(), "size": 1,
            "mtime_ns": 0, "executable": false, "deleted": false,
            "origin": "a", "seq": seq, "committed_ms": 0
        }))
        .unwrap()
    }

    /// A recorded answer is passed over once; the feed going past an
    /// answer forgets it, so the set never outgrows what is in flight.
    #[test]
    fn answers_are_passed_over_once_and_forgotten_behind_the_feed() {
        let mut answered = Answered::default();
        for seq in [3, 5, 9] {
            answered.recorded(seq);
        }
        assert!(answered.take(&entry(5)));
        assert!(!answered.take(&entry(5)), "only once");
        assert!(!answered.take(&entry(4)), "another agent's entry");
        answered.applied_up_to(5);
        assert!(!answered.take(&entry(3)), "the feed went past it");
        assert!(answered.take(&entry(9)));
    }

    #[test]
    fn memory_stays_bounded_however_many_answers_wait() {
        let mut answered = Answered::default();
        for seq in 0..(MAX_ANSWERED as u64 + 10) {
            answered.recorded(seq);
        }
        assert_eq!(answered.seqs.len(), MAX_ANSWERED);
        // Past the cap an answer is read back like any other entry.
        assert!(!answered.take(&entry(MAX_ANSWERED as u64 + 5)));
    }
}
