//! Hostile and careless clients, through real HTTP on SQLite and PostgreSQL:
//! commits whose chunk lists cost more than their file, uploads that are
//! never committed (garbage collection), a full store, uploads cut off mid-way,
//! paged history and per-route body limits. Each is refused with a clear
//! status and leaves nothing changed.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sf_protocol::Sha256Hex;
use sf_protocol::chunking::{ChunkRef, Chunker, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE};
use sf_protocol::v1::{CommitRequest, EntryKind, ErrorCode, HistoryResponse, encode_pack_header};
use tokio::io::AsyncWriteExt;

use common::client::random_bytes;
use common::{Backend, TestHub};

on_both_backends!(
    commits_are_bounded_by_their_size,
    repeated_chunks_are_accepted_and_verified,
    history_is_paged,
    changes_carry_chunks_only_when_asked,
    json_bodies_have_limits_per_route,
);

// A bucket keeps no temp files (objects are written whole).
on_local_store_backends!(cut_off_uploads_leave_no_temp_files);

/// Runs each `async fn name(backend: Backend)` on every back end: for tests
/// that start their hub with their own settings.
macro_rules! with_settings_on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite_with_settings {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres_with_settings {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await;
                }
            )*
        }
    };
}

with_settings_on_both_backends!(
    unreferenced_chunks_are_collected_after_the_grace_period,
    a_full_store_answers_507_and_stores_nothing,
);

