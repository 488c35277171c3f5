//! The change broadcast on `/v1/ws`: every subscriber gets every change in
//! seq order, and a client that stops reading holds up nobody.

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use sf_protocol::v1::WsFrame;

use crate::common::{Backend, TestHub};
use crate::{dir_commit, legacy_upload_request};

crate::on_both_backends!(websocket_subscribers_get_every_change_in_order);

async fn websocket_subscribers_get_every_change_in_order(hub: TestHub) {
    hub.put_file("before.txt", 0, b"before", "a").await.unwrap();
    let (mut first, _) = tokio_tungstenite::connect_async(hub.ws_request())
        .await
        .unwrap();
    let (mut second, _) = tokio_tungstenite::connect_async(hub.ws_request())
        .await
        .unwrap();
    for socket in [&mut first, &mut second] {
        let hello = next_frame(socket).await;
        assert!(matches!(hello, WsFrame::Hello { head: 1, .. }), "{hello:?}");
    }

    const WRITERS: u64 = 4;
    const EACH: u64 = 15;
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let uploads: Vec<_> = (0..EACH)
            .map(|i| {
                let content = format!("writer {writer} file {i}");
                legacy_upload_request(&hub, &format!("w{writer}/f{i}.txt"), &content)
            })
            .collect();
        writers.push(tokio::spawn(async move {
            for upload in uploads {
                let resp = upload.send().await.unwrap();
                assert_eq!(resp.status(), StatusCode::OK);
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let total = WRITERS * EACH;
    for socket in [&mut first, &mut second] {
        let mut seqs = Vec::new();
        let mut paths = BTreeSet::new();
        while seqs.len() < total as usize {
            match next_frame(socket).await {
                WsFrame::Change(entry) => {
                    assert!(entry.chunks.is_none(), "frames carry no chunk lists");
                    seqs.push(entry.seq);
                    paths.insert(entry.path.to_string());
                }
                other => panic!("unexpected frame {other:?}"),
            }
        }
        assert_eq!(
            seqs,
            (2..2 + total).collect::<Vec<_>>(),
            "every change, in seq order"
        );
        assert_eq!(paths.len(), total as usize);
    }
}

pub(crate) use crate::common::next_frame;

/// A client that stops reading its WebSocket is dropped by the hub, and
/// neither commits nor other clients wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_websocket_client_blocks_nobody() {
    let hub = TestHub::start(Backend::Sqlite).await.unwrap();
    // A small receive buffer (which also turns off autotuning) so the stuck
    // client's socket fills after a few frames, as a real stalled peer's would.
    let addr: std::net::SocketAddr = hub.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let (mut stuck, _) = tokio_tungstenite::client_async(hub.ws_request(), stream)
        .await
        .unwrap();
    let (mut live, _) = tokio_tungstenite::connect_async(hub.ws_request())
        .await
        .unwrap();
    assert!(matches!(
        next_frame(&mut stuck).await,
        WsFrame::Hello { head: 0, .. }
    ));
    assert!(matches!(
        next_frame(&mut live).await,
        WsFrame::Hello { head: 0, .. }
    ));
    assert_eq!(hub.metric("sync_websocket_clients").await, Some(2.0));

    // More changes than the hub buffers per client, each with a ~3.8 KB path.
    let total = sf_protocol::v1::WS_MAX_LAG as u64 + 200;
    let reader = tokio::spawn(async move {
        let mut last = 0;
        while last < total {
            if let WsFrame::Change(entry) = next_frame(&mut live).await {
                assert_eq!(entry.seq, last + 1, "the live client misses nothing");
                last = entry.seq;
            }
        }
        (last, live)
    });
    let deep = vec!["d".repeat(250); 15].join("/");
    let mut writers = Vec::new();
    for writer in 0..4 {
        let (base, http, deep) = (hub.base.clone(), hub.http.clone(), deep.clone());
        writers.push(tokio::spawn(async move {
            for i in (writer..total).step_by(4) {
                let request = dir_commit(&format!("{deep}/{i}"), 0);
                let resp = http
                    .post(format!("{base}/v1/commit"))
                    .json(&request)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), StatusCode::OK);
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let (last, _live) = reader.await.unwrap();
    assert_eq!(last, total, "the live client saw every change");

    // The hub gives up on the stuck client while the live one stays.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while hub.metric("sync_websocket_clients").await != Some(1.0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stuck client was never dropped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Its stream ends once drained, with a reason when the close frame got
    // through; what it did get has no gap (a client is closed, never
    // skipped ahead).
    let mut frames = 0u64;
    let mut last_seq = 0u64;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), stuck.next())
            .await
            .expect("the stuck client's stream ends");
        match message {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(frame)))) => {
                let code = u16::from(frame.code);
                assert!(
                    code == sf_protocol::v1::WS_CLOSE_LAGGED || code == 1008,
                    "close code {code}"
                );
                assert!(frame.reason.contains("/v1/changes"), "{}", frame.reason);
                break;
            }
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) => {
                if let WsFrame::Change(entry) = sf_protocol::v1::decode_ws_frame(&text).unwrap() {
                    assert_eq!(entry.seq, last_seq + 1, "the stuck client saw a gap");
                    last_seq = entry.seq;
                }
                frames += 1;
            }
            Some(Ok(_)) => frames += 1,
            Some(Err(_)) | None => break,
        }
    }
    assert!(
        frames < total,
        "the stuck client was cut off, not served everything ({frames})"
    );
}
