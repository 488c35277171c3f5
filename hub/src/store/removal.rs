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

    /// Removes each of `hashes` that is stored and, when `older_than` is
    /// given, was last stored or refreshed before it; returns, for each,
    /// the bytes freed. The caller holds the write lock and has checked
    /// that no version references them. A bucket removes several at once.
    pub async fn remove_many(
        self: &Arc<Self>,
        hashes: &[Sha256Hex],
        older_than: Option<SystemTime>,
    ) -> Vec<io::Result<Option<u64>>> {
        if hashes.is_empty() {
            return Vec::new();
        }
        // Counted first: a commit that saw a chunk before this removal
        // looks again once it holds the write lock.
        self.removals.fetch_add(1, Ordering::SeqCst);
        let store = Arc::clone(self);
        let hashes = hashes.to_vec();
        let count = hashes.len();
        let removed =
            tokio::task::spawn_blocking(move || store.objects().remove_many(&hashes, older_than))
                .await
                .unwrap_or_else(|err| {
                    (0..count)
                        .map(|_| Err(io::Error::other(err.to_string())))
                        .collect()
                });
        for len in removed.iter().flatten().flatten() {
            self.release(*len);
        }
        removed
    }
}
