//! Chunks damaged or lost on the hub's disk: never served as wrong bytes,
//! moved aside, asked of agents (across a restart), repaired by a good
//! upload; and `sf-hub check` finding and repairing what is wrong.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use reqwest::StatusCode;
use sf_protocol::Sha256Hex;
use sf_protocol::v1::{CommitRequest, Entry, EntryKind, ErrorCode, WantedChunk, WsFrame};

use crate::common::TestHub;
use crate::common::client::random_bytes;
use crate::websocket::next_frame;

crate::on_both_backends!(
    a_damaged_chunk_is_refused_asked_for_and_repaired,
    a_truncated_chunk_is_repaired_by_the_next_commit_of_its_content,
    check_finds_and_repairs_what_is_wrong
);

fn chunk_hashes(entry: &Entry) -> Vec<Sha256Hex> {
    entry
        .chunks
        .as_ref()
        .expect("commit answers carry chunks")
        .iter()
        .map(|c| c.hash)
        .collect()
}

/// Waits for a `wanted` frame naming exactly `expected`.
async fn wanted_frame<S>(socket: &mut S, expected: &BTreeSet<Sha256Hex>) -> Vec<WantedChunk>
where
    S: futures_util::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    loop {
        if let WsFrame::Wanted { chunks } = next_frame(socket).await {
            let named: BTreeSet<Sha256Hex> = chunks.iter().map(|c| c.hash).collect();
            if &named == expected {
                return chunks;
            }
        }
    }
}

