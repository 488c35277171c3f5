//! Many changes per request: `POST /v1/batch` (commits and deletes, one
//! outcome each), `POST /v1/chunks/pack` (many chunks up in one body) and
//! `POST /v1/chunks/fetch` (many chunks down in one body). Each pack frame
//! is checked against the name it travels under before anything uses it.

use bytes::{Buf, Bytes, BytesMut};
use reqwest::header;
use sf_protocol::chunking::{Chunk, ChunkRef};
use sf_protocol::v1::{
    BATCH_MAX_OPS, BatchOp, BatchOutcome, BatchRequest, BatchResponse, FetchChunksRequest,
    PACK_HEADER_LEN, decode_pack_header, encode_pack_header,
};
use sf_protocol::{Sha256Hex, SyncPath};

use super::requests::json_body;
use super::{HubClient, HubError};

impl HubClient {
    /// `POST /v1/batch`: `ops` (at most [`BATCH_MAX_OPS`]) in one hub
    /// transaction; one outcome per op, in order.
    pub async fn batch(&self, ops: Vec<BatchOp>) -> Result<Vec<BatchOutcome>, HubError> {
        debug_assert!(ops.len() <= BATCH_MAX_OPS);
        let count = ops.len();
        let request = BatchRequest { ops };
        let resp = self
            .send(self.patient.post(self.url("/v1/batch")).json(&request))
            .await?;
        if !resp.status().is_success() {
            return Err(self.refusal(resp).await);
        }
        let answer: BatchResponse = json_body(resp, "POST /v1/batch").await?;
        if answer.outcomes.len() != count {
            return Err(HubError::Protocol(format!(
                "POST /v1/batch: {} outcomes for {count} operations",
                answer.outcomes.len()
            )));
        }
        // An entry must be the path it answers for: its record is kept
        // under that path.
        for (op, outcome) in request.ops.iter().zip(&answer.outcomes) {
            let about = match outcome {
                BatchOutcome::Done { entry } => Some(entry),
                BatchOutcome::Conflict { current } => current.as_ref(),
                BatchOutcome::Refused { .. } => None,
            };
            if let Some(entry) = about {
                check_entry(op.path(), entry)?;
            }
        }
        Ok(answer.outcomes)
    }

    /// `POST /v1/chunks/pack`: uploads `chunks` in one body, streamed
    /// from their buffers without copying them.
    pub async fn put_pack(&self, chunks: Vec<Chunk>) -> Result<(), HubError> {
        let mut frames: Vec<Result<Bytes, std::io::Error>> = Vec::with_capacity(chunks.len() * 2);
        for chunk in chunks {
            let len = u32::try_from(chunk.data.len())
                .map_err(|_| HubError::Protocol("a chunk longer than 4 GiB".into()))?;
            frames.push(Ok(Bytes::copy_from_slice(&encode_pack_header(
                &chunk.hash,
                len,
            ))));
            frames.push(Ok(Bytes::from(chunk.data)));
        }
        let body = reqwest::Body::wrap_stream(futures_util::stream::iter(frames));
        let resp = self
            .send(
                self.patient
                    .post(self.url("/v1/chunks/pack"))
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .body(body),
            )
            .await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(self.refusal(resp).await)
        }
    }

    /// `POST /v1/chunks/fetch`: the chunks of `wanted`, in order, as they
    /// arrive; see [`PackReader`].
    pub async fn fetch_pack(&self, wanted: &[ChunkRef]) -> Result<PackReader, HubError> {
        let request = FetchChunksRequest {
            chunks: wanted.iter().map(|c| c.hash).collect(),
        };
        let resp = self
            .send(
                self.patient
                    .post(self.url("/v1/chunks/fetch"))
                    .json(&request),
            )
            .await?;
        if !resp.status().is_success() {
            return Err(self.refusal(resp).await);
        }
        Ok(PackReader {
            resp,
            wanted: wanted.to_vec(),
            next: 0,
            buffer: BytesMut::new(),
        })
    }
}

/// The answer to a fetch, read one chunk at a time: memory holds one chunk
/// and what the network handed over with it.
pub struct PackReader {
    resp: reqwest::Response,
    wanted: Vec<ChunkRef>,
    next: usize,
    buffer: BytesMut,
}

impl PackReader {
    /// The next chunk asked for, its bytes checked against its name and
    /// length; `None` after the last one.
    pub async fn next_chunk(&mut self) -> Result<Option<(ChunkRef, Bytes)>, HubError> {
        let Some(&wanted) = self.wanted.get(self.next) else {
            return Ok(None);
        };
        self.fill(PACK_HEADER_LEN).await?;
        let mut header = [0u8; PACK_HEADER_LEN];
        header.copy_from_slice(&self.buffer[..PACK_HEADER_LEN]);
        let (hash, len) = decode_pack_header(&header)
            .map_err(|err| HubError::Protocol(format!("POST /v1/chunks/fetch: {err}")))?;
        if hash != wanted.hash || u64::from(len) != wanted.len {
            return Err(HubError::Protocol(format!(
                "POST /v1/chunks/fetch sent chunk {hash} ({len} bytes) where {} ({} bytes) was \
                 asked for",
                wanted.hash, wanted.len
            )));
        }
        self.buffer.advance(PACK_HEADER_LEN);
        self.fill(len as usize).await?;
        let data = self.buffer.split_to(len as usize).freeze();
        let actual = Sha256Hex::of(&data);
        if actual != hash {
            return Err(HubError::Protocol(format!(
                "chunk {hash} arrived as {len} bytes that hash to {actual}"
            )));
        }
        self.next += 1;
        Ok(Some((wanted, data)))
    }

    /// Reads until the buffer holds `needed` bytes; an answer that ends
    /// first was cut off (the hub stopped, or lost a chunk meanwhile).
    async fn fill(&mut self, needed: usize) -> Result<(), HubError> {
        while self.buffer.len() < needed {
            match self.resp.chunk().await.map_err(HubError::Unreachable)? {
                Some(piece) => self.buffer.extend_from_slice(&piece),
                None => {
                    return Err(HubError::Interrupted(format!(
                        "POST /v1/chunks/fetch ended after {} of {} chunks; asking again",
                        self.next,
                        self.wanted.len()
                    )));
                }
            }
        }
        Ok(())
    }
}

/// A refusal inside a batch answer, as the error the single route's answer
/// would have been.
pub fn refused(error: sf_protocol::v1::ErrorBody) -> HubError {
    HubError::Refused {
        status: error.error.http_status(),
        body: Box::new(error),
    }
}

fn check_entry(path: &SyncPath, entry: &sf_protocol::v1::Entry) -> Result<(), HubError> {
    if entry.path != *path {
        return Err(HubError::Protocol(format!(
            "POST /v1/batch answered for {} about {path}",
            entry.path
        )));
    }
    entry
        .validate()
        .map_err(|err| HubError::Protocol(format!("POST /v1/batch: {err}")))
}
