//! What `sf-hub check` needs of the store, safe to use while hubs serve
//! the same store: opening it without touching anything, listing one 256th
//! of the chunks with their sizes and ages, hashing a chunk without acting
//! on the result, and the temp files uploads left.

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sf_protocol::Sha256Hex;
use sf_protocol::chunking::MAX_CHUNK_SIZE;

use super::{Backend, ChunkStore, CopyTag, OpenError, StoreLocation, local};

/// A stored chunk as listed.
#[derive(Debug, Clone)]
pub struct StoredChunk {
    pub hash: Sha256Hex,
    pub len: u64,
    pub modified: SystemTime,
}

/// A copy of a chunk that was read and found damaged.
#[derive(Debug, Clone)]
pub struct DamagedCopy {
    pub tag: CopyTag,
    pub len: u64,
}

impl ChunkStore {
    /// The store at `location` as it is: unlike [`ChunkStore::open_at`],
    /// nothing is created, moved or cleared (a hub may be using it). A local
    /// store in an older layout must be opened by the hub once first.
    /// Call from a blocking thread inside the runtime.
    pub fn inspect(
        location: &StoreLocation,
        access: &super::BucketAccess,
        data_dir: &Path,
    ) -> Result<Self, OpenError> {
        let backend = match location {
            StoreLocation::Local => {
                Backend::Local(local::LocalDir::inspect(data_dir).map_err(|source| {
                    OpenError::Local {
                        dir: data_dir.display().to_string(),
                        source,
                    }
                })?)
            }
            StoreLocation::Bucket(bucket) => {
                Backend::Bucket(super::bucket::Bucket::connect(bucket, access)?)
            }
        };
        let store = Self::with_backend(backend);
        store
            .census_prefix
            .store(256, std::sync::atomic::Ordering::SeqCst);
        *store.uncounted.lock().unwrap_or_else(|e| e.into_inner()) = None;
        store.counted.send_replace(true);
        Ok(store)
    }

    /// The chunks whose hash starts with byte `prefix`, in hash order.
    /// Blocking.
    pub fn list_blocking(&self, prefix: u8) -> io::Result<Vec<StoredChunk>> {
        Ok(self
            .objects()
            .list(prefix)?
            .into_iter()
            .map(|(hash, meta)| StoredChunk {
                hash,
                len: meta.len,
                modified: meta.modified,
            })
            .collect())
    }

    /// Whether chunk `hash`'s bytes hash to its name, with the copy read
    /// when they do not (for [`ChunkStore::quarantine_blocking`]); `None`
    /// when it is gone. Only looks. Blocking.
    pub fn is_intact_blocking(
        &self,
        hash: &Sha256Hex,
    ) -> io::Result<Option<Result<(), DamagedCopy>>> {
        let Some((data, tag)) = self.objects().read(hash, MAX_CHUNK_SIZE as u64 + 1)? else {
            return Ok(None);
        };
        let intact = data.len() <= MAX_CHUNK_SIZE && Sha256Hex::of(&data) == *hash;
        Ok(Some(if intact {
            Ok(())
        } else {
            Err(DamagedCopy {
                tag,
                len: data.len() as u64,
            })
        }))
    }

    /// Removes unreferenced chunk `hash` if its age is still before
    /// `cutoff`; `true` when it was removed. Blocking.
    pub fn remove_orphan_blocking(&self, hash: &Sha256Hex, cutoff: SystemTime) -> io::Result<bool> {
        Ok(self.objects().remove(hash, Some(cutoff))?.is_some())
    }

    /// Temp files (uploads in progress, or left by a crash) older than
    /// `cutoff`. Blocking.
    pub fn old_temp_files_blocking(&self, cutoff: SystemTime) -> io::Result<Vec<PathBuf>> {
        self.objects().old_temp_files(cutoff)
    }
}
