//! Verifying a commit's content: that the listed chunks, concatenated in
//! order, are the file the commit claims. A chunk listed more than once is
//! read from disk once and hashed again from memory (up to a bound), so a
//! list that repeats a chunk costs what its declared size costs, no more.

use std::collections::HashMap;
use std::io::{self, Read};

use sf_protocol::Sha256Hex;
use sf_protocol::chunking::ChunkRef;
use sha2::{Digest, Sha256};

use super::{ChunkStore, read_all};

/// Bytes of repeated chunks one verification keeps in memory.
const REPEAT_CACHE_BYTES: u64 = 32 << 20;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the hub does not hold {} of the listed chunks; upload them first", .0.len())]
    Missing(Vec<Sha256Hex>),
    #[error("chunk {hash} is {actual} bytes, not {listed} as listed")]
    LengthMismatch {
        hash: Sha256Hex,
        listed: u64,
        actual: u64,
    },
    #[error("the chunks concatenate to {actual}, not to the sha256 {expected} given")]
    HashMismatch {
        expected: Sha256Hex,
        actual: Sha256Hex,
    },
    #[error("reading chunks failed: {0}")]
    Io(#[from] io::Error),
}

impl ChunkStore {
    /// Checks that `chunks` are all stored, have their listed lengths and
    /// concatenate to `sha256`. Reads at most each listed length (plus one
    /// byte) and opens each distinct chunk once while the repeat budget
    /// lasts. Blocking.
    pub fn verify_blocking(
        &self,
        chunks: &[ChunkRef],
        sha256: &Sha256Hex,
    ) -> Result<(), VerifyError> {
        let mut listed: HashMap<Sha256Hex, u32> = HashMap::new();
        for chunk in chunks {
            *listed.entry(chunk.hash).or_default() += 1;
        }
        let mut repeated: HashMap<Sha256Hex, Vec<u8>> = HashMap::new();
        let mut kept_bytes = 0u64;
        let mut whole = Sha256::new();
        let mut buffer = vec![0u8; 256 * 1024];
        for chunk in chunks {
            if let Some(bytes) = repeated.get(&chunk.hash) {
                whole.update(bytes);
                continue;
            }
            let Some(file) = self.open_chunk_blocking(&chunk.hash)? else {
                return Err(VerifyError::Missing(vec![chunk.hash]));
            };
            let on_disk = file.metadata()?.len();
            let keep = listed[&chunk.hash] > 1 && kept_bytes + chunk.len <= REPEAT_CACHE_BYTES;
            let mut kept = Vec::new();
            // One byte past the listed length is enough to see it is wrong.
            let read = read_all(
                file.take(chunk.len.saturating_add(1)),
                &mut buffer,
                |bytes| {
                    whole.update(bytes);
                    if keep {
                        kept.extend_from_slice(bytes);
                    }
                },
            )?;
            if read != chunk.len {
                // A stored chunk of the wrong length is damaged, unless its
                // bytes are right and the list is what is wrong.
                if let Err(super::ChunkReadError::Damaged { hash, .. }) =
                    self.read_verified_blocking(&chunk.hash)
                {
                    return Err(VerifyError::Missing(vec![hash]));
                }
                return Err(VerifyError::LengthMismatch {
                    hash: chunk.hash,
                    listed: chunk.len,
                    actual: on_disk,
                });
            }
            if keep {
                kept_bytes += chunk.len;
                repeated.insert(chunk.hash, kept);
            }
        }
        let actual = Sha256Hex::from(whole);
        if actual != *sha256 {
            // Either the client listed the wrong chunks, or one stored
            // chunk is damaged: then it is moved aside and the client asked
            // to upload it again (which repairs the store), not blamed.
            let damaged = self.damaged_among_blocking(listed.keys());
            if !damaged.is_empty() {
                return Err(VerifyError::Missing(damaged));
            }
            return Err(VerifyError::HashMismatch {
                expected: *sha256,
                actual,
            });
        }
        Ok(())
    }
}

impl ChunkStore {
    /// The chunks among `hashes` whose stored bytes do not hash to their
    /// name, each moved out of the store on the way (see `integrity`).
    fn damaged_among_blocking<'a>(
        &self,
        hashes: impl Iterator<Item = &'a Sha256Hex>,
    ) -> Vec<Sha256Hex> {
        hashes
            .filter(|hash| {
                matches!(
                    self.read_verified_blocking(hash),
                    Err(super::ChunkReadError::Damaged { .. })
                )
            })
            .copied()
            .collect()
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

    #[test]
    fn repeated_chunks_verify_and_hash_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChunkStore::open(dir.path()).unwrap();
        let (a, b) = (chunk(1, 1000), chunk(2, 10));
        store.put_blocking(&a).unwrap();
        store.put_blocking(&b).unwrap();
        let list = [a.to_ref(), a.to_ref(), b.to_ref(), a.to_ref()];
        let mut content = Vec::new();
        for piece in [&a, &a, &b, &a] {
            content.extend_from_slice(&piece.data);
        }
        store
            .verify_blocking(&list, &Sha256Hex::of(&content))
            .unwrap();
        // The same chunks in another order are other content.
        let reordered = [a.to_ref(), b.to_ref(), a.to_ref(), a.to_ref()];
        assert!(matches!(
            store.verify_blocking(&reordered, &Sha256Hex::of(&content)),
            Err(VerifyError::HashMismatch { .. })
        ));
        let short = [ChunkRef {
            hash: a.hash,
            len: 999,
        }];
        assert!(matches!(
            store.verify_blocking(&short, &Sha256Hex::of(&a.data[..999])),
            Err(VerifyError::LengthMismatch { actual: 1000, .. })
        ));
    }

    /// A commit over a chunk damaged on disk is told the chunk is missing
    /// (so the client uploads it again), not that its content is wrong.
    #[test]
    fn a_damaged_chunk_is_missing_to_a_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChunkStore::open(dir.path()).unwrap();
        let (a, b) = (chunk(1, 1000), chunk(2, 10));
        store.put_blocking(&a).unwrap();
        store.put_blocking(&b).unwrap();
        let content = [&a.data[..], &b.data[..]].concat();
        let list = [a.to_ref(), b.to_ref()];
        std::fs::write(store.chunk_path(&b.hash), b"0123456789").unwrap();
        match store.verify_blocking(&list, &Sha256Hex::of(&content)) {
            Err(VerifyError::Missing(missing)) => assert_eq!(missing, vec![b.hash]),
            other => panic!("expected the damaged chunk as missing, got {other:?}"),
        }
        assert_eq!(store.wanted(), vec![b.hash]);
        store.put_blocking(&b).unwrap();
        store
            .verify_blocking(&list, &Sha256Hex::of(&content))
            .unwrap();
    }
}
