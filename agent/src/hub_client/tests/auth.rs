//! The token on requests and on the WebSocket, the hub's refusals of it,
//! `/v1/whoami` and `--ca-cert`, against stand-in hubs on 127.0.0.1 that
//! speak real HTTP and WebSocket.

use std::io::{Read, Write};
use std::sync::{Arc, mpsc};

use reqwest::StatusCode;
use sf_protocol::v1::{Scope, WsFrame};
use tokio_tungstenite::tungstenite::{self, Message};
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

use super::{TEST_SERVER_PATIENCE, client_trusting_test_ca, test_server_tls};
use crate::credentials::{HubAccess, Token, TokenSource};
use crate::hub_client::error::refusal_from;
use crate::hub_client::{HubClient, HubError};

/// What a stand-in hub answers to one plain HTTP request (its head).
pub(crate) type Answer = fn(&str) -> String;

/// What a stand-in hub does with a WebSocket upgrade.
#[derive(Clone, Copy)]
pub(crate) enum Upgrade {
    /// Answers it like any request.
    Refuse,
    /// Accepts it, sends `hello`, then closes with this code and reason
    /// (or a normal close).
    Accept(Option<(u16, &'static str)>),
}

/// A stand-in hub on 127.0.0.1, behind TLS with the test certificate when
/// `tls` is given. Serves up to `connections` connections, one request
/// each: a WebSocket upgrade as `upgrade` says, any other request with
/// `answer(head)`. Every request head goes to the returned channel.
pub(crate) fn spawn_stand_in(
    tls: Option<Arc<rustls::ServerConfig>>,
    connections: usize,
    upgrade: Upgrade,
    answer: Answer,
) -> (u16, mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (heads, received) = mpsc::channel();
    std::thread::spawn(move || {
        for _ in 0..connections {
            let Ok((tcp, _)) = listener.accept() else {
                return;
            };
            tcp.set_read_timeout(Some(TEST_SERVER_PATIENCE)).unwrap();
            tcp.set_write_timeout(Some(TEST_SERVER_PATIENCE)).unwrap();
            let heads = heads.clone();
            let tls = tls.clone();
            std::thread::spawn(move || match tls {
                Some(config) => serve_one(
                    rustls::StreamOwned::new(rustls::ServerConnection::new(config).unwrap(), tcp),
                    upgrade,
                    answer,
                    &heads,
                ),
                None => serve_one(tcp, upgrade, answer, &heads),
            });
        }
    });
    (port, received)
}

fn serve_one<S: Read + Write>(
    mut stream: S,
    upgrade: Upgrade,
    answer: Answer,
    heads: &mpsc::Sender<String>,
) {
    // The head, byte by byte, so nothing after it is consumed (a
    // WebSocket handshake goes on from there).
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let _ = heads.send(head.clone());
    if let (Upgrade::Accept(ws_close), true) = (
        upgrade,
        head.to_ascii_lowercase().contains("upgrade: websocket"),
    ) {
        let key = head
            .lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(name, _)| name.eq_ignore_ascii_case("sec-websocket-key"))
            })
            .map(|(_, v)| v.trim().to_owned())
            .unwrap();
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        let _ = write!(
            stream,
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
             sec-websocket-accept: {accept}\r\n\r\n"
        );
        let mut ws = tungstenite::WebSocket::from_raw_socket(
            stream,
            tungstenite::protocol::Role::Server,
            None,
        );
        let hello = serde_json::to_string(&WsFrame::Hello {
            head: 7,
            hub_id: "stand-in".into(),
        })
        .unwrap();
        let frame = ws_close.map(|(code, reason)| CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        });
        if ws.send(Message::text(hello)).is_ok() && ws.close(frame).is_ok() {
            while ws.read().is_ok() {}
        }
        return;
    }
    let _ = stream.write_all(answer(&head).as_bytes());
    let _ = stream.flush();
}

