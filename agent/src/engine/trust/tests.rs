//! The engine against a small hub of the test's own over real HTTP: a feed
//! with unusable entries and a path through a symlink, applied by a real
//! engine to a real folder.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sf_protocol::chunking::ChunkRef;
use sf_protocol::v1::{
    ChangesResponse, Entry, EntryKind, FetchChunksRequest, Scope, WhoAmI, encode_pack_header,
};
use sf_protocol::{Sha256Hex, SyncPath};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, mpsc};

use crate::engine::Engine;
use crate::hub_client::HubClient;
use crate::state::{MetaKey, State};

/// What the fake hub serves, and the requests it saw.
#[derive(Default)]
struct Served {
    hub_id: String,
    feed: Vec<Entry>,
    chunks: HashMap<String, Vec<u8>>,
    requests: Vec<String>,
}

/// Answers `/v1/whoami`, `/v1/changes`, `/v1/chunks/fetch` and `/v1/chunks/{hash}`
/// over HTTP/1.1, one request per connection. Returns its base URL.
async fn fake_hub(served: Arc<Mutex<Served>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let served = served.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let target = head.split(' ').nth(1).unwrap_or("/").to_owned();
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                let mut request = vec![0u8; length];
                if socket.read_exact(&mut request).await.is_err() {
                    return;
                }
                let (status, body) = answer(&served, &target, &request);
                let reply = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/octet-stream\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(reply.as_bytes()).await;
                let _ = socket.write_all(&body).await;
            });
        }
    });
    url
}

fn answer(served: &Mutex<Served>, target: &str, request: &[u8]) -> (&'static str, Vec<u8>) {
    let mut served = served.lock().unwrap();
    served.requests.push(target.to_owned());
    let (route, query) = target.split_once('?').unwrap_or((target, ""));
    if route == "/v1/whoami" {
        let me = WhoAmI {
            token: None,
            scope: Scope::Write,
            hub_id: served.hub_id.clone(),
        };
        return ("200 OK", serde_json::to_vec(&me).unwrap());
    }
    if route == "/v1/changes" {
        let since: u64 = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("since="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let page = ChangesResponse {
            changes: served
                .feed
                .iter()
                .filter(|e| e.seq > since)
                .cloned()
                .collect(),
            head: served.feed.iter().map(|e| e.seq).max().unwrap_or(0),
            hub_id: served.hub_id.clone(),
        };
        return ("200 OK", serde_json::to_vec(&page).unwrap());
    }
    if route == "/v1/chunks/fetch" {
        let asked: FetchChunksRequest = serde_json::from_slice(request).unwrap();
        let mut pack = Vec::new();
        for hash in asked.chunks {
            let Some(bytes) = served.chunks.get(&hash.to_hex()) else {
                return (
                    "404 Not Found",
                    br#"{"error":"not_found","detail":"no such chunk"}"#.to_vec(),
                );
            };
            pack.extend_from_slice(&encode_pack_header(&hash, bytes.len() as u32));
            pack.extend_from_slice(bytes);
        }
        return ("200 OK", pack);
    }
    if let Some(bytes) = route
        .strip_prefix("/v1/chunks/")
        .and_then(|hash| served.chunks.get(hash))
    {
        return ("200 OK", bytes.clone());
    }
    (
        "404 Not Found",
        br#"{"error":"not_found","detail":"no such route"}"#.to_vec(),
    )
}

fn file(path: &str, seq: u64, version: u64, content: &str, served: &mut Served) -> Entry {
    let hash = Sha256Hex::of(content.as_bytes());
    served
        .chunks
        .insert(hash.to_hex(), content.as_bytes().to_vec());
    Entry {
        path: SyncPath::parse(path).unwrap(),
        kind: EntryKind::File,
        version,
        seq,
        sha256: Some(hash),
        size: content.len() as u64,
        mtime_ns: 1_700_000_000_000_000_000,
        executable: false,
        deleted: false,
        origin: "elsewhere".into(),
        committed_ms: 1,
        chunks: Some(vec![ChunkRef {
            hash,
            len: content.len() as u64,
        }]),
    }
}

/// Runs a real engine on `root` until its first cycle is done; returns
/// what stops it and its task.
struct Running {
    stop: tokio::sync::watch::Sender<bool>,
    doorbell: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

fn start(root: &std::path::Path, url: &str, state: &State) -> Running {
    start_scanning_every(root, url, state, Duration::from_secs(3600))
}

fn start_scanning_every(
    root: &std::path::Path,
    url: &str,
    state: &State,
    scan_interval: Duration,
) -> Running {
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let hub = HubClient::new(url).unwrap();
    let engine = Engine::new(
        root.to_owned(),
        "tester".into(),
        hub,
        state.clone(),
        stop_rx,
    );
    let (_triggers_tx, triggers) = mpsc::unbounded_channel();
    let doorbell = Arc::new(Notify::new());
    let ring = doorbell.clone();
    let task = tokio::spawn(async move {
        engine.run(triggers, ring, scan_interval).await.unwrap();
    });
    Running {
        stop,
        doorbell,
        task,
    }
}

/// Waits (bounded, so a broken engine fails instead of hanging) until `done`.
async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..600 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("gave up waiting until {what}");
}

async fn problem_of(state: &State, path: &str) -> Option<String> {
    state
        .problems()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.path == path)
        .map(|p| p.detail)
}

