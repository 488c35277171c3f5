//! Storing many chunks from one request (`POST /v1/chunks/pack`) with group
//! durability.
//!
//! A single `PUT` makes its chunk durable on its own: for the local store
//! two flushes per chunk, which is what made thousands of small files slow.
//! A pack stages its chunks and publishes them as a group, which the back
//! end makes durable together (see `local`: one `syncfs` for the group; a
//! bucket stores the group's objects in parallel) before it answers. So a
//! chunk is still never visible under its name before its bytes are
//! durable, and the answer still means "durable".
//!
//! Chunks are published in groups of the back end's `group_bytes`, so a
//! huge pack does not park gigabytes in temp files or memory; a pack
//! refused half-way may leave the groups published before, which are
//! verified chunks nobody references yet (garbage collection removes them
//! after `--chunk-grace`).

use std::collections::HashSet;
use std::io;
use std::sync::Arc;

use sf_protocol::Sha256Hex;

use super::objects::Staged;
use super::{ChunkStore, PutError, Stored};

/// One frame of a pack, read from the request: the chunk's name and bytes.
pub struct PackFrame {
    pub hash: Sha256Hex,
    pub data: Vec<u8>,
}

/// A pack being stored. Dropped before [`Pack::publish_blocking`] (a refused
/// frame, a client gone), its unpublished chunks are forgotten: temp files removed,
/// their bytes no longer counted against `--max-store-bytes`.
pub struct Pack {
    store: Arc<ChunkStore>,
    /// New chunks staged, not yet published.
    staged: Vec<StagedChunk>,
    staged_bytes: u64,
    /// Hashes of this pack seen so far: a repeat is stored once.
    seen: HashSet<Sha256Hex>,
    /// Frames taken, new chunks published, and the bytes of each kind.
    pub chunks: u64,
    pub stored: u64,
    pub stored_bytes: u64,
    pub present_bytes: u64,
}

struct StagedChunk {
    staged: Staged,
    hash: Sha256Hex,
    len: u64,
}

impl Pack {
    pub fn new(store: Arc<ChunkStore>) -> Self {
        Self {
            store,
            staged: Vec::new(),
            staged_bytes: 0,
            seen: HashSet::new(),
            chunks: 0,
            stored: 0,
            stored_bytes: 0,
            present_bytes: 0,
        }
    }

    /// Checks each frame's bytes against its name, and stages the new
    /// ones (publishing a group when enough is staged). A chunk already
    /// stored gets a fresh age, as for a `PUT`. Blocking.
    pub fn add_blocking(&mut self, frames: Vec<PackFrame>) -> Result<(), PutError> {
        for frame in frames {
            let actual = Sha256Hex::of(&frame.data);
            if actual != frame.hash {
                return Err(PutError::HashMismatch {
                    expected: frame.hash,
                    actual,
                });
            }
            let len = frame.data.len() as u64;
            self.chunks += 1;
            let objects = self.store.objects();
            if !self.seen.insert(frame.hash)
                || (objects.looks_before_upload() && objects.touch(&frame.hash)?)
            {
                self.present_bytes += len;
                continue;
            }
            self.store.reserve(len)?;
            let staged = match self.store.objects().stage(frame.data) {
                Ok(staged) => staged,
                Err(err) => {
                    self.store.release(len);
                    return Err(err.into());
                }
            };
            // Counted from here: dropping the pack releases it.
            self.staged.push(StagedChunk {
                staged,
                hash: frame.hash,
                len,
            });
            self.staged_bytes += len;
            if self.staged_bytes >= self.store.objects().group_bytes() {
                self.publish_blocking()?;
            }
        }
        Ok(())
    }

    /// This pack, leaving an empty one in its place (to move it to a
    /// blocking thread and back).
    pub fn take(&mut self) -> Pack {
        std::mem::replace(self, Pack::new(Arc::clone(&self.store)))
    }

