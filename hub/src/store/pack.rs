//! Storing many chunks from one request (`POST /v1/chunks/pack`) with group
//! durability.
//!
//! A single `PUT` fsyncs its temp file, links it into place and fsyncs the
//! directory: two flushes per chunk, which is what made thousands of small
//! files slow. A pack writes its chunks' temp files without flushing each,
//! makes them durable together, moves them all into place, and makes the
//! new names durable together, before it answers. So a chunk is still never
//! visible under its name before its bytes are on disk, and the answer still
//! means "durable".
//!
//! On Linux "together" is `syncfs` on the store's file system, twice per
//! group; it beats one fsync per file and per directory (chunks spread over
//! 256 directories) by about five times for 500 small chunks on this
//! project's machines, at the price of also flushing whatever else is dirty
//! on that file system. A group of a few chunks, and other systems, fsync
//! each file and each distinct directory instead.
//!
//! Chunks are published in groups of [`PUBLISH_BYTES`], so a huge pack does
//! not park gigabytes in temp files; a pack refused half-way may leave the
//! groups published before, which are verified chunks nobody references yet
//! (garbage collection removes them after `--chunk-grace`).

use std::collections::HashSet;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use sf_protocol::Sha256Hex;

use super::{ChunkStore, PutError, Stored, TempFile, link_blocking, refresh_blocking};

/// Temp bytes a pack holds before it publishes what it has.
const PUBLISH_BYTES: u64 = 64 << 20;

/// Fewer new chunks than this in a group are flushed one by one: cheaper
/// than flushing the whole file system, and immune to other writers' dirty
/// data.
const SYNCFS_FROM: usize = 4;

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
    /// New chunks in temp files, not yet published.
    staged: Vec<Staged>,
    staged_bytes: u64,
    /// Hashes of this pack seen so far: a repeat is stored once.
    seen: HashSet<Sha256Hex>,
    /// Frames taken, new chunks published, and the bytes of each kind.
    pub chunks: u64,
    pub stored: u64,
    pub stored_bytes: u64,
    pub present_bytes: u64,
}

struct Staged {
    temp: TempFile,
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

    /// Checks each frame's bytes against its name, and writes the new ones
    /// to temp files (publishing a group when enough is staged). A chunk
    /// already stored gets a fresh mtime, as for a `PUT`. Blocking.
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
            if !self.seen.insert(frame.hash)
                || refresh_blocking(&self.store.chunk_path(&frame.hash))?
            {
                self.present_bytes += len;
                continue;
            }
            self.store.reserve(len)?;
            let temp = TempFile::new(self.store.temp_path());
            // Counted from here: dropping the pack releases it.
            self.staged.push(Staged {
                temp,
                hash: frame.hash,
                len,
            });
            self.staged_bytes += len;
            let temp = &self.staged[self.staged.len() - 1].temp;
            std::fs::File::create(&temp.path)?.write_all(&frame.data)?;
            if self.staged_bytes >= PUBLISH_BYTES {
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

    /// Publishes what is staged: makes the temp files durable, links them
    /// into place, and makes the new names durable, in that order, so no
    /// chunk is visible before its bytes are on disk. Every chunk the pack
    /// took is durable under its name when this returns. Blocking.
    pub fn publish_blocking(&mut self) -> io::Result<()> {
        if self.staged.is_empty() {
            return Ok(());
        }
        let together = use_syncfs(self.staged.len());
        if together {
            sync_file_system(&self.store.tmp_dir)?;
        } else {
            for staged in &self.staged {
                std::fs::File::open(&staged.temp.path)?.sync_all()?;
            }
        }
        let mut new_dirs = Vec::new();
        // Taken out: whatever happens next, these are no longer the pack's
        // to release on drop (each is published or released here).
        let staged = std::mem::take(&mut self.staged);
        self.staged_bytes = 0;
        let mut staged = staged.into_iter();
        while let Some(chunk) = staged.next() {
            let final_path = self.store.chunk_path(&chunk.hash);
            self.store.note_new(&chunk.hash);
            match move_into_place(&chunk.temp.path, &final_path) {
                Ok(Stored::New) => {
                    self.store.stored_anew(&chunk.hash);
                    self.stored += 1;
                    self.stored_bytes += chunk.len;
                    if !together {
                        new_dirs.push(final_path);
                    }
                }
                Ok(Stored::AlreadyPresent) => {
                    // A concurrent put of the same chunk won the race.
                    self.store.release(chunk.len);
                    self.present_bytes += chunk.len;
                }
                Err(err) => {
                    self.store.release(chunk.len);
                    for rest in staged {
                        self.store.release(rest.len);
                    }
                    return Err(err);
                }
            }
        }
        if together {
            sync_file_system(&self.store.tmp_dir)
        } else {
            let mut synced = HashSet::new();
            for path in &new_dirs {
                let dir = super::chunk_dir(path);
                if synced.insert(dir) {
                    std::fs::File::open(dir)?.sync_all()?;
                }
            }
            Ok(())
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

/// Moves a durable temp file to its chunk name unless a chunk is there
/// already. On Linux one `renameat2(RENAME_NOREPLACE)` does it (no link to
/// remove afterwards), with the chunk's directory made only when missing;
/// elsewhere, or on a file system that cannot refuse to replace, a link.
#[cfg(target_os = "linux")]
fn move_into_place(temp: &Path, final_path: &Path) -> io::Result<Stored> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    use rustix::io::Errno;
    let rename = || renameat_with(CWD, temp, CWD, final_path, RenameFlags::NOREPLACE);
    let renamed = match rename() {
        Err(Errno::NOENT) => {
            std::fs::create_dir_all(super::chunk_dir(final_path))?;
            rename()
        }
        other => other,
    };
    match renamed {
        Ok(()) => Ok(Stored::New),
        Err(Errno::EXIST) => Ok(Stored::AlreadyPresent),
        Err(Errno::INVAL | Errno::NOSYS) => link_blocking(temp, final_path),
        Err(err) => Err(err.into()),
    }
}

#[cfg(not(target_os = "linux"))]
fn move_into_place(temp: &Path, final_path: &Path) -> io::Result<Stored> {
    link_blocking(temp, final_path)
}

/// Whether a group of `new_chunks` is flushed with one `syncfs` rather
/// than file by file.
fn use_syncfs(new_chunks: usize) -> bool {
    cfg!(target_os = "linux") && new_chunks >= SYNCFS_FROM
}

/// Flushes every dirty page and inode of the file system holding `dir`.
#[cfg(target_os = "linux")]
fn sync_file_system(dir: &Path) -> io::Result<()> {
    let handle = std::fs::File::open(dir)?;
    rustix::fs::syncfs(&handle)?;
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn sync_file_system(_dir: &Path) -> io::Result<()> {
    // Never called: `use_syncfs` is false off Linux.
    Err(io::Error::other("syncfs is Linux only"))
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
        for count in [1u8, 2, SYNCFS_FROM as u8 + 3] {
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
                let file = store.open_chunk_blocking(&chunk.hash).unwrap();
                assert!(file.is_some(), "{count}: chunk {i} published");
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
        assert!(
            store
                .open_chunk_blocking(&frame(1, 50).hash)
                .unwrap()
                .is_none()
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }
}
