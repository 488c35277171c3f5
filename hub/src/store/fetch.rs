//! Sending many chunks in one answer (`POST /v1/chunks/fetch`): the chunks
//! asked for, in order, as pack frames (header, then bytes), streamed from
//! the store a piece at a time so memory stays flat however many are asked for.
//!
//! Every chunk is looked up before the answer starts, so a missing one is a
//! clean `404`. Each is read whole and verified before its frame starts
//! (`integrity`); one that turns out damaged, or disappears meanwhile
//! (garbage collection), ends the stream with an error, which the client
//! sees as a truncated body, never as wrong bytes. Asked again, a damaged
//! chunk is missing: a clean `404`.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;
use sf_protocol::Sha256Hex;
use sf_protocol::v1::{PACK_HEADER_LEN, encode_pack_header};

use super::{ChunkReadError, ChunkStore};

/// Bytes read per blocking step: several small chunks, or a piece of a
/// large one.
const PIECE: usize = 64 * 1024;

/// What a fetch will send, once every chunk was found: each chunk with its
/// length, in request order (repeats included).
pub struct FetchPlan {
    chunks: Vec<(Sha256Hex, u64)>,
}

impl FetchPlan {
    /// The whole answer's length: every frame's header and bytes.
    pub fn body_len(&self) -> u64 {
        self.chunks
            .iter()
            .map(|(_, len)| PACK_HEADER_LEN as u64 + len)
            .sum()
    }
}

impl ChunkStore {
    /// Looks up every chunk of `hashes` (each distinct one once): the plan
    /// of the answer, or the first chunk the store lacks. Blocking.
    pub fn plan_fetch_blocking(
        &self,
        hashes: &[Sha256Hex],
    ) -> io::Result<Result<FetchPlan, Sha256Hex>> {
        let mut seen = std::collections::HashSet::with_capacity(hashes.len());
        let distinct: Vec<Sha256Hex> = hashes
            .iter()
            .filter(|h| seen.insert(**h))
            .copied()
            .collect();
        let mut lengths = std::collections::HashMap::with_capacity(distinct.len());
        for (hash, stat) in distinct.iter().zip(self.objects().stat_many(&distinct)?) {
            match stat {
                Some(meta) => lengths.insert(*hash, meta.len),
                None => return Ok(Err(*hash)),
            };
        }
        let chunks = hashes.iter().map(|hash| (*hash, lengths[hash])).collect();
        Ok(Ok(FetchPlan { chunks }))
    }

    /// The answer of a fetch: its frames, read from disk one piece at a time
    /// on a blocking thread.
    pub fn fetch_stream(
        self: &Arc<Self>,
        plan: FetchPlan,
    ) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        let reader = PackReader {
            store: Arc::clone(self),
            chunks: plan.chunks,
            next: 0,
            open: None,
            ahead: std::collections::VecDeque::new(),
        };
        futures_util::stream::try_unfold(Some(reader), |state| async move {
            let Some(mut reader) = state else {
                return Ok(None);
            };
            let (reader, piece) = tokio::task::spawn_blocking(move || {
                let piece = reader.read_piece();
                (reader, piece)
            })
            .await
            .map_err(io::Error::other)?;
            Ok(piece?.map(|bytes| (bytes, Some(reader))))
        })
    }
}

/// Where a fetch's answer is: the next chunk to open, and the one being
/// read with the bytes it still owes.
struct PackReader {
    store: Arc<ChunkStore>,
    chunks: Vec<(Sha256Hex, u64)>,
    next: usize,
    open: Option<OpenChunk>,
    /// Reads of the chunks after `next` already under way, in order, where
    /// the store is worth reading ahead (a bucket's round trips).
    ahead: std::collections::VecDeque<tokio::task::JoinHandle<Result<Bytes, ChunkReadError>>>,
}

/// A verified chunk being sent, and how much of it went out.
struct OpenChunk {
    data: Bytes,
    sent: usize,
}

