//! Many changes per request: `POST /v1/batch` (commits and deletes in one
//! transaction, one outcome each, broadcast in seq order), chunk packs up
//! (`POST /v1/chunks/pack`) and down (`POST /v1/chunks/fetch`), and what
//! each refuses.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sf_protocol::Sha256Hex;
use sf_protocol::chunking::{Chunk, Chunker, MAX_CHUNK_SIZE};
use sf_protocol::v1::{
    BATCH_MAX_OPS, BatchOp, BatchOutcome, BatchRequest, BatchResponse, CommitRequest,
    DeleteRequest, Entry, EntryKind, ErrorCode, FETCH_MAX_CHUNKS, PACK_HEADER_LEN, PACK_MAX_CHUNKS,
    PackResponse, WsFrame, decode_pack_header, encode_pack_header,
};

use crate::common::client::random_bytes;
use crate::common::{Backend, TestHub};
use crate::dir_commit;
use crate::websocket::next_frame;

crate::on_both_backends!(
    a_batch_commits_and_deletes_in_order_and_broadcasts_them,
    refused_operations_leave_the_others_and_no_gap_in_seq,
    operations_see_what_earlier_ones_of_the_batch_did,
    a_folder_is_deleted_only_once_nothing_inside_it_is_live,
    the_feed_from_memory_is_the_feed_from_the_database,
    an_oversized_or_malformed_batch_changes_nothing,
    packs_store_chunks_for_commits_and_refuse_bad_frames,
    fetch_sends_chunks_in_order_or_nothing,
);

/// A pack body carrying `chunks` in order.
fn pack_body<'a>(chunks: impl IntoIterator<Item = &'a Chunk>) -> Vec<u8> {
    let mut body = Vec::new();
    for chunk in chunks {
        body.extend_from_slice(&encode_pack_header(&chunk.hash, chunk.data.len() as u32));
        body.extend_from_slice(&chunk.data);
    }
    body
}

/// The frames of a pack answer.
fn parse_pack(mut body: &[u8]) -> Vec<(Sha256Hex, Vec<u8>)> {
    let mut frames = Vec::new();
    while !body.is_empty() {
        let header: [u8; PACK_HEADER_LEN] = body[..PACK_HEADER_LEN].try_into().unwrap();
        let (hash, len) = decode_pack_header(&header).unwrap();
        let end = PACK_HEADER_LEN + len as usize;
        frames.push((hash, body[PACK_HEADER_LEN..end].to_vec()));
        body = &body[end..];
    }
    frames
}

fn chunks_of(bytes: &[u8]) -> Vec<Chunk> {
    Chunker::new(bytes).map(|c| c.unwrap()).collect()
}

