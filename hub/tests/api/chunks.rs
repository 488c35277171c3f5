//! Content: the chunk endpoints, range requests on files, and identical
//! chunks stored once whichever API sent them.

use reqwest::StatusCode;
use serde_json::json;
use sf_protocol::Sha256Hex;
use sf_protocol::chunking::MAX_CHUNK_SIZE;

use crate::common::TestHub;
use crate::common::client::random_bytes;
use crate::get;

crate::on_both_backends!(
    chunk_endpoints,
    range_requests,
    identical_chunks_are_stored_once
);

async fn chunk_endpoints(hub: TestHub) {
    let data = random_bytes(100_000, 30);
    let hash = Sha256Hex::of(&data);
    let path = format!("/v1/chunks/{hash}");
    let url = hub.url(&path);
    assert_eq!(get(&hub, &path).await.status(), StatusCode::NOT_FOUND);
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
    let got = get(&hub, &path).await;
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
        let resp = get(&hub, &format!("/v1/chunks/{bad}")).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    }
}

async fn range_requests(hub: TestHub) {
    let data = random_bytes(2_500_000, 40);
    hub.put_file("r.bin", 0, &data, "a").await.unwrap();
    let ranged = |range: &'static str| {
        hub.http
            .get(hub.url("/v1/file?path=r.bin"))
            .header("range", range)
            .send()
    };
    let resp = ranged("bytes=1000-1999").await.unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resp.headers()["content-range"], "bytes 1000-1999/2500000");
    assert_eq!(resp.bytes().await.unwrap(), data[1000..2000]);
    // Across chunk boundaries, the last bytes, from a position to the end.
    for (range, expected) in [
        ("bytes=100000-2400000", &data[100_000..=2_400_000]),
        ("bytes=-10", &data[data.len() - 10..]),
        ("bytes=2499990-", &data[2_499_990..]),
    ] {
        let resp = ranged(range).await.unwrap();
        assert_eq!(resp.bytes().await.unwrap(), expected, "{range}");
    }
    let resp = ranged("bytes=2500000-").await.unwrap();
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(resp.headers()["content-range"], "bytes */2500000");
    // Positions up to and beyond u64::MAX never overflow.
    for (range, from) in [
        ("bytes=5-18446744073709551615", 5),
        ("bytes=0-18446744073709551615", 0),
        ("bytes=2499999-99999999999999999999999", 2_499_999),
        ("bytes=-99999999999999999999", 0),
    ] {
        let resp = ranged(range).await.unwrap();
        assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        let expected = format!("bytes {from}-2499999/2500000");
        assert_eq!(
            resp.headers()["content-range"],
            expected.as_str(),
            "{range}"
        );
        assert_eq!(resp.bytes().await.unwrap(), data[from..], "{range}");
    }
    let resp = ranged("bytes=18446744073709551616-").await.unwrap();
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    for garbage in ["bytes=+5-9", "bytes=5-4", "bytes=x-", "bytes=--1"] {
        let resp = ranged(garbage).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{garbage}");
        assert_eq!(resp.bytes().await.unwrap().len(), data.len(), "{garbage}");
    }
    let resp = ranged("bytes=0-0,5-6").await.unwrap();
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
    let stored_after_first = hub.storage.chunk_count().await;
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
    assert_eq!(hub.storage.chunk_count().await, stored_after_first);
    let (_, two) = hub.get_json("/v1/changes?since=1&chunks=true").await;
    assert_eq!(two["changes"][0]["sha256"], sha.to_hex());
    let resp = get(&hub, "/v1/file?path=three.bin").await;
    assert_eq!(resp.bytes().await.unwrap(), data);
}