#[tokio::test]
async fn unusable_entries_and_paths_through_symlinks_are_skipped_and_the_rest_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let registry = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::os::unix::fs::symlink(outside.path(), root.join("d")).unwrap();

    let served = Arc::new(Mutex::new(Served {
        hub_id: "hub-one".into(),
        ..Served::default()
    }));
    {
        let mut s = served.lock().unwrap();
        let good = file("good.txt", 1, 1, "hello", &mut s);
        let mut no_digest = file("no-digest.txt", 2, 1, "abc", &mut s);
        no_digest.sha256 = None;
        let mut bad_chunks = file("bad-chunks.txt", 3, 1, "abc", &mut s);
        bad_chunks.size = 4;
        let through_link = file("d/x.txt", 4, 1, "planted", &mut s);
        let mut dir_with_content = file("folder", 5, 1, "x", &mut s);
        dir_with_content.kind = EntryKind::Dir;
        let after = file("after.txt", 6, 1, "still synced", &mut s);
        s.feed = vec![
            good,
            no_digest,
            bad_chunks,
            through_link,
            dir_with_content,
            after,
        ];
    }
    let url = fake_hub(served.clone()).await;
    let state = State::open(&root, registry.path()).await.unwrap();
    let running = start(&root, &url, &state);
    until("the first cycle is done", async || {
        state.meta(MetaKey::LastCycleMs).await.unwrap().is_some()
    })
    .await;

    // The usable entries, before and after the bad ones, are applied.
    assert_eq!(std::fs::read(root.join("good.txt")).unwrap(), b"hello");
    assert_eq!(
        std::fs::read(root.join("after.txt")).unwrap(),
        b"still synced"
    );
    // Nothing else is written, inside the folder or through the link.
    for skipped in ["no-digest.txt", "bad-chunks.txt", "folder"] {
        assert!(!root.join(skipped).exists(), "{skipped} was written");
    }
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    // Each is reported, saying what and why.
    let detail = problem_of(&state, "no-digest.txt").await.unwrap();
    assert!(
        detail.starts_with("refused: the hub's version 1 is invalid")
            && detail.contains("without a sha256"),
        "{detail}"
    );
    let detail = problem_of(&state, "bad-chunks.txt").await.unwrap();
    assert!(
        detail.contains("add up to 3 bytes, not to the size 4"),
        "{detail}"
    );
    let detail = problem_of(&state, "folder").await.unwrap();
    assert!(
        detail.contains("a directory that carries content"),
        "{detail}"
    );
    assert_eq!(
        problem_of(&state, "d/x.txt").await.unwrap(),
        "not applied: d is a symbolic link"
    );
    // The feed moved past them: they are not asked for again.
    assert_eq!(state.last_seq().await.unwrap(), 6);
    assert_eq!(
        state.meta(MetaKey::HubId).await.unwrap().as_deref(),
        Some("hub-one")
    );
    let report = crate::status::report(&root).await.unwrap();
    assert!(
        report.contains("hub changes not applied: 4")
            && report.contains("d/x.txt: not applied: d is a symbolic link"),
        "{report}"
    );
    assert!(report.contains("pending download: 0"), "{report}");

    // A newer, usable version of a refused path is applied.
    {
        let mut s = served.lock().unwrap();
        let fixed = file("no-digest.txt", 7, 2, "fixed", &mut s);
        s.feed.push(fixed);
    }
    running.doorbell.notify_one();
    until("the fixed version arrives", async || {
        root.join("no-digest.txt").exists()
    })
    .await;
    assert_eq!(std::fs::read(root.join("no-digest.txt")).unwrap(), b"fixed");
    until("its problem is cleared", async || {
        problem_of(&state, "no-digest.txt").await.is_none()
    })
    .await;
    let asked: Vec<String> = served
        .lock()
        .unwrap()
        .requests
        .iter()
        .filter(|r| r.starts_with("/v1/changes"))
        .cloned()
        .collect();
    assert!(asked.iter().any(|r| r.contains("since=6")), "{asked:?}");

    running.stop.send(true).unwrap();
    running.task.await.unwrap();
    state.close().await;
}

