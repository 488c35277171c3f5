//! The real `sf-hub` binary as a child process: crash safety under SIGKILL,
//! flat memory for large files, start-up failures, `--help`, and the
//! original deployment's environment variables.
//!
//! Unlike the other suites (which start the hub in-process), these run
//! `env!("CARGO_BIN_EXE_sf-hub")`, so they see what an operator sees: exit
//! codes, stderr, process memory and what survives a kill.

mod common;
mod process_support;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{StreamExt, stream};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sf_protocol::Sha256Hex;
use sf_protocol::chunking::{Chunk, ChunkRef, Chunker};
use sf_protocol::legacy::{META_LENGTH_HEADER, UploadResponse};
use sf_protocol::v1::{
    BatchOp, BatchOutcome, BatchRequest, BatchResponse, ChangesResponse, CommitRequest, Entry,
    EntryKind,
};
use sha2::{Digest, Sha256};

use common::PgTestDatabase;
use process_support::{
    ChildGuard, Content, HubProcess, PROCESS_DEADLINE, free_port, hub_command, hub_command_on,
    run_check,
};

// ---------------------------------------------------------------------------
// 1. SIGKILL while uploads, batches and restores are in flight.
// ---------------------------------------------------------------------------

/// Concurrent writers of each kind (plus one writer of batches and one of
/// restores); each loops over new paths until the hub dies.
const LEGACY_WORKERS: u64 = 3;
const V1_WORKERS: u64 = 3;
/// Acknowledged uploads to wait for before the kill.
const ACKS_BEFORE_KILL: usize = 40;
/// Never reached by a healthy hub; guards against a hang, not a speed check.
const PROGRESS_DEADLINE: Duration = Duration::from_secs(180);
/// The path of an upload whose body never ends: in flight at the kill for sure.
const STALLED_PATH: &str = "stalled/never-finished.bin";

mod sigkill_during_uploads_loses_nothing_committed {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        sigkill_scenario(None).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        // Prints `skipped: …` when SF_TEST_DATABASE_URL is unset, panics in CI.
        let Some(pg) = PgTestDatabase::create().await else {
            return;
        };
        sigkill_scenario(Some(&pg)).await;
        // `pg` drops here, after the hub: DROP DATABASE … WITH (FORCE).
    }
}

/// An upload the hub answered 200 to.
#[derive(Debug, Clone)]
struct Ack {
    path: String,
    sha: Sha256Hex,
    len: u64,
    /// The change-feed seq, known for v1 commits.
    seq: Option<u64>,
}

/// How a writer stopped: every writer runs until the hub is gone.
#[derive(Debug)]
enum Ended {
    /// A request was under way when the connection died.
    Interrupted,
    /// The next request found nobody listening.
    ConnectRefused,
}

impl From<reqwest::Error> for Ended {
    fn from(err: reqwest::Error) -> Self {
        if err.is_connect() {
            Ended::ConnectRefused
        } else {
            Ended::Interrupted
        }
    }
}

/// Sizes from 1 byte to 3 MiB, so uploads span one to several chunks.
fn size_for(seed: u64) -> u64 {
    let mixed = seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 20;
    1 + mixed % (3 << 20)
}

