//! What the client takes from a chunk pack (`POST /v1/chunks/fetch`) and a
//! batch answer, against stand-in hubs on 127.0.0.1 that answer raw bytes:
//! every chunk is checked against the name and length asked for, an answer
//! cut short is worth asking again, anything else is refused.

use std::io::{Read, Write};

use sf_protocol::chunking::ChunkRef;
use sf_protocol::v1::encode_pack_header;
use sf_protocol::{Sha256Hex, SyncPath};

use super::TEST_SERVER_PATIENCE;
use crate::hub_client::{HubClient, HubError};

/// A stand-in hub that answers one request with `status`, then `body`;
/// `declared` as its length, or no length and a close after it.
fn answer_once(status: &'static str, body: Vec<u8>, declared: bool) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Ok((mut tcp, _)) = listener.accept() else {
            return;
        };
        tcp.set_read_timeout(Some(TEST_SERVER_PATIENCE)).unwrap();
        // The request head and its (small, JSON) body.
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = tcp.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&seen);
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(str::to_owned)
                    })
                    .and_then(|l| l.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if seen.len() >= end + 4 + length {
                    break;
                }
            }
        }
        let length = if declared {
            format!("content-length: {}\r\n", body.len())
        } else {
            String::new()
        };
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/octet-stream\r\n{length}connection: close\r\n\r\n"
        );
        let _ = tcp.write_all(head.as_bytes());
        let _ = tcp.write_all(&body);
    });
    port
}

fn frame(name: &Sha256Hex, data: &[u8]) -> Vec<u8> {
    let mut out = encode_pack_header(name, data.len() as u32).to_vec();
    out.extend_from_slice(data);
    out
}

fn chunk_ref(data: &[u8]) -> ChunkRef {
    ChunkRef {
        hash: Sha256Hex::of(data),
        len: data.len() as u64,
    }
}

async fn fetch_all(
    port: u16,
    wanted: &[ChunkRef],
) -> Result<Vec<(ChunkRef, bytes::Bytes)>, HubError> {
    let hub = HubClient::new(&format!("http://127.0.0.1:{port}")).unwrap();
    let mut pack = hub.fetch_pack(wanted).await?;
    let mut got = Vec::new();
    while let Some(chunk) = pack.next_chunk().await? {
        got.push(chunk);
    }
    Ok(got)
}

#[tokio::test]
async fn a_pack_gives_each_chunk_asked_for_in_order_repeats_included() {
    let (one, two) = (b"first chunk".as_slice(), b"second".as_slice());
    let body = [
        frame(&Sha256Hex::of(one), one),
        frame(&Sha256Hex::of(two), two),
        frame(&Sha256Hex::of(one), one),
    ]
    .concat();
    let port = answer_once("200 OK", body, true);
    let wanted = [chunk_ref(one), chunk_ref(two), chunk_ref(one)];
    let got = fetch_all(port, &wanted).await.unwrap();
    let datas: Vec<&[u8]> = got.iter().map(|(_, data)| data.as_ref()).collect();
    assert_eq!(datas, [one, two, one]);
    assert_eq!(got[1].0, wanted[1]);
}

#[tokio::test]
async fn a_pack_that_lies_is_refused_and_one_cut_short_is_retried() {
    let good = b"the real bytes".as_slice();
    let wanted = [chunk_ref(good)];
    // Bytes that do not hash to the name they travel under.
    let forged = frame(&Sha256Hex::of(good), b"other bytes!!!");
    let err = fetch_all(answer_once("200 OK", forged, true), &wanted)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HubError::Protocol(m) if m.contains("hash to")),
        "{err}"
    );
    assert!(!err.is_retryable());
    // A chunk that was not asked for.
    let other = b"not asked for".as_slice();
    let err = fetch_all(
        answer_once("200 OK", frame(&Sha256Hex::of(other), other), true),
        &wanted,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, HubError::Protocol(m) if m.contains("was asked for")),
        "{err}"
    );
    // A length no chunk can have.
    let mut zero = encode_pack_header(&Sha256Hex::of(good), 0).to_vec();
    zero.extend_from_slice(good);
    let err = fetch_all(answer_once("200 OK", zero, true), &wanted)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HubError::Protocol(m) if m.contains("0 bytes")),
        "{err}"
    );
    // The answer stops in the middle of the chunk (a hub that stopped, or
    // lost the chunk while sending it).
    let mut cut = frame(&Sha256Hex::of(good), good);
    cut.truncate(cut.len() - 3);
    let err = fetch_all(answer_once("200 OK", cut, false), &wanted)
        .await
        .unwrap_err();
    assert!(matches!(&err, HubError::Interrupted(_)), "{err}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_batch_answer_must_answer_each_operation_about_its_own_path() {
    let path = SyncPath::parse("a.txt").unwrap();
    let op = sf_protocol::v1::BatchOp::Delete(sf_protocol::v1::DeleteRequest {
        path: path.clone(),
        base_version: 1,
        origin: "test".into(),
    });
    let hub_of = |body: &str| {
        let port = answer_once("200 OK", body.as_bytes().to_vec(), true);
        HubClient::new(&format!("http://127.0.0.1:{port}")).unwrap()
    };
    let err = hub_of(r#"{"outcomes":[]}"#)
        .batch(vec![op.clone()])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HubError::Protocol(m) if m.contains("0 outcomes for 1")),
        "{err}"
    );
    let elsewhere = r#"{"outcomes":[{"outcome":"done","entry":{"path":"b.txt","kind":"file","version":2,"seq":3,"sha256":null,"size":0,"mtime_ns":0,"executable":false,"deleted":true,"origin":"x","committed_ms":0}}]}"#;
    let err = hub_of(elsewhere).batch(vec![op.clone()]).await.unwrap_err();
    assert!(
        matches!(&err, HubError::Protocol(m) if m.contains("about a.txt")),
        "{err}"
    );
    let refused = r#"{"outcomes":[{"outcome":"refused","error":{"error":"not_found","detail":"a.txt does not exist"}}]}"#;
    let outcomes = hub_of(refused).batch(vec![op]).await.unwrap();
    assert_eq!(outcomes.len(), 1);
}
