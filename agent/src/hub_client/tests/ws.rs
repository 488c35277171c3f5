//! The WebSocket opened with and without TLS, against one-connection
//! stand-ins for the hub, and TLS failures explained (for requests too).

use std::sync::Arc;

use sf_protocol::v1::WsFrame;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::Message;

use super::{TEST_SERVER_PATIENCE, client_trusting_test_ca, test_server_tls};
use crate::hub_client::ws::ws_url_for;
use crate::hub_client::{HubClient, HubError};

/// A one-connection stand-in for the hub's `/v1/ws` on 127.0.0.1, behind
/// TLS with the test certificate when `tls` is given: completes the
/// upgrade, sends `hello` with head 7 and closes. A client that gives up
/// during the handshake just ends it. Runs on a thread that stops by
/// itself.
fn spawn_ws_hub(tls: Option<Arc<rustls::ServerConfig>>) -> u16 {
    fn serve<S: std::io::Read + std::io::Write>(stream: S) {
        // A client that rejects the certificate aborts in here.
        let Ok(mut ws) = tungstenite::accept(stream) else {
            return;
        };
        let hello = serde_json::to_string(&WsFrame::Hello {
            head: 7,
            hub_id: String::new(),
        })
        .unwrap();
        if ws.send(Message::text(hello)).is_ok() && ws.close(None).is_ok() {
            // Until the client answers the close, or goes quiet.
            while ws.read().is_ok() {}
        }
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Ok((tcp, _)) = listener.accept() else {
            return;
        };
        tcp.set_read_timeout(Some(TEST_SERVER_PATIENCE)).unwrap();
        tcp.set_write_timeout(Some(TEST_SERVER_PATIENCE)).unwrap();
        match tls {
            Some(config) => serve(rustls::StreamOwned::new(
                rustls::ServerConnection::new(config).unwrap(),
                tcp,
            )),
            None => serve(tcp),
        }
    });
    port
}

/// A one-connection server on 127.0.0.1 that does not speak TLS: it
/// writes `answer` (possibly nothing), closes its side and waits for
/// the client to go.
fn spawn_plain_server(answer: &'static [u8]) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Ok((mut tcp, _)) = listener.accept() else {
            return;
        };
        tcp.set_read_timeout(Some(TEST_SERVER_PATIENCE)).unwrap();
        let _ = tcp.write_all(answer);
        // A FIN, not a reset: the client's hello is read below, so
        // closing never discards unread data.
        let _ = tcp.shutdown(std::net::Shutdown::Write);
        let mut sink = [0u8; 4096];
        while matches!(tcp.read(&mut sink), Ok(n) if n > 0) {}
    });
    port
}

async fn expect_hello(client: &HubClient) {
    let mut ws = client.connect_ws().await.unwrap();
    match client.next_frame(&mut ws).await {
        Some(Ok(WsFrame::Hello { head: 7, .. })) => {}
        other => panic!("expected hello, got {other:?}"),
    }
    assert!(client.next_frame(&mut ws).await.is_none());
}

#[test]
fn ws_url_follows_the_scheme() {
    let client = HubClient::new("http://127.0.0.1:18941/").unwrap();
    assert_eq!(client.ws_url(), "ws://127.0.0.1:18941/v1/ws");
    assert_eq!(client.base_url(), "http://127.0.0.1:18941");
    let client = HubClient::new("https://hub.example.org").unwrap();
    assert_eq!(client.ws_url(), "wss://hub.example.org/v1/ws");
    let client = HubClient::new("http://[::1]:8080").unwrap();
    assert_eq!(client.ws_url(), "ws://[::1]:8080/v1/ws");
    let client = HubClient::new("https://[::1]:8443/").unwrap();
    assert_eq!(client.ws_url(), "wss://[::1]:8443/v1/ws");
    // Only an https:// hub gets a TLS set-up.
    assert!(client.ws_tls.is_some());
    assert!(HubClient::new("http://hub").unwrap().ws_tls.is_none());

    // `HubClient::new` refuses base URLs with a path; the mapping itself
    // keeps a path prefix (a hub mounted below a reverse proxy's path).
    assert_eq!(
        ws_url_for("https://proxy.example.org/sync"),
        "wss://proxy.example.org/sync/v1/ws"
    );
    assert_eq!(
        ws_url_for("http://10.0.0.1:8080/a/b"),
        "ws://10.0.0.1:8080/a/b/v1/ws"
    );
}

