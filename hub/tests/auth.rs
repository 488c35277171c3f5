//! Who gets in: every route of the API listener against every kind of
//! credential, tokens made and revoked through the real `sf-hub token`
//! commands while the hub runs, on SQLite and on PostgreSQL.

mod common;

use std::time::Duration;

use common::TestHub;
use common::client::random_bytes;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sf_protocol::Sha256Hex;
use sf_protocol::legacy::META_LENGTH_HEADER;
use sf_protocol::v1::{WS_CLOSE_REVOKED, WhoAmI, encode_pack_header};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Runs `sf-hub token ARGS…` on the test hub's database, as an operator
/// would while the hub serves it.
fn token_cli(hub: &TestHub, args: &[&str]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sf-hub"));
    for name in [
        "DATABASE_URL",
        "POSTGRES_HOST",
        "SF_DATA_DIR",
        "STORAGE_DIR",
    ] {
        command.env_remove(name);
    }
    command
        .arg("token")
        .args(args)
        .arg("--data-dir")
        .arg(hub.storage.data_path());
    if let Some(pg) = &hub.storage.pg {
        command.args(["--database-url", &pg.url]);
    }
    command.output().expect("run sf-hub token")
}

fn create_token(hub: &TestHub, name: &str, read_only: bool) -> String {
    let mut args = vec!["create", name];
    if read_only {
        args.push("--read-only");
    }
    let out = token_cli(hub, &args);
    assert!(out.status.success(), "token create: {out:?}");
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("sft_") && token.len() == 47, "{token}");
    token
}

fn revoke_token(hub: &TestHub, name: &str) {
    let out = token_cli(hub, &["revoke", name]);
    assert!(out.status.success(), "token revoke: {out:?}");
}

/// A credential a request is made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Credential {
    None,
    /// Well-formed, but the hub never made it.
    Unknown,
    Malformed,
    Revoked,
    ReadOnly,
    Write,
}

const CREDENTIALS: [Credential; 6] = [
    Credential::None,
    Credential::Unknown,
    Credential::Malformed,
    Credential::Revoked,
    Credential::ReadOnly,
    Credential::Write,
];

/// Where the token travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carrier {
    Header,
    /// `/t/<token>/…`, for the original client.
    Path,
}

struct Tokens {
    unknown: String,
    revoked: String,
    read: String,
    write: String,
}

impl Tokens {
    fn value(&self, credential: Credential) -> Option<&str> {
        match credential {
            Credential::None => None,
            Credential::Unknown => Some(&self.unknown),
            Credential::Malformed => Some("sft_not-a-token"),
            Credential::Revoked => Some(&self.revoked),
            Credential::ReadOnly => Some(&self.read),
            Credential::Write => Some(&self.write),
        }
    }
}

/// One route of the API listener, with a request that succeeds for a
/// caller allowed to make it.
#[derive(Debug, Clone, Copy)]
struct Route {
    method: &'static str,
    path: &'static str,
    changes_state: bool,
    legacy: bool,
}

const ROUTES: [Route; 19] = [
    route("GET", "/index", false, true),
    route("GET", "/download", false, true),
    route("POST", "/upload", true, true),
    route("POST", "/delete", true, true),
    route("GET", "/logs", false, true),
    route("POST", "/v1/batch", true, false),
    route("GET", "/v1/changes", false, false),
    // A read: its list of hashes is too long for a URL, hence POST.
    route("POST", "/v1/chunks/fetch", false, false),
    route("POST", "/v1/chunks/missing", true, false),
    route("POST", "/v1/chunks/pack", true, false),
    route("GET", "/v1/chunks/{hash}", false, false),
    route("PUT", "/v1/chunks/{hash}", true, false),
    route("POST", "/v1/commit", true, false),
    route("POST", "/v1/delete", true, false),
    route("GET", "/v1/file", false, false),
    route("GET", "/v1/history", false, false),
    route("POST", "/v1/restore", true, false),
    route("GET", "/v1/whoami", false, false),
    route("GET", "/v1/ws", false, false),
];

const fn route(method: &'static str, path: &'static str, changes: bool, legacy: bool) -> Route {
    Route {
        method,
        path,
        changes_state: changes,
        legacy,
    }
}

/// What the hub must answer.
fn expected(route: &Route, credential: Credential) -> StatusCode {
    match credential {
        Credential::None | Credential::Unknown | Credential::Malformed | Credential::Revoked => {
            StatusCode::UNAUTHORIZED
        }
        Credential::ReadOnly if route.changes_state => StatusCode::FORBIDDEN,
        Credential::ReadOnly | Credential::Write if route.path == "/v1/ws" => {
            StatusCode::SWITCHING_PROTOCOLS
        }
        Credential::ReadOnly | Credential::Write => StatusCode::OK,
    }
}

