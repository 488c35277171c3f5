//! Every endpoint of the hub, through real HTTP and WebSocket, on SQLite and
//! on PostgreSQL: the legacy API, the v1 API, bad input, concurrency,
//! broadcasts, restarts and metrics.
//!
//! Layout: one test binary, one module per area. `legacy` is the original
//! client's API; `v1` is commit, delete, restore, history and directories;
//! `chunks` is the chunk endpoints, ranges and deduplication; `integrity`
//! is chunks damaged or lost on disk and `sf-hub check`; `batch` is
//! many changes per request and chunk packs up and down; `websocket` is
//! the change broadcast; `bad_input` is what the hub refuses, changing
//! nothing; `server` is the hub as a whole (racing commits, a restart,
//! metrics). What more than one area needs is here; the harness is
//! `hub/tests/common`, shared with the other suites.

#[path = "../common/mod.rs"]
mod common;

mod bad_input;
mod batch;
mod browse;
mod chunks;
mod integrity;
mod legacy;
mod server;
mod v1;
mod websocket;

use serde_json::json;
use sf_protocol::Sha256Hex;
use sf_protocol::v1::{CommitRequest, EntryKind};

use common::TestHub;

/// `GET path`, which must get an answer (of any status).
async fn get(hub: &TestHub, path: &str) -> reqwest::Response {
    hub.http.get(hub.url(path)).send().await.unwrap()
}

/// `POST /upload` of `content` at `path` with no base sha, as a request that
/// owns its client, so it can be sent from a spawned task.
fn legacy_upload_request(hub: &TestHub, path: &str, content: &str) -> reqwest::RequestBuilder {
    let meta = json!({"path": path, "base_sha": null}).to_string();
    hub.http
        .post(hub.url("/upload"))
        .header("x-meta-length", meta.len())
        .body(format!("{meta}{content}"))
}

/// A directory commit at `path` (no content), from origin `a`.
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
