//! Turning a byte stream into stored chunks: used by the legacy upload, whose
//! clients send whole files. The stream is cut and stored as it arrives, so
//! memory stays at one chunk however large the file.

use std::io::{self, Read};
use std::sync::Arc;

use sf_protocol::Sha256Hex;
use sf_protocol::chunking::{ChunkRef, Chunker};
use tokio::io::AsyncRead;
use tokio_util::io::SyncIoBridge;

use crate::store::{ChunkStore, Stored};

/// A stream stored as chunks.
#[derive(Debug)]
pub struct Ingested {
    pub sha256: Sha256Hex,
    pub size: u64,
    pub chunks: Vec<ChunkRef>,
    /// Bytes that did not need storing because identical chunks were present.
    pub deduplicated_bytes: u64,
    /// Chunks newly written, and their bytes.
    pub new_chunks: u64,
    pub new_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the file is larger than the hub's limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("reading the upload failed: {0}")]
    Read(io::Error),
    #[error("storing the upload failed: {0}")]
    Store(io::Error),
}

/// Reads `source` to its end, storing its chunks.
pub async fn ingest<R>(
    store: Arc<ChunkStore>,
    source: R,
    limit: u64,
) -> Result<Ingested, IngestError>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let bridge = SyncIoBridge::new(source);
    tokio::task::spawn_blocking(move || ingest_blocking(&store, bridge, limit))
        .await
        .map_err(|e| IngestError::Store(io::Error::other(e)))?
}

fn ingest_blocking(
    store: &ChunkStore,
    source: impl Read,
    limit: u64,
) -> Result<Ingested, IngestError> {
    let mut chunker = Chunker::new(Limited {
        inner: source,
        remaining: limit,
    });
    let mut chunks = Vec::new();
    let (mut deduplicated_bytes, mut new_chunks, mut new_bytes) = (0, 0, 0);
    for chunk in chunker.by_ref() {
        let chunk = chunk.map_err(|err| {
            if err.get_ref().is_some_and(|inner| inner.is::<OverLimit>()) {
                IngestError::TooLarge { limit }
            } else {
                IngestError::Read(err)
            }
        })?;
        match store.put_blocking(&chunk).map_err(IngestError::Store)? {
            Stored::New => {
                new_chunks += 1;
                new_bytes += chunk.data.len() as u64;
            }
            Stored::AlreadyPresent => deduplicated_bytes += chunk.data.len() as u64,
        }
        chunks.push(chunk.to_ref());
    }
    let (sha256, size) = chunker.finish();
    Ok(Ingested {
        sha256,
        size,
        chunks,
        deduplicated_bytes,
        new_chunks,
        new_bytes,
    })
}

#[derive(Debug)]
struct OverLimit;

impl std::fmt::Display for OverLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("upload exceeds the size limit")
    }
}

impl std::error::Error for OverLimit {}

/// Fails the read once more than `limit` bytes have come through.
struct Limited<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.remaining {
            return Err(io::Error::other(OverLimit));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}
