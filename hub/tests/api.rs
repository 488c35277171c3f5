//! Every endpoint of the hub, through real HTTP and WebSocket, on SQLite and
//! on PostgreSQL: the legacy API, the v1 API, bad input, concurrency,
//! broadcasts, restarts and metrics.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::json;
use sf_protocol::Sha256Hex;
use sf_protocol::chunking::{ChunkRef, MAX_CHUNK_SIZE};
use sf_protocol::v1::{CommitRequest, EntryKind, ErrorCode, WsFrame};

use common::client::{random_bytes, sha_hex};
use common::{Backend, TestHub};

on_both_backends!(
    legacy_upload_index_download_delete_logs,
    legacy_upload_with_stale_base_makes_a_conflict_copy,
    legacy_upload_of_old_content_is_stale_and_changes_nothing,
    logs_filter_and_limit,
    v1_commit_changes_file_history_restore,
    v1_commit_refusals,
    v1_delete_and_recreate,
    directories_and_path_conflicts,
    chunk_endpoints,
    range_requests,
    identical_chunks_are_stored_once,
    bad_input_is_refused_and_changes_nothing,
    websocket_subscribers_get_every_change_in_order,
    concurrent_commits_to_one_path,
    restart_keeps_everything_and_seq_continues,
    metrics_move,
);

async fn legacy_upload_index_download_delete_logs(hub: TestHub) {
    let bytes = random_bytes(300_000, 1);
    let (status, body) = hub.legacy_upload("docs/report.pdf", None, &bytes).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"ok": true, "version": 1, "sha": sha_hex(&bytes)})
    );

    let (status, index) = hub.get_json("/index").await;
    assert_eq!(status, StatusCode::OK);
    let entry = &index["index"]["docs/report.pdf"];
    assert_eq!(entry["sha"], sha_hex(&bytes));
    assert_eq!(entry["version"], 1);
    assert!(entry["mtime"].as_f64().unwrap() > 1.7e9, "{entry}");
    assert!(index["ts"].as_f64().unwrap() > 1.7e9);

    let resp = hub
        .http
        .get(hub.url("/download?path=docs/report.pdf"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    assert_eq!(
        resp.headers()["content-length"],
        bytes.len().to_string().as_str()
    );
    assert_eq!(resp.bytes().await.unwrap(), bytes);

    // A new version with the right base.
    let v2 = random_bytes(1000, 2);
    let (status, body) = hub
        .legacy_upload("docs/report.pdf", Some(&sha_hex(&bytes)), &v2)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["version"], 2);
    assert_eq!(hub.download("docs/report.pdf").await.1, v2);

    let (status, body) = hub
        .post_json("/delete", &json!({"path": "docs/report.pdf"}))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"ok": true})));
    assert!(hub.index().await.is_empty());
    let (status, body) = hub.download("docs/report.pdf").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["error"], "not_found");
    // Deleting again is harmless; deleting what never existed is a 404.
    assert_eq!(
        hub.post_json("/delete", &json!({"path": "docs/report.pdf"}))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        hub.post_json("/delete", &json!({"path": "never"})).await.0,
        StatusCode::NOT_FOUND
    );

    let (status, logs) = hub.get_json("/logs").await;
    assert_eq!(status, StatusCode::OK);
    let logs = logs["logs"].as_array().unwrap();
    let actions: Vec<_> = logs.iter().map(|l| l["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["delete", "upload", "upload"], "newest first");
    let newest = &logs[0];
    for key in ["id", "action", "path", "version", "sha", "timestamp"] {
        assert!(newest.get(key).is_some(), "log entry lacks {key}: {newest}");
    }
    assert_eq!(newest["path"], "docs/report.pdf");
    assert_eq!(newest["version"], 3);
    assert!(newest["sha"].is_null());
    assert_eq!(logs[1]["sha"], sha_hex(&v2));
    assert!(newest["timestamp"].as_str().unwrap().starts_with("20"));
}

async fn legacy_upload_with_stale_base_makes_a_conflict_copy(hub: TestHub) {
    let original = b"original".to_vec();
    let theirs = b"their edit".to_vec();
    let mine = b"my edit".to_vec();
    hub.legacy_upload("notes/todo.txt", None, &original).await;
    let (_, body) = hub
        .legacy_upload("notes/todo.txt", Some(&sha_hex(&original)), &theirs)
        .await;
    assert_eq!(body["version"], 2);
    // Based on the original, not on their edit: a conflict.
    let (status, body) = hub
        .legacy_upload("notes/todo.txt", Some(&sha_hex(&original)), &mine)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ok"], true);
    assert_eq!(body["version"], 2, "the path keeps its current version");
    assert_eq!(body["sha"], sha_hex(&theirs));
    let copy = body["conflict"].as_str().unwrap().to_owned();
    let pattern_ok = copy.starts_with("notes/todo (conflict legacy ")
        && copy.ends_with(").txt")
        && copy.len() == "notes/todo (conflict legacy 2026-11-24 101500).txt".len();
    assert!(pattern_ok, "unexpected conflict name {copy:?}");
    assert_eq!(hub.download("notes/todo.txt").await.1, theirs);
    assert_eq!(hub.download(&copy).await.1, mine);
    let index = hub.index().await;
    assert_eq!(index.len(), 2);

    // The same conflict again in the same second gets the next free name.
    let other = b"another edit".to_vec();
    let (_, body) = hub
        .legacy_upload("notes/todo.txt", Some(&sha_hex(&original)), &other)
        .await;
    let second = body["conflict"].as_str().unwrap();
    assert_ne!(second, copy);
    assert_eq!(hub.download(second).await.1, other);

    let (_, logs) = hub.get_json("/logs?path=").await;
    let _ = logs;
    let (_, logs) = hub
        .get_json(&format!("/logs?path={}", urlencode(&copy)))
        .await;
    assert_eq!(logs["logs"][0]["action"], "conflict");
}

async fn legacy_upload_of_old_content_is_stale_and_changes_nothing(hub: TestHub) {
    let v1 = b"version one".to_vec();
    let v2 = b"version two".to_vec();
    hub.legacy_upload("a.txt", None, &v1).await;
    hub.legacy_upload("a.txt", Some(&sha_hex(&v1)), &v2).await;
    let head = hub.head().await;
    // An old client that has not pulled v2 yet uploads v1 against the current sha.
    let (status, body) = hub.legacy_upload("a.txt", Some(&sha_hex(&v2)), &v1).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"ok": true, "version": 2, "sha": sha_hex(&v2), "stale": true})
    );
    assert_eq!(hub.download("a.txt").await.1, v2);
    assert_eq!(hub.head().await, head, "a stale upload commits nothing");

    // Deleted elsewhere: re-uploading what it held does not resurrect it.
    hub.post_json("/delete", &json!({"path": "a.txt"})).await;
    let (status, body) = hub.legacy_upload("a.txt", None, &v2).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"ok": true, "version": 3, "sha": null, "stale": true})
    );
    assert!(hub.index().await.is_empty());

    // New content after a delete is a real new version.
    let v4 = b"brand new".to_vec();
    let (_, body) = hub.legacy_upload("a.txt", None, &v4).await;
    assert_eq!(body, json!({"ok": true, "version": 4, "sha": sha_hex(&v4)}));

    // Re-uploading the current content changes nothing.
    let (_, body) = hub.legacy_upload("a.txt", Some(&sha_hex(&v4)), &v4).await;
    assert_eq!(body, json!({"ok": true, "version": 4, "sha": sha_hex(&v4)}));
}

