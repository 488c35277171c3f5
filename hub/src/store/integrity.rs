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
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sf_protocol::Sha256Hex;
use sf_protocol::chunking::MAX_CHUNK_SIZE;

use super::ChunkStore;

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
    /// Bytes the damaged file held, no longer in the store (0 when missing).
    pub bytes: u64,
}

/// What changed in the wanted set since the repair task last looked.
#[derive(Debug, Default)]
pub struct WantedNews {
    pub lost: Vec<LostChunk>,
    /// Wanted chunks stored again since (repaired).
    pub arrived: Vec<Sha256Hex>,
}

#[derive(Debug, Default)]
pub(super) struct WantedSet {
    hashes: HashSet<Sha256Hex>,
    news: WantedNews,
}

impl ChunkStore {
    /// Reads chunk `hash` whole and checks that its bytes hash to its name.
    /// A chunk that does not is quarantined and wanted; one that is absent is
    /// [`ChunkReadError::Missing`] (the caller decides whether it should be
    /// there, see [`Self::want`]). Blocking.
    pub fn read_verified_blocking(&self, hash: &Sha256Hex) -> Result<Bytes, ChunkReadError> {
        let io_error = |source| ChunkReadError::Io {
            hash: *hash,
            source,
        };
        let file = match self.open_chunk_blocking(hash) {
            Ok(Some(file)) => file,
            Ok(None) => return Err(ChunkReadError::Missing(*hash)),
            Err(source) => return Err(io_error(source)),
        };
        // A file larger than any chunk is damaged too: one byte over says so.
        let mut data = Vec::new();
        file.take(MAX_CHUNK_SIZE as u64 + 1)
            .read_to_end(&mut data)
            .map_err(io_error)?;
        let actual = Sha256Hex::of(&data);
        if actual == *hash {
            return Ok(Bytes::from(data));
        }
        match self.quarantine_blocking(hash) {
            Ok(Some(moved_to)) => tracing::error!(
                chunk = %hash,
                actual = %actual,
                moved_to = %moved_to.display(),
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

    /// Moves chunk `hash` from the store into `damaged/`, and makes it
    /// wanted. `None` when it was not in the store (moved already).
    /// Blocking.
    pub fn quarantine_blocking(&self, hash: &Sha256Hex) -> io::Result<Option<PathBuf>> {
        let path = self.chunk_path(hash);
        let len = match std::fs::metadata(&path) {
            Ok(meta) => meta.len(),
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        std::fs::create_dir_all(&self.damaged_dir)?;
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let moved_to = self.damaged_dir.join(format!("{hash}.{stamp}"));
        // Counted first, as a removal: a commit that saw the chunk present
        // re-checks it under the commit lock.
        self.removals.fetch_add(1, Ordering::SeqCst);
        match std::fs::rename(&path, &moved_to) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        }
        self.release(len);
        self.want_lost(LostChunk {
            hash: *hash,
            why: Lost::Damaged,
            bytes: len,
        });
        Ok(Some(moved_to))
    }

    /// Makes `hash`, which a committed version references, wanted because
    /// the store lacks it.
    pub fn want_missing(&self, hash: &Sha256Hex) {
        self.want_lost(LostChunk {
            hash: *hash,
            why: Lost::Missing,
            bytes: 0,
        });
    }

    /// Makes chunks wanted that an earlier run (or `sf-hub check`) found
    /// lost, without news: they are known already.
    pub fn want_known(&self, hashes: impl IntoIterator<Item = Sha256Hex>) {
        let mut wanted = self.wanted.lock().unwrap_or_else(|e| e.into_inner());
        wanted.hashes.extend(hashes);
    }

    fn want_lost(&self, lost: LostChunk) {
        let mut wanted = self.wanted.lock().unwrap_or_else(|e| e.into_inner());
        if wanted.hashes.insert(lost.hash) || lost.why == Lost::Damaged {
            wanted.news.lost.push(lost);
            drop(wanted);
            self.wanted_news.notify_one();
        }
    }

    /// Called once chunk `hash` was stored anew (or found in the store
    /// again, verified): if it was wanted, it is repaired.
    pub fn stored_anew(&self, hash: &Sha256Hex) {
        let mut wanted = self.wanted.lock().unwrap_or_else(|e| e.into_inner());
        if wanted.hashes.remove(hash) {
            wanted.news.arrived.push(*hash);
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

    /// Takes what changed in the wanted set since the last call.
    pub fn take_wanted_news(&self) -> WantedNews {
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
        assert_eq!(news.lost.len(), 1);
        assert_eq!(news.lost[0].why, Lost::Damaged);
        assert_eq!(news.lost[0].bytes, 5000);
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
        assert_eq!(store.take_wanted_news().arrived, vec![good.hash]);
        assert_eq!(
            store.read_verified_blocking(&good.hash).unwrap(),
            &good.data[..]
        );
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