    /// Publishes what is staged. Every chunk the pack took is durable
    /// under its name when this returns `Ok`. Blocking.
    pub fn publish_blocking(&mut self) -> io::Result<()> {
        if self.staged.is_empty() {
            return Ok(());
        }
        // Taken out: whatever happens next, these are no longer the pack's
        // to release on drop (each is published or released here).
        let staged = std::mem::take(&mut self.staged);
        self.staged_bytes = 0;
        let mut sizes = Vec::with_capacity(staged.len());
        let mut group = Vec::with_capacity(staged.len());
        for chunk in staged {
            self.store.note_new(&chunk.hash);
            sizes.push((chunk.hash, chunk.len));
            group.push((chunk.hash, chunk.staged));
        }
        let outcome = self.store.objects().publish_group(group);
        for ((hash, len), how) in sizes.into_iter().zip(outcome.stored) {
            match how {
                Some(Stored::New) => {
                    self.store.stored_anew(&hash);
                    self.stored += 1;
                    self.stored_bytes += len;
                }
                Some(Stored::AlreadyPresent) => {
                    // A concurrent put of the same chunk won the race.
                    self.store.release(len);
                    self.present_bytes += len;
                }
                None => self.store.release(len),
            }
        }
        match outcome.error {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

impl Drop for Pack {
    fn drop(&mut self) {
        // Unpublished: their temp files go with them (TempFile's drop).
        for staged in &self.staged {
            self.store.release(staged.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(byte: u8, len: usize) -> PackFrame {
        let data = vec![byte; len];
        PackFrame {
            hash: Sha256Hex::of(&data),
            data,
        }
    }

    /// Both ways of flushing (one by one for a few chunks, the whole file
    /// system for more) publish every new chunk once, and a repeat or a
    /// chunk already held is counted as present.
    #[test]
    fn packs_publish_new_chunks_once() {
        for count in [1u8, 2, 7] {
            let dir = tempfile::tempdir().unwrap();
            let store = Arc::new(ChunkStore::open(dir.path()).unwrap());
            let held = frame(200, 10);
            let mut pack = Pack::new(Arc::clone(&store));
            pack.add_blocking(vec![frame(200, 10)]).unwrap();
            pack.publish_blocking().unwrap();
            assert_eq!((pack.chunks, pack.stored), (1, 1));
            drop(pack);

            let mut frames: Vec<PackFrame> =
                (0..count).map(|i| frame(i, 100 + i as usize)).collect();
            frames.push(frame(0, 100));
            frames.push(held);
            let mut pack = Pack::new(Arc::clone(&store));
            pack.add_blocking(frames).unwrap();
            pack.publish_blocking().unwrap();
            assert_eq!(pack.chunks, u64::from(count) + 2, "{count}");
            assert_eq!(pack.stored, u64::from(count), "{count}");
            assert_eq!(pack.present_bytes, 100 + 10, "{count}");
            for i in 0..count {
                let chunk = frame(i, 100 + i as usize);
                assert!(
                    store.holds_blocking(&chunk.hash).unwrap(),
                    "{count}: chunk {i} published"
                );
            }
            assert_eq!(
                std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
                0
            );
        }
    }

    /// A frame whose bytes do not hash to its name stops the pack; what it
    /// staged is dropped, and its bytes are no longer counted as used.
    #[test]
    fn a_bad_frame_publishes_nothing_of_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(ChunkStore::open(dir.path()).unwrap());
        let good = frame(1, 50);
        let mut bad = frame(2, 50);
        bad.data[0] = 3;
        let mut pack = Pack::new(Arc::clone(&store));
        let err = pack.add_blocking(vec![good, bad]).unwrap_err();
        assert!(matches!(err, PutError::HashMismatch { .. }), "{err}");
        drop(pack);
        assert_eq!(store.used_bytes(), 0);
        assert!(!store.holds_blocking(&frame(1, 50).hash).unwrap());
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }
}
