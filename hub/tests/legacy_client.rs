//! A client written from the original contract — as the old Python client
//! behaves: `GET /index`, upload changed files with `X-Meta-Length` and
//! `base_sha`, `POST /delete`, then download what differs — syncs real
//! folders against sf-hub, conflicts included, losing nothing.
//!
//! The client below knows nothing of sf-hub beyond the original contract: it
//! speaks raw HTTP with reqwest and keeps real files in temp dirs.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use common::TestHub;
use common::client::{random_bytes, sha_hex};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Most rounds (one pass per client each) any scenario may need to converge.
const MAX_ROUNDS: usize = 4;

/// Everything one pass did, so scenarios can assert on the hub's answers.
#[derive(Debug, Default)]
struct PassReport {
    /// `POST /upload` sent for a path, with the hub's JSON answer.
    uploads: Vec<(String, Value)>,
    /// `POST /delete` sent for a path.
    deleted_on_hub: Vec<String>,
    /// Files removed from the folder because another client deleted them.
    deleted_locally: Vec<String>,
    /// Files written from `GET /download`.
    downloaded: Vec<String>,
}

impl PassReport {
    fn is_empty(&self) -> bool {
        self.uploads.is_empty()
            && self.deleted_on_hub.is_empty()
            && self.deleted_locally.is_empty()
            && self.downloaded.is_empty()
    }

    fn upload(&self, path: &str) -> &Value {
        self.uploads
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, answer)| answer)
            .unwrap_or_else(|| panic!("no upload of {path} in this pass: {self:?}"))
    }

    fn absorb(&mut self, other: PassReport) {
        self.uploads.extend(other.uploads);
        self.deleted_on_hub.extend(other.deleted_on_hub);
        self.deleted_locally.extend(other.deleted_locally);
        self.downloaded.extend(other.downloaded);
    }
}

/// Steps 1 and 2 of a pass: the hub's index and the folder, read at the start.
struct Scan {
    hub: BTreeMap<String, String>,
    local: BTreeMap<String, String>,
}

/// The old client: a folder, and the sha of every file as last synced.
struct LegacyClient {
    name: &'static str,
    http: reqwest::Client,
    base: String,
    /// Holds `dir` (the synced folder) and `tmp` (downloads in progress, on
    /// the same file system so a rename is atomic).
    _root: tempfile::TempDir,
    dir: PathBuf,
    tmp: PathBuf,
    /// path → sha last synced.
    known: BTreeMap<String, String>,
}

impl LegacyClient {
    fn new(name: &'static str, hub: &TestHub) -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("folder");
        let tmp = root.path().join("partial");
        std::fs::create_dir(&dir).unwrap();
        std::fs::create_dir(&tmp).unwrap();
        Self {
            name,
            http: reqwest::Client::new(),
            // The original client cannot send headers: its SERVER_URL carries
            // the token, as a user would configure it.
            base: format!("{}/t/{}", hub.base, hub.token),
            _root: root,
            dir,
            tmp,
            known: BTreeMap::new(),
        }
    }

    fn url(&self, route: &str) -> String {
        format!("{}{route}", self.base)
    }

    // --- the user's side: editing the folder ---------------------------------

