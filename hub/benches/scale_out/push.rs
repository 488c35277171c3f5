//! Part 3, push latency across hubs: two hubs on one database and one
//! bucket, a WebSocket client on each; commits go to hub 1 one at a time,
//! and each socket's reader notes when the commit's `change` frame
//! arrives. Hub 2 learns of the commit through PostgreSQL (`NOTIFY`, then
//! reading the entry); the client on hub 1, which hands its own commits
//! over in memory, is the baseline. Both sockets see the same commits, so
//! both are measured under the same conditions.

use std::io;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use futures_util::StreamExt;
use sf_protocol::Sha256Hex;
use sf_protocol::chunking::{Chunk, Chunker};
use sf_protocol::v1::WsFrame;
use sf_test_support::bench::LogNotes;
use sf_test_support::random_bytes;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::api::{commit, missing_chunks, put_chunk};
use crate::cluster::{Cluster, Store};
use crate::hub::BenchHub;
use crate::{SMALL_FILE_BYTES, Setup};

/// Commits before the measured ones (connections and caches warm).
const WARMUP: usize = 10;
/// A frame that has not come by then is an error.
const FRAME_DEADLINE: Duration = Duration::from_secs(30);

/// The latencies seen by the client on one hub, in milliseconds (negative:
/// the frame came before the commit's answer was read).
pub struct PushRow {
    pub label: &'static str,
    /// Per repetition: p50 and p99 from the commit's answer.
    pub p50: Vec<f64>,
    pub p99: Vec<f64>,
    /// Every sample from the answer, and from sending `POST /v1/commit`.
    pub after_answer: Vec<f64>,
    pub after_sent: Vec<f64>,
}

pub struct PushReport {
    /// The client on hub 1 (baseline), then on hub 2.
    pub rows: [PushRow; 2],
    pub commits_per_run: usize,
    /// How long `POST /v1/commit` took, in milliseconds.
    pub commit_ms: Vec<f64>,
    pub log: LogNotes,
}

pub async fn bench_push(setup: &Setup<'_>) -> Result<PushReport> {
    let config = setup.config;
    let cluster = Cluster::start(setup, "push: 2 hubs, S3 store", "push", Store::S3, 2).await?;
    let result = measure(config.reps, config.push, &cluster).await;
    let log = cluster.stop().await?;
    let (rows, commit_ms) = result?;
    Ok(PushReport {
        rows,
        commits_per_run: config.push,
        commit_ms,
        log,
    })
}

async fn measure(
    reps: usize,
    commits: usize,
    cluster: &Cluster,
) -> Result<([PushRow; 2], Vec<f64>)> {
    let writer = &cluster.hubs[0];
    let mut frames = Vec::new();
    for hub in &cluster.hubs[..2] {
        frames.push(subscribe(hub).await?);
    }
    let mut rows = [
        PushRow::new("WebSocket on hub 1 (baseline)"),
        PushRow::new("WebSocket on hub 2"),
    ];
    let http = writer.client();
    let mut commit_ms = Vec::new();
    for i in 0..WARMUP {
        let sample = one_commit(&http, writer, &format!("push/warmup/f{i}.bin"), i as u64).await?;
        for receiver in &mut frames {
            frame_for(receiver, sample.seq).await?;
        }
    }
    for rep in 0..reps {
        let mut answer = [Vec::new(), Vec::new()];
        for i in 0..commits {
            let path = format!("push/r{rep}/f{i}.bin");
            let seed = ((rep as u64) << 32) | i as u64;
            let sample = one_commit(&http, writer, &path, seed).await?;
            commit_ms.push(ms_between(sample.sent, sample.answered));
            for (h, receiver) in frames.iter_mut().enumerate() {
                let arrived = frame_for(receiver, sample.seq).await?;
                let after_answer = ms_between(sample.answered, arrived);
                answer[h].push(after_answer);
                rows[h].after_answer.push(after_answer);
                rows[h].after_sent.push(ms_between(sample.sent, arrived));
            }
        }
        for (h, row) in rows.iter_mut().enumerate() {
            row.p50.push(quantile(&answer[h], 0.5));
            row.p99.push(quantile(&answer[h], 0.99));
            eprintln!(
                "  rep {}/{reps} {:<30} p50 {:>6.2} ms, p99 {:>6.2} ms after the commit's answer",
                rep + 1,
                row.label,
                quantile(&answer[h], 0.5),
                quantile(&answer[h], 0.99)
            );
        }
    }
    Ok((rows, commit_ms))
}

