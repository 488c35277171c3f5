//! Finding and removing chunks, for garbage collection and for undoing a
//! failed upload. The decision (is the chunk referenced?) is the caller's,
//! made under the commit lock; see [`crate::gc`].

use std::io;
use std::sync::Arc;
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

    /// Stored chunks whose name starts with the byte `prefix` and whose age
    /// is before `cutoff`: one 256th of the store per call, so a garbage
    /// collection pass holds little in memory. Blocking.
    pub fn old_chunks_blocking(
        &self,
        prefix: u8,
        cutoff: SystemTime,
    ) -> io::Result<Vec<Sha256Hex>> {
        Ok(self
            .objects()
            .list(prefix)?
            .into_iter()
            .filter(|(_, meta)| meta.modified < cutoff)
            .map(|(hash, _)| hash)
            .collect())
    }

    /// Removes chunk `hash` if it is stored and, when `older_than` is given,
    /// its mtime is before it; returns the bytes freed. The caller holds the
    /// commit lock and has checked that no version references the chunk.
    pub async fn remove(
        self: &Arc<Self>,
        hash: &Sha256Hex,
        older_than: Option<SystemTime>,
    ) -> io::Result<Option<u64>> {
        // Counted first: a commit that saw the chunk before this removal
        // re-checks once it holds the commit lock.
        self.removals.fetch_add(1, Ordering::SeqCst);
        let store = Arc::clone(self);
        let hash = *hash;
        let removed =
            tokio::task::spawn_blocking(move || store.objects().remove(&hash, older_than))
                .await
                .map_err(io::Error::other)??;
        if let Some(len) = removed {
            self.release(len);
        }
        Ok(removed)
    }
}
