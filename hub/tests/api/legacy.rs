//! The original client's API (`/index`, `/download`, `/upload`, `/delete`,
//! `/logs`): its answers byte for byte, conflict copies and stale uploads.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::TestHub;
use crate::common::client::{random_bytes, sha_hex};
use crate::get;

crate::on_both_backends!(
    legacy_upload_index_download_delete_logs,
    legacy_upload_with_stale_base_makes_a_conflict_copy,
    legacy_upload_of_old_content_is_stale_and_changes_nothing,
    logs_filter_and_limit,
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

    let resp = get(&hub, "/download?path=docs/report.pdf").await;
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

    hub.get_json("/logs?path=").await;
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