impl PushRow {
    fn new(label: &'static str) -> Self {
        Self {
            label,
            p50: Vec::new(),
            p99: Vec::new(),
            after_answer: Vec::new(),
            after_sent: Vec::new(),
        }
    }
}

/// Milliseconds from `from` to `to`, negative when `to` came first.
fn ms_between(from: Instant, to: Instant) -> f64 {
    match to.checked_duration_since(from) {
        Some(d) => d.as_secs_f64() * 1e3,
        None => -(from - to).as_secs_f64() * 1e3,
    }
}

/// The `q` quantile (0..=1) of `values`.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// One commit through the v1 flow: when `POST /v1/commit` was sent and
/// answered, and the seq it got.
struct CommitSample {
    seq: u64,
    sent: Instant,
    answered: Instant,
}

async fn one_commit(
    http: &reqwest::Client,
    hub: &BenchHub,
    path: &str,
    seed: u64,
) -> Result<CommitSample> {
    let bytes = random_bytes(seed ^ 0x9e37_79b9, SMALL_FILE_BYTES);
    let chunks: Vec<Chunk> = Chunker::new(&bytes[..]).collect::<io::Result<_>>()?;
    let base = hub.base();
    let missing = missing_chunks(http, base, chunks.iter().map(|c| c.hash).collect()).await?;
    for chunk in chunks.iter().filter(|c| missing.contains(&c.hash)) {
        put_chunk(http, base, chunk.hash, chunk.data.clone()).await?;
    }
    let sent = Instant::now();
    let entry = commit(
        http,
        base,
        path,
        Sha256Hex::of(&bytes),
        bytes.len() as u64,
        chunks.iter().map(Chunk::to_ref).collect(),
    )
    .await?;
    let answered = Instant::now();
    ensure!(entry.version == 1, "{path} committed as {}", entry.version);
    Ok(CommitSample {
        seq: entry.seq,
        sent,
        answered,
    })
}

/// A WebSocket on `hub`, past its `hello`: a task reads it and sends the
/// seq of every `change` frame with the moment it arrived.
async fn subscribe(hub: &BenchHub) -> Result<mpsc::UnboundedReceiver<(u64, Instant)>> {
    let url = format!("ws{}/v1/ws", hub.base().trim_start_matches("http"));
    let mut request = url.as_str().into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {}", hub.token()).parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .with_context(|| format!("opening {url}"))?;
    loop {
        let message = tokio::time::timeout(FRAME_DEADLINE, socket.next())
            .await
            .context("no hello frame")?
            .context("the socket closed before hello")??;
        if let Message::Text(text) = message {
            match serde_json::from_str::<WsFrame>(&text)? {
                WsFrame::Hello { .. } => break,
                other => bail!("expected hello, got {other:?}"),
            }
        }
    }
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            let arrived = Instant::now();
            if let Message::Text(text) = message
                && let Ok(WsFrame::Change(entry)) = serde_json::from_str::<WsFrame>(&text)
                && tx.send((entry.seq, arrived)).is_err()
            {
                break;
            }
        }
    });
    Ok(rx)
}

/// When the frame of `seq` arrived (earlier seqs are passed over).
async fn frame_for(
    receiver: &mut mpsc::UnboundedReceiver<(u64, Instant)>,
    seq: u64,
) -> Result<Instant> {
    loop {
        let (got, arrived) = tokio::time::timeout(FRAME_DEADLINE, receiver.recv())
            .await
            .with_context(|| format!("no change frame for seq {seq} within {FRAME_DEADLINE:?}"))?
            .context("the WebSocket closed")?;
        if got == seq {
            return Ok(arrived);
        }
        ensure!(got < seq, "frame for seq {got} while waiting for {seq}");
    }
}
