//! Verifying a commit's content: that the listed chunks, concatenated in
//! order, are the file the commit claims. A chunk listed more than once is
//! read from the store once and hashed again from memory (up to a bound), so a
//! list that repeats a chunk costs what its declared size costs, no more.

use std::collections::HashMap;
use std::io;

use sf_protocol::Sha256Hex;
use sf_protocol::chunking::{ChunkRef, MAX_CHUNK_SIZE};
use sha2::{Digest, Sha256};

use super::ChunkStore;

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
    /// concatenate to `sha256`. Reads each distinct chunk once while the
    /// repeat budget lasts, a few ahead of the hashing (see
    /// `objects::Objects::read_many`). Blocking.
    pub fn verify_blocking(
        &self,
        chunks: &[ChunkRef],
        sha256: &Sha256Hex,
    ) -> Result<(), VerifyError> {
        let mut listed: HashMap<Sha256Hex, u32> = HashMap::new();
        for chunk in chunks {
            *listed.entry(chunk.hash).or_default() += 1;
        }
        // Which listings are read and which are hashed again from memory is
        // decided up front, so the reads can run ahead.
        let mut kept: HashMap<Sha256Hex, Vec<u8>> = HashMap::new();
        let mut will_keep = std::collections::HashSet::new();
        let mut kept_bytes = 0u64;
        let mut reads = Vec::new();
        let mut keep_after_read = Vec::with_capacity(chunks.len());
        for chunk in chunks {
            if will_keep.contains(&chunk.hash) {
                keep_after_read.push(None);
                continue;
            }
            let keep = listed[&chunk.hash] > 1 && kept_bytes + chunk.len <= REPEAT_CACHE_BYTES;
            if keep {
                kept_bytes += chunk.len;
                will_keep.insert(chunk.hash);
            }
            reads.push(chunk.hash);
            keep_after_read.push(Some(keep));
        }
        let mut read = self.objects().read_many(reads, MAX_CHUNK_SIZE as u64 + 1);
        let mut whole = Sha256::new();
        for (chunk, keep) in chunks.iter().zip(keep_after_read) {
            let Some(keep) = keep else {
                whole.update(&kept[&chunk.hash]);
                continue;
            };
            let (data, tag) = match read.next() {
                Some(Ok(Some(found))) => found,
                Some(Ok(None)) => return Err(VerifyError::Missing(vec![chunk.hash])),
                Some(Err(err)) => return Err(err.into()),
                None => {
                    return Err(io::Error::other("the store read fewer chunks than asked").into());
                }
            };
            if data.len() as u64 != chunk.len {
                // A stored chunk of the wrong length is damaged, unless its
                // bytes are right and the list is what is wrong.
                let actual = data.len() as u64;
                if let Err(super::ChunkReadError::Damaged { hash, .. }) =
                    self.verified(&chunk.hash, Ok(Some((data, tag))))
                {
                    return Err(VerifyError::Missing(vec![hash]));
                }
                return Err(VerifyError::LengthMismatch {
                    hash: chunk.hash,
                    listed: chunk.len,
                    actual,
                });
            }
            whole.update(&data);
            if keep {
                kept.insert(chunk.hash, data);
            }
        }
        let actual = Sha256Hex::from(whole);
        if actual != *sha256 {
            // Either the client listed the wrong chunks, or one stored
            // chunk is damaged: then it is moved aside and the client asked
            // to upload it again (which repairs the store), not blamed.
            drop(read);
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