async fn sigkill_scenario(pg: Option<&PgTestDatabase>) {
    let data = tempfile::tempdir().expect("temp dir");
    let url = pg.map(|pg| pg.url.as_str());
    let backend = if pg.is_some() { "postgres" } else { "sqlite" };
    let hub = HubProcess::start(hub_command_on(data.path(), url)).await;
    assert_eq!(hub.database, backend, "hub runs on the wrong back end");

    let acks = Arc::new(Mutex::new(Vec::<Ack>::new()));
    let mut writers = Vec::new();
    for worker in 0..LEGACY_WORKERS {
        writers.push(tokio::spawn(legacy_writer(
            hub.http.clone(),
            hub.base.clone(),
            worker,
            Arc::clone(&acks),
        )));
    }
    for worker in 0..V1_WORKERS {
        writers.push(tokio::spawn(v1_writer(
            hub.http.clone(),
            hub.base.clone(),
            worker,
            Arc::clone(&acks),
        )));
    }
    writers.push(tokio::spawn(batch_writer(
        hub.http.clone(),
        hub.base.clone(),
        Arc::clone(&acks),
    )));
    writers.push(tokio::spawn(restore_writer(
        hub.http.clone(),
        hub.base.clone(),
        Arc::clone(&acks),
    )));
    let stalled = tokio::spawn(stalled_upload(hub.http.clone(), hub.base.clone()));

    let deadline = Instant::now() + PROGRESS_DEADLINE;
    // Enough acknowledged, batches and restores among them, so the kill
    // comes while every kind of write is going on.
    let enough = |acks: &[Ack]| {
        acks.len() >= ACKS_BEFORE_KILL
            && acks.iter().any(|a| a.path.starts_with("batch/"))
            && acks.iter().any(|a| a.path.starts_with("restore/"))
    };
    while !enough(&acks.lock().unwrap()) {
        if let Some(i) = writers.iter().position(|w| w.is_finished()) {
            let ended = join(writers.swap_remove(i)).await;
            panic!("a writer stopped while the hub was still up: {ended:?}");
        }
        assert!(
            Instant::now() < deadline,
            "only {} uploads acknowledged after {PROGRESS_DEADLINE:?}",
            acks.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let status = hub.sigkill();
    assert_eq!(
        status.signal(),
        Some(9),
        "the hub was not killed by SIGKILL: {status}"
    );
    let mut interrupted = 0;
    for writer in writers {
        if let Ended::Interrupted = join(writer).await {
            interrupted += 1;
        }
    }
    let stalled_result = stalled.await.expect("stalled upload task");
    assert!(
        stalled_result.is_err(),
        "the never-ending upload got an answer: {stalled_result:?}"
    );
    let acks = acks.lock().unwrap().clone();
    let kind = |prefix: &str| acks.iter().filter(|a| a.path.starts_with(prefix)).count();
    eprintln!(
        "acknowledged before the kill: {} legacy uploads, {} v1 commits, {} files in batches, \
         {} restores",
        kind("legacy/"),
        kind("v1/"),
        kind("batch/"),
        kind("restore/")
    );
    let leftovers = dir_entries(&data.path().join("tmp"));
    eprintln!(
        "SIGKILL with {} uploads acknowledged; {interrupted} of {} writers cut mid-request, \
         plus the stalled upload; {} temp files left in <data-dir>/tmp",
        acks.len(),
        LEGACY_WORKERS + V1_WORKERS + 2,
        leftovers.len()
    );

    let hub = HubProcess::start(hub_command_on(data.path(), url)).await;
    assert_eq!(
        hub.database, backend,
        "restarted hub runs on the wrong back end"
    );

    let leftovers = dir_entries(&data.path().join("tmp"));
    assert!(
        leftovers.is_empty(),
        "temp files survived the restart in <data-dir>/tmp: {leftovers:?}"
    );

    // Every acknowledged upload is listed with its sha and serves its bytes.
    let index = index(&hub).await;
    for ack in &acks {
        assert_eq!(
            index.get(&ack.path),
            Some(&ack.sha),
            "acknowledged upload {} is missing or wrong in /index after the crash",
            ack.path
        );
        let (sha, len) = fetch_hashed(&hub, "/download", &ack.path).await;
        assert_eq!(
            (sha, len),
            (ack.sha, ack.len),
            "{} downloads other bytes after the crash",
            ack.path
        );
    }
    assert!(
        !index.contains_key(STALLED_PATH),
        "an upload whose body never completed was committed"
    );

    // The change feed: 1..=head, no gaps, and every acknowledged v1 commit at its seq.
    let (head, changes) = all_changes(&hub).await;
    let seqs: Vec<u64> = changes.iter().map(|e| e.seq).collect();
    let expected: Vec<u64> = (1..=head).collect();
    assert_eq!(
        seqs, expected,
        "the change feed has gaps or disorder after the crash"
    );
    assert!(
        head >= acks.len() as u64,
        "head {head} < {} acknowledged uploads",
        acks.len()
    );
    for ack in &acks {
        if let Some(seq) = ack.seq {
            let entry = &changes[(seq - 1) as usize];
            assert_eq!(
                (entry.path.to_string(), entry.sha256),
                (ack.path.clone(), Some(ack.sha)),
                "seq {seq} changed meaning across the crash"
            );
        }
    }

    // New commits continue the sequence.
    let bytes = Content::to_vec(7_000_001, 300_000);
    let entry = v1_put(&hub.http, &hub.base, "after/v1.bin", &bytes)
        .await
        .expect("v1 commit after restart")
        .expect("hub refused a v1 commit after restart");
    assert_eq!(entry.seq, head + 1, "first commit after restart");
    let bytes = Content::to_vec(7_000_002, 300_000);
    let (status, _) = legacy_upload(&hub.http, &hub.base, "after/legacy.bin", bytes)
        .await
        .expect("legacy upload after restart");
    assert_eq!(status, StatusCode::OK);
    let (new_head, changes) = all_changes(&hub).await;
    assert_eq!(new_head, head + 2);
    let last = changes.last().unwrap();
    assert_eq!(
        (last.seq, last.path.as_str()),
        (head + 2, "after/legacy.bin")
    );
    eprintln!(
        "after restart: head {head}, all {} acknowledged uploads intact",
        acks.len()
    );

    // The store agrees with the database: every chunk a version references
    // is there and intact, and the feed has no gap (orphans of the uploads
    // cut off are allowed; garbage collection takes them).
    let (status, report) = run_check(data.path(), url, false);
    eprintln!("sf-hub check after the crash:\n{report}");
    assert!(
        status.success(),
        "the store is inconsistent after the crash:\n{report}"
    );
    assert!(report.contains("consistent"), "{report}");
    // And says when it is not, naming the file: one bit of a chunk of
    // after/v1.bin flipped on disk.
    let chunk = entry.chunks.as_ref().expect("commit answers list chunks")[0].hash;
    let hex = chunk.to_hex();
    let chunk_file = data.path().join("chunks").join(&hex[..2]).join(&hex);
    let mut damaged = std::fs::read(&chunk_file).unwrap();
    damaged[1000] ^= 0x01;
    std::fs::write(&chunk_file, damaged).unwrap();
    let (status, report) = run_check(data.path(), url, false);
    assert_eq!(status.code(), Some(1), "{report}");
    assert!(
        report.contains("DAMAGED") && report.contains("after/v1.bin"),
        "{report}"
    );
}

/// Awaits a writer, re-raising its panic (an assertion about a hub answer).
async fn join(writer: tokio::task::JoinHandle<Ended>) -> Ended {
    match writer.await {
        Ok(ended) => ended,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(err) => panic!("writer task: {err}"),
    }
}

/// `POST /upload` of new paths until the hub dies.
async fn legacy_writer(
    http: reqwest::Client,
    base: String,
    worker: u64,
    acks: Arc<Mutex<Vec<Ack>>>,
) -> Ended {
    for n in 0.. {
        let seed = 1_000_000 * (worker + 1) + n;
        let len = size_for(seed);
        let bytes = Content::to_vec(seed, len);
        let sha = Sha256Hex::of(&bytes);
        let path = format!("legacy/w{worker}/f{n}.bin");
        let (status, body) = match legacy_upload(&http, &base, &path, bytes).await {
            Ok(answer) => answer,
            Err(err) => return err.into(),
        };
        assert_eq!(status, StatusCode::OK, "upload {path}: {body}");
        let answer: UploadResponse = serde_json::from_value(body).unwrap();
        assert!(
            answer.ok && answer.conflict.is_none() && answer.stale.is_none(),
            "upload {path} answered {answer:?}"
        );
        assert_eq!(
            answer.sha,
            Some(sha),
            "upload {path} acknowledged another sha"
        );
        acks.lock().unwrap().push(Ack {
            path,
            sha,
            len,
            seq: None,
        });
    }
    unreachable!()
}

/// v1 chunk uploads and commits of new paths until the hub dies.
async fn v1_writer(
    http: reqwest::Client,
    base: String,
    worker: u64,
    acks: Arc<Mutex<Vec<Ack>>>,
) -> Ended {
    for n in 0.. {
        let seed = 5_000_000 * (worker + 1) + n;
        let bytes = Content::to_vec(seed, size_for(seed));
        let path = format!("v1/w{worker}/f{n}.bin");
        let entry = match v1_put(&http, &base, &path, &bytes).await {
            Ok(Ok(entry)) => entry,
            Ok(Err((status, body))) => panic!("commit {path} refused with {status}: {body}"),
            Err(err) => return err.into(),
        };
        let sha = Sha256Hex::of(&bytes);
        assert_eq!(
            entry.sha256,
            Some(sha),
            "commit {path} acknowledged another sha"
        );
        acks.lock().unwrap().push(Ack {
            path,
            sha,
            len: bytes.len() as u64,
            seq: Some(entry.seq),
        });
    }
    unreachable!()
}

/// Batches of 16 new small files (`POST /v1/batch`, one transaction each)
/// until the hub dies; every file of a batch is acknowledged by its answer.
async fn batch_writer(http: reqwest::Client, base: String, acks: Arc<Mutex<Vec<Ack>>>) -> Ended {
    for n in 0.. {
        let mut ops = Vec::new();
        let mut files = Vec::new();
        for i in 0..16u64 {
            let seed = 8_000_000 + n * 16 + i;
            let bytes = Content::to_vec(seed, 1000 + seed % 3000);
            let mut chunks = Vec::new();
            for chunk in Chunker::new(&bytes[..]) {
                let chunk = chunk.expect("chunking memory cannot fail");
                let put = http
                    .put(format!("{base}/v1/chunks/{}", chunk.hash))
                    .body(chunk.data.clone())
                    .send()
                    .await;
                match put {
                    Ok(resp) => assert!(resp.status().is_success(), "chunk upload refused"),
                    Err(err) => return err.into(),
                }
                chunks.push(chunk.to_ref());
            }
            let path = format!("batch/b{n}/f{i}.bin");
            let sha = Sha256Hex::of(&bytes);
            ops.push(BatchOp::Commit(commit_request(
                &path,
                sha,
                bytes.len() as u64,
                chunks,
            )));
            files.push((path, sha, bytes.len() as u64));
        }
        let answer = http
            .post(format!("{base}/v1/batch"))
            .json(&BatchRequest { ops })
            .send()
            .await;
        let resp = match answer {
            Ok(resp) => resp,
            Err(err) => return err.into(),
        };
        assert_eq!(resp.status(), StatusCode::OK, "batch {n} refused");
        let answer: BatchResponse = match resp.json().await {
            Ok(answer) => answer,
            Err(err) => return err.into(),
        };
        for ((path, sha, len), outcome) in files.into_iter().zip(answer.outcomes) {
            let BatchOutcome::Done { entry } = outcome else {
                panic!("batch {n}: {path} not committed: {outcome:?}");
            };
            assert_eq!(
                entry.sha256,
                Some(sha),
                "batch {n}: {path} acknowledged another sha"
            );
            acks.lock().unwrap().push(Ack {
                path,
                sha,
                len,
                seq: Some(entry.seq),
            });
        }
    }
    unreachable!()
}

/// Two versions of a new path, then a restore of the first (`POST
/// /v1/restore`) until the hub dies; the restore is acknowledged.
async fn restore_writer(http: reqwest::Client, base: String, acks: Arc<Mutex<Vec<Ack>>>) -> Ended {
    for n in 0.. {
        let path = format!("restore/f{n}.bin");
        let first = Content::to_vec(9_000_000 + 2 * n, 200_000);
        let second = Content::to_vec(9_000_001 + 2 * n, 300_000);
        let v1 = match v1_put(&http, &base, &path, &first).await {
            Ok(Ok(entry)) => entry,
            Ok(Err((status, body))) => panic!("commit {path} refused with {status}: {body}"),
            Err(err) => return err.into(),
        };
        let mut chunks = Vec::new();
        for chunk in Chunker::new(&second[..]) {
            let chunk = chunk.expect("chunking memory cannot fail");
            match http
                .put(format!("{base}/v1/chunks/{}", chunk.hash))
                .body(chunk.data.clone())
                .send()
                .await
            {
                Ok(resp) => assert!(resp.status().is_success(), "chunk upload refused"),
                Err(err) => return err.into(),
            }
            chunks.push(chunk.to_ref());
        }
        let mut request =
            commit_request(&path, Sha256Hex::of(&second), second.len() as u64, chunks);
        request.base_version = v1.version;
        match commit(&http, &base, &request).await {
            Ok(Ok(_)) => {}
            Ok(Err((status, body))) => panic!("commit {path} v2 refused with {status}: {body}"),
            Err(err) => return err.into(),
        }
        let restore = http
            .post(format!("{base}/v1/restore"))
            .json(&json!({"path": path, "version": v1.version, "origin": "process-test"}))
            .send()
            .await;
        let resp = match restore {
            Ok(resp) => resp,
            Err(err) => return err.into(),
        };
        assert_eq!(resp.status(), StatusCode::OK, "restore of {path} refused");
        let entry: Entry = match resp.json().await {
            Ok(entry) => entry,
            Err(err) => return err.into(),
        };
        let sha = Sha256Hex::of(&first);
        assert_eq!(
            entry.sha256,
            Some(sha),
            "restore of {path} acknowledged another sha"
        );
        acks.lock().unwrap().push(Ack {
            path,
            sha,
            len: first.len() as u64,
            seq: Some(entry.seq),
        });
    }
    unreachable!()
}

/// A legacy upload whose body sends its metadata and 1 MiB, then never ends.
async fn stalled_upload(http: reqwest::Client, base: String) -> Result<StatusCode, reqwest::Error> {
    let meta = json!({"path": STALLED_PATH, "base_sha": null}).to_string();
    let first: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from(meta.clone())),
        Ok(Bytes::from(Content::to_vec(9_999_999, 1 << 20))),
    ];
    let body = stream::iter(first).chain(stream::pending());
    http.post(format!("{base}/upload"))
        .header(META_LENGTH_HEADER, meta.len())
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .map(|resp| resp.status())
}

