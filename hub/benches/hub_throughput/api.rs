//! The requests the benchmark's clients make, as an agent or the original
//! client makes them: the v1 flow (`/v1/chunks/missing`, `PUT
//! /v1/chunks/{hash}`, `/v1/commit`), its batched form (`/v1/chunks/pack`,
//! `/v1/batch`), the legacy upload, and downloads hashed as they arrive.
//! Uploads stream from disk: the large file is never in memory.
//!
//! The `scale_out` bench includes this file too (`#[path]`); the crate
//! that includes it defines `KIB`, `MISSING_BATCH` and `MTIME_NS`.

use std::io;
use std::path::Path;

use anyhow::{Result, bail, ensure};
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use reqwest::StatusCode;
use reqwest::header::CONTENT_LENGTH;
use sf_protocol::Sha256Hex;
use sf_protocol::chunking::{Chunk, ChunkRef, Chunker};
use sf_protocol::legacy::{META_LENGTH_HEADER, UploadResponse};
use sf_protocol::v1::{
    BatchOp, BatchOutcome, BatchRequest, BatchResponse, CommitRequest, Entry, EntryKind,
    MissingChunksRequest, MissingChunksResponse, PackResponse, encode_pack_header,
};
use sha2::{Digest, Sha256};
use tokio_util::io::ReaderStream;

use crate::{KIB, MISSING_BATCH, MTIME_NS};

pub async fn missing_chunks(
    http: &reqwest::Client,
    base: &str,
    chunks: Vec<Sha256Hex>,
) -> Result<Vec<Sha256Hex>> {
    let resp = http
        .post(format!("{base}/v1/chunks/missing"))
        .json(&MissingChunksRequest { chunks })
        .send()
        .await?;
    let resp = check(resp, "POST /v1/chunks/missing").await?;
    Ok(resp.json::<MissingChunksResponse>().await?.missing)
}

pub async fn put_chunk(
    http: &reqwest::Client,
    base: &str,
    hash: Sha256Hex,
    data: Vec<u8>,
) -> Result<()> {
    let resp = http
        .put(format!("{base}/v1/chunks/{hash}"))
        .body(data)
        .send()
        .await?;
    check(resp, "PUT /v1/chunks").await?;
    Ok(())
}

pub async fn commit(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    sha256: Sha256Hex,
    size: u64,
    chunks: Vec<ChunkRef>,
) -> Result<Entry> {
    let request = CommitRequest {
        path: path.parse()?,
        kind: EntryKind::File,
        base_version: 0,
        sha256,
        size,
        mtime_ns: MTIME_NS,
        executable: false,
        chunks,
        origin: "bench".into(),
    };
    let resp = http
        .post(format!("{base}/v1/commit"))
        .json(&request)
        .send()
        .await?;
    Ok(check(resp, "POST /v1/commit").await?.json().await?)
}

/// One file through the v1 flow, as an agent does it: which chunks are
/// missing, upload those, commit.
pub async fn commit_small(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    bytes: &[u8],
) -> Result<()> {
    let chunks: Vec<Chunk> = Chunker::new(bytes).collect::<io::Result<_>>()?;
    let missing = missing_chunks(http, base, chunks.iter().map(|c| c.hash).collect()).await?;
    for chunk in chunks.iter().filter(|c| missing.contains(&c.hash)) {
        put_chunk(http, base, chunk.hash, chunk.data.clone()).await?;
    }
    let entry = commit(
        http,
        base,
        path,
        Sha256Hex::of(bytes),
        bytes.len() as u64,
        chunks.iter().map(Chunk::to_ref).collect(),
    )
    .await?;
    ensure!(
        entry.version == 1,
        "{path} committed as version {}",
        entry.version
    );
    Ok(())
}

/// `POST /v1/chunks/pack`: the chunks in one body, each behind its frame
/// header.
pub async fn pack<'a>(
    http: &reqwest::Client,
    base: &str,
    chunks: impl Iterator<Item = (&'a Sha256Hex, &'a Vec<u8>)>,
) -> Result<PackResponse> {
    let mut body = Vec::new();
    for (hash, data) in chunks {
        body.extend_from_slice(&encode_pack_header(hash, u32::try_from(data.len())?));
        body.extend_from_slice(data);
    }
    let resp = http
        .post(format!("{base}/v1/chunks/pack"))
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .body(body)
        .send()
        .await?;
    Ok(check(resp, "POST /v1/chunks/pack").await?.json().await?)
}

