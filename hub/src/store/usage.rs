//! What the store holds: the bytes in it (counted at start-up by a census of
//! the store, then kept up to date by every put and removal) and the
//! `--max-store-bytes` limit they are held to.

use std::io;
use std::sync::atomic::Ordering;

use sf_protocol::Sha256Hex;

use super::ChunkStore;

/// The store reached `--max-store-bytes`.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the hub's chunk store is full: {used} of the {capacity} bytes --max-store-bytes allows are \
     in use, so nothing was stored; the hub's operator must free space or raise the limit"
)]
pub struct StoreFull {
    pub used: u64,
    pub capacity: u64,
}

impl ChunkStore {
    /// Resolves once [`Self::census_blocking`] has counted the store.
    pub async fn counted(&self) {
        let _ = self.counted.subscribe().wait_for(|done| *done).await;
    }

    /// Whether the start-up census has counted chunk `hash` (or is done):
    /// only then is it in [`Self::used_bytes`] and the stored chunks gauge.
    pub(super) fn census_passed(&self, hash: &Sha256Hex) -> bool {
        u32::from(hash.as_bytes()[0]) < self.census_prefix.load(Ordering::SeqCst)
            || self
                .uncounted
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .is_some_and(|stored_since_open| stored_since_open.contains(hash))
    }

    /// Before a new chunk's name appears: the census must not count it too.
    pub(super) fn note_new(&self, hash: &Sha256Hex) {
        if let Some(set) = self
            .uncounted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            set.insert(*hash);
        }
    }

    /// Bytes currently stored (approximate until the start-up census is done).
    pub fn used_bytes(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Refuses when the store is full already (a new chunk cannot fit).
    pub fn ensure_room(&self) -> Result<(), StoreFull> {
        match self.capacity {
            Some(capacity) if self.used_bytes() >= capacity => Err(StoreFull {
                used: self.used_bytes(),
                capacity,
            }),
            _ => Ok(()),
        }
    }

    /// Counts `len` new bytes against the capacity, or refuses them.
    pub(super) fn reserve(&self, len: u64) -> Result<(), StoreFull> {
        let Some(capacity) = self.capacity else {
            self.used.fetch_add(len, Ordering::Relaxed);
            return Ok(());
        };
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(len).filter(|&total| total <= capacity)
            })
            .map(|_| ())
            .map_err(|used| StoreFull { used, capacity })
    }

    pub(super) fn release(&self, len: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                Some(used.saturating_sub(len))
            });
    }

    /// Counts the chunks stored before open and their bytes by walking the
    /// store, and adds the bytes to the store's own count (for
    /// `--max-store-bytes`); chunks stored meanwhile are counted as they are
    /// stored. Call once after [`Self::open`]; blocking.
    pub fn census_blocking(&self) -> io::Result<(u64, u64)> {
        let walked = self.walk_census();
        let bytes = walked.as_ref().map_or(0, |(_, bytes)| *bytes);
        self.used.fetch_add(bytes, Ordering::Relaxed);
        self.census_prefix.store(256, Ordering::SeqCst);
        *self.uncounted.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.counted.send_replace(true);
        walked
    }

    fn walk_census(&self) -> io::Result<(u64, u64)> {
        let (mut count, mut bytes) = (0, 0);
        for prefix in 0..=u8::MAX {
            // Only chunks count: not a stray file or directory.
            for (hash, meta) in self.objects().list(prefix)? {
                let counted_already = self
                    .uncounted
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_ref()
                    .is_some_and(|set| set.contains(&hash));
                if !counted_already {
                    count += 1;
                    bytes += meta.len;
                }
            }
            self.census_prefix
                .store(u32::from(prefix) + 1, Ordering::SeqCst);
        }
        Ok((count, bytes))
    }
}