    fn write(&self, path: &str, bytes: &[u8]) {
        let file = self.dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, bytes).unwrap();
    }

    fn read(&self, path: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(path))
            .unwrap_or_else(|e| panic!("client {}: cannot read {path}: {e}", self.name))
    }

    fn exists(&self, path: &str) -> bool {
        self.dir.join(path).exists()
    }

    fn remove(&self, path: &str) {
        std::fs::remove_file(self.dir.join(path)).unwrap();
    }

    /// Every file of the folder with its bytes, by '/'-separated path.
    fn contents(&self) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        walk(&self.dir, "", &mut |path, file| {
            files.insert(path, std::fs::read(file).unwrap());
        });
        files
    }

    // --- the sync pass ------------------------------------------------------

    /// Step 2: every file of the folder, recursively, with its sha.
    fn walk(&self) -> BTreeMap<String, String> {
        let mut files = BTreeMap::new();
        walk(&self.dir, "", &mut |path, file| {
            files.insert(path, sha_hex(&std::fs::read(file).unwrap()));
        });
        files
    }

    /// Step 1: `GET /index`, checked against the original contract's shape.
    async fn index(&self) -> BTreeMap<String, String> {
        let resp = self.http.get(self.url("/index")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "GET /index");
        let body: Value = resp.json().await.unwrap();
        assert!(
            body["ts"].is_number(),
            "GET /index: ts is not a number: {body}"
        );
        let index = body["index"]
            .as_object()
            .unwrap_or_else(|| panic!("GET /index: no index object: {body}"));
        index
            .iter()
            .map(|(path, entry)| {
                let sha = entry["sha"]
                    .as_str()
                    .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
                    .unwrap_or_else(|| panic!("GET /index: {path} has no sha256 hex: {entry}"));
                assert!(
                    entry["mtime"].is_number(),
                    "GET /index: {path} has no mtime: {entry}"
                );
                assert!(
                    entry["version"].as_u64().is_some_and(|v| v >= 1),
                    "GET /index: {path} has no version: {entry}"
                );
                (path.clone(), sha.to_owned())
            })
            .collect()
    }

    /// Steps 1 and 2.
    async fn scan(&self) -> Scan {
        Scan {
            hub: self.index().await,
            local: self.walk(),
        }
    }

    /// Steps 3 and 4: upload what changed here, drop what was deleted
    /// elsewhere, delete on the hub what was deleted here.
    async fn push(&mut self, scan: &Scan) -> PassReport {
        let mut report = PassReport::default();
        for (path, sha) in &scan.local {
            let on_hub = scan.hub.get(path);
            if on_hub == Some(sha) {
                continue;
            }
            if on_hub.is_none() && self.known.get(path) == Some(sha) {
                // Synced before, unchanged since, gone from the hub: deleted
                // elsewhere.
                self.remove(path);
                self.known.remove(path);
                report.deleted_locally.push(path.clone());
                continue;
            }
            let answer = self.upload(path, on_hub.map(String::as_str)).await;
            report.uploads.push((path.clone(), answer));
        }
        let gone: Vec<String> = self
            .known
            .keys()
            .filter(|path| !scan.local.contains_key(*path))
            .cloned()
            .collect();
        for path in gone {
            let resp = self
                .http
                .post(self.url("/delete"))
                .json(&json!({ "path": path }))
                .send()
                .await
                .unwrap();
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            assert_eq!(
                (status, &body),
                (StatusCode::OK, &json!({"ok": true})),
                "client {}: POST /delete {path}",
                self.name
            );
            self.known.remove(&path);
            report.deleted_on_hub.push(path);
        }
        report
    }

    /// `POST /upload`: the JSON metadata, then the file's bytes.
    async fn upload(&self, path: &str, base_sha: Option<&str>) -> Value {
        let bytes = self.read(path);
        let meta = json!({ "path": path, "base_sha": base_sha }).to_string();
        let mut body = meta.clone().into_bytes();
        body.extend_from_slice(&bytes);
        let resp = self
            .http
            .post(self.url("/upload"))
            .header("X-Meta-Length", meta.len().to_string())
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let answer: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(
            status,
            StatusCode::OK,
            "client {}: POST /upload {meta}: {answer}",
            self.name
        );
        assert_eq!(
            answer["ok"], true,
            "client {}: POST /upload {meta}: {answer}",
            self.name
        );
        assert!(
            answer["version"].as_u64().is_some_and(|v| v >= 1),
            "client {}: POST /upload {meta}: no version: {answer}",
            self.name
        );
        answer
    }

    /// Step 5: `GET /index` again, download every file that differs (temp
    /// file, then rename), and record what is now synced.
    async fn pull(&mut self) -> PassReport {
        let mut report = PassReport::default();
        let hub = self.index().await;
        for (path, sha) in &hub {
            let local = std::fs::read(self.dir.join(path)).ok().map(|b| sha_hex(&b));
            if local.as_ref() == Some(sha) {
                continue;
            }
            let resp = self
                .http
                .get(self.url("/download"))
                .query(&[("path", path)])
                .send()
                .await
                .unwrap();
            assert_eq!(
                resp.status(),
                StatusCode::OK,
                "client {}: GET /download?path={path}",
                self.name
            );
            let bytes = resp.bytes().await.unwrap();
            assert_eq!(
                &sha_hex(&bytes),
                sha,
                "client {}: GET /download?path={path} returned bytes whose sha is not the index's",
                self.name
            );
            let target = self.dir.join(path);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            let partial = tempfile::NamedTempFile::new_in(&self.tmp).unwrap();
            std::fs::write(partial.path(), &bytes).unwrap();
            partial.persist(&target).unwrap();
            report.downloaded.push(path.clone());
        }
        self.known = hub;
        report
    }

    /// One whole pass, steps 1 to 5.
    async fn pass(&mut self) -> PassReport {
        let scan = self.scan().await;
        let mut report = self.push(&scan).await;
        report.absorb(self.pull().await);
        report
    }
}