/// Makes one request; `case` keeps the paths of state-changing requests
/// apart. Returns the status and the parsed body (or headers' verdict).
async fn call(
    hub: &TestHub,
    route: &Route,
    token: Option<&str>,
    carrier: Carrier,
    case: usize,
) -> (StatusCode, Value, Option<String>) {
    // A file for the routes that read or change one, made with the write token.
    let file = format!("matrix/{case}.txt");
    let bytes = random_bytes(100, case as u64);
    let (status, _) = hub.legacy_upload(&file, None, &bytes).await;
    assert_eq!(status, StatusCode::OK);
    if route.path == "/v1/ws" {
        return ws_call(hub, token).await;
    }
    let sha = Sha256Hex::of(&bytes);
    let base = match (carrier, token) {
        (Carrier::Path, Some(token)) => format!("{}/t/{token}", hub.base),
        (Carrier::Header, _) => hub.base.clone(),
        (Carrier::Path, None) => unreachable!("a path token is always given"),
    };
    let path = route.path.replace("{hash}", &sha.to_hex());
    let url = format!("{base}{path}");
    let http = &hub.anon;
    let request = match (route.method, route.path) {
        ("GET", "/download" | "/v1/file" | "/v1/history") => {
            http.get(&url).query(&[("path", file.as_str())])
        }
        ("GET", _) => http.get(&url),
        ("POST", "/upload") => {
            let meta = json!({"path": format!("matrix/{case}-new.txt")}).to_string();
            let mut body = meta.clone().into_bytes();
            body.extend_from_slice(b"new bytes");
            http.post(&url)
                .header(META_LENGTH_HEADER, meta.len().to_string())
                .body(body)
        }
        ("POST", "/delete") => http.post(&url).json(&json!({"path": file})),
        ("POST", "/v1/chunks/missing" | "/v1/chunks/fetch") => {
            http.post(&url).json(&json!({"chunks": [sha]}))
        }
        ("POST", "/v1/chunks/pack") => {
            let mut pack = encode_pack_header(&sha, bytes.len() as u32).to_vec();
            pack.extend_from_slice(&bytes);
            http.post(&url).body(pack)
        }
        ("POST", "/v1/batch") => http.post(&url).json(&json!({"ops": [{
            "op": "commit", "path": format!("matrix/{case}-batch.txt"), "base_version": 0,
            "sha256": sha, "size": 100, "chunks": [{"hash": sha, "len": 100}], "origin": "test",
        }]})),
        ("PUT", _) => http.put(&url).body(bytes.clone()),
        ("POST", "/v1/commit") => http.post(&url).json(&json!({
            "path": format!("matrix/{case}-copy.txt"), "base_version": 0,
            "sha256": sha, "size": 100, "chunks": [{"hash": sha, "len": 100}], "origin": "test",
        })),
        ("POST", "/v1/delete") => http
            .post(&url)
            .json(&json!({"path": file, "base_version": 1, "origin": "test"})),
        ("POST", "/v1/restore") => http
            .post(&url)
            .json(&json!({"path": file, "version": 1, "origin": "test"})),
        other => panic!("no request for {other:?}"),
    };
    let request = match (carrier, token) {
        (Carrier::Header, Some(token)) => request.bearer_auth(token),
        _ => request,
    };
    let resp = request.send().await.unwrap();
    let status = resp.status();
    let challenge = resp
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body, challenge)
}

async fn ws_call(hub: &TestHub, token: Option<&str>) -> (StatusCode, Value, Option<String>) {
    let mut request = hub.ws_url().into_client_request().unwrap();
    if let Some(token) = token {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((_socket, response)) => (response.status(), Value::Null, None),
        Err(tungstenite::Error::Http(response)) => {
            let challenge = response
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned());
            let body = response
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            (response.status(), body, challenge)
        }
        Err(other) => panic!("websocket: {other}"),
    }
}