/// An HTTP/1.1 answer that closes the connection.
pub(crate) fn http_answer(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nwww-authenticate: Bearer\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

pub(crate) fn refuse_everything(_head: &str) -> String {
    http_answer(
        "401 Unauthorized",
        r#"{"error":"unauthorized","detail":"unknown or revoked token"}"#,
    )
}

/// A hub that lets the token write and has nothing yet.
pub(crate) fn empty_hub(head: &str) -> String {
    if head.starts_with("GET /v1/whoami") {
        http_answer(
            "200 OK",
            r#"{"token":"laptop","scope":"write","hub_id":"stand-in"}"#,
        )
    } else if head.starts_with("GET /v1/changes") {
        http_answer("200 OK", r#"{"changes":[],"head":0,"hub_id":"stand-in"}"#)
    } else {
        http_answer("404 Not Found", r#"{"error":"not_found","detail":"no"}"#)
    }
}

fn token(value: &str) -> HubAccess {
    HubAccess {
        token: Some(Token::from_env_value(value).unwrap()),
        extra_roots: Vec::new(),
    }
}

fn authorization(head: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("authorization")
            .then(|| value.trim().to_owned())
    })
}

#[tokio::test]
async fn requests_and_the_websocket_carry_the_token() {
    let secret = "sft_c2VjcmV0LXRva2VuLWZvci10ZXN0cw";
    let (port, heads) = spawn_stand_in(None, 2, Upgrade::Accept(None), empty_hub);
    let client =
        HubClient::with_access(&[format!("http://127.0.0.1:{port}")], &token(secret)).unwrap();
    client.changes(0, 10).await.unwrap();
    let head = heads.recv().unwrap();
    assert_eq!(
        authorization(&head),
        Some(format!("Bearer {secret}")),
        "{head}"
    );

    let mut ws = client.connect_ws().await.unwrap();
    assert!(matches!(
        client.next_frame(&mut ws).await,
        Some(Ok(WsFrame::Hello { head: 7, .. }))
    ));
    let head = heads.recv().unwrap();
    assert_eq!(
        authorization(&head),
        Some(format!("Bearer {secret}")),
        "{head}"
    );

    // Nothing that may be logged shows it.
    let shown = format!("{client:?}");
    assert!(!shown.contains(&secret[4..]), "{shown}");

    // No token, no header (a hub under --no-auth).
    let (port, heads) = spawn_stand_in(None, 1, Upgrade::Accept(None), empty_hub);
    let client = HubClient::new(&format!("http://127.0.0.1:{port}")).unwrap();
    client.changes(0, 10).await.unwrap();
    assert_eq!(authorization(&heads.recv().unwrap()), None);
}

#[tokio::test]
async fn a_401_names_the_refused_token_and_is_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "sft_revoked\n").unwrap();
    let access = HubAccess {
        token: Some(Token::from_file(&file).unwrap()),
        extra_roots: Vec::new(),
    };
    let (port, _heads) = spawn_stand_in(None, 2, Upgrade::Refuse, refuse_everything);
    let client = HubClient::with_access(&[format!("http://127.0.0.1:{port}")], &access).unwrap();
    for err in [
        client.changes(0, 10).await.unwrap_err(),
        client.connect_ws().await.unwrap_err(),
    ] {
        let HubError::Unauthorized(refused) = &err else {
            panic!("expected a refused token, got {err:?}");
        };
        assert_eq!(refused.token, TokenSource::File(file.clone()));
        assert!(!err.is_retryable());
        let message = err.to_string();
        assert!(message.contains(&file.display().to_string()), "{message}");
        assert!(message.contains("sf-hub token create"), "{message}");
        assert!(!message.contains("sft_revoked"), "{message}");
    }

    let (port, _heads) = spawn_stand_in(None, 1, Upgrade::Refuse, refuse_everything);
    let client = HubClient::new(&format!("http://127.0.0.1:{port}")).unwrap();
    let err = client.whoami().await.unwrap_err();
    assert!(err.to_string().contains("none was given"), "{err}");
    assert!(
        err.to_string().contains("unknown or revoked token"),
        "{err}"
    );
}

