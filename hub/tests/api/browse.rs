//! The routes the web page uses beyond the agents' API: a folder listed a
//! page at a time (committed and implied folders, cursors), search,
//! recently deleted, conflicts kept one way or the other, who is
//! connected, a whole-file upload that turns into a conflict copy, and a
//! folder moved or removed with everything under it — nothing lost.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sf_protocol::v1::{
    ConflictsResponse, DeletedResponse, EntryKind, ErrorCode, ListResponse, SearchResponse,
    UploadResponse,
};

use crate::common::TestHub;
use crate::common::client::random_bytes;
use crate::dir_commit;

crate::on_both_backends!(
    listing_pages_through_files_and_folders,
    search_finds_paths_in_any_case,
    upload_over_a_changed_file_makes_a_conflict_copy,
    move_and_remove_a_folder_then_restore_it,
    conflicts_keep_either_side,
    activity_shows_connected_clients_and_recent_changes,
);

async fn list(hub: &TestHub, dir: &str, after: Option<&str>, limit: u32) -> ListResponse {
    let mut query = vec![("dir", dir.to_owned()), ("limit", limit.to_string())];
    if let Some(after) = after {
        query.push(("after", after.to_owned()));
    }
    let resp = hub
        .http
        .get(hub.url("/v1/list"))
        .query(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

/// Every child of `dir`, page by page; also the number of pages.
async fn list_all(hub: &TestHub, dir: &str, limit: u32) -> (Vec<(String, EntryKind, u64)>, usize) {
    let (mut all, mut pages, mut after) = (Vec::new(), 0, None::<String>);
    loop {
        let page = list(hub, dir, after.as_deref(), limit).await;
        pages += 1;
        assert!(page.entries.len() <= limit as usize);
        all.extend(
            page.entries
                .into_iter()
                .map(|e| (e.name, e.kind, e.version)),
        );
        match page.next {
            Some(next) => after = Some(next),
            None => return (all, pages),
        }
    }
}

async fn listing_pages_through_files_and_folders(hub: TestHub) {
    for path in [
        "top.txt",
        "docs/a.txt",
        "docs/b.txt",
        "docs/deep/x/y.txt",
        "docs/deep/z.txt",
        "docs.txt",
        "docs0/c.txt",
        "photos/日本/写真.jpg",
    ] {
        hub.put_file(path, 0, path.as_bytes(), "laptop")
            .await
            .unwrap();
    }
    hub.commit(&dir_commit("docs/empty", 0)).await.unwrap();
    hub.commit(&dir_commit("docs/deep", 0)).await.unwrap();
    hub.put_file("docs/gone.txt", 0, b"bye", "laptop")
        .await
        .unwrap();
    hub.delete_v1("docs/gone.txt", 1).await.unwrap();

    // The top: files and the folders their paths imply, in the byte order
    // of the paths (an implied folder where its first path is: `docs/…`
    // sorts after `docs.txt`); every page size gives the same listing.
    let top = vec![
        ("docs.txt".to_owned(), EntryKind::File, 1),
        ("docs".to_owned(), EntryKind::Dir, 0),
        ("docs0".to_owned(), EntryKind::Dir, 0),
        ("photos".to_owned(), EntryKind::Dir, 0),
        ("top.txt".to_owned(), EntryKind::File, 1),
    ];
    for limit in [1, 2, 5, 200] {
        let (listed, pages) = list_all(&hub, "", limit).await;
        assert_eq!(listed, top, "limit {limit}");
        assert_eq!(
            pages,
            top.len().div_ceil(limit as usize).max(1),
            "limit {limit}"
        );
    }
    // Once `docs` is committed it comes first, by its own row, and only
    // once, however the pages fall: `docs 2019` and `docs.txt` lie between
    // it and `docs/…`.
    hub.commit(&dir_commit("docs", 0)).await.unwrap();
    hub.put_file("docs 2019/old.txt", 0, b"old", "laptop")
        .await
        .unwrap();
    let top = vec![
        ("docs".to_owned(), EntryKind::Dir, 1),
        ("docs 2019".to_owned(), EntryKind::Dir, 0),
        ("docs.txt".to_owned(), EntryKind::File, 1),
        ("docs0".to_owned(), EntryKind::Dir, 0),
        ("photos".to_owned(), EntryKind::Dir, 0),
        ("top.txt".to_owned(), EntryKind::File, 1),
    ];
    for limit in 1..=7 {
        let (listed, _) = list_all(&hub, "", limit).await;
        assert_eq!(listed, top, "limit {limit}");
    }

    // A folder: a committed folder listed once (with its version) though
    // files lie under it; an empty committed folder; no tombstones.
    let (docs, _) = list_all(&hub, "docs", 2).await;
    assert_eq!(
        docs,
        [
            ("a.txt".to_owned(), EntryKind::File, 1),
            ("b.txt".to_owned(), EntryKind::File, 1),
            ("deep".to_owned(), EntryKind::Dir, 1),
            ("empty".to_owned(), EntryKind::Dir, 1),
        ]
    );
    let page = list(&hub, "photos/日本", None, 10).await;
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].path.as_str(), "photos/日本/写真.jpg");
    assert_eq!(page.entries[0].origin, "laptop");
    assert!(list(&hub, "nowhere", None, 10).await.entries.is_empty());

    // Bad input: a folder path, a cursor, a limit.
    for query in [
        "/v1/list?dir=/docs",
        "/v1/list?dir=docs/",
        "/v1/list?dir=docs&after=garbage",
        "/v1/list?dir=docs&after=%3Ezzz",
        "/v1/list?limit=0",
        "/v1/list?limit=1001",
    ] {
        let (status, body) = hub.get_json(query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
}

async fn search_finds_paths_in_any_case(hub: TestHub) {
    for path in [
        "Reports/Q1.pdf",
        "reports/q2.pdf",
        "other/100%_done.txt",
        "x.txt",
    ] {
        hub.put_file(path, 0, path.as_bytes(), "a").await.unwrap();
    }
    let search = |q: &'static str| {
        let hub = &hub;
        async move {
            let resp = hub
                .http
                .get(hub.url("/v1/search"))
                .query(&[("q", q), ("limit", "10")])
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            let found: SearchResponse = resp.json().await.unwrap();
            found
                .entries
                .into_iter()
                .map(|e| e.path.to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        search("REPORTS/q").await,
        ["Reports/Q1.pdf", "reports/q2.pdf"]
    );
    // LIKE's wildcards are plain text.
    assert_eq!(search("%_").await, ["other/100%_done.txt"]);
    assert!(search("nothing").await.is_empty());
    let (status, _) = hub.get_json("/v1/search?q=").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn web_upload(hub: &TestHub, path: &str, base: u64, bytes: &[u8]) -> UploadResponse {
    let resp = hub
        .http
        .post(hub.url("/v1/upload"))
        .query(&[("path", path), ("base_version", &base.to_string())])
        .query(&[("mtime_ms", "1700000000000")])
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

async fn upload_over_a_changed_file_makes_a_conflict_copy(hub: TestHub) {
    let first = random_bytes(300_000, 1);
    let up = web_upload(&hub, "notes/plan.txt", 0, &first).await;
    assert!(!up.conflict);
    assert_eq!((up.entry.version, up.entry.origin.as_str()), (1, "web"));
    assert_eq!(up.entry.mtime_ns, 1_700_000_000_000_000_000);
    // An agent changes it; the page still shows version 1.
    hub.put_file("notes/plan.txt", 1, b"agent's edit", "laptop")
        .await
        .unwrap();
    let mine = random_bytes(1000, 2);
    let up = web_upload(&hub, "notes/plan.txt", 1, &mine).await;
    assert!(up.conflict);
    let copy = up.entry.path.to_string();
    assert!(copy.starts_with("notes/plan (conflict web "), "{copy}");
    // Both contents are there: the agent's edit and the upload beside it.
    assert_eq!(hub.download("notes/plan.txt").await.1, b"agent's edit");
    assert_eq!(hub.download(&copy).await.1, mine);
    // Over the current version, it is a new version.
    let up = web_upload(&hub, "notes/plan.txt", 2, &first).await;
    assert!(!up.conflict);
    assert_eq!(up.entry.version, 3);
    // Over a folder: refused, nothing written.
    hub.commit(&dir_commit("notes/sub", 0)).await.unwrap();
    let resp = hub
        .http
        .post(hub.url("/v1/upload?path=notes/sub"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CONFLICT);
}

async fn post(hub: &TestHub, route: &str, body: Value) -> (StatusCode, Value) {
    hub.post_json(route, &body).await
}

async fn deleted(hub: &TestHub) -> DeletedResponse {
    let (status, body) = hub.get_json("/v1/deleted?limit=100").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value(body).unwrap()
}

async fn move_and_remove_a_folder_then_restore_it(hub: TestHub) {
    let big = random_bytes(2_000_000, 3);
    hub.put_file("projects/app/src/main.rs", 0, b"fn main() {}", "a")
        .await
        .unwrap();
    hub.put_file("projects/app/data.bin", 0, &big, "a")
        .await
        .unwrap();
    hub.commit(&dir_commit("projects/app/empty", 0))
        .await
        .unwrap();
    hub.put_file("projects/other.txt", 0, b"stays", "a")
        .await
        .unwrap();

    // Into itself, onto something live, from nowhere: refused.
    for (body, status) in [
        (
            json!({"from": "projects/app", "to": "projects/app/inner"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"from": "projects/app", "to": "projects/other.txt"}),
            StatusCode::CONFLICT,
        ),
        (
            json!({"from": "projects/nothing", "to": "x"}),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (got, answer) = post(&hub, "/v1/move", body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
    }
    let (status, moved) = post(
        &hub,
        "/v1/move",
        json!({"from": "projects/app", "to": "archive/app 2026"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["moved"], 3);
    assert_eq!(hub.download("archive/app 2026/data.bin").await.1, big);
    assert_eq!(
        hub.download("archive/app 2026/src/main.rs").await.1,
        b"fn main() {}"
    );
    let (listed, _) = list_all(&hub, "archive/app 2026", 10).await;
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(list(&hub, "projects", None, 10).await.entries.len() == 1);

    // Removed with everything under it: each restorable.
    // A script names itself as any v1 client does; a bad origin changes nothing.
    let (status, _) = post(&hub, "/v1/remove", json!({"path": "archive", "origin": ""})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, removed) = post(
        &hub,
        "/v1/remove",
        json!({"path": "archive", "origin": "cleanup-script"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(removed["removed"], 3);
    assert!(
        list(&hub, "", None, 10)
            .await
            .entries
            .iter()
            .all(|e| e.name != "archive")
    );
    let gone = deleted(&hub).await;
    let data = gone
        .entries
        .iter()
        .find(|d| d.path.as_str() == "archive/app 2026/data.bin")
        .expect("the removed file is listed as deleted");
    assert_eq!(data.deleted_by, "cleanup-script");
    assert_eq!(data.size, big.len() as u64);
    let version = data.restorable_version.expect("restorable");
    let restored = hub
        .v1_call(
            "/v1/restore",
            &json!({"path": "archive/app 2026/data.bin", "version": version, "origin": "web"}),
        )
        .await
        .unwrap();
    assert!(!restored.deleted);
    assert_eq!(hub.download("archive/app 2026/data.bin").await.1, big);
    assert!(
        deleted(&hub)
            .await
            .entries
            .iter()
            .all(|d| d.path.as_str() != "archive/app 2026/data.bin")
    );
    // The originals' history keeps every version: the move left tombstones.
    let (_, history) = hub.get_json("/v1/history?path=projects/app/data.bin").await;
    assert_eq!(history["versions"].as_array().unwrap().len(), 2);
    let (status, _) = post(&hub, "/v1/remove", json!({"path": "archive/nothing"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn conflicts(hub: &TestHub) -> ConflictsResponse {
    let (status, body) = hub.get_json("/v1/conflicts").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value(body).unwrap()
}

async fn conflicts_keep_either_side(hub: TestHub) {
    hub.put_file("a.txt", 0, b"original", "desk").await.unwrap();
    hub.put_file("b.txt", 0, b"original b", "desk")
        .await
        .unwrap();
    let copy_a = web_upload(&hub, "a.txt", 7, b"the copy").await.entry;
    let copy_b = web_upload(&hub, "b.txt", 7, b"the copy b").await.entry;
    // A file that only looks like one (no date) is not listed.
    hub.put_file("c (conflict x).txt", 0, b"c", "desk")
        .await
        .unwrap();
    let listed = conflicts(&hub).await;
    assert_eq!(listed.conflicts.len(), 2, "{listed:?}");
    let first = &listed.conflicts[0];
    assert_eq!(first.copy.path, copy_a.path);
    assert_eq!(first.copy_origin, "web");
    assert!(first.copy_made.ends_with('Z'), "{}", first.copy_made);
    let original = first.original.as_ref().expect("the original is live");
    assert_eq!((original.path.as_str(), original.size), ("a.txt", 8));
    assert_eq!(first.copy.size, 8);

    // Keep the copy: it becomes a.txt's next version; the old one stays in history.
    let (status, kept) = post(
        &hub,
        "/v1/conflicts/resolve",
        json!({"copy": copy_a.path, "keep": "copy"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{kept}");
    assert_eq!(kept["kept"]["version"], 2);
    assert_eq!(hub.download("a.txt").await.1, b"the copy");
    let (_, history) = hub.get_json("/v1/history?path=a.txt").await;
    assert_eq!(history["versions"][0]["size"], 8);
    // Keep the original: the copy goes (restorable), b.txt is untouched.
    let (status, kept) = post(
        &hub,
        "/v1/conflicts/resolve",
        json!({"copy": copy_b.path, "keep": "original"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{kept}");
    assert_eq!(kept["kept"]["version"], 1);
    assert_eq!(hub.download("b.txt").await.1, b"original b");
    assert!(conflicts(&hub).await.conflicts.is_empty());
    let gone = deleted(&hub).await;
    assert_eq!(gone.entries.len(), 2);
    assert!(gone.entries.iter().all(|d| d.restorable_version.is_some()));
    // Again: the copy is gone now; a name that is not a copy.
    let (status, body) = post(
        &hub,
        "/v1/conflicts/resolve",
        json!({"copy": copy_b.path, "keep": "original"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = post(
        &hub,
        "/v1/conflicts/resolve",
        json!({"copy": "a.txt", "keep": "copy"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["error"],
        serde_json::to_value(ErrorCode::InvalidRequest).unwrap()
    );
}

async fn activity_shows_connected_clients_and_recent_changes(hub: TestHub) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = hub.ws_url().into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert(
        "authorization",
        format!("Bearer {}", hub.token).parse().unwrap(),
    );
    headers.insert("x-sf-agent", "laptop".parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    crate::common::next_frame(&mut socket).await; // hello: registered by now
    for n in 0..60 {
        hub.put_file(&format!("f{n}.txt"), 0, b"x", "laptop")
            .await
            .unwrap();
    }
    let (status, body) = hub.get_json("/v1/activity").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let agents = body["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 1, "{body}");
    assert_eq!(agents[0]["agent"], "laptop");
    assert_eq!(agents[0]["token"], "default");
    assert!(
        agents[0]["address"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    let recent = body["recent"].as_array().unwrap();
    assert_eq!(recent.len(), 50);
    assert_eq!(recent[0]["path"], "f59.txt", "newest first");
    drop(socket);
    // Gone once the socket closes.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, body) = hub.get_json("/v1/activity").await;
        if body["agents"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still listed: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
