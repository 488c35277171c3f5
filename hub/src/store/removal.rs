//! Finding and removing chunks, for garbage collection and for undoing a
//! failed upload. The decision (is the chunk referenced?) is the caller's,
//! made under the commit lock; see [`crate::gc`].

use std::io;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use sf_protocol::Sha256Hex;

use super::ChunkStore;

impl ChunkStore {
    /// How many chunks were removed since start: a commit that read this
    /// before its checks re-checks its chunks if it moved.
    pub fn removals(&self) -> u64 {
        self.removals.load(Ordering::SeqCst)
    }

    /// Stored chunks whose name starts with the byte `prefix` and whose mtime
    /// is before `cutoff`: one 256th of the store per call, so a garbage
    /// collection pass holds little in memory. Blocking.
    pub fn old_chunks_blocking(
        &self,
        prefix: u8,
        cutoff: SystemTime,
    ) -> io::Result<Vec<Sha256Hex>> {
        let mut old = Vec::new();
        // Anything that is not a chunk's name is not the store's to remove.
        for (hash, entry) in super::layout::chunks_with_prefix(&self.chunks_dir, prefix)? {
            if entry.metadata()?.modified()? < cutoff {
                old.push(hash);
            }
        }
        Ok(old)
    }

    /// Removes chunk `hash` if it is stored and, when `older_than` is given,
    /// its mtime is before it; returns the bytes freed. The caller holds the
    /// commit lock and has checked that no version references the chunk.
    pub async fn remove(
        &self,
        hash: &Sha256Hex,
        older_than: Option<SystemTime>,
    ) -> io::Result<Option<u64>> {
        let path = self.chunk_path(hash);
        let meta = match tokio::fs::metadata(&path).await {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        if older_than.is_some_and(|cutoff| meta.modified().is_ok_and(|m| m >= cutoff)) {
            return Ok(None);
        }
        // Counted first: a commit that saw the chunk before this removal
        // re-checks once it holds the commit lock.
        self.removals.fetch_add(1, Ordering::SeqCst);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {
                self.release(meta.len());
                Ok(Some(meta.len()))
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }
}
