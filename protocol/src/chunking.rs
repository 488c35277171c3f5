//! How files are cut into content-defined chunks.
//!
//! Hub and agents must cut identical bytes identically, or deduplication
//! across them stops working: these parameters are part of the protocol and
//! changing them is a protocol change.

use std::io::Read;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Sha256Hex;

/// No chunk is smaller than this, except the last one of a file.
pub const MIN_CHUNK_SIZE: usize = 128 * 1024;
/// The average chunk size FastCDC aims for. Half a MiB keeps a small edit
/// in a large file cheap (1 MiB overwritten in the middle of a file re-sends
/// about 1.9 MiB, at most 3.5 MiB in trials, against 2.4 and 4.6 MiB with 1
/// MiB chunks) for twice the chunks per file.
pub const AVG_CHUNK_SIZE: usize = 512 * 1024;
/// No chunk is larger than this; the hub rejects larger chunk uploads.
pub const MAX_CHUNK_SIZE: usize = 2 * 1024 * 1024;

/// One chunk of a file, as listed in a commit: its name and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    /// The chunk's name: the SHA-256 of its bytes, under which it is
    /// uploaded (`PUT /v1/chunks/{hash}`) and stored once however many files
    /// hold it.
    pub hash: Sha256Hex,
    /// The chunk's length in bytes: 1 to [`MAX_CHUNK_SIZE`], and at least
    /// [`MIN_CHUNK_SIZE`] for every chunk of a file but its last.
    pub len: u64,
}

/// Why a chunk list cannot be the chunking of a file of the declared size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkListError {
    /// More chunks than [`max_chunks_for`] the size: some chunk but the last
    /// would have to be shorter than [`MIN_CHUNK_SIZE`].
    #[error("a file of {size} bytes has at most {max} chunks; {listed} are listed")]
    TooMany {
        /// The declared file size, in bytes.
        size: u64,
        /// How many chunks the list has.
        listed: usize,
        /// The most chunks `size` bytes can be cut into.
        max: u64,
    },
    /// A chunk of length 0, over [`MAX_CHUNK_SIZE`], or (not the last)
    /// under [`MIN_CHUNK_SIZE`].
    #[error(
        "chunk {index} ({hash}) has length {len}; every chunk is at most {MAX_CHUNK_SIZE} bytes \
         and every chunk but the last at least {MIN_CHUNK_SIZE}"
    )]
    BadLength {
        /// The chunk's position in the list, from 0.
        index: usize,
        /// The chunk's name.
        hash: Sha256Hex,
        /// Its listed length, in bytes.
        len: u64,
    },
    /// The lengths are each fine but do not add up to the declared size.
    #[error("the chunk lengths add up to {listed} bytes, not to the size {size} given")]
    SizeMismatch {
        /// The sum of the listed lengths (saturating), in bytes.
        listed: u64,
        /// The declared file size, in bytes.
        size: u64,
    },
}

/// The most chunks a file of `size` bytes can be cut into: every chunk but
/// the last holds at least [`MIN_CHUNK_SIZE`] bytes.
pub fn max_chunks_for(size: u64) -> u64 {
    size.div_ceil(MIN_CHUNK_SIZE as u64)
}

/// Checks that `chunks` could be this protocol's chunking of `size` bytes:
/// not more chunks than the size allows, each chunk 1 to [`MAX_CHUNK_SIZE`]
/// bytes and every one but the last at least [`MIN_CHUNK_SIZE`], lengths
/// summing to `size`. Cheap (no chunk is read), so a hub can refuse an
/// expensive commit and an agent a hostile entry before doing any work.
pub fn check_chunk_list(chunks: &[ChunkRef], size: u64) -> Result<(), ChunkListError> {
    let max = max_chunks_for(size);
    if chunks.len() as u64 > max {
        return Err(ChunkListError::TooMany {
            size,
            listed: chunks.len(),
            max,
        });
    }
    let mut listed: u64 = 0;
    let last = chunks.len().saturating_sub(1);
    for (index, chunk) in chunks.iter().enumerate() {
        let min = if index == last {
            1
        } else {
            MIN_CHUNK_SIZE as u64
        };
        if chunk.len < min || chunk.len > MAX_CHUNK_SIZE as u64 {
            return Err(ChunkListError::BadLength {
                index,
                hash: chunk.hash,
                len: chunk.len,
            });
        }
        // Cannot overflow: at most size/128Ki chunks of at most 2 MiB each.
        listed = listed.saturating_add(chunk.len);
    }
    if listed != size {
        return Err(ChunkListError::SizeMismatch { listed, size });
    }
    Ok(())
}

/// A chunk cut from a stream, with its bytes.
pub struct Chunk {
    /// The SHA-256 of `data`: the chunk's name on the wire.
    pub hash: Sha256Hex,
    /// The chunk's bytes, 1 to [`MAX_CHUNK_SIZE`] of them.
    pub data: Vec<u8>,
}

impl Chunk {
    /// The chunk as a commit lists it: its name and length.
    pub fn to_ref(&self) -> ChunkRef {
        ChunkRef {
            hash: self.hash,
            len: self.data.len() as u64,
        }
    }
}