#[cfg(target_os = "linux")]
#[test]
fn the_case_probe_tells_this_file_system_apart_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(crate::state::STATE_DIR)).unwrap();
    // The temporary directories here are on a case-sensitive file system
    // (Linux): a probe that answered "insensitive" would skip names for
    // nothing.
    assert!(!super::case_insensitive(dir.path()));
    assert_eq!(
        std::fs::read_dir(dir.path().join(crate::state::STATE_DIR))
            .unwrap()
            .count(),
        0
    );
}

/// A ring of the push connection can be missed (the socket was down when
/// the hub committed); the periodic scan must then read the feed itself.
#[tokio::test]
async fn the_periodic_scan_reads_the_feed_without_a_ring() {
    let dir = tempfile::tempdir().unwrap();
    let registry = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let served = Arc::new(Mutex::new(Served {
        hub_id: "hub-one".into(),
        ..Served::default()
    }));
    let url = fake_hub(served.clone()).await;
    let state = State::open(&root, registry.path()).await.unwrap();
    let running = start_scanning_every(&root, &url, &state, Duration::from_secs(1));
    until("the first cycle is done", async || {
        state.meta(MetaKey::LastCycleMs).await.unwrap().is_some()
    })
    .await;

    // A commit the agent is never told about.
    {
        let mut s = served.lock().unwrap();
        let late = file("late.txt", 1, 1, "arrived by the scan", &mut s);
        s.feed.push(late);
    }
    until("late.txt arrives", async || root.join("late.txt").exists()).await;
    assert_eq!(
        std::fs::read(root.join("late.txt")).unwrap(),
        b"arrived by the scan"
    );
    let _ = running.stop.send(true);
    running.task.await.unwrap();
}

/// A path that cannot be read is reported for `sf-agent status` and looked
/// at again later, the same way whether an event cycle or the full scan's
/// walk found it (the two used to differ: only event cycles reported it).
#[tokio::test]
async fn an_unreadable_path_is_reported_and_retried_however_it_was_found() {
    let dir = tempfile::tempdir().unwrap();
    let registry = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let state = State::open(&root, registry.path()).await.unwrap();
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let mut engine = Engine::new(
        root.clone(),
        "tester".into(),
        HubClient::new("http://127.0.0.1:9").unwrap(),
        state.clone(),
        stop_rx,
    );
    let path = SyncPath::parse("locked.txt").unwrap();
    let why = crate::walk::Unsettled::Unreadable("Permission denied (os error 13)".into());
    engine.unsettled(&path, &why).await.unwrap();
    assert_eq!(
        problem_of(&state, "locked.txt").await.as_deref(),
        Some("cannot read locked.txt: Permission denied (os error 13)")
    );
    assert!(engine.deferred.contains_key(&path));
    let report = crate::status::report(&root).await.unwrap();
    assert!(
        report.contains("locked.txt: cannot read locked.txt: Permission denied"),
        "{report}"
    );
}
