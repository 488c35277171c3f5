//! Chunks read back with proof, and what the store does when one fails it.
//!
//! Every chunk the hub sends is read whole (at most `MAX_CHUNK_SIZE` bytes)
//! and hashed before any of it leaves, so bytes that differ from their name
//! (bit rot, a bad copy, an operator's mistake) are never sent. A damaged
//! chunk is moved out of the store into `<data-dir>/damaged/` (kept for the
//! operator to look at, never deleted) and becomes *wanted*, as does a chunk
//! a committed version references but the store lacks. The hub asks agents
//! for wanted chunks (see `crate::repair`); the first good upload of one
//! repairs the store, as any upload would store it.
//!
//! The store only keeps the set and its news (what became wanted, what
//! arrived); the hub's repair task persists them and tells agents.

use std::collections::HashSet;
use std::io;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use sf_protocol::Sha256Hex;
use sf_protocol::chunking::MAX_CHUNK_SIZE;

use super::{ChunkStore, CopyTag};

/// Why a stored chunk could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum ChunkReadError {
    #[error("chunk {0} is not in the hub's store")]
    Missing(Sha256Hex),
    #[error(
        "chunk {hash} is damaged in the hub's store (its bytes hash to {actual}); it was moved \
         aside and the hub asks agents for a good copy"
    )]
    Damaged { hash: Sha256Hex, actual: Sha256Hex },
    #[error("reading chunk {hash} failed: {source}")]
    Io {
        hash: Sha256Hex,
        #[source]
        source: io::Error,
    },
}

impl From<ChunkReadError> for io::Error {
    fn from(err: ChunkReadError) -> Self {
        let kind = match &err {
            ChunkReadError::Missing(_) => io::ErrorKind::NotFound,
            ChunkReadError::Damaged { .. } => io::ErrorKind::InvalidData,
            ChunkReadError::Io { source, .. } => source.kind(),
        };
        io::Error::new(kind, err)
    }
}

/// Why the store lacks a chunk it should hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lost {
    /// Its bytes did not hash to its name; moved to `damaged/`.
    Damaged,
    /// Not in the store although a committed version references it.
    Missing,
}

impl Lost {
    pub fn as_str(self) -> &'static str {
        match self {
            Lost::Damaged => "damaged",
            Lost::Missing => "missing",
        }
    }
}

/// A chunk that just became wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostChunk {
    pub hash: Sha256Hex,
    pub why: Lost,
    /// Bytes the damaged file held that the store's count (and the stored
    /// chunks gauge) included and no longer does; 0 when missing, or moved
    /// before the start-up census reached it.
    pub counted_bytes: Option<u64>,
}

/// A change of the wanted set, in the order they happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WantedNews {
    Lost(LostChunk),
    /// A wanted chunk stored again: repaired.
    Arrived(Sha256Hex),
}

#[derive(Debug, Default)]
pub(super) struct WantedSet {
    hashes: HashSet<Sha256Hex>,
    news: Vec<WantedNews>,
}

impl ChunkStore {
    /// Reads chunk `hash` whole and checks that its bytes hash to its name.
    /// A chunk that does not is quarantined and wanted; one that is absent is
    /// [`ChunkReadError::Missing`] (the caller decides whether it should be
    /// there, see [`Self::want_missing`]). Blocking.
    pub fn read_verified_blocking(&self, hash: &Sha256Hex) -> Result<Bytes, ChunkReadError> {
        // A copy larger than any chunk is damaged too: one byte over says so.
        let read = self.objects().read(hash, MAX_CHUNK_SIZE as u64 + 1);
        self.verified(hash, read)
    }

