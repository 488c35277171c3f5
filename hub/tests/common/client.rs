//! HTTP helpers the tests use to talk to a hub: thin wrappers over real
//! requests, built from the `sf-protocol` types.

use reqwest::StatusCode;
use serde_json::Value;
use sf_protocol::Sha256Hex;
use sf_protocol::chunking::{ChunkRef, Chunker};
use sf_protocol::legacy::META_LENGTH_HEADER;
use sf_protocol::v1::{ChangesResponse, CommitRequest, Entry, EntryKind, ErrorBody};

use super::TestHub;

/// Sums the samples of a metric in a Prometheus text exposition.
pub use sf_test_support::metric_value;

/// A refused request: its status and JSON error body.
pub type Refusal = (StatusCode, ErrorBody);

/// Deterministic pseudo-random bytes ([`sf_test_support::random_bytes`]),
/// so content is incompressible and different seeds never share chunks by
/// accident. Length first, as these suites were written (the shared
/// function takes the seed first).
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    sf_test_support::random_bytes(seed, len)
}

pub fn sha_hex(bytes: &[u8]) -> String {
    Sha256Hex::of(bytes).to_hex()
}

impl TestHub {
    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let resp = self.http.get(self.url(path)).send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// `POST /upload` as the original client sends it.
    pub async fn legacy_upload(
        &self,
        path: &str,
        base_sha: Option<&str>,
        bytes: &[u8],
    ) -> (StatusCode, Value) {
        let meta = serde_json::json!({"path": path, "base_sha": base_sha}).to_string();
        self.legacy_upload_raw(Some(&meta.len().to_string()), meta.as_bytes(), bytes)
            .await
    }

    /// `POST /upload` with full control over the header and the JSON part.
    pub async fn legacy_upload_raw(
        &self,
        meta_length: Option<&str>,
        meta: &[u8],
        bytes: &[u8],
    ) -> (StatusCode, Value) {
        let mut body = meta.to_vec();
        body.extend_from_slice(bytes);
        let mut request = self.http.post(self.url("/upload")).body(body);
        if let Some(length) = meta_length {
            request = request.header(META_LENGTH_HEADER, length);
        }
        let resp = request.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// `GET /download?path=P`
    pub async fn download(&self, path: &str) -> (StatusCode, Vec<u8>) {
        let resp = self
            .http
            .get(self.url("/download"))
            .query(&[("path", path)])
            .send()
            .await
            .unwrap();
        (resp.status(), resp.bytes().await.unwrap().to_vec())
    }

    /// The live files of `/index`, as path → sha.
    pub async fn index(&self) -> std::collections::BTreeMap<String, String> {
        let (status, body) = self.get_json("/index").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["index"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(path, entry)| (path.clone(), entry["sha"].as_str().unwrap().to_owned()))
            .collect()
    }

    /// Cuts `bytes` into chunks and uploads those the hub lacks.
    pub async fn upload_chunks(&self, bytes: &[u8]) -> (Sha256Hex, Vec<ChunkRef>) {
        let chunks: Vec<_> = Chunker::new(bytes).map(|c| c.unwrap()).collect();
        let hashes: Vec<_> = chunks.iter().map(|c| c.hash).collect();
        let (status, body) = self
            .post_json(
                "/v1/chunks/missing",
                &serde_json::json!({ "chunks": hashes }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let missing: Vec<Sha256Hex> = serde_json::from_value(body["missing"].clone()).unwrap();
        for chunk in chunks.iter().filter(|c| missing.contains(&c.hash)) {
            let resp = self
                .http
                .put(self.url(&format!("/v1/chunks/{}", chunk.hash)))
                .body(chunk.data.clone())
                .send()
                .await
                .unwrap();
            assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
        }
        (
            Sha256Hex::of(bytes),
            chunks.iter().map(|c| c.to_ref()).collect(),
        )
    }

    /// Uploads and commits a file through the v1 API.
    pub async fn put_file(
        &self,
        path: &str,
        base_version: u64,
        bytes: &[u8],
        origin: &str,
    ) -> Result<Entry, Refusal> {
        let (sha256, chunks) = self.upload_chunks(bytes).await;
        self.commit(&CommitRequest {
            path: path.parse().unwrap(),
            kind: EntryKind::File,
            base_version,
            sha256,
            size: bytes.len() as u64,
            mtime_ns: 1_700_000_000_000_000_000,
            executable: false,
            chunks,
            origin: origin.into(),
        })
        .await
    }

    pub async fn commit(&self, request: &CommitRequest) -> Result<Entry, Refusal> {
        self.v1_call("/v1/commit", &serde_json::to_value(request).unwrap())
            .await
    }

    pub async fn delete_v1(&self, path: &str, base_version: u64) -> Result<Entry, Refusal> {
        self.v1_call(
            "/v1/delete",
            &serde_json::json!({"path": path, "base_version": base_version, "origin": "test"}),
        )
        .await
    }

    pub async fn v1_call(&self, route: &str, body: &Value) -> Result<Entry, Refusal> {
        let (status, body) = self.post_json(route, body).await;
        if status == StatusCode::OK {
            Ok(serde_json::from_value(body).unwrap())
        } else {
            Err((
                status,
                serde_json::from_value(body.clone())
                    .unwrap_or_else(|e| panic!("error body {body}: {e}")),
            ))
        }
    }

    pub async fn changes(&self, since: u64) -> ChangesResponse {
        let (status, body) = self
            .get_json(&format!("/v1/changes?since={since}&limit=10000"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        serde_json::from_value(body).unwrap()
    }

    pub async fn head(&self) -> u64 {
        self.changes(0).await.head
    }

    /// The metrics listener's whole Prometheus text.
    pub async fn metrics_text(&self) -> String {
        self.http
            .get(&self.metrics_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The sum of every series of metric `name` (all label sets).
    pub async fn metric(&self, name: &str) -> Option<f64> {
        metric_value(&self.metrics_text().await, name)
    }
}