/// `POST /upload`: the JSON metadata, then the bytes. Returns the status and
/// the JSON answer, or the transport error.
async fn legacy_upload(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    bytes: Vec<u8>,
) -> Result<(StatusCode, Value), reqwest::Error> {
    let meta = json!({"path": path, "base_sha": null}).to_string();
    let mut body = meta.clone().into_bytes();
    body.extend_from_slice(&bytes);
    let resp = http
        .post(format!("{base}/upload"))
        .header(META_LENGTH_HEADER, meta.len())
        .body(body)
        .send()
        .await?;
    let status = resp.status();
    let body = resp.bytes().await?;
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

/// Uploads `bytes` chunk by chunk and commits them as a new file at `path`.
/// The outer error is the transport; the inner one a refusal.
async fn v1_put(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    bytes: &[u8],
) -> Result<Result<Entry, (StatusCode, String)>, reqwest::Error> {
    let mut chunks = Vec::new();
    for chunk in Chunker::new(bytes) {
        let chunk = chunk.expect("chunking memory cannot fail");
        let resp = http
            .put(format!("{base}/v1/chunks/{}", chunk.hash))
            .body(chunk.data.clone())
            .send()
            .await?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            return Ok(Err((status, format!("chunk upload: {text}"))));
        }
        chunks.push(chunk.to_ref());
    }
    let request = commit_request(path, Sha256Hex::of(bytes), bytes.len() as u64, chunks);
    commit(http, base, &request).await
}