    /// Checks what a read of chunk `hash` returned (see
    /// [`Self::read_verified_blocking`]).
    pub(super) fn verified(
        &self,
        hash: &Sha256Hex,
        read: io::Result<Option<(Vec<u8>, CopyTag)>>,
    ) -> Result<Bytes, ChunkReadError> {
        let (data, tag) = match read {
            Ok(Some(read)) => read,
            Ok(None) => return Err(ChunkReadError::Missing(*hash)),
            Err(source) => {
                return Err(ChunkReadError::Io {
                    hash: *hash,
                    source,
                });
            }
        };
        let actual = Sha256Hex::of(&data);
        if actual == *hash {
            return Ok(Bytes::from(data));
        }
        match self.quarantine_blocking(hash, &tag, data.len() as u64) {
            Ok(Some(moved_to)) => tracing::error!(
                chunk = %hash,
                actual = %actual,
                moved_to = %moved_to,
                "a stored chunk is damaged: its bytes do not hash to its name; moved it out of \
                 the store and asking agents for a good copy"
            ),
            // Another reader moved it first and said so.
            Ok(None) => {}
            Err(err) => tracing::error!(
                chunk = %hash,
                error = %err,
                "a stored chunk is damaged, and moving it out of the store failed; it stays \
                 in place and is refused on every read"
            ),
        }
        Err(ChunkReadError::Damaged {
            hash: *hash,
            actual,
        })
    }

    /// Moves chunk `hash` out of the store (to where damaged copies are
    /// kept) if it is still the copy `damaged` of `len` bytes (read and
    /// found wrong), and makes it wanted. `None` when that copy is no longer
    /// in the store (moved already, or replaced by a good upload). Blocking.
    pub fn quarantine_blocking(
        &self,
        hash: &Sha256Hex,
        damaged: &CopyTag,
        len: u64,
    ) -> io::Result<Option<String>> {
        // Counted first, as a removal: a commit that saw the chunk present
        // re-checks it under the commit lock.
        self.removals.fetch_add(1, Ordering::SeqCst);
        let Some(moved_to) = self.objects().quarantine(hash, damaged)? else {
            return Ok(None);
        };
        // The start-up census counts what it finds: a chunk moved before it
        // got there was never counted.
        let counted = self.census_passed(hash);
        if counted {
            self.release(len);
        }
        self.want_lost(LostChunk {
            hash: *hash,
            why: Lost::Damaged,
            counted_bytes: counted.then_some(len),
        });
        Ok(Some(moved_to))
    }

    /// Makes `hash`, which a committed version references, wanted because
    /// the store lacks it.
    pub fn want_missing(&self, hash: &Sha256Hex) {
        self.want_lost(LostChunk {
            hash: *hash,
            why: Lost::Missing,
            counted_bytes: None,
        });
    }

    /// Makes chunks wanted that an earlier run (or `sf-hub check`) found
    /// lost, without news: they are known already.
    pub fn want_known(&self, hashes: impl IntoIterator<Item = Sha256Hex>) {
        let mut wanted = self.wanted.lock().unwrap_or_else(|e| e.into_inner());
        wanted.hashes.extend(hashes);
    }

    /// Stops wanting `hash` without news: no version references it (a
    /// damaged chunk found by a read of an upload never committed).
    pub fn forget_wanted(&self, hash: &Sha256Hex) {
        let mut wanted = self.wanted.lock().unwrap_or_else(|e| e.into_inner());
        wanted.hashes.remove(hash);
    }

    fn want_lost(&self, lost: LostChunk) {
        let mut wanted = self.wanted.lock().unwrap_or_else(|e| e.into_inner());
        if wanted.hashes.insert(lost.hash) || lost.why == Lost::Damaged {
            wanted.news.push(WantedNews::Lost(lost));
            drop(wanted);
            self.wanted_news.notify_one();
        }
    }

    /// Called once chunk `hash` was stored anew (or found in the store
    /// again, verified): if it was wanted, it is repaired.
    pub fn stored_anew(&self, hash: &Sha256Hex) {
        let mut wanted = self.wanted.lock().unwrap_or_else(|e| e.into_inner());
        if wanted.hashes.remove(hash) {
            wanted.news.push(WantedNews::Arrived(*hash));
            drop(wanted);
            self.wanted_news.notify_one();
        }
    }

    /// The chunks wanted now.
    pub fn wanted(&self) -> Vec<Sha256Hex> {
        let wanted = self.wanted.lock().unwrap_or_else(|e| e.into_inner());
        let mut hashes: Vec<Sha256Hex> = wanted.hashes.iter().copied().collect();
        hashes.sort_unstable();
        hashes
    }

