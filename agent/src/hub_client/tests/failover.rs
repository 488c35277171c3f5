//! Several hubs given: requests and the WebSocket leave a hub that does
//! not answer (or answers 503) for the next one, and stay with one that
//! answers, even with a refusal; against stand-in hubs on 127.0.0.1.

use sf_protocol::v1::WsFrame;

use super::auth::{Upgrade, empty_hub, http_answer, refuse_everything, spawn_stand_in};
use super::{TEST_CA_PEM, test_server_tls};
use crate::credentials::{HubAccess, Token};
use crate::hub_client::{HubClient, HubError};

/// A port nothing listens on: connecting to it is refused.
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn not_ready(_head: &str) -> String {
    http_answer(
        "503 Service Unavailable",
        r#"{"error":"not_ready","detail":"the database is unavailable"}"#,
    )
}

#[tokio::test]
async fn a_refused_connection_moves_the_next_attempt_to_the_next_hub() {
    let dead = url(dead_port());
    let (port, heads) = spawn_stand_in(None, 2, Upgrade::Accept(None), empty_hub);
    let live = url(port);
    let access = HubAccess {
        token: Some(Token::from_env_value("sft_x").unwrap()),
        extra_roots: Vec::new(),
    };
    let client = HubClient::with_access(&[&dead, &live], &access).unwrap();
    assert_eq!(client.base_url(), dead);

    let err = client.changes(0, 10).await.unwrap_err();
    assert!(matches!(err, HubError::Unreachable(_)), "{err:?}");
    assert!(err.is_retryable());
    // Clones share the hub in use: the WebSocket task follows the engine.
    let clone = client.clone();
    assert_eq!(clone.base_url(), live);

    clone.changes(0, 10).await.unwrap();
    let head = heads.recv().unwrap();
    assert!(head.contains("Bearer sft_x"), "the token goes to every hub");
    let mut ws = client.connect_ws().await.unwrap();
    assert!(matches!(
        client.next_frame(&mut ws).await,
        Some(Ok(WsFrame::Hello { .. }))
    ));
    assert_eq!(client.base_url(), live, "a working hub is kept");
}

#[tokio::test]
async fn a_websocket_that_cannot_connect_moves_too() {
    let dead = url(dead_port());
    let (port, _heads) = spawn_stand_in(None, 1, Upgrade::Accept(None), empty_hub);
    let client = HubClient::with_access(&[&dead, &url(port)], &HubAccess::default()).unwrap();
    assert!(client.connect_ws().await.unwrap_err().is_retryable());
    let mut ws = client.connect_ws().await.unwrap();
    assert!(matches!(
        client.next_frame(&mut ws).await,
        Some(Ok(WsFrame::Hello { .. }))
    ));
}

/// `--ca-cert` is trusted at every hub, and each hub's scheme decides
/// whether its WebSocket is TLS.
#[tokio::test]
async fn the_next_hub_is_trusted_and_spoken_to_as_its_scheme_says() {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let (port, _heads) =
        spawn_stand_in(Some(test_server_tls()), 2, Upgrade::Accept(None), empty_hub);
    let access = HubAccess {
        token: None,
        extra_roots: vec![CertificateDer::from_pem_slice(TEST_CA_PEM.as_bytes()).unwrap()],
    };
    let tls_hub = format!("https://127.0.0.1:{port}");
    let client = HubClient::with_access(&[url(dead_port()), tls_hub.clone()], &access).unwrap();
    assert!(client.changes(0, 10).await.is_err());
    assert_eq!(client.base_url(), tls_hub);
    client.changes(0, 10).await.unwrap();
    let ws = client.connect_ws().await.unwrap();
    assert!(
        matches!(ws.get_ref(), tokio_tungstenite::MaybeTlsStream::Rustls(_)),
        "the socket to an https:// hub is TLS"
    );
}

#[tokio::test]
async fn a_hub_that_is_not_ready_is_left_and_one_that_refuses_is_kept() {
    let (busy, _) = spawn_stand_in(None, 1, Upgrade::Refuse, not_ready);
    let (live, _) = spawn_stand_in(None, 1, Upgrade::Refuse, empty_hub);
    let client = HubClient::with_access(&[url(busy), url(live)], &HubAccess::default()).unwrap();
    let err = client.changes(0, 10).await.unwrap_err();
    assert_eq!(err.code(), Some(sf_protocol::v1::ErrorCode::NotReady));
    assert_eq!(client.base_url(), url(live));
    client.changes(0, 10).await.unwrap();

    // A 401 is an answer: the next hub would refuse the token too.
    let (refusing, _) = spawn_stand_in(None, 1, Upgrade::Refuse, refuse_everything);
    let client =
        HubClient::with_access(&[url(refusing), url(dead_port())], &HubAccess::default()).unwrap();
    let err = client.whoami().await.unwrap_err();
    assert!(matches!(err, HubError::Unauthorized(_)), "{err:?}");
    assert_eq!(client.base_url(), url(refusing));
}

#[tokio::test]
async fn one_hub_stays_in_use_whatever_happens() {
    let dead = url(dead_port());
    let client = HubClient::new(&dead).unwrap();
    for _ in 0..3 {
        assert!(client.changes(0, 10).await.is_err());
        assert_eq!(client.base_url(), dead);
    }
}