/// The same on PostgreSQL with an S3 store. Collection by age is not among
/// them: a bucket's objects cannot be aged by a test (the bucket's own
/// collection test, `unreferenced_objects_are_collected_from_a_bucket`,
/// waits out a short grace period instead).
mod postgres_s3_with_settings {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_store_answers_507_and_stores_nothing() {
        super::a_full_store_answers_507_and_stores_nothing(crate::common::Backend::PostgresS3)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unreferenced_objects_are_collected_from_a_bucket() {
        super::unreferenced_objects_are_collected_from_a_bucket().await;
    }
}

const MIN: usize = MIN_CHUNK_SIZE;

/// Where the store keeps chunk `hash` (its documented on-disk layout).
fn chunk_file(hub: &TestHub, hash: &Sha256Hex) -> PathBuf {
    let hex = hash.to_hex();
    hub.storage
        .data_path()
        .join("chunks")
        .join(&hex[..2])
        .join(hex)
}

/// Every chunk file in the store.
fn stored_chunks(data_dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![data_dir.join("chunks")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn temp_files(data_dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(data_dir.join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

/// Makes a stored chunk look last used `age` ago.
fn age(path: &Path, age: Duration) {
    std::fs::File::open(path)
        .unwrap()
        .set_modified(SystemTime::now() - age)
        .unwrap();
}

async fn put_chunk(hub: &TestHub, bytes: &[u8]) -> (StatusCode, Value) {
    let resp = hub
        .http
        .put(hub.url(&format!("/v1/chunks/{}", Sha256Hex::of(bytes))))
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn chunk_ref(bytes: &[u8]) -> ChunkRef {
    ChunkRef {
        hash: Sha256Hex::of(bytes),
        len: bytes.len() as u64,
    }
}

fn file_commit(path: &str, content: &[u8], chunks: Vec<ChunkRef>) -> CommitRequest {
    CommitRequest {
        path: path.parse().unwrap(),
        kind: EntryKind::File,
        base_version: 0,
        sha256: Sha256Hex::of(content),
        size: content.len() as u64,
        mtime_ns: 1_700_000_000_000_000_000,
        executable: false,
        chunks,
        origin: "test".into(),
    }
}

async fn commits_are_bounded_by_their_size(hub: TestHub) {
    let (small_a, small_b, small_c) = (
        random_bytes(1000, 1),
        random_bytes(1000, 2),
        random_bytes(1000, 3),
    );
    let (big_a, big_b) = (random_bytes(MIN, 4), random_bytes(MIN, 5));
    let oversized = random_bytes(MAX_CHUNK_SIZE + 1, 6);
    for chunk in [&small_a, &small_b, &small_c, &big_a, &big_b] {
        assert!(put_chunk(&hub, chunk).await.0.is_success());
    }
    let concat = |parts: &[&Vec<u8>]| parts.iter().flat_map(|p| p.iter().copied()).collect();
    let head = hub.head().await;

    // Every listed chunk is stored and the bytes do hash to the sha256 given,
    // yet the lists are not a chunking of a file that size: refused up front.
    let three_small: Vec<u8> = concat(&[&small_a, &small_b, &small_c]);
    let small_middle: Vec<u8> = concat(&[&big_a, &small_a, &big_b]);
    let unseen = random_bytes(1000, 7);
    let refusals = [
        (
            "more chunks than the size allows",
            file_commit(
                "many.bin",
                &three_small,
                vec![
                    chunk_ref(&small_a),
                    chunk_ref(&small_b),
                    chunk_ref(&small_c),
                ],
            ),
            ErrorCode::InvalidRequest,
        ),
        (
            "a middle chunk below the minimum",
            file_commit(
                "middle.bin",
                &small_middle,
                vec![chunk_ref(&big_a), chunk_ref(&small_a), chunk_ref(&big_b)],
            ),
            ErrorCode::InvalidRequest,
        ),
        (
            "a chunk above the maximum",
            file_commit("huge.bin", &oversized, vec![chunk_ref(&oversized)]),
            ErrorCode::InvalidRequest,
        ),
        (
            "lengths that do not sum to the size",
            CommitRequest {
                size: MIN as u64 + 1,
                ..file_commit("sum.bin", &big_a, vec![chunk_ref(&big_a)])
            },
            ErrorCode::ContentMismatch,
        ),
        (
            // Checked before the store is asked: not `missing_chunks`.
            "a too-long list naming a chunk the hub lacks",
            file_commit(
                "unseen.bin",
                &concat(&[&unseen, &small_a]),
                vec![chunk_ref(&unseen), chunk_ref(&small_a)],
            ),
            ErrorCode::InvalidRequest,
        ),
        (
            "one chunk listed with two lengths",
            CommitRequest {
                chunks: vec![
                    chunk_ref(&big_a),
                    ChunkRef {
                        hash: Sha256Hex::of(&big_a),
                        len: 1000,
                    },
                ],
                size: MIN as u64 + 1000,
                ..file_commit("twice.bin", &big_a, Vec::new())
            },
            ErrorCode::ContentMismatch,
        ),
    ];
    for (what, request, code) in &refusals {
        let (status, error) = hub.commit(request).await.unwrap_err();
        assert_eq!(
            (status, error.error),
            (StatusCode::BAD_REQUEST, *code),
            "{what}: {}",
            error.detail
        );
        assert!(!error.detail.is_empty());
    }
    assert_eq!(hub.head().await, head, "refused commits record nothing");
    assert!(hub.index().await.is_empty());
    let (status, _) = hub.get_json("/v1/history?path=middle.bin").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The same bytes cut within the bounds commit fine.
    let tail: Vec<u8> = concat(&[&small_a, &big_b]);
    assert!(put_chunk(&hub, &tail).await.0.is_success());
    let ok = file_commit(
        "middle.bin",
        &small_middle,
        vec![chunk_ref(&big_a), chunk_ref(&tail)],
    );
    assert_eq!(hub.commit(&ok).await.unwrap().version, 1);
    assert_eq!(hub.download("middle.bin").await.1, small_middle);
}

async fn repeated_chunks_are_accepted_and_verified(hub: TestHub) {
    // A file of one 128 KiB block repeated, as a sparse or patterned file is.
    let block = random_bytes(MIN, 10);
    let tail = random_bytes(777, 11);
    assert_eq!(put_chunk(&hub, &block).await.0, StatusCode::CREATED);
    assert_eq!(put_chunk(&hub, &tail).await.0, StatusCode::CREATED);
    let mut content = Vec::new();
    let mut chunks = Vec::new();
    for _ in 0..5 {
        content.extend_from_slice(&block);
        chunks.push(chunk_ref(&block));
    }
    content.extend_from_slice(&tail);
    chunks.push(chunk_ref(&tail));

    // Verification still hashes the whole file in order: a wrong digest, or
    // the right chunks in the wrong order, is refused.
    let wrong = CommitRequest {
        sha256: Sha256Hex::of(&content[1..]),
        ..file_commit("pattern.bin", &content, chunks.clone())
    };
    let (status, error) = hub.commit(&wrong).await.unwrap_err();
    assert_eq!(
        (status, error.error),
        (StatusCode::BAD_REQUEST, ErrorCode::ContentMismatch)
    );
    assert!(hub.index().await.is_empty());

    let entry = hub
        .commit(&file_commit("pattern.bin", &content, chunks.clone()))
        .await
        .unwrap();
    assert_eq!(entry.chunks.as_deref(), Some(&chunks[..]));
    assert_eq!(hub.download("pattern.bin").await.1, content);
    let range = hub
        .http
        .get(hub.url("/v1/file?path=pattern.bin"))
        .header("range", format!("bytes={}-{}", MIN - 5, MIN + 4))
        .send()
        .await
        .unwrap();
    assert_eq!(range.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(range.bytes().await.unwrap(), content[MIN - 5..MIN + 5]);
}

async fn history_is_paged(hub: TestHub) {
    let mut base = 0;
    for n in 0..7u8 {
        base = hub
            .put_file("notes.txt", base, &[b'v', b'0' + n], "a")
            .await
            .unwrap()
            .version;
    }
    let page = |query: &'static str| {
        let hub = &hub;
        async move {
            let (status, body) = hub
                .get_json(&format!("/v1/history?path=notes.txt{query}"))
                .await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            let page: HistoryResponse = serde_json::from_value(body).unwrap();
            let versions: Vec<u64> = page.versions.iter().map(|v| v.version).collect();
            assert!(
                page.versions.iter().all(|v| v.chunks.is_none()),
                "history carries no chunks"
            );
            (versions, page.more)
        }
    };
    // Old clients ask without paging and get every version, oldest first.
    assert_eq!(page("").await, ((1..=7).collect(), false));
    // The newest page, then older ones.
    assert_eq!(page("&limit=3").await, (vec![5, 6, 7], true));
    assert_eq!(page("&limit=3&before=5").await, (vec![2, 3, 4], true));
    assert_eq!(page("&limit=3&before=2").await, (vec![1], false));
    // Forwards from the oldest.
    assert_eq!(page("&limit=3&after=0").await, (vec![1, 2, 3], true));
    assert_eq!(page("&limit=3&after=4").await, (vec![5, 6, 7], false));
    assert_eq!(page("&after=7").await, (vec![], false));

    for bad in ["&limit=0", "&limit=10001", "&before=3&after=1", "&limit=x"] {
        let (status, body) = hub
            .get_json(&format!("/v1/history?path=notes.txt{bad}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"], "invalid_request", "{bad}");
    }
    let (status, body) = hub.get_json("/v1/history?path=never.txt&after=0").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

async fn changes_carry_chunks_only_when_asked(hub: TestHub) {
    hub.put_file("a.bin", 0, &random_bytes(300_000, 20), "a")
        .await
        .unwrap();
    for (query, with_chunks) in [
        ("", false),
        ("&chunks=false", false),
        ("&chunks=true", true),
    ] {
        let (status, body) = hub.get_json(&format!("/v1/changes?since=0{query}")).await;
        assert_eq!(status, StatusCode::OK);
        let entry = &body["changes"][0];
        assert_eq!(entry["path"], "a.bin");
        assert_eq!(
            entry.get("chunks").is_some(),
            with_chunks,
            "{query}: {entry}"
        );
    }
    // The legacy index lists the file, without chunk lists.
    let (_, index) = hub.get_json("/index").await;
    assert!(index["index"]["a.bin"].get("chunks").is_none());
    assert!(index["index"]["a.bin"]["sha"].is_string());
}

async fn json_bodies_have_limits_per_route(hub: TestHub) {
    hub.put_file("kept.txt", 0, b"kept", "a").await.unwrap();
    let head = hub.head().await;
    // A path-sized request padded far past any real one.
    let padding = "x".repeat(100 * 1024);
    let small_routes = [
        (
            "/v1/delete",
            json!({"path": "kept.txt", "base_version": 1, "origin": padding}),
        ),
        (
            "/v1/restore",
            json!({"path": "kept.txt", "version": 1, "origin": padding}),
        ),
        ("/delete", json!({"path": "kept.txt", "padding": padding})),
    ];
    for (route, body) in &small_routes {
        let (status, answer) = hub.post_json(route, body).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{route}: {answer}");
        assert_eq!(answer["error"], "payload_too_large", "{route}");
    }
    // A chunk-missing query longer than its 100,000 hashes could be.
    let hashes = vec![Sha256Hex::of(b"x").to_hex(); 122_000];
    let (status, _) = hub
        .post_json("/v1/chunks/missing", &json!({"chunks": hashes}))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // A fetch longer than its 10,000 hashes could be.
    let hashes = vec![Sha256Hex::of(b"x").to_hex(); 14_000];
    let (status, _) = hub
        .post_json("/v1/chunks/fetch", &json!({"chunks": hashes}))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // A commit larger than the chunk list of the largest file allowed (16 GiB
    // by default: 131,072 chunks). Only a little larger: the hub answers once
    // it has read its limit, and a client still sending then sees a reset.
    let chunk = json!({"hash": Sha256Hex::of(b"x"), "len": MIN});
    let commit = json!({
        "path": "big.bin", "kind": "file", "base_version": 0,
        "sha256": Sha256Hex::of(b"x"), "size": 16u64 << 30, "mtime_ns": 0,
        "executable": false, "origin": "a",
        "chunks": vec![chunk; 150_000],
    });
    let (status, _) = hub.post_json("/v1/commit", &commit).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(hub.head().await, head, "nothing was changed");
    assert_eq!(hub.download("kept.txt").await.1, b"kept");
}

async fn cut_off_uploads_leave_no_temp_files(hub: TestHub) {
    let data_dir = hub.storage.data_path();
    // A chunk upload cut off half-way: the client promises 1 MB, sends
    // 300 KB and goes away.
    let bytes = random_bytes(1_000_000, 30);
    let addr = hub.base.trim_start_matches("http://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut head = format!(
        "PUT /v1/chunks/{} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\n",
        Sha256Hex::of(&bytes),
        bytes.len()
    );
    if !hub.token.is_empty() {
        head.push_str(&format!("authorization: Bearer {}\r\n", hub.token));
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&bytes[..300_000]).await.unwrap();
    tcp.flush().await.unwrap();
    // Once the hub has the partial body on disk, hang up.
    wait_for("the upload to reach a temp file", || {
        !temp_files(&data_dir).is_empty()
    })
    .await;
    drop(tcp);
    wait_for("the cut-off upload's temp file to go", || {
        temp_files(&data_dir).is_empty()
    })
    .await;
    assert!(stored_chunks(&data_dir).is_empty(), "nothing was stored");

    // A pack cut off after enough frames for the hub to stage some in temp
    // files: they go too, and nothing of the pack is published.
    let frames: Vec<Vec<u8>> = (0..3).map(|i| random_bytes(1 << 20, 31 + i)).collect();
    let mut pack = Vec::new();
    for frame in &frames {
        pack.extend_from_slice(&encode_pack_header(&Sha256Hex::of(frame), 1 << 20));
        pack.extend_from_slice(frame);
    }
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut head = format!(
        "POST /v1/chunks/pack HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\n",
        pack.len() + 1000
    );
    if !hub.token.is_empty() {
        head.push_str(&format!("authorization: Bearer {}\r\n", hub.token));
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&pack).await.unwrap();
    tcp.flush().await.unwrap();
    wait_for("the pack to reach temp files", || {
        !temp_files(&data_dir).is_empty()
    })
    .await;
    drop(tcp);
    wait_for("the cut-off pack's temp files to go", || {
        temp_files(&data_dir).is_empty()
    })
    .await;
    assert!(stored_chunks(&data_dir).is_empty(), "nothing was stored");

    // A temp file from a crash mid-upload (named as the store names them)
    // is gone once the hub restarts.
    let stray = data_dir.join("tmp").join("4242-7.part");
    std::fs::File::create(&stray)
        .unwrap()
        .write_all(&bytes[..1000])
        .unwrap();
    let hub = hub.restart().await;
    assert_eq!(temp_files(&data_dir), Vec::<PathBuf>::new());
    // And the store works as before.
    assert_eq!(put_chunk(&hub, &bytes).await.0, StatusCode::CREATED);
}

/// Polls `done` until it holds; fails after a minute (a hang, not a timing).
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited a minute for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until garbage collection has completed `passes` more passes, so at
/// least one whole pass started after the caller's changes.
async fn wait_for_gc_passes(hub: &TestHub, passes: f64) {
    let start = hub.metric("sync_gc_runs_total").await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while hub.metric("sync_gc_runs_total").await.unwrap() < start + passes {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no garbage collection pass in a minute"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn unreferenced_chunks_are_collected_after_the_grace_period(backend: Backend) {
    // Set up with collection off, so nothing is collected half-way through.
    let Some(hub) = TestHub::start_with(backend, |s| s.gc_interval = Duration::ZERO).await else {
        return;
    };
    let old = Duration::from_secs(2 * 3600);
    // Committed content, with chunks from long ago: referenced, kept.
    let committed = random_bytes(400_000, 40);
    let entry = hub.put_file("kept.bin", 0, &committed, "a").await.unwrap();
    let committed_chunks = entry.chunks.unwrap();
    // Uploaded but never committed, long ago: collected.
    let abandoned = random_bytes(50_000, 41);
    // Uploaded but never committed, just now: kept (a commit may follow).
    let fresh = random_bytes(50_000, 42);
    // Old, then uploaded again / reported present: a commit is on its way.
    let uploaded_again = random_bytes(50_000, 43);
    let reported_present = random_bytes(50_000, 44);
    for bytes in [&abandoned, &fresh, &uploaded_again, &reported_present] {
        assert_eq!(put_chunk(&hub, bytes).await.0, StatusCode::CREATED);
    }
    for chunk in &committed_chunks {
        age(&chunk_file(&hub, &chunk.hash), old);
    }
    for bytes in [&abandoned, &uploaded_again, &reported_present] {
        age(&chunk_file(&hub, &Sha256Hex::of(bytes)), old);
    }
    assert_eq!(put_chunk(&hub, &uploaded_again).await.0, StatusCode::OK);
    let (_, missing) = hub
        .post_json(
            "/v1/chunks/missing",
            &json!({"chunks": [Sha256Hex::of(&reported_present)]}),
        )
        .await;
    assert_eq!(missing["missing"], json!([]));
    let storage = hub.stop().await;
    let on_disk_before = stored_chunks(&storage.data_path());

    // Collect with a grace period of an hour.
    let hub = TestHub::start_on(storage, |s| {
        s.chunk_grace = Duration::from_secs(3600);
        s.gc_interval = Duration::from_millis(50);
    })
    .await;
    wait_for_gc_passes(&hub, 2.0).await;

    let status_of = |bytes: &Vec<u8>| {
        let url = hub.url(&format!("/v1/chunks/{}", Sha256Hex::of(bytes)));
        let http = hub.http.clone();
        async move { http.get(url).send().await.unwrap().status() }
    };
    assert_eq!(status_of(&abandoned).await, StatusCode::NOT_FOUND);
    for kept in [&fresh, &uploaded_again, &reported_present] {
        assert_eq!(status_of(kept).await, StatusCode::OK);
    }
    for chunk in &committed_chunks {
        assert!(chunk_file(&hub, &chunk.hash).exists());
    }
    assert_eq!(hub.download("kept.bin").await.1, committed);
    let on_disk = stored_chunks(&hub.storage.data_path());
    let gone: Vec<_> = on_disk_before
        .iter()
        .filter(|p| !on_disk.contains(p))
        .collect();
    assert_eq!(
        gone,
        [&chunk_file(&hub, &Sha256Hex::of(&abandoned))],
        "only the abandoned chunk goes"
    );
    assert_eq!(hub.metric("sync_gc_removed_chunks_total").await, Some(1.0));
    assert_eq!(
        hub.metric("sync_gc_removed_bytes_total").await,
        Some(abandoned.len() as f64)
    );
    // The store gauges count what is on disk.
    let disk_bytes: u64 = on_disk.iter().map(|p| p.metadata().unwrap().len()).sum();
    assert_eq!(
        hub.metric("sync_chunks_stored").await,
        Some(on_disk.len() as f64)
    );
    assert_eq!(
        hub.metric("sync_chunk_bytes_stored").await,
        Some(disk_bytes as f64)
    );

    // A commit of a collected chunk is told to upload it again, and then works.
    let request = file_commit("late.bin", &abandoned, vec![chunk_ref(&abandoned)]);
    let (status, error) = hub.commit(&request).await.unwrap_err();
    assert_eq!(
        (status, error.error),
        (StatusCode::BAD_REQUEST, ErrorCode::MissingChunks)
    );
    assert_eq!(put_chunk(&hub, &abandoned).await.0, StatusCode::CREATED);
    assert_eq!(hub.commit(&request).await.unwrap().version, 1);
    // Committed chunks survive however old, pass after pass.
    age(&chunk_file(&hub, &Sha256Hex::of(&abandoned)), old);
    wait_for_gc_passes(&hub, 2.0).await;
    assert_eq!(hub.download("late.bin").await.1, abandoned);
    assert_eq!(hub.metric("sync_gc_removed_chunks_total").await, Some(1.0));
}

/// Garbage collection on a bucket goes by the objects' Last-Modified: an
/// object no version references and older than the grace period goes;
/// committed ones, fresh ones and one uploaded again stay.
async fn unreferenced_objects_are_collected_from_a_bucket() {
    let Some(hub) =
        TestHub::start_with(Backend::PostgresS3, |s| s.gc_interval = Duration::ZERO).await
    else {
        return;
    };
    let grace = Duration::from_secs(5);
    let committed = random_bytes(400_000, 60);
    let entry = hub.put_file("kept.bin", 0, &committed, "a").await.unwrap();
    let committed_chunks = entry.chunks.unwrap().len();
    let abandoned = random_bytes(50_000, 61);
    let uploaded_again = random_bytes(50_000, 62);
    for bytes in [&abandoned, &uploaded_again] {
        assert_eq!(put_chunk(&hub, bytes).await.0, StatusCode::CREATED);
    }
    // Real time must pass: a bucket's objects cannot be aged otherwise.
    tokio::time::sleep(grace + Duration::from_secs(1)).await;
    let fresh = random_bytes(50_000, 63);
    assert_eq!(put_chunk(&hub, &fresh).await.0, StatusCode::CREATED);
    assert_eq!(put_chunk(&hub, &uploaded_again).await.0, StatusCode::OK);
    let storage = hub.stop().await;
    let hub = TestHub::start_on(storage, |s| {
        s.chunk_grace = grace;
        s.gc_interval = Duration::from_millis(50);
    })
    .await;
    wait_for_gc_passes(&hub, 2.0).await;
    let status_of = |bytes: &Vec<u8>| {
        let url = hub.url(&format!("/v1/chunks/{}", Sha256Hex::of(bytes)));
        let http = hub.http.clone();
        async move { http.get(url).send().await.unwrap().status() }
    };
    assert_eq!(status_of(&abandoned).await, StatusCode::NOT_FOUND);
    assert_eq!(status_of(&fresh).await, StatusCode::OK);
    assert_eq!(status_of(&uploaded_again).await, StatusCode::OK);
    assert_eq!(hub.download("kept.bin").await.1, committed);
    assert_eq!(hub.metric("sync_gc_removed_chunks_total").await, Some(1.0));
    assert_eq!(hub.storage.chunk_count().await, committed_chunks + 2);
}

async fn a_full_store_answers_507_and_stores_nothing(backend: Backend) {
    let first = random_bytes(600_000, 50);
    // A legacy upload whose first chunk fits and whose later ones do not.
    let file = random_bytes(3_000_000, 52);
    let file_chunks: Vec<_> = Chunker::new(&file[..])
        .map(|c| c.unwrap().to_ref())
        .collect();
    assert!(file_chunks.len() > 1);
    let room = file_chunks[0].len + 10;
    let capacity = first.len() as u64 + room;
    let Some(hub) = TestHub::start_with(backend, |s| s.max_store_bytes = Some(capacity)).await
    else {
        return;
    };
    let data_dir = hub.storage.data_path();
    let local = hub.storage.bucket.is_none();
    assert_eq!(put_chunk(&hub, &first).await.0, StatusCode::CREATED);
    assert_eq!(hub.storage.chunk_count().await, 1);

    // A new chunk that does not fit.
    assert!(room < MAX_CHUNK_SIZE as u64);
    let second = random_bytes(room as usize + 1, 51);
    let (status, body) = put_chunk(&hub, &second).await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
    assert_eq!(body["error"], "insufficient_storage");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("--max-store-bytes")
    );
    // A chunk already stored costs nothing: still accepted.
    assert_eq!(put_chunk(&hub, &first).await.0, StatusCode::OK);

    // Refused, and the chunk it had stored is removed again.
    let (status, body) = hub.legacy_upload("big.bin", None, &file).await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
    assert_eq!(body["error"], "insufficient_storage");
    assert_eq!(hub.storage.chunk_count().await, 1, "nothing new is stored");
    if local {
        assert_eq!(temp_files(&data_dir), Vec::<PathBuf>::new());
    }
    assert!(hub.index().await.is_empty());
    assert_eq!(hub.head().await, 0);
    assert_eq!(hub.metric("sync_chunks_stored").await, Some(1.0));
    assert_eq!(
        hub.metric("sync_chunk_bytes_stored").await,
        Some(first.len() as f64)
    );

    // What fits still goes in, and content made of stored chunks commits.
    let small = random_bytes(100_000, 53);
    let (status, body) = hub.legacy_upload("small.bin", None, &small).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let entry = hub
        .commit(&file_commit("first.bin", &first, vec![chunk_ref(&first)]))
        .await
        .unwrap();
    assert_eq!(entry.version, 1);
    let last = random_bytes((room - small.len() as u64) as usize, 54);
    assert_eq!(put_chunk(&hub, &last).await.0, StatusCode::CREATED);
    // Now full to the byte: any new chunk is refused before its body is read.
    let (status, _) = put_chunk(&hub, &random_bytes(1000, 55)).await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE);
    let (status, _) = hub.legacy_upload("tiny.txt", None, b"tiny").await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE);
    assert_eq!(hub.index().await.len(), 2);
    assert_eq!(hub.storage.chunk_count().await, 3);
}
