//! Streaming stored content out: byte ranges of a committed version and
//! single chunks, each chunk read whole and verified (see `integrity`)
//! before any of its bytes are sent.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt, stream};
use sf_protocol::Sha256Hex;
use sf_protocol::chunking::ChunkRef;

use super::{ChunkReadError, ChunkStore};

impl ChunkStore {
    /// Streams bytes `start..end` of the content made of `chunks`, a
    /// committed version's. Each chunk is read whole and verified before
    /// any of its bytes are sent (the next one is read meanwhile), so
    /// memory stays at two chunks. The first is read before this returns: a
    /// damaged or missing one is an error the caller can answer with a
    /// status. A later one ends the stream with an error, so the client
    /// sees a cut-off body, never wrong bytes. A missing chunk becomes
    /// wanted: a version references it.
    pub async fn read_range(
        self: &Arc<Self>,
        chunks: &[ChunkRef],
        start: u64,
        end: u64,
    ) -> Result<impl Stream<Item = io::Result<Bytes>> + Send + 'static, ChunkReadError> {
        let mut segments = Vec::new();
        let mut chunk_start = 0u64;
        for chunk in chunks {
            let chunk_end = chunk_start + chunk.len;
            if chunk_end > start && chunk_start < end {
                let skip = start.saturating_sub(chunk_start);
                let take = end.min(chunk_end) - chunk_start.max(start);
                segments.push((chunk.hash, skip, take));
            }
            chunk_start = chunk_end;
        }
        let read = {
            let store = Arc::clone(self);
            move |(hash, skip, take): (Sha256Hex, u64, u64)| {
                let store = Arc::clone(&store);
                async move {
                    tokio::task::spawn_blocking(move || {
                        store.read_segment_blocking(&hash, skip, take)
                    })
                    .await
                    .map_err(|err| ChunkReadError::Io {
                        hash,
                        source: io::Error::other(err),
                    })?
                }
            }
        };
        let mut segments = segments.into_iter();
        let first = match segments.next() {
            Some(segment) => Some(read(segment).await?),
            None => None,
        };
        let rest = stream::iter(segments)
            .map(read)
            .buffered(2)
            .map_err(io::Error::from);
        Ok(stream::iter(first.map(Ok)).chain(rest))
    }

    /// Bytes `skip..skip + take` of chunk `hash`, verified whole first.
    fn read_segment_blocking(
        &self,
        hash: &Sha256Hex,
        skip: u64,
        take: u64,
    ) -> Result<Bytes, ChunkReadError> {
        let data = self.read_verified_blocking(hash).inspect_err(|err| {
            if matches!(err, ChunkReadError::Missing(_)) {
                self.want_missing(hash);
            }
        })?;
        let (from, to) = (skip as usize, skip.saturating_add(take) as usize);
        if to > data.len() {
            // Its name matched, so the version's chunk list is what is wrong.
            return Err(ChunkReadError::Io {
                hash: *hash,
                source: io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the version lists chunk {hash} as longer than its {} bytes",
                        data.len()
                    ),
                ),
            });
        }
        Ok(data.slice(from..to))
    }

    /// One whole chunk, verified; `None` when the hub lacks it.
    pub async fn read_chunk(
        self: &Arc<Self>,
        hash: &Sha256Hex,
    ) -> Result<Option<Bytes>, ChunkReadError> {
        let store = Arc::clone(self);
        let hash = *hash;
        let read = tokio::task::spawn_blocking(move || store.read_verified_blocking(&hash))
            .await
            .map_err(|err| ChunkReadError::Io {
                hash,
                source: io::Error::other(err),
            })?;
        match read {
            Ok(data) => Ok(Some(data)),
            Err(ChunkReadError::Missing(_)) => Ok(None),
            Err(err) => Err(err),
        }
    }
}