async fn logs_filter_and_limit(hub: TestHub) {
    for i in 0..60 {
        hub.legacy_upload(&format!("f{i}"), None, format!("content {i}").as_bytes())
            .await;
    }
    let (_, logs) = hub.get_json("/logs").await;
    assert_eq!(logs["logs"].as_array().unwrap().len(), 50, "default limit");
    let (_, logs) = hub.get_json("/logs?limit=5").await;
    let logs = logs["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 5);
    assert_eq!(logs[0]["path"], "f59");
    let ids: Vec<i64> = logs.iter().map(|l| l["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let (_, logs) = hub.get_json("/logs?limit=1000").await;
    assert_eq!(logs["logs"].as_array().unwrap().len(), 60);
    let (_, logs) = hub.get_json("/logs?path=f7").await;
    let logs = logs["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["path"], "f7");
    for bad in [
        "/logs?limit=0",
        "/logs?limit=1001",
        "/logs?limit=x",
        "/logs?path=../x",
    ] {
        let (status, body) = hub.get_json(bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["detail"].as_str().is_some(), "{bad}: {body}");
    }
}

async fn v1_commit_changes_file_history_restore(hub: TestHub) {
    let v1 = random_bytes(3 * 1024 * 1024 + 7, 10);
    let e1 = hub
        .put_file("big/data.bin", 0, &v1, "laptop")
        .await
        .unwrap();
    assert_eq!((e1.version, e1.seq), (1, 1));
    assert_eq!(e1.sha256, Some(Sha256Hex::of(&v1)));
    assert_eq!(e1.size, v1.len() as u64);
    assert_eq!(e1.origin, "laptop");
    assert!(!e1.deleted);
    assert!(
        e1.chunks.as_ref().unwrap().len() >= 2,
        "3 MiB makes several chunks"
    );

    let v2 = random_bytes(5000, 11);
    let e2 = hub
        .put_file("big/data.bin", 1, &v2, "desktop")
        .await
        .unwrap();
    assert_eq!((e2.version, e2.seq), (2, 2));

    let changes = hub.changes(0).await;
    assert_eq!(changes.head, 2);
    assert_eq!(
        changes.changes.iter().map(|c| c.seq).collect::<Vec<_>>(),
        [1, 2]
    );
    assert!(
        changes.changes[0].chunks.is_none(),
        "chunks only when asked"
    );
    let (_, with_chunks) = hub.get_json("/v1/changes?since=1&chunks=true").await;
    assert_eq!(with_chunks["changes"].as_array().unwrap().len(), 1);
    assert_eq!(with_chunks["changes"][0]["chunks"][0]["len"], 5000);
    let (_, limited) = hub.get_json("/v1/changes?since=0&limit=1").await;
    assert_eq!(limited["changes"].as_array().unwrap().len(), 1);
    assert_eq!(limited["head"], 2);

    let current = hub
        .http
        .get(hub.url("/v1/file?path=big/data.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(current.status(), StatusCode::OK);
    assert_eq!(current.bytes().await.unwrap(), v2);
    let old = hub
        .http
        .get(hub.url("/v1/file?path=big/data.bin&version=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(old.bytes().await.unwrap(), v1);

    let (status, history) = hub.get_json("/v1/history?path=big/data.bin").await;
    assert_eq!(status, StatusCode::OK);
    let versions = history["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["origin"], "laptop");
    assert_eq!(versions[1]["origin"], "desktop");
    assert!(
        versions[1]["committed_ms"].as_i64().unwrap()
            >= versions[0]["committed_ms"].as_i64().unwrap()
    );

    let restored = hub
        .v1_call(
            "/v1/restore",
            &json!({"path": "big/data.bin", "version": 1}),
        )
        .await
        .unwrap();
    assert_eq!((restored.version, restored.seq), (3, 3));
    assert_eq!(restored.sha256, Some(Sha256Hex::of(&v1)));
    let now = hub
        .http
        .get(hub.url("/v1/file?path=big/data.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(now.bytes().await.unwrap(), v1);
    let (_, logs) = hub.get_json("/logs?limit=1").await;
    assert_eq!(logs["logs"][0]["action"], "restore");

    let (status, _) = hub
        .post_json(
            "/v1/restore",
            &json!({"path": "big/data.bin", "version": 99}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = hub.get_json("/v1/history?path=nothing/here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A 0-byte file has no chunks.
    let empty = hub.put_file("empty", 0, b"", "laptop").await.unwrap();
    assert_eq!(empty.size, 0);
    assert_eq!(empty.sha256, Some(Sha256Hex::empty()));
    let resp = hub
        .http
        .get(hub.url("/v1/file?path=empty"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.bytes().await.unwrap().is_empty());

    // Committing the same content again records nothing new.
    let again = hub.put_file("empty", 1, b"", "laptop").await.unwrap();
    assert_eq!((again.version, again.seq), (1, empty.seq));
}

async fn v1_commit_refusals(hub: TestHub) {
    let bytes = random_bytes(10_000, 20);
    hub.put_file("doc.txt", 0, &bytes, "a").await.unwrap();

    // A stale base: 409 with the current entry.
    let (status, error) = hub.put_file("doc.txt", 0, b"other", "b").await.unwrap_err();
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error.error, ErrorCode::Conflict);
    let current = error.current.expect("409 carries the current entry");
    assert_eq!(current.version, 1);
    assert_eq!(current.sha256, Some(Sha256Hex::of(&bytes)));

    // Chunks the hub lacks are named.
    let unseen = random_bytes(2000, 21);
    let unseen_hash = Sha256Hex::of(&unseen);
    let request = CommitRequest {
        path: "new.txt".parse().unwrap(),
        kind: EntryKind::File,
        base_version: 0,
        sha256: unseen_hash,
        size: 2000,
        mtime_ns: 0,
        executable: false,
        chunks: vec![ChunkRef {
            hash: unseen_hash,
            len: 2000,
        }],
        origin: "a".into(),
    };
    let (status, error) = hub.commit(&request).await.unwrap_err();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, ErrorCode::MissingChunks);
    assert_eq!(error.missing, Some(vec![unseen_hash]));

    // Chunks that do not make the claimed content.
    let (_, chunks) = hub.upload_chunks(&unseen).await;
    let mismatches = [
        (
            "sha256 of other content",
            CommitRequest {
                sha256: Sha256Hex::of(b"something else"),
                chunks: chunks.clone(),
                ..request.clone()
            },
        ),
        (
            "size below the chunks' total",
            CommitRequest {
                size: 1999,
                chunks: chunks.clone(),
                ..request.clone()
            },
        ),
        (
            "a chunk listed longer than it is",
            CommitRequest {
                size: 2001,
                chunks: vec![ChunkRef {
                    hash: unseen_hash,
                    len: 2001,
                }],
                ..request.clone()
            },
        ),
    ];
    for (what, bad) in &mismatches {
        let (status, error) = hub.commit(bad).await.unwrap_err();
        assert_eq!(
            (status, error.error),
            (StatusCode::BAD_REQUEST, ErrorCode::ContentMismatch),
            "{what}"
        );
    }
    assert_eq!(hub.head().await, 1, "refused commits record nothing");
    assert_eq!(hub.index().await.len(), 1);

    // The right commit then succeeds.
    let ok = CommitRequest { chunks, ..request };
    assert_eq!(hub.commit(&ok).await.unwrap().seq, 2);
}

async fn v1_delete_and_recreate(hub: TestHub) {
    let e1 = hub.put_file("x/y.txt", 0, b"one", "a").await.unwrap();
    let (status, error) = hub.delete_v1("x/y.txt", 7).await.unwrap_err();
    assert_eq!(
        (status, error.error),
        (StatusCode::CONFLICT, ErrorCode::Conflict)
    );
    assert_eq!(error.current.unwrap().version, 1);
    let tomb = hub.delete_v1("x/y.txt", e1.version).await.unwrap();
    assert!(tomb.deleted);
    assert_eq!(tomb.sha256, None);
    assert_eq!((tomb.version, tomb.seq), (2, 2));
    // Deleting a tombstone again is a no-op; deleting the unknown is 404.
    assert_eq!(hub.delete_v1("x/y.txt", 2).await.unwrap().seq, 2);
    assert_eq!(
        hub.delete_v1("nope", 0).await.unwrap_err().0,
        StatusCode::NOT_FOUND
    );

    let changes = hub.changes(1).await;
    assert_eq!(changes.changes.len(), 1);
    assert!(changes.changes[0].deleted, "tombstones stay in the feed");
    let (status, _) = hub.get_json("/v1/file?path=x/y.txt").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // base_version 0 recreates over a tombstone; versions continue.
    let e3 = hub.put_file("x/y.txt", 0, b"three", "a").await.unwrap();
    assert_eq!((e3.version, e3.seq), (3, 3));
    let (_, history) = hub.get_json("/v1/history?path=x/y.txt").await;
    let deleted: Vec<bool> = history["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["deleted"].as_bool().unwrap())
        .collect();
    assert_eq!(deleted, [false, true, false]);
}

fn dir_commit(path: &str, base_version: u64) -> CommitRequest {
    CommitRequest {
        path: path.parse().unwrap(),
        kind: EntryKind::Dir,
        base_version,
        sha256: Sha256Hex::empty(),
        size: 0,
        mtime_ns: 0,
        executable: false,
        chunks: vec![],
        origin: "a".into(),
    }
}

async fn directories_and_path_conflicts(hub: TestHub) {
    let dir = hub.commit(&dir_commit("photos/empty", 0)).await.unwrap();
    assert_eq!(dir.kind, EntryKind::Dir);
    let changes = hub.changes(0).await;
    assert_eq!(changes.changes[0].kind, EntryKind::Dir);
    assert!(
        hub.index().await.is_empty(),
        "the legacy index lists files only"
    );
    // A dir carries no content.
    let mut with_content = dir_commit("d2", 0);
    with_content.size = 3;
    assert_eq!(
        hub.commit(&with_content).await.unwrap_err().0,
        StatusCode::BAD_REQUEST
    );

    // A file cannot contain entries; a folder with live entries cannot become a file.
    hub.put_file("plain", 0, b"file", "a").await.unwrap();
    let (status, error) = hub.put_file("plain/child", 0, b"x", "a").await.unwrap_err();
    assert_eq!(
        (status, error.error),
        (StatusCode::CONFLICT, ErrorCode::PathConflict)
    );
    hub.put_file("folder/inside.txt", 0, b"x", "a")
        .await
        .unwrap();
    let (status, error) = hub.put_file("folder", 0, b"y", "a").await.unwrap_err();
    assert_eq!(
        (status, error.error),
        (StatusCode::CONFLICT, ErrorCode::PathConflict)
    );
    assert!(
        error.detail.contains("folder/inside.txt"),
        "{}",
        error.detail
    );
    // Once the child is deleted, the name is free.
    hub.delete_v1("folder/inside.txt", 1).await.unwrap();
    hub.put_file("folder", 0, b"y", "a").await.unwrap();
    // A sibling sharing the prefix is not a child.
    hub.put_file("folder2/x", 0, b"z", "a").await.unwrap();
    // Deleting a directory entry makes a tombstone.
    let tomb = hub.delete_v1("photos/empty", 1).await.unwrap();
    assert!(tomb.deleted);
    assert_eq!(tomb.kind, EntryKind::Dir);
}

async fn chunk_endpoints(hub: TestHub) {
    let data = random_bytes(100_000, 30);
    let hash = Sha256Hex::of(&data);
    let url = hub.url(&format!("/v1/chunks/{hash}"));
    assert_eq!(
        hub.http.get(&url).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let (_, body) = hub
        .post_json("/v1/chunks/missing", &json!({"chunks": [hash]}))
        .await;
    assert_eq!(body["missing"], json!([hash]));

    // Bytes that do not match the name are refused and not stored.
    let wrong = hub
        .http
        .put(&url)
        .body(random_bytes(100_000, 31))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    let error: serde_json::Value = wrong.json().await.unwrap();
    assert_eq!(error["error"], "content_mismatch");
    let (_, body) = hub
        .post_json("/v1/chunks/missing", &json!({"chunks": [hash]}))
        .await;
    assert_eq!(body["missing"], json!([hash]));

    let put = hub.http.put(&url).body(data.clone()).send().await.unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    let again = hub.http.put(&url).body(data.clone()).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let got = hub.http.get(&url).send().await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.bytes().await.unwrap(), data);
    let (_, body) = hub
        .post_json(
            "/v1/chunks/missing",
            &json!({"chunks": [hash, Sha256Hex::of(b"nope")]}),
        )
        .await;
    assert_eq!(body["missing"], json!([Sha256Hex::of(b"nope")]));

    // Oversized chunks get 413.
    let big = random_bytes(MAX_CHUNK_SIZE + 1, 32);
    let resp = hub
        .http
        .put(hub.url(&format!("/v1/chunks/{}", Sha256Hex::of(&big))))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // A name that is not a sha256.
    for bad in ["abc", &"z".repeat(64)] {
        let resp = hub
            .http
            .get(hub.url(&format!("/v1/chunks/{bad}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    }
}

async fn range_requests(hub: TestHub) {
    let data = random_bytes(2_500_000, 40);
    hub.put_file("r.bin", 0, &data, "a").await.unwrap();
    let get = |range: &'static str| {
        hub.http
            .get(hub.url("/v1/file?path=r.bin"))
            .header("range", range)
            .send()
    };
    let resp = get("bytes=1000-1999").await.unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resp.headers()["content-range"], "bytes 1000-1999/2500000");
    assert_eq!(resp.bytes().await.unwrap(), data[1000..2000]);
    // Across chunk boundaries.
    let resp = get("bytes=100000-2400000").await.unwrap();
    assert_eq!(resp.bytes().await.unwrap(), data[100_000..=2_400_000]);
    let resp = get("bytes=-10").await.unwrap();
    assert_eq!(resp.bytes().await.unwrap(), data[data.len() - 10..]);
    let resp = get("bytes=2499990-").await.unwrap();
    assert_eq!(resp.bytes().await.unwrap(), data[2_499_990..]);
    let resp = get("bytes=2500000-").await.unwrap();
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(resp.headers()["content-range"], "bytes */2500000");
    // Positions up to and beyond u64::MAX never overflow.
    for (range, from) in [
        ("bytes=5-18446744073709551615", 5),
        ("bytes=0-18446744073709551615", 0),
        ("bytes=2499999-99999999999999999999999", 2_499_999),
        ("bytes=-99999999999999999999", 0),
    ] {
        let resp = get(range).await.unwrap();
        assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        let expected = format!("bytes {from}-2499999/2500000");
        assert_eq!(
            resp.headers()["content-range"],
            expected.as_str(),
            "{range}"
        );
        assert_eq!(resp.bytes().await.unwrap(), data[from..], "{range}");
    }
    let resp = get("bytes=18446744073709551616-").await.unwrap();
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    for garbage in ["bytes=+5-9", "bytes=5-4", "bytes=x-", "bytes=--1"] {
        let resp = get(garbage).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{garbage}");
        assert_eq!(resp.bytes().await.unwrap().len(), data.len(), "{garbage}");
    }
    let resp = get("bytes=0-0,5-6").await.unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "multi-range falls back to the whole file"
    );
    assert_eq!(resp.bytes().await.unwrap().len(), data.len());
}

async fn identical_chunks_are_stored_once(hub: TestHub) {
    let data = random_bytes(2 * 1024 * 1024, 50);
    hub.put_file("one.bin", 0, &data, "a").await.unwrap();
    let stored_after_first = count_files(&hub.storage.data_path().join("chunks"));
    // The same bytes under another name: nothing is missing.
    let (sha, chunks) = {
        let chunks: Vec<_> = sf_protocol::chunking::Chunker::new(&data[..])
            .map(|c| c.unwrap().to_ref())
            .collect();
        (Sha256Hex::of(&data), chunks)
    };
    let (_, body) = hub
        .post_json(
            "/v1/chunks/missing",
            &json!({"chunks": chunks.iter().map(|c| c.hash).collect::<Vec<_>>()}),
        )
        .await;
    assert_eq!(body["missing"], json!([]));
    hub.put_file("two.bin", 0, &data, "a").await.unwrap();
    hub.legacy_upload("three.bin", None, &data).await;
    assert_eq!(
        count_files(&hub.storage.data_path().join("chunks")),
        stored_after_first
    );
    let (_, two) = hub.get_json("/v1/changes?since=1&chunks=true").await;
    assert_eq!(two["changes"][0]["sha256"], sha.to_hex());
    let resp = hub
        .http
        .get(hub.url("/v1/file?path=three.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.bytes().await.unwrap(), data);
}

fn count_files(dir: &std::path::Path) -> usize {
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            count += count_files(&path);
        } else {
            count += 1;
        }
    }
    count
}

async fn bad_input_is_refused_and_changes_nothing(hub: TestHub) {
    hub.legacy_upload("keep.txt", None, b"keep").await;
    let head = hub.head().await;
    let long_segment = "x".repeat(256);
    let long_path = vec!["y".repeat(200); 21].join("/");
    let bad_paths: Vec<&str> = vec![
        "",
        "/abs",
        "a/../b",
        "..",
        "./a",
        "a//b",
        "a/",
        "a\0b",
        "a\u{1}b",
        "a\\b",
        &long_segment,
        &long_path,
        ".sf",
        ".sf/state.db",
    ];
    for path in &bad_paths {
        let what = format!("path {path:?}");
        // Query strings.
        let resp = hub
            .http
            .get(hub.url("/download"))
            .query(&[("path", path)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "download {what}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_path", "download {what}: {body}");
        assert!(
            body["detail"].as_str().unwrap().contains("invalid path"),
            "{body}"
        );
        for route in ["/v1/file", "/v1/history"] {
            let resp = hub
                .http
                .get(hub.url(route))
                .query(&[("path", path)])
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{route} {what}");
        }
        // JSON bodies.
        let (status, body) = hub.legacy_upload(path, None, b"data").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "upload {what}");
        assert_eq!(body["error"], "invalid_path", "upload {what}: {body}");
        let (status, body) = hub.post_json("/delete", &json!({"path": path})).await;
        assert_eq!(
            (status, &body["error"]),
            (StatusCode::BAD_REQUEST, &json!("invalid_path")),
            "{what}"
        );
        let commit = json!({"path": path, "base_version": 0, "sha256": Sha256Hex::empty(),
                            "size": 0, "chunks": [], "origin": "t"});
        let (status, body) = hub.post_json("/v1/commit", &commit).await;
        assert_eq!(
            (status, &body["error"]),
            (StatusCode::BAD_REQUEST, &json!("invalid_path")),
            "{what}"
        );
        let (status, _) = hub
            .post_json("/v1/delete", &json!({"path": path, "base_version": 0}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}");
        let (status, _) = hub
            .post_json("/v1/restore", &json!({"path": path, "version": 1}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}");
    }

    let raw_post = |route: &'static str, body: &'static str| {
        hub.http
            .post(hub.url(route))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (route, body) in [
        ("/delete", "{not json"),
        ("/delete", "{}"),
        ("/v1/commit", "[1,2,3]"),
        (
            "/v1/commit",
            r#"{"path":"a","base_version":0,"sha256":"abc","size":0}"#,
        ),
        (
            "/v1/commit",
            r#"{"path":"a","base_version":-1,"sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0}"#,
        ),
        ("/v1/chunks/missing", r#"{"chunks":["nothex"]}"#),
        ("/v1/delete", r#"{"path":"keep.txt"}"#),
        ("/v1/restore", r#"{"path":"keep.txt","version":"one"}"#),
    ] {
        let resp = raw_post(route, body).await.unwrap();
        let status = resp.status();
        let json: serde_json::Value = resp
            .json()
            .await
            .unwrap_or_else(|_| panic!("{route} {body}: no JSON"));
        assert!(status.is_client_error(), "{route} {body}: {status}");
        assert!(
            json["error"].is_string() && json["detail"].is_string(),
            "{route} {body}: {json}"
        );
    }
    // JSON without a content type.
    let resp = hub
        .http
        .post(hub.url("/delete"))
        .body(r#"{"path":"keep.txt"}"#)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error());

    // X-Meta-Length missing, not a number, larger than the body.
    let meta = br#"{"path":"x.txt","base_sha":null}"#;
    for header in [None, Some("abc"), Some("-1"), Some("0"), Some("999")] {
        let (status, body) = hub.legacy_upload_raw(header, meta, b"").await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "X-Meta-Length {header:?}: {body}"
        );
        assert_eq!(body["error"], "invalid_request", "{body}");
    }
    // Meta length cutting the JSON short, or JSON that is not upload metadata.
    let (status, _) = hub.legacy_upload_raw(Some("5"), meta, b"data").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = hub.legacy_upload_raw(Some("2"), b"[]", b"data").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let bad_sha = br#"{"path":"x.txt","base_sha":"1234"}"#;
    let (status, body) = hub
        .legacy_upload_raw(Some(&bad_sha.len().to_string()), bad_sha, b"d")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("sha256"),
        "{body}"
    );

    // Unknown routes and methods.
    let (status, body) = hub.get_json("/no/such/route").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
    let resp = hub.http.delete(hub.url("/index")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let (status, body) = hub.get_json("/v1/ws").await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a plain GET on the WebSocket route"
    );
    assert!(
        body["detail"].as_str().unwrap().contains("WebSocket"),
        "{body}"
    );
    let resp = hub
        .http
        .put(hub.url(&format!("/v1/chunks/{}", Sha256Hex::empty())))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "an empty chunk");
    let (status, _) = hub.get_json("/v1/changes?since=abc").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = hub.get_json("/v1/changes?limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    assert_eq!(hub.head().await, head, "no bad request committed anything");
    assert_eq!(hub.index().await.keys().collect::<Vec<_>>(), ["keep.txt"]);
    assert_eq!(hub.download("keep.txt").await.1, b"keep");
}

async fn websocket_subscribers_get_every_change_in_order(hub: TestHub) {
    hub.put_file("before.txt", 0, b"before", "a").await.unwrap();
    let (mut first, _) = tokio_tungstenite::connect_async(hub.ws_request())
        .await
        .unwrap();
    let (mut second, _) = tokio_tungstenite::connect_async(hub.ws_request())
        .await
        .unwrap();
    for socket in [&mut first, &mut second] {
        let hello = next_frame(socket).await;
        assert!(matches!(hello, WsFrame::Hello { head: 1, .. }), "{hello:?}");
    }

    const WRITERS: u64 = 4;
    const EACH: u64 = 15;
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let base = hub.base.clone();
        let http = hub.http.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..EACH {
                let content = format!("writer {writer} file {i}");
                let meta =
                    json!({"path": format!("w{writer}/f{i}.txt"), "base_sha": null}).to_string();
                let resp = http
                    .post(format!("{base}/upload"))
                    .header("x-meta-length", meta.len())
                    .body(format!("{meta}{content}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), StatusCode::OK);
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let total = WRITERS * EACH;
    for socket in [&mut first, &mut second] {
        let mut seqs = Vec::new();
        let mut paths = BTreeSet::new();
        while seqs.len() < total as usize {
            match next_frame(socket).await {
                WsFrame::Change(entry) => {
                    assert!(entry.chunks.is_none(), "frames carry no chunk lists");
                    seqs.push(entry.seq);
                    paths.insert(entry.path.to_string());
                }
                other => panic!("unexpected frame {other:?}"),
            }
        }
        assert_eq!(
            seqs,
            (2..2 + total).collect::<Vec<_>>(),
            "every change, in seq order"
        );
        assert_eq!(paths.len(), total as usize);
    }
}

async fn next_frame<S>(socket: &mut S) -> WsFrame
where
    S: futures_util::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("no frame within 20 s")
            .expect("socket ended")
            .expect("socket error");
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

async fn concurrent_commits_to_one_path(hub: TestHub) {
    let base = hub.put_file("contended.txt", 0, b"v1", "a").await.unwrap();
    assert_eq!(base.version, 1);
    // Chunks first, so the race is on the commit alone.
    const RACERS: usize = 16;
    let mut requests = Vec::new();
    for i in 0..RACERS {
        let data = format!("racer {i}").into_bytes();
        let (sha256, chunks) = hub.upload_chunks(&data).await;
        requests.push(CommitRequest {
            path: "contended.txt".parse().unwrap(),
            kind: EntryKind::File,
            base_version: 1,
            sha256,
            size: data.len() as u64,
            mtime_ns: 0,
            executable: false,
            chunks,
            origin: format!("racer{i}"),
        });
    }
    let mut tasks = Vec::new();
    for request in requests {
        let http = hub.http.clone();
        let url = hub.url("/v1/commit");
        tasks.push(tokio::spawn(async move {
            let resp = http.post(url).json(&request).send().await.unwrap();
            (
                resp.status(),
                resp.json::<serde_json::Value>().await.unwrap(),
            )
        }));
    }
    let mut winners = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            StatusCode::OK => {
                winners += 1;
                assert_eq!(body["version"], 2);
            }
            StatusCode::CONFLICT => assert_eq!(body["current"]["version"], 2),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(winners, 1, "exactly one commit wins version 2");

    // Many paths at once: seq stays gapless and increasing.
    let mut tasks = Vec::new();
    for i in 0..24 {
        let http = hub.http.clone();
        let base = hub.base.clone();
        tasks.push(tokio::spawn(async move {
            let meta = json!({"path": format!("many/{i}"), "base_sha": null}).to_string();
            http.post(format!("{base}/upload"))
                .header("x-meta-length", meta.len())
                .body(format!("{meta}payload {i}"))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    let changes = hub.changes(0).await;
    let seqs: Vec<u64> = changes.changes.iter().map(|c| c.seq).collect();
    assert_eq!(
        seqs,
        (1..=changes.head).collect::<Vec<_>>(),
        "no gaps, in order"
    );
    assert_eq!(changes.head, 2 + 24);
}

async fn restart_keeps_everything_and_seq_continues(hub: TestHub) {
    let data = random_bytes(1_500_000, 60);
    hub.put_file("kept/big.bin", 0, &data, "a").await.unwrap();
    hub.legacy_upload("kept/small.txt", None, b"small").await;
    hub.commit(&dir_commit("kept/empty", 0)).await.unwrap();
    hub.delete_v1("kept/small.txt", 1).await.unwrap();
    let before = hub.changes(0).await;
    let (_, logs_before) = hub.get_json("/logs").await;

    let hub = hub.restart().await;
    let after = hub.changes(0).await;
    assert_eq!(after.head, before.head);
    assert_eq!(
        serde_json::to_value(&after.changes).unwrap(),
        serde_json::to_value(&before.changes).unwrap()
    );
    assert_eq!(hub.get_json("/logs").await.1, logs_before);
    let resp = hub
        .http
        .get(hub.url("/v1/file?path=kept/big.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.bytes().await.unwrap(), data);
    let next = hub.put_file("kept/new.txt", 0, b"new", "a").await.unwrap();
    assert_eq!(next.seq, before.head + 1, "seq continues after a restart");
}

async fn metrics_move(hub: TestHub) {
    let text = hub.metrics_text().await;
    for name in [
        "sync_uploads_total",
        "sync_deletes_total",
        "sync_conflicts_total",
        "sync_bytes_received_total",
        "sync_bytes_sent_total",
        "sync_websocket_clients",
        "sync_chunks_stored",
        "sync_dedup_saved_bytes_total",
    ] {
        assert!(
            text.contains(&format!("\n{name} ")) || text.starts_with(&format!("{name} ")),
            "{name} exported from the start:\n{text}"
        );
    }
    assert!(!text.contains("otel_scope_name"), "no scope labels");
    assert!(!text.contains("target_info"), "no target_info");

    let data = random_bytes(50_000, 70);
    hub.legacy_upload("m.bin", None, &data).await;
    hub.legacy_upload("m-copy.bin", None, &data).await;
    hub.legacy_upload("m.bin", Some(&sha_hex(b"not current")), b"conflicting")
        .await;
    hub.download("m.bin").await;
    hub.post_json("/delete", &json!({"path": "m-copy.bin"}))
        .await;
    let (_ws, _) = tokio_tungstenite::connect_async(hub.ws_request())
        .await
        .unwrap();
    hub.http
        .get(hub.url("/v1/chunks/abc"))
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let text = hub.metrics_text().await;
    let value = |name: &str| {
        common::client::metric_value(&text, name)
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
    };
    assert_eq!(
        value("sync_uploads_total"),
        3.0,
        "two uploads and a conflict copy"
    );
    assert_eq!(value("sync_deletes_total"), 1.0);
    assert_eq!(value("sync_conflicts_total"), 1.0);
    assert!(value("sync_bytes_received_total") >= 100_000.0);
    assert!(value("sync_bytes_sent_total") >= 50_000.0);
    assert_eq!(value("sync_websocket_clients"), 1.0);
    assert_eq!(value("sync_dedup_saved_bytes_total"), 50_000.0);
    assert!(value("sync_chunks_stored") >= 2.0);
    assert!(value("sync_commit_duration_seconds_count") >= 4.0);
    // Requests are labelled by route template, never by raw URL.
    assert!(
        text.contains(r#"sync_requests_total{endpoint="/upload",method="POST"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(r#"sync_requests_total{endpoint="/download",method="GET"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"endpoint="/v1/chunks/{hash}""#), "{text}");
    assert!(
        !text.contains("/v1/chunks/abc"),
        "raw URLs must not become labels"
    );
    assert!(
        text.contains(r#"sync_request_duration_seconds_count{endpoint="/upload"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(r#"sync_request_duration_seconds_bucket{endpoint="/upload",le="0.005"}"#),
        "{text}"
    );
}

fn urlencode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A file over `--max-file-size` is refused with 413, through both APIs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_over_the_size_limit_get_413() {
    let hub = TestHub::start_with(Backend::Sqlite, |s| s.max_file_size = 1000)
        .await
        .unwrap();
    let (status, body) = hub
        .legacy_upload("big", None, &random_bytes(1001, 80))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"], "payload_too_large");
    let (status, _) = hub
        .legacy_upload("fits", None, &random_bytes(1000, 81))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, error) = hub
        .put_file("big", 0, &random_bytes(1001, 82), "a")
        .await
        .unwrap_err();
    assert_eq!(
        (status, error.error),
        (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge)
    );
    // Without Content-Length (chunked transfer), the limit still holds.
    let meta = json!({"path": "streamed", "base_sha": null}).to_string();
    let mut body = meta.clone().into_bytes();
    body.extend(random_bytes(5000, 83));
    let stream = futures_util::stream::iter(
        body.chunks(100)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let resp = hub
        .http
        .post(hub.url("/upload"))
        .header("x-meta-length", meta.len())
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(hub.index().await.keys().collect::<Vec<_>>(), ["fits"]);
}

/// A client that stops reading its WebSocket is dropped by the hub, and
/// neither commits nor other clients wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_websocket_client_blocks_nobody() {
    let hub = TestHub::start(Backend::Sqlite).await.unwrap();
    // A small receive buffer (which also turns off autotuning) so the stuck
    // client's socket fills after a few frames, as a real stalled peer's would.
    let addr: std::net::SocketAddr = hub.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let (mut stuck, _) = tokio_tungstenite::client_async(hub.ws_request(), stream)
        .await
        .unwrap();
    let (mut live, _) = tokio_tungstenite::connect_async(hub.ws_request())
        .await
        .unwrap();
    assert!(matches!(
        next_frame(&mut stuck).await,
        WsFrame::Hello { head: 0, .. }
    ));
    assert!(matches!(
        next_frame(&mut live).await,
        WsFrame::Hello { head: 0, .. }
    ));
    assert_eq!(hub.metric("sync_websocket_clients").await, Some(2.0));

    // More changes than the hub buffers per client, each with a ~3.8 KB path.
    let total = sf_protocol::v1::WS_MAX_LAG as u64 + 200;
    let reader = tokio::spawn(async move {
        let mut last = 0;
        while last < total {
            if let WsFrame::Change(entry) = next_frame(&mut live).await {
                assert_eq!(entry.seq, last + 1, "the live client misses nothing");
                last = entry.seq;
            }
        }
        (last, live)
    });
    let deep = vec!["d".repeat(250); 15].join("/");
    let mut writers = Vec::new();
    for writer in 0..4 {
        let (base, http, deep) = (hub.base.clone(), hub.http.clone(), deep.clone());
        writers.push(tokio::spawn(async move {
            for i in (writer..total).step_by(4) {
                let request = dir_commit(&format!("{deep}/{i}"), 0);
                let resp = http
                    .post(format!("{base}/v1/commit"))
                    .json(&request)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), StatusCode::OK);
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let (last, _live) = reader.await.unwrap();
    assert_eq!(last, total, "the live client saw every change");

    // The hub gives up on the stuck client while the live one stays.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while hub.metric("sync_websocket_clients").await != Some(1.0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stuck client was never dropped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Its stream ends once drained, with a reason when the close frame got through.
    let mut frames = 0u64;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), stuck.next())
            .await
            .expect("the stuck client's stream ends");
        match message {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(frame)))) => {
                let code = u16::from(frame.code);
                assert!(
                    code == sf_protocol::v1::WS_CLOSE_LAGGED || code == 1008,
                    "close code {code}"
                );
                assert!(frame.reason.contains("/v1/changes"), "{}", frame.reason);
                break;
            }
            Some(Ok(_)) => frames += 1,
            Some(Err(_)) | None => break,
        }
    }
    assert!(
        frames < total,
        "the stuck client was cut off, not served everything ({frames})"
    );
}