/// Calls `visit(relative path, file)` for every file under `dir`.
fn walk(dir: &Path, prefix: &str, visit: &mut impl FnMut(String, &Path)) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().expect("UTF-8 file name");
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            walk(&entry.path(), &path, visit);
        } else if kind.is_file() {
            visit(path, &entry.path());
        }
    }
}

/// What keeps `client` from agreeing with the hub's `index`, or `None`.
fn disagreement(client: &LegacyClient, index: &BTreeMap<String, String>) -> Option<String> {
    let local = client.walk();
    let mut out = String::new();
    for (path, sha) in index {
        match local.get(path) {
            None => writeln!(out, "  {path}: on the hub ({sha}), missing locally").unwrap(),
            Some(mine) if mine != sha => {
                writeln!(out, "  {path}: hub has {sha}, local has {mine}").unwrap();
            }
            Some(_) => {}
        }
    }
    for (path, sha) in &local {
        if !index.contains_key(path) {
            writeln!(out, "  {path}: local ({sha}), not on the hub").unwrap();
        }
    }
    if client.known != *index {
        writeln!(
            out,
            "  known shas differ from the hub's index: {:?}",
            client.known
        )
        .unwrap();
    }
    (!out.is_empty()).then(|| format!("client {}:\n{out}", client.name))
}

/// Runs rounds of passes (each client in turn) until every folder, every
/// client's known shas and the hub's index agree; then checks one more round
/// does nothing. Returns the agreed index and everything the passes did.
async fn sync_until_agreed(
    hub: &TestHub,
    clients: &mut [&mut LegacyClient],
) -> (BTreeMap<String, String>, PassReport) {
    let mut all = PassReport::default();
    let mut problems = String::new();
    for _ in 0..MAX_ROUNDS {
        for client in clients.iter_mut() {
            all.absorb(client.pass().await);
        }
        let index = hub.index().await;
        problems = clients
            .iter()
            .filter_map(|c| disagreement(c, &index))
            .collect();
        if problems.is_empty() {
            for client in clients.iter_mut() {
                let idle = client.pass().await;
                assert!(
                    idle.is_empty(),
                    "client {}: a pass after agreement still did something: {idle:?}",
                    client.name
                );
            }
            assert_eq!(
                hub.index().await,
                index,
                "the hub changed during an idle pass"
            );
            return (index, all);
        }
    }
    panic!(
        "no agreement after {MAX_ROUNDS} rounds; hub index: {:?}\n{problems}passes: {all:?}",
        hub.index().await
    );
}