fn commit_request(
    path: &str,
    sha256: Sha256Hex,
    size: u64,
    chunks: Vec<ChunkRef>,
) -> CommitRequest {
    CommitRequest {
        path: path.parse().unwrap(),
        kind: EntryKind::File,
        base_version: 0,
        sha256,
        size,
        mtime_ns: 1_700_000_000_000_000_000,
        executable: false,
        chunks,
        origin: "process-test".into(),
    }
}

async fn commit(
    http: &reqwest::Client,
    base: &str,
    request: &CommitRequest,
) -> Result<Result<Entry, (StatusCode, String)>, reqwest::Error> {
    let resp = http
        .post(format!("{base}/v1/commit"))
        .json(request)
        .send()
        .await?;
    let status = resp.status();
    let text = resp.text().await?;
    if status == StatusCode::OK {
        Ok(Ok(
            serde_json::from_str(&text).expect("commit answer is an Entry")
        ))
    } else {
        Ok(Err((status, text)))
    }
}

/// `GET /index` as path → sha.
async fn index(hub: &HubProcess) -> BTreeMap<String, Sha256Hex> {
    let resp = hub.http.get(hub.url("/index")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    body["index"]
        .as_object()
        .expect("index object")
        .iter()
        .map(|(path, entry)| {
            let sha = Sha256Hex::parse(entry["sha"].as_str().unwrap()).unwrap();
            (path.clone(), sha)
        })
        .collect()
}

/// The whole change feed from seq 0, paged, and the head of the first page.
async fn all_changes(hub: &HubProcess) -> (u64, Vec<Entry>) {
    let mut since = 0;
    let mut all = Vec::new();
    let mut head = None;
    loop {
        let resp = hub
            .http
            .get(hub.url("/v1/changes"))
            .query(&[("since", since), ("limit", 10_000)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let page: ChangesResponse = resp.json().await.unwrap();
        let first_head = *head.get_or_insert(page.head);
        let Some(last) = page.changes.last() else {
            break;
        };
        since = last.seq;
        all.extend(page.changes);
        if since >= first_head {
            break;
        }
    }
    (head.unwrap_or(0), all)
}

/// `GET route?path=P`, which must answer 200, with the body streamed through
/// SHA-256: its digest and length.
async fn fetch_hashed(hub: &HubProcess, route: &str, path: &str) -> (Sha256Hex, u64) {
    let resp = hub
        .http
        .get(hub.url(route))
        .query(&[("path", path)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{route} {path}");
    let mut hasher = Sha256::new();
    let mut len = 0u64;
    let mut body = resp.bytes_stream();
    while let Some(frame) = body.next().await {
        let frame = frame.expect("read response body");
        len += frame.len() as u64;
        hasher.update(&frame);
    }
    (Sha256Hex::from(hasher), len)
}

/// Names of the entries of `dir` (empty when it does not exist).
fn dir_entries(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(err) => panic!("read {}: {err}", dir.display()),
    }
}

// ---------------------------------------------------------------------------
// 2. Large files stream through with flat memory.
// ---------------------------------------------------------------------------

/// 1 GiB each way. Measured here in a debug build (2 CPUs): the whole test
/// takes 23–28 s alone (legacy upload ~10 s, download ~1 s, writing the v1
/// source file ~5 s, v1 chunk upload ~9 s, commit <1 s, GET /v1/file ~1.5 s).
const LARGE_FILE: u64 = 1 << 30;
/// The hub's peak RSS must stay below this however large the file.
const RSS_LIMIT: u64 = 100 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_uploads_stream_with_flat_memory() {
    let started = Instant::now();
    let data = tempfile::tempdir().expect("temp dir");
    let hub = HubProcess::start(hub_command_on(data.path(), None)).await;
    let at_start = hub.peak_rss();
    let mib = LARGE_FILE >> 20;
    let mut phase = Instant::now();
    let mut lap = |what: &str| {
        eprintln!("{what}: {:.1?}", phase.elapsed());
        phase = Instant::now();
    };

    // Legacy upload: metadata, then generated blocks hashed on their way out.
    let path = "large/legacy.bin";
    let meta = json!({"path": path, "base_sha": null}).to_string();
    let sent = Arc::new(Mutex::new(Sha256::new()));
    let hasher = Arc::clone(&sent);
    let blocks = Content::new(1, LARGE_FILE).map(move |block| {
        hasher.lock().unwrap().update(&block);
        Ok::<_, std::io::Error>(Bytes::from(block))
    });
    let body = stream::iter([Ok(Bytes::from(meta.clone()))]).chain(stream::iter(blocks));
    let resp = hub
        .http
        .post(hub.url("/upload"))
        .header(META_LENGTH_HEADER, meta.len())
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .expect("legacy upload");
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    let legacy_sha = Sha256Hex::from(sent.lock().unwrap().clone());
    let answer: UploadResponse = serde_json::from_str(&text).unwrap();
    assert_eq!(answer.sha, Some(legacy_sha), "the hub stored other bytes");
    lap(&format!("legacy upload of {mib} MiB"));

    // Legacy download, streamed and hashed.
    assert_eq!(
        fetch_hashed(&hub, "/download", path).await,
        (legacy_sha, LARGE_FILE)
    );
    lap("legacy download");

    // v1: other content (so no chunk is deduplicated) written to a temp file.
    let client_dir = tempfile::tempdir().expect("temp dir");
    let file_path = client_dir.path().join("big.bin");
    let written = file_path.clone();
    let v1_sha = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut file = std::fs::File::create(&written).unwrap();
        let mut hasher = Sha256::new();
        for block in Content::new(2, LARGE_FILE) {
            hasher.update(&block);
            file.write_all(&block).unwrap();
        }
        Sha256Hex::from(hasher)
    })
    .await
    .unwrap();
    lap("writing the v1 source file (client side)");

    // Chunks are cut on a blocking thread and uploaded as they come.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(2);
    let source = file_path.clone();
    let cutter = tokio::task::spawn_blocking(move || {
        let mut chunker = Chunker::new(std::fs::File::open(source).unwrap());
        for chunk in chunker.by_ref() {
            if tx.blocking_send(chunk.expect("read source file")).is_err() {
                break;
            }
        }
        chunker.finish()
    });
    let mut refs = Vec::new();
    while let Some(chunk) = rx.recv().await {
        let chunk_ref = chunk.to_ref();
        let resp = hub
            .http
            .put(hub.url(&format!("/v1/chunks/{}", chunk.hash)))
            .body(chunk.data)
            .send()
            .await
            .expect("chunk upload");
        let status = resp.status();
        assert!(
            status.is_success(),
            "chunk upload: {status} {}",
            resp.text().await.unwrap()
        );
        refs.push(chunk_ref);
    }
    let (cut_sha, cut_size) = cutter.await.unwrap();
    assert_eq!((cut_sha, cut_size), (v1_sha, LARGE_FILE));
    lap(&format!("v1 upload of {} chunks", refs.len()));
    let v1_path = "large/v1.bin";
    let entry = commit(
        &hub.http,
        &hub.base,
        &commit_request(v1_path, v1_sha, LARGE_FILE, refs),
    )
    .await
    .expect("commit")
    .unwrap_or_else(|(status, body)| panic!("commit refused with {status}: {body}"));
    assert_eq!(entry.sha256, Some(v1_sha));
    lap("v1 commit (the hub re-reads and hashes every chunk)");

    assert_eq!(
        fetch_hashed(&hub, "/v1/file", v1_path).await,
        (v1_sha, LARGE_FILE)
    );
    lap("GET /v1/file");

    let peak = hub.peak_rss();
    let in_mib = |bytes: u64| bytes as f64 / (1u64 << 20) as f64;
    eprintln!(
        "hub VmHWM: {:.1} MiB after start-up, {:.1} MiB after moving {mib} MiB four ways \
         (limit {} MiB); test took {:.1?}",
        in_mib(at_start),
        in_mib(peak),
        RSS_LIMIT >> 20,
        started.elapsed()
    );
    assert!(
        peak < RSS_LIMIT,
        "the hub's peak RSS is {peak} bytes: memory grows with file size"
    );
}

// ---------------------------------------------------------------------------
// 3. Start-up failures are explained.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn unreachable_database_exits_non_zero_with_clear_message() {
    let data = tempfile::tempdir().expect("temp dir");
    let url = "postgres://postgres@127.0.0.1:1/nope";
    let mut command = hub_command_on(data.path(), Some(url));
    command.args(["--database-timeout", "2s"]);
    let started = Instant::now();
    let (status, stderr) = ChildGuard::spawn(command).wait_exit(PROCESS_DEADLINE).await;
    eprintln!(
        "exited with {status} after {:.1?}; stderr:\n{stderr}",
        started.elapsed()
    );
    assert!(
        !status.success(),
        "the hub exited successfully without a database"
    );
    assert!(
        status.code().is_some(),
        "the hub died of a signal: {status}"
    );
    for needle in [
        &format!("could not connect to {url}") as &str,
        "check that the database is running and reachable",
        "--database-timeout",
    ] {
        assert!(
            stderr.contains(needle),
            "stderr lacks {needle:?}:\n{stderr}"
        );
    }
}

// ---------------------------------------------------------------------------
// 4. --help documents every flag and the legacy variables.
// ---------------------------------------------------------------------------

#[test]
fn help_explains_every_flag() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sf-hub"))
        .arg("--help")
        .output()
        .expect("run sf-hub --help");
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "--help failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    for needle in [
        "--listen",
        "--metrics-listen",
        "--data-dir",
        "--database-url",
        "--max-file-size",
        "SERVER_PORT",
        "METRICS_PORT",
        "STORAGE_DIR",
        "POSTGRES_HOST",
        "DATABASE_URL",
    ] {
        assert!(
            help.contains(needle),
            "--help does not mention {needle}:\n{help}"
        );
    }
}