    /// Takes what changed in the wanted set since the last call, in order.
    pub fn take_wanted_news(&self) -> Vec<WantedNews> {
        let mut wanted = self.wanted.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut wanted.news)
    }

    /// Resolves when there is news in the wanted set (at once if some came
    /// since the last call). One waiter: the hub's repair task.
    pub async fn wanted_news(&self) {
        self.wanted_news.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use sf_protocol::chunking::Chunk;

    use super::*;

    fn chunk(byte: u8, len: usize) -> Chunk {
        let data = vec![byte; len];
        Chunk {
            hash: Sha256Hex::of(&data),
            data,
        }
    }

    /// A chunk changed on disk is refused, moved to `damaged/` with its
    /// bytes, and wanted; storing it again repairs it.
    #[test]
    fn a_damaged_chunk_is_refused_moved_aside_and_repaired_by_an_upload() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChunkStore::open(dir.path()).unwrap();
        let good = chunk(7, 5000);
        store.put_blocking(&good).unwrap();
        assert_eq!(
            store.read_verified_blocking(&good.hash).unwrap(),
            &good.data[..]
        );
        let path = store.chunk_path(&good.hash);
        let mut bad = good.data.clone();
        bad[4321] ^= 0x01;
        std::fs::write(&path, &bad).unwrap();

        let err = store.read_verified_blocking(&good.hash).unwrap_err();
        assert!(matches!(err, ChunkReadError::Damaged { hash, .. } if hash == good.hash));
        assert!(!path.exists(), "the damaged chunk left the store");
        let kept: Vec<_> = std::fs::read_dir(dir.path().join("damaged"))
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        assert_eq!(kept, vec![bad], "its bytes are kept for the operator");
        assert_eq!(store.wanted(), vec![good.hash]);
        let news = store.take_wanted_news();
        assert!(
            matches!(
                &news[..],
                [WantedNews::Lost(LostChunk {
                    why: Lost::Damaged,
                    ..
                })]
            ),
            "{news:?}"
        );
        // Now simply missing: a later read says so, and wants it no twice.
        assert!(matches!(
            store.read_verified_blocking(&good.hash),
            Err(ChunkReadError::Missing(_))
        ));

        assert_eq!(
            store.put_blocking(&good).unwrap(),
            crate::store::Stored::New
        );
        assert!(store.wanted().is_empty());
        assert_eq!(
            store.take_wanted_news(),
            vec![WantedNews::Arrived(good.hash)]
        );
        assert_eq!(
            store.read_verified_blocking(&good.hash).unwrap(),
            &good.data[..]
        );
    }

    /// A good copy stored after a damaged one was read is not moved aside.
    #[test]
    fn a_good_copy_stored_since_the_read_stays() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChunkStore::open(dir.path()).unwrap();
        let good = chunk(9, 3000);
        store.put_blocking(&good).unwrap();
        let path = store.chunk_path(&good.hash);
        std::fs::write(&path, b"rotten").unwrap();
        let damaged_id = super::super::local::copy_tag(&std::fs::metadata(&path).unwrap());
        // Someone else moved the damaged file aside and a good upload came.
        std::fs::rename(&path, dir.path().join("elsewhere")).unwrap();
        store.put_blocking(&good).unwrap();
        assert_eq!(
            store
                .quarantine_blocking(&good.hash, &damaged_id, 6)
                .unwrap(),
            None
        );
        assert_eq!(std::fs::read(&path).unwrap(), good.data);
    }

    /// A file longer than any chunk is damaged, not read whole.
    #[test]
    fn an_oversized_chunk_file_is_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChunkStore::open(dir.path()).unwrap();
        let good = chunk(3, 10);
        store.put_blocking(&good).unwrap();
        std::fs::write(store.chunk_path(&good.hash), vec![3u8; MAX_CHUNK_SIZE * 2]).unwrap();
        assert!(matches!(
            store.read_verified_blocking(&good.hash),
            Err(ChunkReadError::Damaged { .. })
        ));
    }
}