#[tokio::test]
async fn a_websocket_closed_for_a_revoked_token_is_a_refusal() {
    let (port, _heads) = spawn_stand_in(
        None,
        1,
        Upgrade::Accept(Some((4001, "token revoked"))),
        empty_hub,
    );
    let client =
        HubClient::with_access(&[format!("http://127.0.0.1:{port}")], &token("sft_x")).unwrap();
    let mut ws = client.connect_ws().await.unwrap();
    assert!(matches!(
        client.next_frame(&mut ws).await,
        Some(Ok(WsFrame::Hello { .. }))
    ));
    match client.next_frame(&mut ws).await {
        Some(Err(HubError::Unauthorized(refused))) => {
            assert_eq!(refused.token, TokenSource::Env);
            assert!(refused.detail.contains("4001"), "{refused:?}");
            assert!(refused.detail.contains("token revoked"), "{refused:?}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // Any other close (here: fell too far behind) just ends the socket.
    let (port, _heads) = spawn_stand_in(
        None,
        1,
        Upgrade::Accept(Some((4000, "too far behind"))),
        empty_hub,
    );
    let client = HubClient::new(&format!("http://127.0.0.1:{port}")).unwrap();
    let mut ws = client.connect_ws().await.unwrap();
    assert!(matches!(
        client.next_frame(&mut ws).await,
        Some(Ok(WsFrame::Hello { .. }))
    ));
    assert!(client.next_frame(&mut ws).await.is_none());
}

#[tokio::test]
async fn whoami_reads_the_scope_and_an_older_hub_has_none() {
    fn read_only(_head: &str) -> String {
        http_answer(
            "200 OK",
            r#"{"token":"kiosk","scope":"read","hub_id":"h1"}"#,
        )
    }
    fn older_hub(_head: &str) -> String {
        // axum's default answer to an unknown route: no body.
        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned()
    }
    let (port, _) = spawn_stand_in(None, 1, Upgrade::Refuse, read_only);
    let client = HubClient::new(&format!("http://127.0.0.1:{port}")).unwrap();
    let me = client.whoami().await.unwrap().unwrap();
    assert_eq!(me.scope, Scope::Read);
    assert_eq!(me.token.as_deref(), Some("kiosk"));

    let (port, _) = spawn_stand_in(None, 1, Upgrade::Refuse, older_hub);
    let client = HubClient::new(&format!("http://127.0.0.1:{port}")).unwrap();
    assert_eq!(client.whoami().await.unwrap(), None);

    let forbidden = refusal_from(
        StatusCode::FORBIDDEN,
        br#"{"error":"forbidden","detail":"this token is read-only"}"#,
    );
    assert!(forbidden.is_forbidden());
    assert!(!forbidden.is_retryable());
    assert!(
        !refusal_from(StatusCode::CONFLICT, br#"{"error":"conflict","detail":""}"#).is_forbidden()
    );
}

#[tokio::test]
async fn https_requests_trust_the_ca_cert_too() {
    let (port, _) = spawn_stand_in(Some(test_server_tls()), 1, Upgrade::Refuse, empty_hub);
    let client = client_trusting_test_ca(&format!("https://127.0.0.1:{port}"));
    let me = client.whoami().await.unwrap().unwrap();
    assert_eq!(me.scope, Scope::Write);

    // Without it: the advice names --ca-cert.
    let (port, _) = spawn_stand_in(Some(test_server_tls()), 1, Upgrade::Refuse, empty_hub);
    let client = HubClient::new(&format!("https://127.0.0.1:{port}")).unwrap();
    let err = client.whoami().await.unwrap_err();
    let HubError::Tls(message) = &err else {
        panic!("expected a TLS error, got {err:?}");
    };
    assert!(message.contains("--ca-cert"), "{message}");
    assert!(message.contains("not trusted"), "{message}");
}