// ---------------------------------------------------------------------------
// 5. The original deployment's variables still work.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_env_variables_are_honoured() {
    let storage = tempfile::tempdir().expect("temp dir");
    // The working directory: a `./data` fallback would land here, not in the repo.
    let cwd = tempfile::tempdir().expect("temp dir");
    let (api_port, metrics_port) = (free_port(), free_port());
    let mut command = hub_command(cwd.path());
    command
        .env("SERVER_PORT", api_port.to_string())
        .env("METRICS_PORT", metrics_port.to_string())
        .env("STORAGE_DIR", storage.path());
    let hub = HubProcess::start(command).await;
    assert_eq!(
        hub.base,
        format!("http://127.0.0.1:{api_port}"),
        "SERVER_PORT ignored"
    );
    assert_eq!(
        hub.metrics_url,
        format!("http://127.0.0.1:{metrics_port}/metrics"),
        "METRICS_PORT ignored"
    );
    assert_eq!(hub.database, "sqlite");

    let ready = hub
        .http
        .get(format!("http://127.0.0.1:{api_port}/readyz"))
        .send()
        .await
        .expect("readyz on SERVER_PORT");
    assert_eq!(ready.status(), StatusCode::OK);

    let bytes = Content::to_vec(42, 3 << 20);
    let (status, body) = legacy_upload(&hub.http, &hub.base, "env/file.bin", bytes)
        .await
        .expect("upload");
    assert_eq!(status, StatusCode::OK, "{body}");

    let metrics = hub
        .http
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
        .expect("metrics on METRICS_PORT");
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = metrics.text().await.unwrap();
    assert_eq!(
        common::client::metric_value(&text, "sync_uploads_total"),
        Some(1.0),
        "metrics:\n{text}"
    );

    let chunk_bytes = files_under(&storage.path().join("chunks"));
    assert!(
        !chunk_bytes.is_empty(),
        "no chunk files under STORAGE_DIR/chunks after an upload"
    );
    assert_eq!(
        chunk_bytes.iter().sum::<u64>(),
        3 << 20,
        "the chunks under STORAGE_DIR/chunks do not add up to the upload"
    );
    assert!(
        storage.path().join("hub.db").exists(),
        "the SQLite database is not in STORAGE_DIR"
    );
    assert!(
        !cwd.path().join("data").exists(),
        "the hub created ./data despite STORAGE_DIR"
    );
}

/// Sizes of every regular file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<u64> {
    let mut sizes = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.is_file() {
                sizes.push(meta.len());
            }
        }
    }
    sizes
}
