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

const ROUTES: [Route; 28] = [
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
    // The web page's routes (a session cookie works too: see the page's
    // own tests in tests/tests/web_ui).
    route("GET", "/v1/list", false, false),
    route("GET", "/v1/search", false, false),
    route("GET", "/v1/deleted", false, false),
    route("GET", "/v1/conflicts", false, false),
    route("GET", "/v1/activity", false, false),
    route("POST", "/v1/upload", true, false),
    route("POST", "/v1/move", true, false),
    route("POST", "/v1/remove", true, false),
    route("POST", "/v1/conflicts/resolve", true, false),
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
        ("GET", "/v1/list") => http.get(&url).query(&[("dir", "matrix")]),
        ("GET", "/v1/search") => http.get(&url).query(&[("q", "matrix")]),
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
        ("POST", "/v1/upload") => http
            .post(&url)
            .query(&[("path", format!("matrix/{case}-web.txt"))])
            .body(bytes.clone()),
        ("POST", "/v1/move") => http
            .post(&url)
            .json(&json!({"from": file, "to": format!("matrix/{case}-moved.txt")})),
        ("POST", "/v1/remove") => http.post(&url).json(&json!({"path": file})),
        ("POST", "/v1/conflicts/resolve") => {
            // The original client's upload over a version it never saw
            // makes a conflict copy to resolve.
            let other = random_bytes(50, 1000 + case as u64);
            let (status, made) = hub
                .legacy_upload(&file, Some(&"0".repeat(64)), &other)
                .await;
            assert_eq!(status, StatusCode::OK);
            let copy = made["conflict"]
                .as_str()
                .expect("a conflict copy")
                .to_owned();
            http.post(&url)
                .json(&json!({"copy": copy, "keep": "original"}))
        }
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
                // this case is the one commit allowed, and the conflict
                // copy the resolve case makes to resolve).
                let set_up = if route.path == "/v1/conflicts/resolve" {
                    2
                } else {
                    1
                };
                if !want.is_success()
                    && want != StatusCode::SWITCHING_PROTOCOLS
                    && hub.head().await != head_before + set_up
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
    the_page_signs_in_with_a_cookie_that_other_sites_cannot_use,
);

/// A sign-in of the web page: its cookie (`name=value`) and CSRF secret.
struct PageSession {
    cookie: String,
    csrf: String,
    set_cookie: String,
}

async fn sign_in(
    hub: &TestHub,
    token: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Value, Option<PageSession>) {
    let mut request = hub
        .anon
        .post(hub.url("/ui/session"))
        .json(&json!({"token": token}));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let resp = request.send().await.unwrap();
    let status = resp.status();
    let set_cookie = resp
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let session = set_cookie.map(|set_cookie| PageSession {
        cookie: set_cookie.split(';').next().unwrap().to_owned(),
        csrf: body["csrf"].as_str().unwrap_or_default().to_owned(),
        set_cookie,
    });
    (status, body, session)
}

/// A request with the page's cookie, and its CSRF header when `csrf`.
fn with_cookie(
    request: reqwest::RequestBuilder,
    session: &PageSession,
    csrf: bool,
) -> reqwest::RequestBuilder {
    let request = request.header("cookie", &session.cookie);
    if csrf {
        request.header("x-sf-csrf", &session.csrf)
    } else {
        request
    }
}