async fn post_pack(hub: &TestHub, body: Vec<u8>) -> (StatusCode, Value) {
    let resp = hub
        .http
        .post(hub.url("/v1/chunks/pack"))
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Uploads `chunks` in one pack, which must succeed.
async fn upload_pack(hub: &TestHub, chunks: &[Chunk]) -> PackResponse {
    let (status, body) = post_pack(hub, pack_body(chunks)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value(body).unwrap()
}

async fn batch(hub: &TestHub, ops: Vec<BatchOp>) -> Vec<BatchOutcome> {
    let (status, body) = hub
        .post_json(
            "/v1/batch",
            &serde_json::to_value(BatchRequest { ops }).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value::<BatchResponse>(body)
        .unwrap()
        .outcomes
}

fn file_commit(path: &str, base_version: u64, bytes: &[u8]) -> CommitRequest {
    CommitRequest {
        path: path.parse().unwrap(),
        kind: EntryKind::File,
        base_version,
        sha256: Sha256Hex::of(bytes),
        size: bytes.len() as u64,
        mtime_ns: 1_700_000_000_000_000_000,
        executable: false,
        chunks: chunks_of(bytes).iter().map(Chunk::to_ref).collect(),
        origin: "batcher".into(),
    }
}

fn commit(request: CommitRequest) -> BatchOp {
    BatchOp::Commit(request)
}

fn delete(path: &str, base_version: u64) -> BatchOp {
    BatchOp::Delete(DeleteRequest {
        path: path.parse().unwrap(),
        base_version,
        origin: "batcher".into(),
    })
}

#[track_caller]
fn done(outcome: &BatchOutcome) -> &Entry {
    match outcome {
        BatchOutcome::Done { entry } => entry,
        other => panic!("expected done, got {other:?}"),
    }
}

#[track_caller]
fn refused(outcome: &BatchOutcome) -> ErrorCode {
    match outcome {
        BatchOutcome::Refused { error } => error.error,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// `outcome` is a `path_conflict` refusal whose detail says `says`.
#[track_caller]
fn assert_path_conflict(outcome: &BatchOutcome, says: &str) {
    match outcome {
        BatchOutcome::Refused { error } => {
            assert_eq!(error.error, ErrorCode::PathConflict);
            assert!(error.detail.contains(says), "{}", error.detail);
        }
        other => panic!("expected path_conflict, got {other:?}"),
    }
}

/// Every seq from 1 to head appears in the feed, once, in order.
async fn assert_seq_gap_free(hub: &TestHub) -> u64 {
    let feed = hub.changes(0).await;
    let seqs: Vec<u64> = feed.changes.iter().map(|c| c.seq).collect();
    assert_eq!(seqs, (1..=feed.head).collect::<Vec<_>>(), "seq has gaps");
    feed.head
}

async fn a_batch_commits_and_deletes_in_order_and_broadcasts_them(hub: TestHub) {
    let (mut socket, _) = tokio_tungstenite::connect_async(hub.ws_request())
        .await
        .unwrap();
    assert!(matches!(
        next_frame(&mut socket).await,
        WsFrame::Hello { head: 0, .. }
    ));
    let files: Vec<Vec<u8>> = (0..20).map(|i| random_bytes(1000 + i, i as u64)).collect();
    let big = random_bytes(3_000_000, 99);
    let mut chunks: Vec<Chunk> = files.iter().flat_map(|f| chunks_of(f)).collect();
    chunks.extend(chunks_of(&big));
    assert!(chunks.len() > 21, "the big file is several chunks");
    let packed = upload_pack(&hub, &chunks).await;
    assert_eq!(
        (packed.chunks, packed.stored),
        (chunks.len() as u64, chunks.len() as u64)
    );
    // Sent again, every chunk is held already.
    let again = upload_pack(&hub, &chunks[..3]).await;
    assert_eq!((again.chunks, again.stored), (3, 0));

    let mut ops = vec![commit(dir_commit("docs", 0))];
    for (i, bytes) in files.iter().enumerate() {
        ops.push(commit(file_commit(&format!("docs/{i}.bin"), 0, bytes)));
    }
    ops.push(commit(file_commit("big.bin", 0, &big)));
    ops.push(delete("docs/3.bin", 1));
    let uploads_before = hub.metric("sync_uploads_total").await.unwrap();
    let outcomes = batch(&hub, ops).await;
    assert_eq!(outcomes.len(), 23);
    let entries: Vec<&Entry> = outcomes.iter().map(done).collect();
    let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=23).collect::<Vec<_>>(), "one seq each, in order");
    assert_eq!(entries[0].kind, EntryKind::Dir);
    assert_eq!(entries[21].path.as_str(), "big.bin");
    assert_eq!(
        entries[21].chunks.as_ref().unwrap().len(),
        chunks.len() - 20
    );
    assert!(entries[22].deleted && entries[22].version == 2);

    // Broadcast after the transaction, in seq order, without chunk lists.
    for expected in &entries {
        match next_frame(&mut socket).await {
            WsFrame::Change(entry) => {
                assert_eq!((entry.seq, &entry.path), (expected.seq, &expected.path));
                assert!(entry.chunks.is_none());
            }
            other => panic!("unexpected frame {other:?}"),
        }
    }
    assert_eq!(assert_seq_gap_free(&hub).await, 23);
    let (status, bytes) = hub.download("big.bin").await;
    assert_eq!((status, bytes == big), (StatusCode::OK, true));
    assert_eq!(hub.download("docs/7.bin").await.1, files[7]);
    assert_eq!(hub.download("docs/3.bin").await.0, StatusCode::NOT_FOUND);
    // Counted like single commits.
    assert_eq!(
        hub.metric("sync_uploads_total").await.unwrap() - uploads_before,
        22.0
    );
    assert_eq!(hub.metric("sync_deletes_total").await, Some(1.0));

    // A retry of the same batch changes nothing: identical commits and the
    // tombstone come back as they are, the rest as conflicts.
    let retry = vec![
        commit(file_commit("docs/1.bin", 1, &files[1])),
        delete("docs/3.bin", 2),
        commit(file_commit("docs/2.bin", 0, &files[2])),
    ];
    let outcomes = batch(&hub, retry).await;
    assert_eq!(done(&outcomes[0]).seq, 3);
    assert_eq!(done(&outcomes[1]).seq, 23);
    match &outcomes[2] {
        BatchOutcome::Conflict {
            current: Some(current),
        } => {
            assert_eq!((current.version, current.seq), (1, 4))
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(hub.head().await, 23);
}

async fn refused_operations_leave_the_others_and_no_gap_in_seq(hub: TestHub) {
    hub.put_file("taken.txt", 0, b"first", "a").await.unwrap();
    let good = random_bytes(500, 1);
    let other = random_bytes(600, 2);
    upload_pack(&hub, &chunks_of(&good)).await;
    let unsent = random_bytes(700, 3);
    let mut wrong_sha = file_commit("wrong.bin", 0, &good);
    wrong_sha.sha256 = Sha256Hex::of(b"something else");
    let mut too_big = file_commit("huge.bin", 0, &good);
    too_big.size = 1 << 62;
    let mut bad_origin = file_commit("origin.bin", 0, &good);
    bad_origin.origin = "\u{7}".into();
    let mut dir_with_content = dir_commit("d", 0);
    dir_with_content.size = 3;

    let ops = vec![
        commit(file_commit("taken.txt", 0, &good)), // 0 conflict
        commit(file_commit("one.bin", 0, &good)),   // 1 done
        commit(file_commit("unsent.bin", 0, &unsent)), // 2 missing_chunks
        commit(file_commit("taken.txt/inner", 0, &good)), // 3 path_conflict
        delete("never.txt", 0),                     // 4 not_found
        commit(wrong_sha),                          // 5 content_mismatch
        commit(too_big),                            // 6 payload_too_large
        commit(bad_origin),                         // 7 invalid_request
        commit(dir_with_content),                   // 8 invalid_request
        delete("taken.txt", 7),                     // 9 conflict
        commit(file_commit("two.bin", 0, &good)),   // 10 done
    ];
    let outcomes = batch(&hub, ops).await;
    match &outcomes[0] {
        BatchOutcome::Conflict {
            current: Some(current),
        } => {
            assert_eq!(current.path.as_str(), "taken.txt");
            assert!(current.chunks.is_some(), "current carries its chunks");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(done(&outcomes[1]).seq, 2);
    match &outcomes[2] {
        BatchOutcome::Refused { error } => {
            assert_eq!(error.error, ErrorCode::MissingChunks);
            assert_eq!(
                error.missing.as_deref(),
                Some(&[chunks_of(&unsent)[0].hash][..])
            );
        }
        other => panic!("expected missing_chunks, got {other:?}"),
    }
    assert_eq!(refused(&outcomes[3]), ErrorCode::PathConflict);
    assert_eq!(refused(&outcomes[4]), ErrorCode::NotFound);
    assert_eq!(refused(&outcomes[5]), ErrorCode::ContentMismatch);
    assert_eq!(refused(&outcomes[6]), ErrorCode::PayloadTooLarge);
    assert_eq!(refused(&outcomes[7]), ErrorCode::InvalidRequest);
    assert_eq!(refused(&outcomes[8]), ErrorCode::InvalidRequest);
    assert!(matches!(
        outcomes[9],
        BatchOutcome::Conflict { current: Some(_) }
    ));
    assert_eq!(done(&outcomes[10]).seq, 3, "refused operations take no seq");
    // The same refusals as the single route gives.
    let (status, single) = hub
        .commit(&file_commit("unsent.bin", 0, &unsent))
        .await
        .unwrap_err();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let BatchOutcome::Refused { error } = &outcomes[2] else {
        unreachable!()
    };
    assert_eq!(single.detail, error.detail);
    let (_, single) = hub.delete_v1("never.txt", 0).await.unwrap_err();
    let BatchOutcome::Refused { error } = &outcomes[4] else {
        unreachable!()
    };
    assert_eq!(single.detail, error.detail);

    // A batch whose every operation is refused commits nothing.
    let outcomes = batch(&hub, vec![delete("never.txt", 0)]).await;
    assert_eq!(refused(&outcomes[0]), ErrorCode::NotFound);
    assert!(batch(&hub, vec![]).await.is_empty());
    let next = hub.put_file("after.bin", 0, &other, "a").await.unwrap();
    assert_eq!(next.seq, 4);
    assert_eq!(assert_seq_gap_free(&hub).await, 4);
    assert_eq!(hub.metric("sync_conflicts_total").await, Some(2.0));
}

async fn operations_see_what_earlier_ones_of_the_batch_did(hub: TestHub) {
    let bytes = random_bytes(300, 5);
    upload_pack(&hub, &chunks_of(&bytes)).await;
    // A folder, then a file inside it.
    let outcomes = batch(
        &hub,
        vec![
            commit(dir_commit("a", 0)),
            commit(file_commit("a/x", 0, &bytes)),
            // The same path twice: the second sees the first.
            commit(file_commit("twice.bin", 0, &bytes)),
            delete("twice.bin", 1),
            commit(file_commit("twice.bin", 2, &bytes)),
        ],
    )
    .await;
    let entries: Vec<&Entry> = outcomes.iter().map(done).collect();
    assert_eq!(entries[4].version, 3);
    // A file in place of the folder: refused while `a/x` lives, accepted
    // once an earlier operation deleted it.
    let mut replace = file_commit("a", 1, &bytes);
    let outcomes = batch(
        &hub,
        vec![
            commit(replace.clone()),
            delete("a/x", 1),
            commit(replace.clone()),
            commit(file_commit("a/y", 0, &bytes)),
        ],
    )
    .await;
    assert_eq!(refused(&outcomes[0]), ErrorCode::PathConflict);
    assert!(done(&outcomes[1]).deleted);
    let file = done(&outcomes[2]);
    assert_eq!((file.kind, file.version), (EntryKind::File, 2));
    assert_eq!(
        refused(&outcomes[3]),
        ErrorCode::PathConflict,
        "a/y inside the file a, committed by the same batch"
    );
    replace.base_version = 2;
    assert_eq!(hub.commit(&replace).await.unwrap().version, 2, "identical");

    // A folder of three files: deleting two of them does not free its name
    // for a file; deleting the third does.
    let outcomes = batch(
        &hub,
        (1..=3)
            .map(|i| commit(file_commit(&format!("f/{i}"), 0, &bytes)))
            .collect(),
    )
    .await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, BatchOutcome::Done { .. }))
    );
    let outcomes = batch(
        &hub,
        vec![
            delete("f/1", 1),
            delete("f/2", 1),
            commit(file_commit("f", 0, &bytes)),
        ],
    )
    .await;
    assert_path_conflict(&outcomes[2], "f/3 still exists");
    let outcomes = batch(
        &hub,
        vec![delete("f/3", 1), commit(file_commit("f", 0, &bytes))],
    )
    .await;
    assert_eq!(done(&outcomes[1]).kind, EntryKind::File);
    assert_seq_gap_free(&hub).await;
}

/// An agent deletes a folder after its contents, in the same batch; a
/// file that stays (its deletion refused, or added elsewhere meanwhile)
/// keeps the folder, alone or in a batch, and nothing else is undone.
async fn a_folder_is_deleted_only_once_nothing_inside_it_is_live(hub: TestHub) {
    for dir in ["g", "g/sub"] {
        hub.commit(&dir_commit(dir, 0)).await.unwrap();
    }
    for file in ["g/1", "g/2", "g/sub/3"] {
        hub.put_file(file, 0, file.as_bytes(), "a").await.unwrap();
    }
    let head = hub.head().await;
    let (status, body) = hub.delete_v1("g", 1).await.unwrap_err();
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body.error, ErrorCode::PathConflict);
    assert!(body.detail.contains("g/1 still exists"), "{}", body.detail);
    assert_eq!(hub.head().await, head, "a refusal writes nothing");

    let outcomes = batch(
        &hub,
        vec![
            delete("g/sub/3", 1),
            delete("g/sub", 1),
            delete("g/1", 1),
            delete("g/2", 7), // a stale base: refused, so g/2 stays
            delete("g", 1),
        ],
    )
    .await;
    for (at, outcome) in outcomes[..3].iter().enumerate() {
        assert!(done(outcome).deleted, "{at}");
    }
    assert!(matches!(outcomes[3], BatchOutcome::Conflict { .. }));
    assert_path_conflict(&outcomes[4], "g/2 still exists");
    let outcomes = batch(&hub, vec![delete("g/2", 1), delete("g", 1)]).await;
    assert!(done(&outcomes[1]).deleted && done(&outcomes[1]).kind == EntryKind::Dir);
    assert_seq_gap_free(&hub).await;
}

/// Every page of the feed a hub answers right after its commits (from
/// memory) is the page it reads from its database after a restart, with
/// and without chunk lists: single commits, a batch of commits and
/// deletions, a conflict copy and a restore.
async fn the_feed_from_memory_is_the_feed_from_the_database(hub: TestHub) {
    hub.put_file("a.txt", 0, b"one", "a").await.unwrap();
    hub.put_file("a.txt", 1, b"two", "a").await.unwrap();
    let big = random_bytes(3 << 20, 9);
    upload_pack(&hub, &chunks_of(&big)).await;
    batch(
        &hub,
        vec![
            commit(dir_commit("d", 0)),
            commit(file_commit("d/big.bin", 0, &big)),
            delete("a.txt", 2),
            commit(file_commit("d/copy.bin", 0, &big)),
            delete("d/copy.bin", 1),
        ],
    )
    .await;
    let stale = Sha256Hex::of(b"stale").to_hex();
    let (status, body) = hub
        .legacy_upload("d/big.bin", Some(&stale), b"legacy")
        .await;
    assert!(status.is_success(), "{body}");
    let (status, body) = hub
        .post_json(
            "/v1/restore",
            &json!({"path": "a.txt", "version": 1, "origin": "r"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    async fn pages(hub: &TestHub) -> Vec<Value> {
        let head = hub.head().await;
        let mut pages = Vec::new();
        for since in 0..head {
            for chunks in [true, false] {
                let (status, page) = hub
                    .get_json(&format!(
                        "/v1/changes?since={since}&limit=3&chunks={chunks}"
                    ))
                    .await;
                assert_eq!(status, StatusCode::OK, "{page}");
                pages.push(page);
            }
        }
        pages
    }
    let from_memory = pages(&hub).await;
    assert!(from_memory.len() >= 2 * 9, "{}", from_memory.len());
    let hub = hub.restart().await;
    assert_eq!(pages(&hub).await, from_memory);
}

async fn an_oversized_or_malformed_batch_changes_nothing(hub: TestHub) {
    hub.put_file("keep.txt", 0, b"keep", "a").await.unwrap();
    let head = hub.head().await;
    let ops: Vec<BatchOp> = (0..=BATCH_MAX_OPS)
        .map(|i| commit(dir_commit(&format!("many/{i}"), 0)))
        .collect();
    let (status, body) = hub
        .post_json(
            "/v1/batch",
            &serde_json::to_value(BatchRequest { ops }).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request");
    for bad in [
        json!({"ops": [{"op": "rename", "path": "a"}]}),
        json!({"ops": [{"op": "commit", "path": "x", "base_version": 0}]}),
        json!({"ops": {"op": "delete"}}),
        json!([]),
        json!({"ops": [{"op": "delete", "path": "a/../b", "base_version": 0}]}),
    ] {
        let (status, body) = hub.post_json("/v1/batch", &bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(
            body["error"].is_string() && body["detail"].is_string(),
            "{body}"
        );
    }
    // A batch that fits takes the maximum.
    let ops: Vec<BatchOp> = (0..BATCH_MAX_OPS)
        .map(|i| commit(dir_commit(&format!("many/{i}"), 0)))
        .collect();
    assert_eq!(
        hub.head().await,
        head,
        "nothing committed by a refused batch"
    );
    let outcomes = batch(&hub, ops).await;
    assert_eq!(outcomes.len(), BATCH_MAX_OPS);
    assert_eq!(
        hub.head().await,
        head + BATCH_MAX_OPS as u64,
        "the largest batch allowed commits whole"
    );
}

async fn packs_store_chunks_for_commits_and_refuse_bad_frames(hub: TestHub) {
    let good = chunks_of(&random_bytes(4000, 10));
    let mut bad = chunks_of(&random_bytes(5000, 11)).remove(0);
    let bad_hash = bad.hash;
    bad.data[0] ^= 1;
    let (status, body) = post_pack(&hub, pack_body(good.iter().chain([&bad]))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "content_mismatch");
    let (_, missing) = hub
        .post_json("/v1/chunks/missing", &json!({"chunks": [bad_hash]}))
        .await;
    assert_eq!(
        missing["missing"],
        json!([bad_hash]),
        "the bad chunk is not stored"
    );

    let chunk = &good[0];
    let whole = pack_body([chunk]);
    // Cut inside the bytes, inside the header; a length of 0 and one over
    // the largest chunk.
    let mut zero = whole.clone();
    zero[32..36].copy_from_slice(&0u32.to_be_bytes());
    let mut huge = whole.clone();
    huge[32..36].copy_from_slice(&(MAX_CHUNK_SIZE as u32 + 1).to_be_bytes());
    for (what, body) in [
        ("cut in the bytes", whole[..whole.len() - 1].to_vec()),
        (
            "cut in the next header",
            [&whole[..], &whole[..10]].concat(),
        ),
        ("length 0", zero),
        ("length over the maximum", huge),
    ] {
        let (status, answer) = post_pack(&hub, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {answer}");
        assert_eq!(answer["error"], "invalid_request", "{what}: {answer}");
    }
    // More frames than a pack may carry (one tiny chunk, repeated).
    let tiny = chunks_of(b"t").remove(0);
    let frames = vec![&tiny; PACK_MAX_CHUNKS + 1];
    let (status, answer) = post_pack(&hub, pack_body(frames.iter().copied())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let frames = vec![&tiny; PACK_MAX_CHUNKS];
    let (status, answer) = post_pack(&hub, pack_body(frames.iter().copied())).await;
    assert_eq!(
        (status, &answer["chunks"]),
        (StatusCode::OK, &json!(PACK_MAX_CHUNKS))
    );
    assert_eq!(answer["stored"], 1);
    // An empty pack stores nothing.
    let (status, answer) = post_pack(&hub, Vec::new()).await;
    assert_eq!(
        (status, answer),
        (StatusCode::OK, json!({"chunks": 0, "stored": 0}))
    );
    assert_eq!(hub.head().await, 0);
}

async fn fetch_sends_chunks_in_order_or_nothing(hub: TestHub) {
    let big = random_bytes(2_500_000, 20);
    let mut chunks = chunks_of(&big);
    chunks.extend(chunks_of(&random_bytes(10, 21)));
    upload_pack(&hub, &chunks).await;
    let order: Vec<Sha256Hex> = [0, chunks.len() - 1, 0, 1]
        .iter()
        .map(|&i| chunks[i].hash)
        .collect();
    let resp = hub
        .http
        .post(hub.url("/v1/chunks/fetch"))
        .json(&json!({"chunks": order}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    let length: usize = resp.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = resp.bytes().await.unwrap();
    assert_eq!(body.len(), length);
    let frames = parse_pack(&body);
    assert_eq!(frames.len(), 4);
    for ((hash, data), want) in frames.iter().zip(&order) {
        assert_eq!(hash, want);
        assert_eq!(Sha256Hex::of(data), *want);
    }

    let absent = Sha256Hex::of(b"never uploaded");
    let (status, body) = hub
        .post_json(
            "/v1/chunks/fetch",
            &json!({"chunks": [chunks[0].hash, absent]}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "not_found");
    assert!(
        body["detail"].as_str().unwrap().contains(&absent.to_hex()),
        "{body}"
    );
    let too_many = vec![chunks[0].hash; FETCH_MAX_CHUNKS + 1];
    let (status, body) = hub
        .post_json("/v1/chunks/fetch", &json!({"chunks": too_many}))
        .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_request"))
    );
    let (status, body) = hub
        .post_json("/v1/chunks/fetch", &json!({"chunks": []}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// A pack on a full store: new chunks get 507, chunks it holds are still
/// accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_refuses_new_chunks_of_a_pack() {
    let hub = TestHub::start_with(Backend::Sqlite, |s| s.max_store_bytes = Some(1000))
        .await
        .unwrap();
    let held = chunks_of(&random_bytes(600, 30));
    upload_pack(&hub, &held).await;
    let new = chunks_of(&random_bytes(600, 31));
    let (status, body) = post_pack(&hub, pack_body(held.iter().chain(&new))).await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
    assert_eq!(body["error"], "insufficient_storage");
    let again = upload_pack(&hub, &held).await;
    assert_eq!((again.chunks, again.stored), (1, 0));
}
