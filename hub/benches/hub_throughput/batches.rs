//! Part 1b, small files through the batch API: committed files per second
//! of 1 KiB files when each client sends its files as agents of this
//! version do, a round at a time: one `POST /v1/chunks/pack` with the
//! round's chunks, then one `POST /v1/batch` committing them. Every commit
//! is durable before its answer (the pack's chunks are flushed before the
//! pack is answered, the batch's rows commit in one durable transaction).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use sf_protocol::Sha256Hex;
use sf_protocol::v1::{BatchOp, BatchOutcome, CommitRequest, EntryKind};
use sf_test_support::random_bytes;

use crate::api::{batch, pack};
use crate::hub::BenchHub;
use crate::{MTIME_NS, SMALL_FILE_BYTES};

/// One measured run of the batch workload.
pub struct BatchRun {
    pub files: usize,
    pub elapsed: Duration,
    /// Per round: the pack and the batch, one after the other.
    pub latencies: Vec<Duration>,
}

/// `total` files from `clients` concurrent clients, `per_batch` files per
/// round; timed from the first request to the last answer.
pub async fn run_batches(
    hub: &BenchHub,
    clients: usize,
    per_batch: usize,
    total: usize,
    tag: &str,
) -> Result<BatchRun> {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as u64;
    // Content is made before the clock starts: the bench measures the hub.
    let work: Vec<_> = (0..clients)
        .map(|client| {
            let count = total / clients + usize::from(client < total % clients);
            let seed = nonce ^ ((client as u64) << 40) ^ 0xba7c;
            let files: Vec<Vec<u8>> = (0..count)
                .map(|i| random_bytes(seed.wrapping_add(i as u64), SMALL_FILE_BYTES))
                .collect();
            let prefix = format!("batch/{tag}/client{client}");
            (hub.client(), Arc::<str>::from(hub.base()), prefix, files)
        })
        .collect();
    let started = Instant::now();
    let handles: Vec<_> = work
        .into_iter()
        .map(|(http, base, prefix, files)| {
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                for (round, group) in files.chunks(per_batch).enumerate() {
                    let round_started = Instant::now();
                    commit_round(&http, &base, &format!("{prefix}/r{round}"), group).await?;
                    latencies.push(round_started.elapsed());
                }
                Ok::<_, anyhow::Error>((files.len(), latencies))
            })
        })
        .collect();
    let mut files = 0;
    let mut latencies = Vec::new();
    for handle in handles {
        let (count, rounds) = handle.await??;
        files += count;
        latencies.extend(rounds);
    }
    Ok(BatchRun {
        files,
        elapsed: started.elapsed(),
        latencies,
    })
}

/// One round: the files' chunks in one pack (each small file is one
/// chunk), then one batch committing every file.
async fn commit_round(
    http: &reqwest::Client,
    base: &str,
    prefix: &str,
    files: &[Vec<u8>],
) -> Result<()> {
    let hashes: Vec<Sha256Hex> = files.iter().map(|f| Sha256Hex::of(f)).collect();
    let stored = pack(http, base, hashes.iter().zip(files)).await?;
    ensure!(
        stored.chunks == files.len() as u64,
        "the pack took {} of {} chunks",
        stored.chunks,
        files.len()
    );
    let ops = files
        .iter()
        .zip(&hashes)
        .enumerate()
        .map(|(i, (bytes, hash))| {
            Ok(BatchOp::Commit(CommitRequest {
                path: format!("{prefix}/file{i}.bin").parse()?,
                kind: EntryKind::File,
                base_version: 0,
                sha256: *hash,
                size: bytes.len() as u64,
                mtime_ns: MTIME_NS,
                executable: false,
                chunks: vec![sf_protocol::chunking::ChunkRef {
                    hash: *hash,
                    len: bytes.len() as u64,
                }],
                origin: "bench".into(),
            }))
        })
        .collect::<Result<Vec<_>>>()?;
    let outcomes = batch(http, base, ops).await?;
    ensure!(outcomes.len() == files.len(), "{} outcomes", outcomes.len());
    for outcome in &outcomes {
        ensure!(
            matches!(outcome, BatchOutcome::Done { entry } if entry.version == 1),
            "unexpected outcome {outcome:?}"
        );
    }
    Ok(())
}