async fn the_page_signs_in_with_a_cookie_that_other_sites_cannot_use(hub: TestHub) {
    // The page itself: served with a strict policy; `/` leads to it.
    let resp = hub.anon.get(hub.url("/ui/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    // Its script's modules too, with the same policy; any other name under
    // `/ui/` is the hub's JSON 404.
    for module in ["/ui/app.js", "/ui/api.js", "/ui/live.js"] {
        let resp = hub.anon.get(hub.url(module)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{module}");
        assert_eq!(
            resp.headers()["content-type"],
            "text/javascript; charset=utf-8",
            "{module}"
        );
        assert_eq!(resp.headers()["content-security-policy"], csp.as_str());
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    }
    let resp = hub.anon.get(hub.url("/ui/nope.js")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "not_found", "{body}");
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = no_redirects.get(hub.url("/")).send().await.unwrap();
    assert_eq!(resp.headers()["location"], "/ui/");

    // A bad token: refused, no cookie.
    let (status, body, session) = sign_in(&hub, "sft_not-a-token", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(session.is_none());
    let resp = hub.anon.get(hub.url("/ui/session")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // A sign-in from another site's page: refused.
    let write = create_token(&hub, "browser", false);
    let (status, _, session) = sign_in(&hub, &write, &[("origin", "http://evil.example")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(session.is_none());

    let (status, body, session) = sign_in(&hub, &write, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let session = session.expect("a session cookie");
    assert_eq!(
        (body["auth"].as_bool(), body["scope"].as_str()),
        (Some(true), Some("write"))
    );
    assert_eq!(body["token_name"], "browser");
    let attributes = session.set_cookie.to_ascii_lowercase();
    assert!(
        attributes.contains("httponly") && attributes.contains("samesite=strict"),
        "{attributes}"
    );
    assert!(!attributes.contains("secure"), "plain HTTP: {attributes}");
    assert!(
        !session.cookie.contains(&write),
        "the cookie is not the token"
    );
    let (_, _, behind_tls) = sign_in(&hub, &write, &[("x-forwarded-proto", "https")]).await;
    let behind_tls = behind_tls.unwrap();
    assert!(behind_tls.set_cookie.contains("; Secure"));
    assert!(
        behind_tls.cookie.starts_with("__Host-sf_session_"),
        "{}",
        behind_tls.cookie
    );
    assert!(
        session.cookie.starts_with("sf_session_"),
        "{}",
        session.cookie
    );

    // The cookie reads; a change needs the page's CSRF secret, and no
    // other site may ask for it even with the secret.
    hub.legacy_upload("keep/me.txt", None, b"precious").await;
    let resp = with_cookie(hub.anon.get(hub.url("/v1/list?dir=keep")), &session, false)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = with_cookie(hub.anon.get(hub.url("/ui/session")), &session, false)
        .send()
        .await
        .unwrap();
    let info: Value = resp.json().await.unwrap();
    assert_eq!(info["csrf"].as_str(), Some(session.csrf.as_str()));
    let remove = || {
        hub.anon
            .post(hub.url("/v1/remove"))
            .json(&json!({"path": "keep/me.txt"}))
    };
    for (request, why) in [
        (with_cookie(remove(), &session, false), "no CSRF header"),
        (
            with_cookie(remove(), &session, false).header("x-sf-csrf", "0".repeat(64)),
            "a wrong one",
        ),
        (
            with_cookie(remove(), &session, true).header("origin", "http://127.0.0.1:1"),
            "another origin",
        ),
        (
            with_cookie(remove(), &session, true).header("sec-fetch-site", "cross-site"),
            "a cross-site fetch",
        ),
    ] {
        let resp = request.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{why}");
        assert_eq!(hub.download("keep/me.txt").await.1, b"precious", "{why}");
    }
    let origin = hub.base.clone();
    let resp = with_cookie(remove(), &session, true)
        .header("origin", origin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "the page's own request");
    assert_eq!(hub.download("keep/me.txt").await.0, StatusCode::NOT_FOUND);

    // A read-only token's page reads but changes nothing.
    let read = create_token(&hub, "viewer", true);
    let (_, body, viewer) = sign_in(&hub, &read, &[]).await;
    let viewer = viewer.unwrap();
    assert_eq!(body["scope"], "read");
    let resp = with_cookie(
        hub.anon.post(hub.url("/v1/upload?path=x.txt")),
        &viewer,
        true,
    )
    .body("x")
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // The page's WebSocket, opened with the cookie, ends with its session.
    let mut request = hub.ws_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("cookie", session.cookie.parse().unwrap());
    request
        .headers_mut()
        .insert("origin", hub.base.parse().unwrap());
    let (mut page_socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    page_socket.next().await.unwrap().unwrap(); // hello

    // Sign-out needs the secret too, then the cookie is worth nothing.
    let resp = with_cookie(hub.anon.delete(hub.url("/ui/session")), &session, false)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = with_cookie(hub.anon.delete(hub.url("/ui/session")), &session, true)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(
        resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match page_socket.next().await {
                Some(Ok(tungstenite::Message::Close(frame))) => return frame,
                Some(Ok(_)) => {}
                other => panic!("the page's socket ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("the signed-out page's socket was not closed within 5 s")
    .expect("a close frame with a code");
    assert_eq!(u16::from(closed.code), WS_CLOSE_REVOKED);
    for path in ["/ui/session", "/v1/list"] {
        let resp = with_cookie(hub.anon.get(hub.url(path)), &session, false)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::UNAUTHORIZED,
            "{path} after sign-out"
        );
    }
    // Revoking a token ends its pages' sessions.
    let resp = with_cookie(hub.anon.get(hub.url("/v1/list")), &viewer, false)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    revoke_token(&hub, "viewer");
    let resp = with_cookie(hub.anon.get(hub.url("/v1/list")), &viewer, false)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "revoked");
}

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

/// Under `--no-auth` the page needs no sign-in, and a page of another
/// site still cannot make the browser change anything: a form posted from
/// it carries its `Origin` (the original client's multipart upload is such
/// a form).
#[tokio::test]
async fn no_auth_pages_of_other_sites_change_nothing() {
    let hub = TestHub::start_with(common::Backend::Sqlite, |s| s.no_auth = true)
        .await
        .unwrap();
    let (status, session) = hub.get_json("/ui/session").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(session["auth"], false);
    assert_eq!(session["scope"], "write");
    let meta = json!({"path": "forged.txt", "base_sha": null}).to_string();
    let mut body = meta.clone().into_bytes();
    body.extend_from_slice(b"forged");
    for origin in ["http://evil.example", "null"] {
        let resp = hub
            .anon
            .post(hub.url("/upload"))
            .header(META_LENGTH_HEADER, meta.len().to_string())
            .header("origin", origin)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{origin}");
    }
    assert_eq!(hub.head().await, 0, "nothing was committed");
    // The page's own origin is fine.
    let resp = hub
        .anon
        .post(hub.url("/upload"))
        .header(META_LENGTH_HEADER, meta.len().to_string())
        .header("origin", hub.base.as_str())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}