impl PackReader {
    /// Chunk `next` (named `hash`), verified: read now, or taken from the
    /// reads under way, which are topped up to the store's read-ahead.
    /// Called on a blocking thread.
    fn read_next(&mut self, hash: Sha256Hex) -> Result<Bytes, ChunkReadError> {
        let depth = self.store.objects().read_ahead();
        let runtime = tokio::runtime::Handle::try_current()
            .ok()
            .filter(|_| depth > 0);
        self.next += 1;
        let Some(runtime) = runtime else {
            return self.store.read_verified_blocking(&hash);
        };
        // Reads of chunks `next - 1 ..`, the first of them this one.
        let first = self.next - 1;
        while self.ahead.len() < depth && first + self.ahead.len() < self.chunks.len() {
            let (hash, _) = self.chunks[first + self.ahead.len()];
            let store = Arc::clone(&self.store);
            self.ahead
                .push_back(runtime.spawn_blocking(move || store.read_verified_blocking(&hash)));
        }
        let read = self.ahead.pop_front().expect("a read under way");
        runtime.block_on(read).map_err(|err| ChunkReadError::Io {
            hash,
            source: io::Error::other(err),
        })?
    }

    /// The next piece of the answer (about [`PIECE`] bytes, headers and
    /// chunk bytes across chunk boundaries), or `None` at its end.
    fn read_piece(&mut self) -> io::Result<Option<Bytes>> {
        let mut piece = Vec::with_capacity(PIECE + PACK_HEADER_LEN);
        while piece.len() < PIECE {
            if let Some(open) = &mut self.open {
                let want = (open.data.len() - open.sent).min(PIECE - piece.len());
                piece.extend_from_slice(&open.data[open.sent..open.sent + want]);
                open.sent += want;
                if open.sent == open.data.len() {
                    self.open = None;
                }
                continue;
            }
            let Some(&(hash, len)) = self.chunks.get(self.next) else {
                break;
            };
            let data = self.read_next(hash).map_err(|err| match err {
                ChunkReadError::Missing(_) => io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("chunk {hash} was removed while the pack was sent"),
                ),
                other => other.into(),
            })?;
            if data.len() as u64 != len {
                return Err(io::Error::other(format!(
                    "chunk {hash} changed length while the pack was sent"
                )));
            }
            // Chunks are at most MAX_CHUNK_SIZE bytes: the length fits.
            let header_len = u32::try_from(len).map_err(|_| {
                io::Error::other(format!("chunk {hash} is {len} bytes, too large for a pack"))
            })?;
            piece.extend_from_slice(&encode_pack_header(&hash, header_len));
            self.open = Some(OpenChunk { data, sent: 0 });
        }
        Ok((!piece.is_empty()).then(|| Bytes::from(piece)))
    }
}

#[cfg(test)]
mod tests {
    use futures_util::TryStreamExt;
    use sf_protocol::chunking::Chunk;
    use sf_protocol::v1::decode_pack_header;

    use super::*;

    fn chunk(byte: u8, len: usize) -> Chunk {
        let data = vec![byte; len];
        Chunk {
            hash: Sha256Hex::of(&data),
            data,
        }
    }

    /// Small and large chunks, a repeat, pieces that cross chunk
    /// boundaries: the frames come back in request order, whole.
    #[tokio::test]
    async fn fetched_frames_are_the_chunks_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(ChunkStore::open(dir.path()).unwrap());
        let chunks = [chunk(1, 10), chunk(2, 3 * PIECE + 7), chunk(3, PIECE - 20)];
        for c in &chunks {
            store.put_blocking(c).unwrap();
        }
        let order = [0, 1, 0, 2, 2];
        let hashes: Vec<Sha256Hex> = order.iter().map(|&i| chunks[i].hash).collect();
        let plan = store.plan_fetch_blocking(&hashes).unwrap().unwrap();
        let expected_len = plan.body_len();
        let pieces: Vec<Bytes> = store.fetch_stream(plan).try_collect().await.unwrap();
        let body = pieces.concat();
        assert_eq!(body.len() as u64, expected_len);
        let mut rest = &body[..];
        for &i in &order {
            let header: [u8; PACK_HEADER_LEN] = rest[..PACK_HEADER_LEN].try_into().unwrap();
            let (hash, len) = decode_pack_header(&header).unwrap();
            assert_eq!(hash, chunks[i].hash);
            let end = PACK_HEADER_LEN + len as usize;
            assert_eq!(&rest[PACK_HEADER_LEN..end], &chunks[i].data[..]);
            rest = &rest[end..];
        }
        assert!(rest.is_empty());

        let absent = Sha256Hex::of(b"absent");
        let missing = store
            .plan_fetch_blocking(&[chunks[0].hash, absent])
            .unwrap();
        assert_eq!(missing.err(), Some(absent));
    }
}
