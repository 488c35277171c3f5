//! WebSocket clients cannot take more than their share: a cap on open
//! sockets, and only small messages from the client.

mod common;

use std::time::Duration;

use common::{Backend, TestHub};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{self, Message};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_over_the_cap_get_busy() {
    let hub = TestHub::start_with(Backend::Sqlite, |s| s.max_websockets = 2)
        .await
        .unwrap();
    let (mut first, _) = tokio_tungstenite::connect_async(hub.ws_request())
        .await
        .unwrap();
    let (_second, _) = tokio_tungstenite::connect_async(hub.ws_request())
        .await
        .unwrap();
    first.next().await.unwrap().unwrap();
    match tokio_tungstenite::connect_async(hub.ws_request()).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            assert_eq!(response.headers()["retry-after"], "1");
            let body: serde_json::Value =
                serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["error"], "busy", "{body}");
        }
        other => panic!("a third socket: {other:?}"),
    }
    // A slot frees when a socket closes.
    first.close(None).await.unwrap();
    drop(first);
    let mut opened = false;
    for _ in 0..50 {
        if tokio_tungstenite::connect_async(hub.ws_request())
            .await
            .is_ok()
        {
            opened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(opened, "the freed slot was never given to a new socket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_client_message_closes_the_socket() {
    let hub = TestHub::start(Backend::Sqlite).await.unwrap();
    let (mut socket, _) = tokio_tungstenite::connect_async(hub.ws_request())
        .await
        .unwrap();
    socket.next().await.unwrap().unwrap(); // hello
    // Small messages are ignored and the socket lives on.
    socket.send(Message::text("hi")).await.unwrap();
    hub.legacy_upload("one.txt", None, b"1").await;
    let change = socket.next().await.unwrap().unwrap();
    assert!(change.to_text().unwrap().contains("one.txt"));
    // 64 KiB is far beyond what a client needs to say.
    let _ = socket.send(Message::text("x".repeat(64 * 1024))).await;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) => return None,
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .expect("the hub kept a socket that sent 64 KiB");
    // 1009: message too big (or the connection simply dropped).
    assert!(matches!(ended, None | Some(1009)), "{ended:?}");
}
