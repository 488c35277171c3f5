//! What the hub refuses: bad paths, malformed bodies and headers, unknown
//! routes and methods, files over the size limit. A refusal is a JSON error
//! and changes nothing.

use reqwest::StatusCode;
use serde_json::json;
use sf_protocol::Sha256Hex;
use sf_protocol::v1::ErrorCode;

use crate::common::client::random_bytes;
use crate::common::{Backend, TestHub};

crate::on_both_backends!(bad_input_is_refused_and_changes_nothing);

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
        let query = |route: &str| hub.http.get(hub.url(route)).query(&[("path", path)]).send();
        let resp = query("/download").await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "download {what}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_path", "download {what}: {body}");
        assert!(
            body["detail"].as_str().unwrap().contains("invalid path"),
            "{body}"
        );
        for route in ["/v1/file", "/v1/history"] {
            let resp = query(route).await.unwrap();
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{route} {what}");
        }
        // JSON bodies.
        let (status, body) = hub.legacy_upload(path, None, b"data").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "upload {what}");
        assert_eq!(body["error"], "invalid_path", "upload {what}: {body}");
        let commit = json!({"path": path, "base_version": 0, "sha256": Sha256Hex::empty(),
                            "size": 0, "chunks": [], "origin": "t"});
        let mut batched_commit = commit.clone();
        batched_commit["op"] = json!("commit");
        for (route, request) in [
            ("/delete", json!({"path": path})),
            ("/v1/commit", commit),
            ("/v1/delete", json!({"path": path, "base_version": 0})),
            ("/v1/restore", json!({"path": path, "version": 1})),
            ("/v1/batch", json!({"ops": [batched_commit]})),
            (
                "/v1/batch",
                json!({"ops": [{"op": "delete", "path": path, "base_version": 0}]}),
            ),
        ] {
            let (status, body) = hub.post_json(route, &request).await;
            assert_eq!(
                (status, &body["error"]),
                (StatusCode::BAD_REQUEST, &json!("invalid_path")),
                "{route} {what}"
            );
        }
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
        ("/v1/batch", "{not json"),
        ("/v1/batch", "{}"),
        (
            "/v1/batch",
            r#"{"ops":[{"path":"keep.txt","base_version":1}]}"#,
        ),
        (
            "/v1/batch",
            r#"{"ops":[{"op":"delete","path":"keep.txt","base_version":-1}]}"#,
        ),
        ("/v1/batch", r#"{"ops":[null]}"#),
        ("/v1/chunks/fetch", r#"{"chunks":["nothex"]}"#),
        ("/v1/chunks/fetch", r#"{"chunks":"abc"}"#),
        ("/v1/chunks/fetch", "[]"),
        // Packs are not JSON: a body of JSON is a pack with a bad frame.
        ("/v1/chunks/pack", r#"{"chunks":[]}"#),
        ("/v1/chunks/pack", "x"),
        (
            "/v1/chunks/pack",
            "0123456789012345678901234567890123456789012345678901234567890123456789",
        ),
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
