//! The v1 API's files: commit, changes, file, history, restore, delete, and
//! directories with the path conflicts they bring.

use reqwest::StatusCode;
use serde_json::json;
use sf_protocol::Sha256Hex;
use sf_protocol::chunking::ChunkRef;
use sf_protocol::v1::{CommitRequest, EntryKind, ErrorCode};

use crate::common::TestHub;
use crate::common::client::random_bytes;
use crate::{dir_commit, get};

crate::on_both_backends!(
    v1_commit_changes_file_history_restore,
    v1_commit_refusals,
    v1_delete_and_recreate,
    directories_and_path_conflicts,
);

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

    let current = get(&hub, "/v1/file?path=big/data.bin").await;
    assert_eq!(current.status(), StatusCode::OK);
    assert_eq!(current.bytes().await.unwrap(), v2);
    let old = get(&hub, "/v1/file?path=big/data.bin&version=1").await;
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
    let now = get(&hub, "/v1/file?path=big/data.bin").await;
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
    let resp = get(&hub, "/v1/file?path=empty").await;
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