/// Polls until `token` is refused: revocation reaches the hub's cache
/// within its refresh interval.
async fn wait_refused(hub: &TestHub, token: &str) {
    for _ in 0..100 {
        let resp = hub
            .anon
            .get(hub.url("/v1/whoami"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        if resp.status() == StatusCode::UNAUTHORIZED {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("a revoked token still works after 5 s");
}

async fn every_route_against_every_credential(hub: TestHub) {
    let revoked = create_token(&hub, "old-laptop", false);
    let tokens = Tokens {
        unknown: {
            let out = token_cli(&hub, &["generate"]);
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        },
        read: create_token(&hub, "kiosk", true),
        write: create_token(&hub, "laptop", false),
        revoked: revoked.clone(),
    };
    revoke_token(&hub, "old-laptop");
    wait_refused(&hub, &revoked).await;

    let mut cases = 0;
    let mut failures = Vec::new();
    for carrier in [Carrier::Header, Carrier::Path] {
        for route in ROUTES
            .iter()
            .filter(|r| carrier == Carrier::Header || r.legacy)
        {
            for credential in CREDENTIALS {
                if carrier == Carrier::Path && credential == Credential::None {
                    continue; // without a token, `/t/index` is just no route
                }
                cases += 1;
                let head_before = hub.head().await;
                let (status, body, challenge) =
                    call(&hub, route, tokens.value(credential), carrier, cases).await;
                let want = expected(route, credential);
                let label = format!(
                    "{carrier:?} {} {} as {credential:?}",
                    route.method, route.path
                );
                if status != want {
                    failures.push(format!("{label}: {status}, want {want}: {body}"));
                    continue;
                }
                match want {
                    StatusCode::UNAUTHORIZED => {
                        if body["error"] != "unauthorized" {
                            failures.push(format!("{label}: body {body}"));
                        }
                        if challenge.as_deref() != Some(r#"Bearer realm="synced-folder""#) {
                            failures.push(format!("{label}: WWW-Authenticate {challenge:?}"));
                        }
                    }
                    StatusCode::FORBIDDEN if body["error"] != "forbidden" => {
                        failures.push(format!("{label}: body {body}"));
                    }
                    _ => {}
                }
                // A refused request changes nothing (the set-up upload of
                // this case is the one commit allowed).
                if !want.is_success()
                    && want != StatusCode::SWITCHING_PROTOCOLS
                    && hub.head().await != head_before + 1
                {
                    failures.push(format!("{label}: refused, yet something was committed"));
                }
            }
        }
    }
    eprintln!("{cases} route × credential cases");
    assert_eq!(cases, ROUTES.len() * 6 + 5 * 5);
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Open to orchestrators, and they reveal nothing about the files.
    for probe in ["/healthz", "/readyz"] {
        let resp = hub.anon.get(hub.url(probe)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{probe}");
        let body: Value = resp.json().await.unwrap();
        assert!(body.get("head").is_none(), "{probe}: {body}");
    }
}

async fn token_commands_work_while_the_hub_runs(hub: TestHub) {
    let token = create_token(&hub, "phone", true);
    let whoami: WhoAmI = hub
        .anon
        .get(hub.url("/v1/whoami"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(whoami.token.as_deref(), Some("phone"));
    assert_eq!(whoami.scope, sf_protocol::v1::Scope::Read);
    assert_eq!(whoami.hub_id.len(), 32, "{whoami:?}");
    // The same identity in the change feed.
    assert_eq!(hub.changes(0).await.hub_id, whoami.hub_id);

    // A name is unique among live tokens.
    let again = token_cli(&hub, &["create", "phone"]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "{again:?}"
    );

    let list = String::from_utf8(token_cli(&hub, &["list"]).stdout).unwrap();
    assert!(list.contains("default") && list.contains("phone"), "{list}");
    assert!(list.contains("read") && list.contains("write"), "{list}");
    assert!(
        !list.contains(&token[4..]),
        "the list shows a secret:\n{list}"
    );
    // Nothing secret is stored either: only hashes.
    let raw_db = std::fs::read(hub.storage.data_path().join("hub.db")).unwrap_or_default();
    assert!(
        !raw_db.windows(token.len()).any(|w| w == token.as_bytes()),
        "the database holds a token in clear"
    );

    revoke_token(&hub, "phone");
    wait_refused(&hub, &token).await;
    let list = String::from_utf8(token_cli(&hub, &["list"]).stdout).unwrap();
    assert!(
        list.lines()
            .any(|l| l.starts_with("phone") && l.contains("revoked")),
        "{list}"
    );
    // The name can be used again.
    create_token(&hub, "phone", false);
    let unknown = token_cli(&hub, &["revoke", "tablet"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no live token"));
}

async fn revocation_closes_open_websockets(hub: TestHub) {
    let token = create_token(&hub, "desk", false);
    let mut request = hub.ws_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let hello = socket.next().await.unwrap().unwrap();
    assert!(hello.to_text().unwrap().contains("hello"));
    // Another client's socket stays open.
    let (mut other, _) = tokio_tungstenite::connect_async(hub.ws_request())
        .await
        .unwrap();
    other.next().await.unwrap().unwrap();

    revoke_token(&hub, "desk");
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match socket.next().await {
                Some(Ok(tungstenite::Message::Close(frame))) => return frame,
                Some(Ok(_)) => {}
                other => panic!("socket ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("the revoked token's socket was not closed within 5 s")
    .expect("a close frame with a code");
    assert_eq!(u16::from(closed.code), WS_CLOSE_REVOKED);
    assert!(closed.reason.contains("revoked"), "{}", closed.reason);

    hub.legacy_upload("after.txt", None, b"x").await;
    let change = tokio::time::timeout(Duration::from_secs(5), other.next())
        .await
        .expect("the other socket still receives changes");
    assert!(
        change
            .unwrap()
            .unwrap()
            .to_text()
            .unwrap()
            .contains("after.txt")
    );
}

async fn cross_site_websockets_are_refused(hub: TestHub) {
    let host = hub.base.trim_start_matches("http://").to_owned();
    for (origin, allowed) in [
        (format!("http://{host}"), true),
        ("https://evil.example".to_owned(), false),
        ("null".to_owned(), false),
    ] {
        let mut request = hub.ws_request();
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        match tokio_tungstenite::connect_async(request).await {
            Ok(_) => assert!(allowed, "{origin} was let in"),
            Err(tungstenite::Error::Http(response)) => {
                assert!(!allowed, "{origin} refused: {}", response.status());
                assert_eq!(response.status(), StatusCode::FORBIDDEN);
            }
            Err(other) => panic!("{origin}: {other}"),
        }
    }
}

async fn the_first_start_token_is_private(hub: TestHub) {
    let path = hub.storage.data_path().join("agent-token");
    let token = std::fs::read_to_string(&path).unwrap();
    assert_eq!(token.trim(), hub.token);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A restart neither makes another token nor rewrites the file.
    let hub = hub.restart().await;
    assert_eq!(std::fs::read_to_string(&path).unwrap(), token);
    let list = String::from_utf8(token_cli(&hub, &["list"]).stdout).unwrap();
    assert_eq!(list.lines().count(), 2, "{list}");
    assert_eq!(hub.get_json("/index").await.0, StatusCode::OK);
}

on_both_backends!(
    every_route_against_every_credential,
    token_commands_work_while_the_hub_runs,
    revocation_closes_open_websockets,
    cross_site_websockets_are_refused,
    the_first_start_token_is_private,
);

async fn whoami_status(hub: &TestHub, token: &str) -> StatusCode {
    let resp = hub
        .anon
        .get(hub.url("/v1/whoami"))
        .bearer_auth(token)
        .send();
    resp.await.unwrap().status()
}

#[tokio::test]
async fn a_bootstrap_token_is_added_and_rotated() {
    let generate = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sf-hub"))
            .args(["token", "generate"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let (first, second) = (generate(), generate());
    let hub = TestHub::start_with(common::Backend::Sqlite, |s| {
        s.bootstrap_token = Some(first.clone().into());
    })
    .await
    .unwrap();
    // A deployment with a bootstrap token gets no first-start token file.
    assert!(!hub.storage.data_path().join("agent-token").exists());
    assert_eq!(whoami_status(&hub, &first).await, StatusCode::OK);
    let storage = hub.stop().await;
    let hub = TestHub::start_on(storage, |s| s.bootstrap_token = Some(second.clone().into())).await;
    assert_eq!(whoami_status(&hub, &second).await, StatusCode::OK);
    assert_eq!(whoami_status(&hub, &first).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_malformed_bootstrap_token_stops_the_hub_with_a_message() {
    let storage = common::HubStorage::new(common::Backend::Sqlite)
        .await
        .unwrap();
    let mut settings = storage.settings();
    settings.bootstrap_token = Some("changeme".to_owned().into());
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = sf_hub::launch(settings, api, metrics, std::future::pending())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("SF_HUB_BOOTSTRAP_TOKEN"), "{err}");
}

#[tokio::test]
async fn no_auth_is_refused_off_loopback() {
    let storage = common::HubStorage::new(common::Backend::Sqlite)
        .await
        .unwrap();
    let mut settings = storage.settings();
    settings.no_auth = true;
    let api = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = sf_hub::launch(settings, api, metrics, std::future::pending())
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("--no-auth") && message.contains("loopback"),
        "{message}"
    );
}

#[tokio::test]
async fn no_auth_on_loopback_answers_only_loopback_host_names() {
    let hub = TestHub::start_with(common::Backend::Sqlite, |s| s.no_auth = true)
        .await
        .unwrap();
    assert!(hub.token.is_empty(), "no token is made under --no-auth");
    let (status, _) = hub.get_json("/index").await;
    assert_eq!(status, StatusCode::OK);
    // DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1.
    let resp = hub
        .anon
        .get(hub.url("/index"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "forbidden");
    let resp = hub
        .anon
        .get(hub.url("/v1/whoami"))
        .header("host", "localhost:1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let whoami: WhoAmI = resp.json().await.unwrap();
    assert_eq!(whoami.token, None);
}
