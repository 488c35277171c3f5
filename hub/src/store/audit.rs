//! What `sf-hub check` needs of the store, safe to use while a hub serves
//! the same data directory: opening it without touching anything, listing
//! one 256th of the chunks with their sizes and ages, hashing a chunk
//! without acting on the result, and the temp files uploads left.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::SystemTime;

use sf_protocol::Sha256Hex;
use sf_protocol::chunking::MAX_CHUNK_SIZE;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::{ChunkStore, layout};

/// A stored chunk file as listed.
#[derive(Debug, Clone)]
pub struct StoredChunk {
    pub hash: Sha256Hex,
    pub len: u64,
    pub modified: SystemTime,
}

impl ChunkStore {
    /// The store under `data_dir` as it is: unlike [`ChunkStore::open`],
    /// nothing is created, moved or cleared (a hub may be using it). A store
    /// in an older layout must be opened by the hub once first.
    pub fn inspect(data_dir: &Path) -> io::Result<Self> {
        let chunks_dir = data_dir.join("chunks");
        if chunks_dir.exists() && !layout::is_current(data_dir)? {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the store in {} is in an older layout; start the hub once so it moves the \
                     chunks, then check again",
                    data_dir.display()
                ),
            ));
        }
        Ok(Self {
            chunks_dir,
            tmp_dir: data_dir.join("tmp"),
            damaged_dir: data_dir.join("damaged"),
            next_tmp: AtomicU64::new(0),
            capacity: None,
            used: AtomicU64::new(0),
            removals: AtomicU64::new(0),
            uncounted: Mutex::new(None),
            census_prefix: std::sync::atomic::AtomicU32::new(256),
            counted: watch::Sender::new(true),
            wanted: Mutex::default(),
            wanted_news: tokio::sync::Notify::new(),
        })
    }

    /// The chunk files whose hash starts with byte `prefix`, in hash order.
    /// Blocking.
    pub fn list_blocking(&self, prefix: u8) -> io::Result<Vec<StoredChunk>> {
        let mut listed = Vec::new();
        for (hash, entry) in layout::chunks_with_prefix(&self.chunks_dir, prefix)? {
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                // Removed since listed (garbage collection).
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err),
            };
            listed.push(StoredChunk {
                hash,
                len: meta.len(),
                modified: meta.modified()?,
            });
        }
        listed.sort_by_key(|chunk| chunk.hash);
        Ok(listed)
    }

    /// Whether chunk `hash`'s bytes hash to its name, with the file read
    /// (for [`ChunkStore::quarantine_blocking`]); `None` when it is gone.
    /// Only looks. Blocking.
    pub fn is_intact_blocking(
        &self,
        hash: &Sha256Hex,
    ) -> io::Result<Option<(bool, super::integrity::FileId)>> {
        let Some(file) = self.open_chunk_blocking(hash)? else {
            return Ok(None);
        };
        let id = super::integrity::file_id(&file.metadata()?);
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 256 * 1024];
        let read = super::read_all(file.take(MAX_CHUNK_SIZE as u64 + 1), &mut buffer, |bytes| {
            hasher.update(bytes)
        })?;
        let intact = read <= MAX_CHUNK_SIZE as u64 && Sha256Hex::from(hasher) == *hash;
        Ok(Some((intact, id)))
    }

    /// Whether chunk `hash` is in the store (a name only). Blocking.
    pub fn holds_blocking(&self, hash: &Sha256Hex) -> bool {
        self.chunk_path(hash).exists()
    }

    /// Removes unreferenced chunk `hash` if its mtime is still before
    /// `cutoff`; `true` when it was removed. Blocking.
    pub fn remove_orphan_blocking(&self, hash: &Sha256Hex, cutoff: SystemTime) -> io::Result<bool> {
        let path = self.chunk_path(hash);
        match std::fs::metadata(&path) {
            Ok(meta) if meta.modified()? < cutoff => {}
            Ok(_) => return Ok(false),
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(err) => return Err(err),
        }
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Temp files (uploads in progress, or left by a crash) older than
    /// `cutoff`. Blocking.
    pub fn old_temp_files_blocking(&self, cutoff: SystemTime) -> io::Result<Vec<PathBuf>> {
        let entries = match std::fs::read_dir(&self.tmp_dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err),
        };
        let mut old = Vec::new();
        for entry in entries {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_file() && meta.modified()? < cutoff {
                old.push(entry.path());
            }
        }
        old.sort();
        Ok(old)
    }
}