async fn metric_becomes(hub: &TestHub, name: &str, expected: f64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let value = hub.metric(name).await.unwrap_or(0.0);
        if value == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} is {value}, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_damaged_chunk_is_refused_asked_for_and_repaired(hub: TestHub) {
    let big = random_bytes(3 << 20, 11);
    let big_entry = hub.put_file("docs/big.bin", 0, &big, "a").await.unwrap();
    let big_chunks = chunk_hashes(&big_entry);
    assert!(big_chunks.len() >= 3, "several chunks: {big_chunks:?}");
    let small = b"a small file, one chunk".to_vec();
    let small_entry = hub.put_file("small.txt", 0, &small, "a").await.unwrap();
    let small_chunk = chunk_hashes(&small_entry)[0];
    let (mut socket, _) = tokio_tungstenite::connect_async(hub.ws_request())
        .await
        .unwrap();
    assert!(matches!(
        next_frame(&mut socket).await,
        WsFrame::Hello { .. }
    ));

    hub.storage.damage_chunk(&small_chunk).await;
    hub.storage.damage_chunk(&big_chunks[1]).await;

    // A damaged first chunk: a clean error, no bytes at all.
    let (status, body) = hub.download("small.txt").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"], "not_ready", "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("damaged"),
        "{body}"
    );
    // A damaged later chunk: the answer is cut off, and what came is right.
    let resp = hub
        .http
        .get(hub.url("/v1/file?path=docs/big.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut received = Vec::new();
    let mut stream = resp.bytes_stream();
    let mut cut = false;
    while let Some(piece) = stream.next().await {
        match piece {
            Ok(bytes) => received.extend_from_slice(&bytes),
            Err(_) => {
                cut = true;
                break;
            }
        }
    }
    assert!(cut, "the body ends in an error");
    assert!(received.len() < big.len());
    assert_eq!(received[..], big[..received.len()], "only right bytes");
    // Moved aside: now simply missing, and kept for the operator.
    let resp = hub
        .http
        .get(hub.url(&format!("/v1/chunks/{}", big_chunks[1])))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(hub.storage.damaged_count().await, 2);
    metric_becomes(&hub, "sync_chunks_damaged_total", 2.0).await;
    metric_becomes(&hub, "sync_chunks_wanted", 2.0).await;

    // Agents are asked, with the files that held each chunk.
    let lost: BTreeSet<Sha256Hex> = [small_chunk, big_chunks[1]].into();
    let wanted = wanted_frame(&mut socket, &lost).await;
    for chunk in &wanted {
        let file = &chunk.files[0];
        if chunk.hash == small_chunk {
            assert_eq!(file.path.as_str(), "small.txt");
            assert_eq!(file.sha256, Sha256Hex::of(&small));
        } else {
            assert_eq!(file.path.as_str(), "docs/big.bin");
            assert_eq!(file.sha256, Sha256Hex::of(&big));
        }
    }

    // Still asked for after a restart.
    drop(socket);
    let hub = hub.restart().await;
    let (mut socket, _) = tokio_tungstenite::connect_async(hub.ws_request())
        .await
        .unwrap();
    wanted_frame(&mut socket, &lost).await;

    // An agent's upload of the good bytes repairs the store.
    hub.upload_chunks(&big).await;
    hub.upload_chunks(&small).await;
    assert_eq!(hub.download("small.txt").await, (StatusCode::OK, small));
    let resp = hub
        .http
        .get(hub.url("/v1/file?path=docs/big.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap(), big);
    metric_becomes(&hub, "sync_chunks_repaired_total", 2.0).await;
    metric_becomes(&hub, "sync_chunks_wanted", 0.0).await;
    // Nothing is asked for after the next restart.
    let hub = hub.restart().await;
    let report = sf_hub::check::run_with(&hub.storage.settings(), false)
        .await
        .unwrap();
    assert!(report.is_consistent(), "{report}");
    assert_eq!(report.wanted, 0, "{report}");
}

/// A chunk cut short on disk: a commit of content that uses it is told the
/// chunk is missing (not that its content is wrong), the client's upload
/// of it repairs the store, and the old file downloads whole again.
async fn a_truncated_chunk_is_repaired_by_the_next_commit_of_its_content(hub: TestHub) {
    let bytes = random_bytes(1 << 20, 21);
    let entry = hub.put_file("one.bin", 0, &bytes, "a").await.unwrap();
    let chunks = entry.chunks.clone().unwrap();
    let victim = chunks[0].hash;
    let whole = hub.storage.chunk_bytes(&victim).await.unwrap();
    hub.storage
        .write_chunk(&victim, whole[..whole.len() / 2].to_vec())
        .await;
    let copy = CommitRequest {
        path: "copy.bin".parse().unwrap(),
        kind: EntryKind::File,
        base_version: 0,
        sha256: Sha256Hex::of(&bytes),
        size: bytes.len() as u64,
        mtime_ns: 0,
        executable: false,
        chunks,
        origin: "a".into(),
    };
    let (status, refusal) = hub.commit(&copy).await.unwrap_err();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refusal.error, ErrorCode::MissingChunks, "{refusal:?}");
    assert_eq!(refusal.missing, Some(vec![victim]));
    hub.upload_chunks(&bytes).await;
    hub.commit(&copy).await.unwrap();
    assert_eq!(hub.download("one.bin").await, (StatusCode::OK, bytes));
    metric_becomes(&hub, "sync_chunks_repaired_total", 1.0).await;
}

async fn check_finds_and_repairs_what_is_wrong(hub: TestHub) {
    let files: Vec<Vec<u8>> = (0..4).map(|i| random_bytes(40_000, 100 + i)).collect();
    let mut entries = Vec::new();
    for (i, bytes) in files.iter().enumerate() {
        entries.push(
            hub.put_file(&format!("f{i}.bin"), 0, bytes, "a")
                .await
                .unwrap(),
        );
    }
    let settings = hub.storage.settings();
    let clean = sf_hub::check::run_with(&settings, false).await.unwrap();
    assert!(clean.is_consistent(), "{clean}");
    assert_eq!(clean.chunks, 4);

    let damaged = chunk_hashes(&entries[0])[0];
    let missing = chunk_hashes(&entries[1])[0];
    hub.storage.damage_chunk(&damaged).await;
    hub.storage.remove_chunk(&missing).await;
    // Orphans: uploaded, never committed; one older than the grace period.
    let old_orphan = random_bytes(5_000, 1);
    let young_orphan = random_bytes(5_000, 2);
    let (old_hash, _) = hub.upload_chunks(&old_orphan).await;
    hub.upload_chunks(&young_orphan).await;
    let two_days_ago = SystemTime::now() - Duration::from_secs(48 * 3600);
    // A bucket's objects cannot be aged, and it keeps no temp files: there
    // the check finds two young orphans and nothing to remove.
    let local = hub.storage.age_chunk(&old_hash, two_days_ago);
    let stale_temp = hub.storage.data_path().join("tmp").join("crashed.part");
    if local {
        std::fs::write(&stale_temp, b"half a chunk").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&stale_temp)
            .unwrap()
            .set_modified(two_days_ago)
            .unwrap();
    }
    let (old, temp) = if local { (1, 1) } else { (0, 0) };

    let found = sf_hub::check::run_with(&settings, false).await.unwrap();
    assert!(!found.is_consistent(), "{found}");
    assert_eq!(found.damaged, vec![damaged], "{found}");
    assert_eq!(found.missing, vec![missing], "{found}");
    assert_eq!((found.orphaned, found.orphaned_old), (2, old), "{found}");
    assert_eq!(found.old_temp, temp, "{found}");
    let text = found.to_string();
    assert!(text.contains("f0.bin") && text.contains("f1.bin"), "{text}");
    // Only looked: everything is where it was.
    assert!(hub.storage.chunk_bytes(&damaged).await.is_some());
    assert!(hub.storage.chunk_bytes(&old_hash).await.is_some());
    assert_eq!(stale_temp.exists(), local);

    let repaired = sf_hub::check::run_with(&settings, true).await.unwrap();
    assert_eq!(repaired.moved_aside, 1, "{repaired}");
    assert_eq!(repaired.recorded_wanted, 2, "{repaired}");
    assert_eq!(repaired.removed_orphans, old, "{repaired}");
    assert_eq!(repaired.removed_temp, temp, "{repaired}");
    assert!(hub.storage.chunk_bytes(&damaged).await.is_none());
    assert_eq!(hub.storage.chunk_bytes(&old_hash).await.is_none(), local);
    assert!(!stale_temp.exists());
    assert_eq!(hub.storage.damaged_count().await, 1);
    assert!(
        !repaired.is_consistent(),
        "still lost until an agent gives them back: {repaired}"
    );

    // The hub asks agents for what the check recorded (read at start).
    let hub = hub.restart().await;
    let (mut socket, _) = tokio_tungstenite::connect_async(hub.ws_request())
        .await
        .unwrap();
    wanted_frame(&mut socket, &[damaged, missing].into()).await;
    hub.upload_chunks(&files[0]).await;
    hub.upload_chunks(&files[1]).await;
    metric_becomes(&hub, "sync_chunks_wanted", 0.0).await;
    let after = sf_hub::check::run_with(&settings, false).await.unwrap();
    assert!(after.is_consistent(), "{after}");
    assert_eq!(after.wanted, 0, "{after}");
    for (i, bytes) in files.iter().enumerate() {
        assert_eq!(
            hub.download(&format!("f{i}.bin")).await,
            (StatusCode::OK, bytes.clone())
        );
    }

    // Repairing a damaged chunk (moving it aside) does not make the store
    // whole: it stays lost until a good copy comes.
    let rotten = chunk_hashes(&entries[2])[0];
    hub.storage.damage_chunk(&rotten).await;
    let moved = sf_hub::check::run_with(&settings, true).await.unwrap();
    assert_eq!(moved.moved_aside, 1, "{moved}");
    assert!(!moved.is_consistent(), "{moved}");
    hub.upload_chunks(&files[2]).await;
    let back = sf_hub::check::run_with(&settings, true).await.unwrap();
    assert!(back.is_consistent(), "{back}");
    assert_eq!(back.no_longer_wanted, 1, "{back}");
}