/// `GET /v1/history?path=P` as (version, sha or None for a tombstone).
async fn history(hub: &TestHub, path: &str) -> Vec<(u64, Option<String>)> {
    let resp = hub
        .http
        .get(hub.url("/v1/history"))
        .query(&[("path", path)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "GET /v1/history?path={path}");
    let body: Value = resp.json().await.unwrap();
    body["versions"]
        .as_array()
        .unwrap_or_else(|| panic!("GET /v1/history?path={path}: no versions: {body}"))
        .iter()
        .map(|v| {
            let deleted = v["deleted"].as_bool().unwrap();
            let sha = v["sha256"].as_str().map(str::to_owned);
            assert_eq!(deleted, sha.is_none(), "GET /v1/history?path={path}: {v}");
            (v["version"].as_u64().unwrap(), sha)
        })
        .collect()
}

/// `GET /v1/file?path=P&version=N`
async fn file_version(hub: &TestHub, path: &str, version: u64) -> (StatusCode, Vec<u8>) {
    let resp = hub
        .http
        .get(hub.url("/v1/file"))
        .query(&[("path", path), ("version", &version.to_string())])
        .send()
        .await
        .unwrap();
    (resp.status(), resp.bytes().await.unwrap().to_vec())
}

/// Whether `copy` is `original`'s legacy conflict copy,
/// `<stem> (conflict legacy YYYY-MM-DD HHMMSS).<ext>`, stamped (UTC, whole
/// seconds) between `earliest` and `latest`.
fn is_conflict_copy(
    copy: &str,
    original: &str,
    earliest: time::OffsetDateTime,
    latest: time::OffsetDateTime,
) -> bool {
    let (stem, ext) = original.rsplit_once('.').expect("an extension");
    let Some(stamp) = copy
        .strip_prefix(&format!("{stem} (conflict legacy "))
        .and_then(|rest| rest.strip_suffix(&format!(").{ext}")))
    else {
        return false;
    };
    let b = stamp.as_bytes();
    let shape_ok = b.len() == 17
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            _ => c.is_ascii_digit(),
        });
    if !shape_ok {
        return false;
    }
    let num = |range: std::ops::Range<usize>| stamp[range].parse::<u32>().unwrap();
    let Ok(month) = time::Month::try_from(num(5..7) as u8) else {
        return false;
    };
    let Ok(date) = time::Date::from_calendar_date(num(0..4) as i32, month, num(8..10) as u8) else {
        return false;
    };
    let Ok(at) = time::Time::from_hms(num(11..13) as u8, num(13..15) as u8, num(15..17) as u8)
    else {
        return false;
    };
    let at = time::PrimitiveDateTime::new(date, at).assume_utc();
    earliest.replace_nanosecond(0).unwrap() <= at && at <= latest
}

// --- scenarios ----------------------------------------------------------------

/// A's files reach B byte for byte: nested dirs, an empty file, a Unicode
/// name, a 3 MiB incompressible file.
async fn a_folder_reaches_another_client(hub: TestHub) {
    let mut a = LegacyClient::new("A", &hub);
    let mut b = LegacyClient::new("B", &hub);
    let files: BTreeMap<String, Vec<u8>> = [
        ("readme.txt", random_bytes(1_000, 1)),
        ("docs/a/b/c/deep.md", random_bytes(10_000, 2)),
        ("docs/a/sibling.txt", random_bytes(77, 3)),
        ("empty.bin", Vec::new()),
        ("Ünïcødé/日本語 ファイル.txt", random_bytes(4_321, 4)),
        ("big/random.bin", random_bytes(3 * 1024 * 1024 + 17, 5)),
    ]
    .into_iter()
    .map(|(p, bytes)| (p.to_owned(), bytes))
    .collect();
    for (path, bytes) in &files {
        a.write(path, bytes);
    }

    let report = a.pass().await;
    let uploaded: BTreeSet<&str> = report.uploads.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        uploaded,
        files.keys().map(String::as_str).collect(),
        "{report:?}"
    );
    for (path, answer) in &report.uploads {
        assert_eq!(
            answer["sha"],
            sha_hex(&files[path]),
            "upload of {path}: {answer}"
        );
        assert_eq!(answer["version"], 1, "upload of {path}: {answer}");
        assert!(
            answer.get("conflict").is_none() && answer.get("stale").is_none(),
            "{answer}"
        );
    }
    let expected: BTreeMap<String, String> = files
        .iter()
        .map(|(p, bytes)| (p.clone(), sha_hex(bytes)))
        .collect();
    assert_eq!(
        hub.index().await,
        expected,
        "the hub's index after A's pass"
    );

    let report = b.pass().await;
    assert!(
        report.uploads.is_empty(),
        "B had nothing to upload: {report:?}"
    );
    assert_eq!(b.contents(), files, "B's folder after its pass");
    assert_eq!(a.contents(), files, "A's folder after both passes");

    let (index, _) = sync_until_agreed(&hub, &mut [&mut a, &mut b]).await;
    assert_eq!(index, expected);
    assert_eq!(b.contents(), files);
}

