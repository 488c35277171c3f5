//! Turning a byte stream into stored chunks: used by the legacy upload, whose
//! clients send whole files. The stream is cut and stored as it arrives, so
//! memory stays at one chunk however large the file. A failed ingest names
//! the chunks it newly stored, so the caller can remove them again.

use std::io::{self, Read};
use std::sync::Arc;

use sf_protocol::Sha256Hex;
use sf_protocol::chunking::{ChunkRef, Chunker};
use tokio::io::AsyncRead;
use tokio_util::io::SyncIoBridge;

use crate::service::RemovalMark;
use crate::store::{ChunkStore, PutError, StoreFull, Stored};

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
    /// Where chunk removals stood when the ingest started: the commit
    /// re-checks the chunks if any were removed since.
    pub removals: RemovalMark,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the file is larger than the hub's limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("reading the upload failed: {0}")]
    Read(io::Error),
    #[error(transparent)]
    Full(StoreFull),
    #[error("storing the upload failed: {0}")]
    Store(io::Error),
    /// The blocking ingest panicked (a bug), or was dropped at shutdown.
    #[error(transparent)]
    Worker(tokio::task::JoinError),
}

impl From<PutError> for IngestError {
    fn from(err: PutError) -> Self {
        match err {
            PutError::Full(full) => IngestError::Full(full),
            PutError::Io(io) => IngestError::Store(io),
            PutError::Worker(worker) => IngestError::Worker(worker),
            // The hub's own chunker makes neither bad hashes nor odd sizes.
            other => IngestError::Store(io::Error::other(other.to_string())),
        }
    }
}

/// An ingest that stopped, and the chunks it had newly stored by then.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct IngestFailed {
    pub reason: IngestError,
    pub created: Vec<ChunkRef>,
}

/// Reads `source` to its end, storing its chunks.
pub async fn ingest<R>(
    store: Arc<ChunkStore>,
    source: R,
    limit: u64,
    removals: RemovalMark,
) -> Result<Ingested, IngestFailed>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let bridge = SyncIoBridge::new(source);
    tokio::task::spawn_blocking(move || ingest_blocking(&store, bridge, limit, removals))
        .await
        .map_err(|e| IngestFailed {
            reason: IngestError::Worker(e),
            created: Vec::new(),
        })?
}

fn ingest_blocking(
    store: &ChunkStore,
    source: impl Read,
    limit: u64,
    removals: RemovalMark,
) -> Result<Ingested, IngestFailed> {
    let mut chunker = Chunker::new(Limited {
        inner: source,
        remaining: limit,
    });
    let mut chunks = Vec::new();
    let mut created = Vec::new();
    let (mut deduplicated_bytes, mut new_bytes) = (0, 0);
    for chunk in chunker.by_ref() {
        let stored = chunk
            .map_err(|err| {
                if err.get_ref().is_some_and(|inner| inner.is::<OverLimit>()) {
                    IngestError::TooLarge { limit }
                } else {
                    IngestError::Read(err)
                }
            })
            .and_then(|chunk| Ok((store.put_blocking(&chunk)?, chunk)));
        let (stored, chunk) = match stored {
            Ok(stored) => stored,
            Err(reason) => return Err(IngestFailed { reason, created }),
        };
        match stored {
            Stored::New => {
                created.push(chunk.to_ref());
                new_bytes += chunk.data.len() as u64;
            }
            Stored::AlreadyPresent => deduplicated_bytes += chunk.data.len() as u64,
        }
        chunks.push(chunk.to_ref());
    }
    let new_chunks = created.len() as u64;
    let (sha256, size) = chunker.finish();
    Ok(Ingested {
        sha256,
        size,
        chunks,
        deduplicated_bytes,
        new_chunks,
        new_bytes,
        removals,
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
