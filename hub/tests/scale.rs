//! Several hubs on one PostgreSQL database and one S3 bucket (moto), in
//! this process: every hub tells its WebSocket clients about every commit,
//! in seq order with no gap, whichever hub took it; any hub serves what
//! another stored; commits to one path through different hubs keep one
//! winner per version; a token revoked through one hub's database is
//! refused by every hub; a web page signed out through one hub loses its
//! WebSocket on another.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sf_hub::config::TokenCommand;
use sf_protocol::v1::{ErrorCode, WsFrame};

use common::client::random_bytes;
use common::{Backend, TestHub, next_frame};

/// A hub on the same database and bucket as `first`, using its token.
async fn sibling(first: &TestHub) -> TestHub {
    let mut hub = TestHub::start_on(first.storage.sibling(), |_| {}).await;
    hub.token = first.token.clone();
    hub.http = sf_test_support::bearer_client(&hub.token);
    hub
}

async fn three_hubs() -> Option<[TestHub; 3]> {
    let first = TestHub::start(Backend::PostgresS3).await?;
    let second = sibling(&first).await;
    let third = sibling(&first).await;
    Some([first, second, third])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commits_through_any_hub_reach_every_hub_in_seq_order() {
    let Some(hubs) = three_hubs().await else {
        return;
    };
    let mut sockets = Vec::new();
    for hub in &hubs {
        let (mut socket, _) = tokio_tungstenite::connect_async(hub.ws_request())
            .await
            .unwrap();
        assert!(matches!(
            next_frame(&mut socket).await,
            WsFrame::Hello { .. }
        ));
        sockets.push(socket);
    }
    // Three writers at once, each through its own hub.
    const EACH: usize = 12;
    let writers = hubs.iter().enumerate().map(|(h, hub)| async move {
        for i in 0..EACH {
            let bytes = random_bytes(1000 + i, (h * 100 + i) as u64);
            hub.put_file(&format!("hub{h}/f{i}.bin"), 0, &bytes, "t")
                .await
                .unwrap();
        }
    });
    futures_util::future::join_all(writers).await;
    let total = (EACH * hubs.len()) as u64;
    for (h, socket) in sockets.iter_mut().enumerate() {
        let mut seqs = Vec::new();
        while seqs.len() < total as usize {
            if let WsFrame::Change(entry) = next_frame(socket).await {
                seqs.push(entry.seq);
            }
        }
        assert_eq!(
            seqs,
            (1..=total).collect::<Vec<_>>(),
            "hub {h}'s clients see every commit once, in seq order"
        );
    }
    for hub in &hubs {
        let page = hub.changes(0).await;
        let seqs: Vec<u64> = page.changes.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=total).collect::<Vec<_>>());
        assert_eq!(page.head, total);
    }
    // Bytes stored through one hub are served by the others.
    let bytes = random_bytes(3 << 20, 77);
    hubs[0].put_file("big.bin", 0, &bytes, "t").await.unwrap();
    for hub in &hubs[1..] {
        assert_eq!(
            hub.download("big.bin").await,
            (StatusCode::OK, bytes.clone())
        );
    }
    // Every hub reports the same identity: agents see one hub.
    let ids: BTreeSet<String> = futures_util::future::join_all(
        hubs.iter().map(|hub| async { hub.changes(0).await.hub_id }),
    )
    .await
    .into_iter()
    .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commits_to_one_path_through_different_hubs_keep_one_winner_per_version() {
    let Some(hubs) = three_hubs().await else {
        return;
    };
    for version in 1..=4u64 {
        // Two writers per hub, all on the same base version.
        let attempts = (0..6).map(|n| {
            let hub = &hubs[n % 3];
            async move {
                let bytes = random_bytes(500, version * 10 + n as u64);
                hub.put_file("same.txt", version - 1, &bytes, &format!("w{n}"))
                    .await
                    .map(|entry| (entry, bytes))
            }
        });
        let results = futures_util::future::join_all(attempts).await;
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "version {version}: {results:?}");
        assert_eq!(winners[0].0.version, version);
        for refused in results.iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!(refused.0, StatusCode::CONFLICT, "{refused:?}");
            assert_eq!(refused.1.error, ErrorCode::Conflict, "{refused:?}");
        }
        // Every hub serves the winner's bytes.
        for hub in &hubs {
            assert_eq!(
                hub.download("same.txt").await,
                (StatusCode::OK, winners[0].1.clone())
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_revoked_anywhere_is_refused_by_every_hub() {
    let Some(hubs) = three_hubs().await else {
        return;
    };
    let settings = hubs[0].storage.settings();
    let created = sf_hub::token_cli::run(
        &settings,
        TokenCommand::Create {
            name: "laptop".into(),
            read_only: false,
        },
    )
    .await
    .unwrap();
    let token = created
        .split_whitespace()
        .find(|word| word.starts_with("sft_"))
        .expect("the token is printed")
        .to_owned();
    let client = sf_test_support::bearer_client(&token);
    let status_on = |hub: &TestHub| {
        let request = client.get(hub.url("/v1/changes?since=0"));
        async move { request.send().await.unwrap().status() }
    };
    for hub in &hubs {
        assert_eq!(status_on(hub).await, StatusCode::OK);
    }
    sf_hub::token_cli::run(
        &settings,
        TokenCommand::Revoke {
            name: "laptop".into(),
        },
    )
    .await
    .unwrap();
    let revoked = Instant::now();
    for hub in &hubs {
        // A hang guard, not a timing: revocations are heard at once.
        while status_on(hub).await != StatusCode::UNAUTHORIZED {
            assert!(
                revoked.elapsed() < Duration::from_secs(10),
                "still accepted"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    eprintln!(
        "refused by all three hubs {:?} after the revocation",
        revoked.elapsed()
    );
}

/// The web page signed in through one hub keeps a WebSocket open on
/// another (a load balancer sent it there); signing out through the first
/// closes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sign_out_through_one_hub_closes_the_page_on_another() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};
    let Some(first) = TestHub::start(Backend::PostgresS3).await else {
        return;
    };
    let second = sibling(&first).await;
    let signed_in = first
        .anon
        .post(first.url("/ui/session"))
        .json(&serde_json::json!({"token": first.token}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::OK);
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = signed_in.json::<serde_json::Value>().await.unwrap()["csrf"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut request = second.ws_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    request
        .headers_mut()
        .insert("origin", second.base.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert!(matches!(
        next_frame(&mut socket).await,
        WsFrame::Hello { .. }
    ));

    let signed_out = first
        .anon
        .delete(first.url("/ui/session"))
        .header("cookie", &cookie)
        .header("x-sf-csrf", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), StatusCode::NO_CONTENT);
    // A hang guard, not a timing: the sign-out is announced at once.
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match socket.next().await {
                Some(Ok(tungstenite::Message::Close(frame))) => return frame,
                Some(Ok(_)) => {}
                other => panic!("the socket ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("the page's socket on the other hub stayed open")
    .expect("a close frame with a code");
    assert_eq!(u16::from(closed.code), sf_protocol::v1::WS_CLOSE_REVOKED);
}