/// B modifies one file while A deletes another: both changes reach
/// everyone, and the deleted bytes stay in the hub's history.
async fn an_edit_and_a_delete_converge(hub: TestHub) {
    let mut a = LegacyClient::new("A", &hub);
    let mut b = LegacyClient::new("B", &hub);
    let edited_v1 = random_bytes(20_000, 10);
    let doomed = random_bytes(30_000, 11);
    let kept = random_bytes(500, 12);
    a.write("work/edited.txt", &edited_v1);
    a.write("work/doomed.bin", &doomed);
    a.write("kept.txt", &kept);
    sync_until_agreed(&hub, &mut [&mut a, &mut b]).await;
    assert_eq!(b.read("work/doomed.bin"), doomed);

    let edited_v2 = random_bytes(25_000, 13);
    b.write("work/edited.txt", &edited_v2);
    a.remove("work/doomed.bin");
    let (index, report) = sync_until_agreed(&hub, &mut [&mut a, &mut b]).await;

    assert_eq!(report.deleted_on_hub, ["work/doomed.bin"], "{report:?}");
    assert_eq!(
        report.deleted_locally,
        ["work/doomed.bin"],
        "B drops it: {report:?}"
    );
    assert_eq!(report.upload("work/edited.txt")["sha"], sha_hex(&edited_v2));
    assert_eq!(
        index,
        BTreeMap::from([
            ("kept.txt".to_owned(), sha_hex(&kept)),
            ("work/edited.txt".to_owned(), sha_hex(&edited_v2)),
        ])
    );
    for client in [&a, &b] {
        assert!(
            !client.exists("work/doomed.bin"),
            "client {} still has the deleted file",
            client.name
        );
        assert_eq!(
            client.read("work/edited.txt"),
            edited_v2,
            "client {}",
            client.name
        );
        assert_eq!(client.read("kept.txt"), kept, "client {}", client.name);
    }
    let (status, _) = hub.download("work/doomed.bin").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "GET /download of a deleted file"
    );

    // Nothing lost: the deleted bytes and the overwritten edit are history.
    assert_eq!(
        history(&hub, "work/doomed.bin").await,
        [(1, Some(sha_hex(&doomed))), (2, None)]
    );
    assert_eq!(
        file_version(&hub, "work/doomed.bin", 1).await,
        (StatusCode::OK, doomed)
    );
    assert_eq!(
        history(&hub, "work/edited.txt").await,
        [
            (1, Some(sha_hex(&edited_v1))),
            (2, Some(sha_hex(&edited_v2)))
        ]
    );
    assert_eq!(
        file_version(&hub, "work/edited.txt", 1).await,
        (StatusCode::OK, edited_v1)
    );
}

