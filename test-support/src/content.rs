//! Deterministic, incompressible test content: one xorshift64 stream per
//! seed, so different seeds never share a chunk and a test can make the
//! same bytes again to check what it reads back. In memory for small files
//! ([`random_bytes`]), in blocks for large ones ([`Content`],
//! [`write_random_file`]): the blocks of a seed, joined, are exactly its
//! [`random_bytes`].

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use sf_protocol::Sha256Hex;
use sha2::{Digest, Sha256};

/// The xorshift64 generator behind every helper here.
#[derive(Debug, Clone)]
pub struct Noise {
    state: u64,
}

impl Noise {
    pub fn new(seed: u64) -> Self {
        Self {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        }
    }

    /// Fills `block` with the next bytes of the stream (eight per step, the
    /// last step cut short), so blocks of a multiple of 8 bytes join up
    /// into the same stream however they are cut.
    pub fn fill(&mut self, block: &mut [u8]) {
        for word in block.chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            word.copy_from_slice(&self.state.to_le_bytes()[..word.len()]);
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        self.fill(&mut bytes);
        u64::from_le_bytes(bytes)
    }
}

/// `len` pseudo-random bytes for `seed`, in memory: for small files.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    Noise::new(seed).fill(&mut bytes);
    bytes
}

/// The bytes of [`random_bytes`]`(seed, len)` as blocks of at most
/// [`Content::BLOCK`] bytes, so arbitrarily large content never sits in
/// memory.
pub struct Content {
    noise: Noise,
    remaining: u64,
}

impl Content {
    pub const BLOCK: usize = 64 * 1024;

    pub fn new(seed: u64, len: u64) -> Self {
        Self {
            noise: Noise::new(seed),
            remaining: len,
        }
    }

    /// The next block (at most `BLOCK` bytes), or `None` at the end.
    pub fn next_block(&mut self) -> Option<Vec<u8>> {
        if self.remaining == 0 {
            return None;
        }
        let n = (self.remaining as usize).min(Self::BLOCK);
        self.remaining -= n as u64;
        let mut block = vec![0u8; n];
        self.noise.fill(&mut block);
        Some(block)
    }

    /// The whole content in memory: for small files only.
    pub fn to_vec(seed: u64, len: u64) -> Vec<u8> {
        random_bytes(seed, len as usize)
    }
}

impl Iterator for Content {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        self.next_block()
    }
}

/// Writes the `len` bytes of `seed` at `path` in 1 MiB blocks (never the
/// whole file in memory), creating parent folders, fsyncs, and returns
/// their sha256.
pub fn write_random_file(path: &Path, seed: u64, len: u64) -> Sha256Hex {
    const BLOCK: usize = 1 << 20;
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("mkdir for a random file");
    }
    let mut file = io::BufWriter::with_capacity(
        BLOCK,
        fs::File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display())),
    );
    let mut noise = Noise::new(seed);
    let mut hasher = Sha256::new();
    let mut block = vec![0u8; BLOCK];
    let mut left = len;
    while left > 0 {
        let n = (left as usize).min(BLOCK);
        noise.fill(&mut block[..n]);
        hasher.update(&block[..n]);
        file.write_all(&block[..n]).expect("write a random file");
        left -= n as u64;
    }
    let file = file.into_inner().expect("flush a random file");
    file.sync_all().expect("fsync a random file");
    Sha256Hex::from(hasher)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_is_the_same_stream() {
        let len = 3 * Content::BLOCK + 13;
        let whole = random_bytes(5, len);
        let blocks: Vec<u8> = Content::new(5, len as u64).flatten().collect();
        assert_eq!(blocks, whole);
        assert_eq!(Content::to_vec(5, len as u64), whole);
        assert_eq!(&random_bytes(5, 13)[..], &whole[..13]);
        assert_ne!(random_bytes(6, 64), whole[..64]);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/file.bin");
        let sha = write_random_file(&path, 5, len as u64);
        assert_eq!(fs::read(&path).unwrap(), whole);
        assert_eq!(sha, Sha256Hex::of(&whole));
    }

    /// The stream the suites were written against (the old copies all made
    /// these bytes for seed 1).
    #[test]
    fn the_stream_is_stable() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15 | 1;
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        assert_eq!(random_bytes(1, 8), state.to_le_bytes());
    }
}
