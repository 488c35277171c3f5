//! The hub's API with the hub's write token, for the tests: to set up what
//! the page will show (files, folders, conflicting uploads) and to check
//! what the page did (the bytes and versions the hub holds).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sf_e2e::sha256;

use super::{EMPTY_SHA, Ui};
use crate::browser::WAIT;

impl Ui {
    fn api(&self, path: &str) -> String {
        format!("{}{path}", self.hub.url())
    }

    /// `GET path` with the hub's write token: the JSON answer.
    pub async fn get(&self, path: &str) -> Value {
        let answer = self
            .http
            .get(self.api(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = answer.status();
        let text = answer.text().await.unwrap_or_default();
        assert!(status.is_success(), "GET {path}: {status}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: {e}: {text}"))
    }

    /// `POST path` with a JSON body and the hub's write token.
    pub async fn post(&self, path: &str, body: Value) -> Value {
        let answer = self
            .http
            .post(self.api(path))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = answer.status();
        let text = answer.text().await.unwrap_or_default();
        assert!(status.is_success(), "POST {path} {body}: {status}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {path}: {e}: {text}"))
    }

    /// The current version of `path` on the hub (0 when none or deleted).
    pub async fn version(&self, path: &str) -> u64 {
        let answer = self
            .http
            .get(self.api("/v1/history"))
            .query(&[("path", path), ("limit", "1")])
            .send()
            .await
            .expect("GET /v1/history");
        if !answer.status().is_success() {
            return 0;
        }
        let history: Value = answer.json().await.expect("a history");
        match history["versions"].as_array().and_then(|v| v.last()) {
            Some(last) if !last["deleted"].as_bool().unwrap_or(false) => {
                last["version"].as_u64().unwrap_or(0)
            }
            _ => 0,
        }
    }

    /// Commits `bytes` at `path` as the agent `origin` would (chunk, then
    /// commit on the current version), with modification time `mtime_ms`.
    pub async fn put_file(&self, path: &str, bytes: &[u8], origin: &str) -> Value {
        let mtime_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        self.put_file_at(path, bytes, origin, mtime_ms).await
    }

    pub async fn put_file_at(
        &self,
        path: &str,
        bytes: &[u8],
        origin: &str,
        mtime_ms: i64,
    ) -> Value {
        let hash = sha256(bytes).to_hex();
        let mut chunks = vec![];
        if !bytes.is_empty() {
            assert!(bytes.len() <= 1 << 20, "put_file takes small files");
            let answer = self
                .http
                .put(self.api(&format!("/v1/chunks/{hash}")))
                .body(bytes.to_vec())
                .send()
                .await
                .expect("PUT a chunk");
            assert!(
                answer.status().is_success(),
                "PUT chunk: {}",
                answer.status()
            );
            chunks.push(json!({"hash": hash, "len": bytes.len()}));
        }
        let base = self.version(path).await;
        self.post(
            "/v1/commit",
            json!({
                "path": path, "kind": "file", "base_version": base, "sha256": hash,
                "size": bytes.len(), "mtime_ns": mtime_ms * 1_000_000, "chunks": chunks,
                "origin": origin,
            }),
        )
        .await
    }

    /// Commits the folder `path`.
    pub async fn put_dir(&self, path: &str, origin: &str) -> Value {
        self.post(
            "/v1/commit",
            json!({"path": path, "kind": "dir", "base_version": 0, "sha256": EMPTY_SHA, "size": 0, "origin": origin}),
        )
        .await
    }

    /// `POST /v1/upload` as the page does, with the write token.
    pub async fn upload(&self, path: &str, bytes: &[u8], base_version: u64) -> Value {
        let answer = self
            .http
            .post(self.api("/v1/upload"))
            .query(&[("path", path), ("base_version", &base_version.to_string())])
            .body(bytes.to_vec())
            .send()
            .await
            .expect("POST /v1/upload");
        let status = answer.status();
        let text = answer.text().await.unwrap_or_default();
        assert!(status.is_success(), "upload {path}: {status}: {text}");
        serde_json::from_str(&text).expect("an upload answer")
    }

    /// The current bytes of `path` on the hub; `None` when it has none.
    pub async fn hub_bytes(&self, path: &str) -> Option<Vec<u8>> {
        let answer = self
            .http
            .get(self.api("/v1/file"))
            .query(&[("path", path)])
            .send()
            .await
            .expect("GET /v1/file");
        if answer.status() == reqwest::StatusCode::NOT_FOUND {
            return None;
        }
        assert!(
            answer.status().is_success(),
            "GET /v1/file {path}: {}",
            answer.status()
        );
        Some(answer.bytes().await.expect("a file's bytes").to_vec())
    }

    /// Polls until the hub holds `bytes` at `path` (`None`: nothing).
    pub async fn wait_hub_bytes(&self, path: &str, bytes: Option<&[u8]>) {
        let deadline = Instant::now() + WAIT;
        loop {
            let now = self.hub_bytes(path).await;
            if now.as_deref() == bytes {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: the hub holds {:?} at {path}, not {:?}\nthe page shows:\n{}",
                self.test,
                now.map(|b| String::from_utf8_lossy(&b)
                    .chars()
                    .take(80)
                    .collect::<String>()),
                bytes.map(|b| String::from_utf8_lossy(b)
                    .chars()
                    .take(80)
                    .collect::<String>()),
                self.describe().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