/// A and B edit the same file differently and sync at the same time (both
/// read the index before either uploads): the second upload becomes a
/// conflict copy, and both contents end up in both folders and on the hub.
async fn a_conflict_keeps_both_contents(hub: TestHub) {
    let mut a = LegacyClient::new("A", &hub);
    let mut b = LegacyClient::new("B", &hub);
    const PATH: &str = "notes/plan.txt";
    let original = random_bytes(8_000, 20);
    a.write(PATH, &original);
    a.write("other.txt", &random_bytes(100, 21));
    sync_until_agreed(&hub, &mut [&mut a, &mut b]).await;

    let mine = random_bytes(9_000, 22);
    let theirs = random_bytes(7_000, 23);
    a.write(PATH, &mine);
    b.write(PATH, &theirs);

    let scan_a = a.scan().await;
    let scan_b = b.scan().await;
    assert_eq!(scan_a.hub[PATH], sha_hex(&original));
    assert_eq!(scan_b.hub[PATH], sha_hex(&original));

    let pushed_a = a.push(&scan_a).await;
    let answer_a = pushed_a.upload(PATH);
    assert_eq!(answer_a["sha"], sha_hex(&mine), "A's upload: {answer_a}");
    assert_eq!(answer_a["version"], 2, "A's upload: {answer_a}");
    assert!(
        answer_a.get("conflict").is_none() && answer_a.get("stale").is_none(),
        "{answer_a}"
    );

    let before = time::OffsetDateTime::now_utc();
    let pushed_b = b.push(&scan_b).await;
    let after = time::OffsetDateTime::now_utc();
    let answer_b = pushed_b.upload(PATH);
    let copy = answer_b["conflict"]
        .as_str()
        .unwrap_or_else(|| {
            panic!("B's upload on a stale base_sha made no conflict copy: {answer_b}")
        })
        .to_owned();
    assert!(
        is_conflict_copy(&copy, PATH, before, after),
        "conflict copy {copy:?} does not match `notes/plan (conflict legacy YYYY-MM-DD HHMMSS).txt` \
         stamped between {before} and {after}"
    );
    assert_eq!(
        answer_b["sha"],
        sha_hex(&mine),
        "B's upload answers the path's current sha: {answer_b}"
    );
    assert_eq!(
        answer_b["version"], 2,
        "B's upload answers the path's current version: {answer_b}"
    );
    assert!(answer_b.get("stale").is_none(), "{answer_b}");

    // B pushes again before pulling (it still has its content at the
    // original path): the hub recognises its conflict copy's bytes.
    let scan_b = b.scan().await;
    let again = b.push(&scan_b).await;
    let answer = again.upload(PATH);
    assert_eq!(
        answer["stale"], true,
        "re-upload of conflicting bytes: {answer}"
    );
    assert!(
        answer.get("conflict").is_none(),
        "a second conflict copy: {answer}"
    );
    assert_eq!(answer["sha"], sha_hex(&mine), "{answer}");

    a.pull().await;
    b.pull().await;
    let (index, _) = sync_until_agreed(&hub, &mut [&mut a, &mut b]).await;

    let notes: BTreeMap<&str, &str> = index
        .iter()
        .filter(|(p, _)| p.starts_with("notes/"))
        .map(|(p, s)| (p.as_str(), s.as_str()))
        .collect();
    assert_eq!(
        notes,
        BTreeMap::from([
            (PATH, sha_hex(&mine).as_str()),
            (copy.as_str(), sha_hex(&theirs).as_str())
        ]),
        "the hub keeps A's content at the path and B's in one conflict copy"
    );
    assert_eq!(hub.download(PATH).await, (StatusCode::OK, mine.clone()));
    assert_eq!(hub.download(&copy).await, (StatusCode::OK, theirs.clone()));
    for client in [&a, &b] {
        assert_eq!(client.read(PATH), mine, "client {}: {PATH}", client.name);
        assert_eq!(client.read(&copy), theirs, "client {}: {copy}", client.name);
        let contents = client.contents();
        for (what, bytes) in [("A's edit", &mine), ("B's edit", &theirs)] {
            assert!(
                contents.values().any(|c| c == bytes),
                "client {}: {what} is lost from the folder",
                client.name
            );
        }
    }
    assert_eq!(
        history(&hub, PATH).await,
        [(1, Some(sha_hex(&original))), (2, Some(sha_hex(&mine)))]
    );
}

