//! The hub as a whole: commits racing for one path, seq without gaps under
//! load, a restart that keeps everything, and the metrics that move.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use sf_protocol::v1::{CommitRequest, EntryKind};

use crate::common::TestHub;
use crate::common::client::{random_bytes, sha_hex};
use crate::{dir_commit, get, legacy_upload_request};

crate::on_both_backends!(
    concurrent_commits_to_one_path,
    restart_keeps_everything_and_seq_continues,
    metrics_move,
);

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
        let upload = legacy_upload_request(&hub, &format!("many/{i}"), &format!("payload {i}"));
        tasks.push(tokio::spawn(async move {
            upload.send().await.unwrap().status()
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
    let resp = get(&hub, "/v1/file?path=kept/big.bin").await;
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
    get(&hub, "/v1/chunks/abc").await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let text = hub.metrics_text().await;
    let value = |name: &str| {
        crate::common::client::metric_value(&text, name)
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