/// `POST /v1/batch`: the outcomes, in request order.
pub async fn batch(
    http: &reqwest::Client,
    base: &str,
    ops: Vec<BatchOp>,
) -> Result<Vec<BatchOutcome>> {
    let resp = http
        .post(format!("{base}/v1/batch"))
        .json(&BatchRequest { ops })
        .send()
        .await?;
    let answer: BatchResponse = check(resp, "POST /v1/batch").await?.json().await?;
    Ok(answer.outcomes)
}

/// Turns a non-2xx answer into an error carrying its body.
async fn check(resp: reqwest::Response, what: &str) -> Result<reqwest::Response> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = resp.text().await.unwrap_or_default();
    bail!("{what}: {status}: {body}")
}

/// `POST /upload`: the JSON meta, then the file streamed from disk.
pub async fn legacy_upload(
    http: &reqwest::Client,
    base: &str,
    source: &Path,
    path: &str,
    bytes: u64,
    expected: Sha256Hex,
) -> Result<()> {
    let meta = serde_json::json!({"path": path, "base_sha": null}).to_string();
    let file = tokio::fs::File::open(source).await?;
    let body = stream::iter([Ok::<_, io::Error>(Bytes::from(meta.clone()))])
        .chain(ReaderStream::with_capacity(file, 256 * KIB as usize));
    let resp = http
        .post(format!("{base}/upload"))
        .header(META_LENGTH_HEADER, meta.len())
        .header(CONTENT_LENGTH, meta.len() as u64 + bytes)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await?;
    let answer: UploadResponse = check(resp, "POST /upload").await?.json().await?;
    ensure!(
        answer.ok && answer.sha == Some(expected) && answer.conflict.is_none(),
        "unexpected upload answer {answer:?}"
    );
    Ok(())
}

/// The v1 upload of a large file: a blocking thread cuts the file into chunks
/// as it reads it; batches of them are checked with `/v1/chunks/missing` and
/// the missing ones PUT, then the whole is committed. At most a few chunks
/// are in memory at once.
pub async fn v1_upload(
    http: &reqwest::Client,
    base: &str,
    source: &Path,
    path: &str,
    expected: Sha256Hex,
) -> Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<io::Result<Chunk>>(MISSING_BATCH);
    let source = source.to_owned();
    let chunker = tokio::task::spawn_blocking(move || -> io::Result<(Sha256Hex, u64)> {
        let mut chunker = Chunker::new(std::fs::File::open(source)?);
        for chunk in chunker.by_ref() {
            if tx.blocking_send(chunk).is_err() {
                break;
            }
        }
        Ok(chunker.finish())
    });
    let mut refs = Vec::new();
    let mut batch = Vec::with_capacity(MISSING_BATCH);
    while rx.recv_many(&mut batch, MISSING_BATCH).await > 0 {
        let chunks: Vec<Chunk> = batch.drain(..).collect::<io::Result<_>>()?;
        let missing = missing_chunks(http, base, chunks.iter().map(|c| c.hash).collect()).await?;
        for chunk in chunks {
            refs.push(chunk.to_ref());
            if missing.contains(&chunk.hash) {
                put_chunk(http, base, chunk.hash, chunk.data).await?;
            }
        }
    }
    let (sha256, size) = chunker.await??;
    ensure!(
        sha256 == expected,
        "the chunker hashed the file to {sha256}"
    );
    let entry = commit(http, base, path, sha256, size, refs).await?;
    ensure!(
        entry.sha256 == Some(expected) && entry.size == size,
        "unexpected commit answer {entry:?}"
    );
    Ok(())
}

/// Downloads `url?path=P`, hashing the bytes as they arrive.
pub async fn download(
    http: &reqwest::Client,
    url: &str,
    path: &str,
    bytes: u64,
    expected: Sha256Hex,
) -> Result<()> {
    let resp = http.get(url).query(&[("path", path)]).send().await?;
    ensure!(
        resp.status() == StatusCode::OK,
        "GET {url}: {}",
        resp.status()
    );
    let mut body = resp.bytes_stream();
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    while let Some(frame) = body.next().await {
        let frame = frame?;
        received += frame.len() as u64;
        hasher.update(&frame);
    }
    let actual = Sha256Hex::from(hasher);
    ensure!(
        received == bytes && actual == expected,
        "downloaded {received} bytes hashing to {actual}, expected {bytes} bytes, {expected}"
    );
    Ok(())
}