/// Cuts `source` into chunks with the protocol's parameters, one at a time:
/// memory stays at one chunk however long the stream is.
pub struct Chunker<R: Read> {
    inner: fastcdc::v2020::StreamCDC<R>,
    whole: Sha256,
    size: u64,
}

impl<R: Read> Chunker<R> {
    /// A chunker over `source` with the protocol's parameters. Nothing is
    /// read until the first chunk is asked for.
    pub fn new(source: R) -> Self {
        Self {
            inner: fastcdc::v2020::StreamCDC::new(
                source,
                MIN_CHUNK_SIZE,
                AVG_CHUNK_SIZE,
                MAX_CHUNK_SIZE,
            ),
            whole: Sha256::new(),
            size: 0,
        }
    }

    /// The sha256 and size of everything chunked so far; call after the last
    /// chunk for the whole stream's digest.
    pub fn finish(self) -> (Sha256Hex, u64) {
        (self.whole.into(), self.size)
    }
}

impl<R: Read> Iterator for Chunker<R> {
    type Item = std::io::Result<Chunk>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.inner.next()? {
            Ok(cut) => {
                self.whole.update(&cut.data);
                self.size += cut.data.len() as u64;
                Some(Ok(Chunk {
                    hash: Sha256Hex::of(&cut.data),
                    data: cut.data,
                }))
            }
            Err(fastcdc::v2020::Error::IoError(err)) => Some(Err(err)),
            Err(other) => Some(Err(std::io::Error::other(other.to_string()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    #[test]
    fn chunks_concatenate_to_the_input_within_bounds() {
        let data = pseudo_random(9 * 1024 * 1024 + 17, 7);
        let mut chunker = Chunker::new(&data[..]);
        let mut joined = Vec::new();
        let mut sizes = Vec::new();
        for chunk in chunker.by_ref() {
            let chunk = chunk.unwrap();
            assert_eq!(chunk.hash, Sha256Hex::of(&chunk.data));
            sizes.push(chunk.data.len());
            joined.extend_from_slice(&chunk.data);
        }
        assert_eq!(joined, data);
        assert!(sizes.len() > 2, "{sizes:?}");
        for size in &sizes[..sizes.len() - 1] {
            assert!(
                (MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(size),
                "{sizes:?}"
            );
        }
        assert_eq!(chunker.finish(), (Sha256Hex::of(&data), data.len() as u64));
    }

    #[test]
    fn an_edit_in_the_middle_changes_few_chunks() {
        let data = pseudo_random(16 * 1024 * 1024, 3);
        let mut edited = data.clone();
        for byte in &mut edited[8 * 1024 * 1024..8 * 1024 * 1024 + 100] {
            *byte = byte.wrapping_add(1);
        }
        let names = |bytes: &[u8]| -> Vec<Sha256Hex> {
            Chunker::new(bytes).map(|c| c.unwrap().hash).collect()
        };
        let before = names(&data);
        let after = names(&edited);
        let changed = after.iter().filter(|h| !before.contains(h)).count();
        assert!(changed <= 2, "{changed} of {} chunks changed", after.len());
    }

    #[test]
    fn chunk_lists_are_bounded_by_the_size() {
        let chunk = |len: u64| ChunkRef {
            hash: Sha256Hex::empty(),
            len,
        };
        let min = MIN_CHUNK_SIZE as u64;
        let max = MAX_CHUNK_SIZE as u64;
        assert_eq!(check_chunk_list(&[], 0), Ok(()));
        assert_eq!(check_chunk_list(&[chunk(5)], 5), Ok(()));
        assert_eq!(check_chunk_list(&[chunk(min), chunk(1)], min + 1), Ok(()));
        assert_eq!(check_chunk_list(&[chunk(max), chunk(max)], 2 * max), Ok(()));
        assert!(matches!(
            check_chunk_list(&[chunk(1), chunk(1)], 2),
            Err(ChunkListError::TooMany { .. })
        ));
        assert!(matches!(
            check_chunk_list(&[chunk(min - 1), chunk(min + 1)], 2 * min),
            Err(ChunkListError::BadLength { index: 0, .. })
        ));
        assert!(matches!(
            check_chunk_list(&[chunk(max + 1)], max + 1),
            Err(ChunkListError::BadLength { index: 0, .. })
        ));
        assert!(matches!(
            check_chunk_list(&[chunk(0)], 1),
            Err(ChunkListError::BadLength { .. })
        ));
        assert!(matches!(
            check_chunk_list(&[chunk(5)], 6),
            Err(ChunkListError::SizeMismatch { listed: 5, size: 6 })
        ));
        assert!(matches!(
            check_chunk_list(&[], 6),
            Err(ChunkListError::SizeMismatch { .. })
        ));
        // A huge declared size cannot make the count overflow anything.
        assert!(check_chunk_list(&[chunk(max); 3], u64::MAX).is_err());
    }

    #[test]
    fn empty_input_has_no_chunks() {
        let mut chunker = Chunker::new(&b""[..]);
        assert!(chunker.next().is_none());
        assert_eq!(chunker.finish(), (Sha256Hex::empty(), 0));
    }
}