#[tokio::test]
async fn ws_opens_without_tls() {
    let port = spawn_ws_hub(None);
    let client = HubClient::new(&format!("http://127.0.0.1:{port}")).unwrap();
    expect_hello(&client).await;
}

#[tokio::test]
async fn wss_opens_when_the_certificate_is_trusted() {
    let port = spawn_ws_hub(Some(test_server_tls()));
    let client = client_trusting_test_ca(&format!("https://127.0.0.1:{port}"));
    let mut ws = client.connect_ws().await.unwrap();
    assert!(
        matches!(ws.get_ref(), tokio_tungstenite::MaybeTlsStream::Rustls(_)),
        "the socket is not TLS"
    );
    match client.next_frame(&mut ws).await {
        Some(Ok(WsFrame::Hello { head: 7, .. })) => {}
        other => panic!("expected hello, got {other:?}"),
    }
}

#[tokio::test]
async fn wss_to_an_untrusted_certificate_says_to_install_the_ca() {
    // The same server, but the client trusts only the system's CAs.
    let port = spawn_ws_hub(Some(test_server_tls()));
    let client = HubClient::new(&format!("https://127.0.0.1:{port}")).unwrap();
    let err = client.connect_ws().await.unwrap_err();
    let HubError::Tls(message) = &err else {
        panic!("expected a TLS error, got {err:?}");
    };
    assert!(message.contains("UnknownIssuer"), "{message}");
    assert!(message.contains("not trusted"), "{message}");
    assert!(message.contains("system trust store"), "{message}");
    assert!(
        message.contains(&format!("wss://127.0.0.1:{port}/v1/ws")),
        "{message}"
    );
    assert!(
        err.to_string().starts_with("TLS with the hub failed: "),
        "{err}"
    );
    assert!(err.is_retryable());
}

#[tokio::test]
async fn https_requests_explain_an_untrusted_certificate_too() {
    let port = spawn_ws_hub(Some(test_server_tls()));
    let client = HubClient::new(&format!("https://127.0.0.1:{port}")).unwrap();
    let err = client.changes(0, 10).await.unwrap_err();
    let HubError::Tls(message) = &err else {
        panic!("expected a TLS error, got {err:?}");
    };
    assert!(message.contains("UnknownIssuer"), "{message}");
    assert!(message.contains("system trust store"), "{message}");
    assert!(
        message.contains(&format!("https://127.0.0.1:{port}/v1/changes")),
        "{message}"
    );
}

#[tokio::test]
async fn wss_to_a_server_without_tls_is_a_tls_error() {
    // Closes without a word: the TLS handshake ends early.
    let port = spawn_plain_server(b"");
    let client = HubClient::new(&format!("https://127.0.0.1:{port}")).unwrap();
    let err = client.connect_ws().await.unwrap_err();
    let HubError::Tls(message) = &err else {
        panic!("expected a TLS error, got {err:?}");
    };
    assert!(message.contains("during the TLS handshake"), "{message}");
    assert!(message.contains("http://"), "{message}");

    // A plain HTTP server (a hub without TLS) answers the client hello.
    let port = spawn_plain_server(
        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    );
    let client = HubClient::new(&format!("https://127.0.0.1:{port}")).unwrap();
    let err = client.connect_ws().await.unwrap_err();
    let HubError::Tls(message) = &err else {
        panic!("expected a TLS error, got {err:?}");
    };
    assert!(message.contains("does not speak TLS"), "{message}");
    assert!(!message.contains("scheme"), "{message}");
}