/// A still has v1 and has not pulled when it runs its pass after B wrote v2:
/// its upload of v1 comes first and must not undo v2.
async fn a_stale_upload_does_not_undo_a_newer_version(hub: TestHub) {
    let mut a = LegacyClient::new("A", &hub);
    let mut b = LegacyClient::new("B", &hub);
    const PATH: &str = "shared/doc.txt";
    let v1 = random_bytes(12_000, 30);
    let v2 = random_bytes(12_000, 31);
    a.write(PATH, &v1);
    a.pass().await;
    b.pass().await;
    assert_eq!(b.read(PATH), v1);

    b.write(PATH, &v2);
    let report = b.pass().await;
    assert_eq!(report.upload(PATH)["sha"], sha_hex(&v2));
    assert_eq!(hub.index().await[PATH], sha_hex(&v2));

    let scan = a.scan().await;
    let pushed = a.push(&scan).await;
    let answer = pushed.upload(PATH);
    assert_eq!(answer["stale"], true, "A's upload of v1 over v2: {answer}");
    assert_eq!(answer["sha"], sha_hex(&v2), "{answer}");
    assert_eq!(answer["version"], 2, "{answer}");
    assert!(answer.get("conflict").is_none(), "{answer}");
    assert_eq!(
        hub.index().await[PATH],
        sha_hex(&v2),
        "the hub after A's stale upload"
    );
    assert_eq!(a.read(PATH), v1, "A has not pulled yet");

    let pulled = a.pull().await;
    assert_eq!(pulled.downloaded, [PATH]);
    assert_eq!(a.read(PATH), v2, "A after its download step");
    assert_eq!(
        history(&hub, PATH).await,
        [(1, Some(sha_hex(&v1))), (2, Some(sha_hex(&v2)))],
        "the stale upload wrote no version"
    );
    let (index, _) = sync_until_agreed(&hub, &mut [&mut a, &mut b]).await;
    assert_eq!(index, BTreeMap::from([(PATH.to_owned(), sha_hex(&v2))]));
}

/// Without a race the old contract has no conflict to detect: B reads the
/// index after A's upload and sends A's sha as its base, so B's edit wins at
/// the path. Nothing is lost even so: A's edit stays in history, and A's
/// later re-upload of it is refused as stale rather than undoing B's.
async fn sequential_edits_keep_the_overwritten_one_in_history(hub: TestHub) {
    let mut a = LegacyClient::new("A", &hub);
    let mut b = LegacyClient::new("B", &hub);
    const PATH: &str = "todo.md";
    let original = random_bytes(3_000, 40);
    a.write(PATH, &original);
    sync_until_agreed(&hub, &mut [&mut a, &mut b]).await;

    let mine = random_bytes(3_100, 41);
    let theirs = random_bytes(3_200, 42);
    a.write(PATH, &mine);
    b.write(PATH, &theirs);
    a.pass().await;
    let report = b.pass().await;
    assert!(report.upload(PATH).get("conflict").is_none(), "{report:?}");
    let report = a.pass().await;
    assert_eq!(report.upload(PATH)["stale"], true, "{report:?}");

    let (index, _) = sync_until_agreed(&hub, &mut [&mut a, &mut b]).await;
    assert_eq!(index, BTreeMap::from([(PATH.to_owned(), sha_hex(&theirs))]));
    assert_eq!(a.read(PATH), theirs);
    assert_eq!(
        history(&hub, PATH).await,
        [
            (1, Some(sha_hex(&original))),
            (2, Some(sha_hex(&mine))),
            (3, Some(sha_hex(&theirs))),
        ]
    );
    assert_eq!(file_version(&hub, PATH, 2).await, (StatusCode::OK, mine));
}

on_both_backends!(
    a_folder_reaches_another_client,
    an_edit_and_a_delete_converge,
    a_conflict_keeps_both_contents,
    a_stale_upload_does_not_undo_a_newer_version,
    sequential_edits_keep_the_overwritten_one_in_history,
);
