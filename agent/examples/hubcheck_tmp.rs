use sf_agent::hub_client::*;
use sf_protocol::v1::WsFrame;
use sf_protocol::{Sha256Hex, SyncPath};

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter("sf_agent=debug")
        .init();
    let c = HubClient::new("http://127.0.0.1:18941/").unwrap();
    let mut ws = c.connect_ws().await.unwrap();
    let hello = HubClient::next_frame(&mut ws).await.unwrap().unwrap();
    println!("hello: {hello:?}");
    assert!(matches!(hello, WsFrame::Hello { head: 0 }));

    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random(10 * 1024 * 1024 + 123, 5);
    let sha = Sha256Hex::of(&data);
    let f = dir.path().join("big.bin");
    std::fs::write(&f, &data).unwrap();
    let p = SyncPath::parse("a/big.bin").unwrap();
    let t = std::time::Instant::now();
    let out = c
        .upload_file(&f, &p, 0, sha, 123, true, "tester")
        .await
        .unwrap();
    println!("upload 1 took {:?}", t.elapsed());
    let CommitOutcome::Committed(e1) = out else {
        panic!("{out:?}")
    };
    let n = e1.chunks.as_ref().unwrap().len();
    println!(
        "committed v{} seq {} chunks {n} size {}",
        e1.version, e1.seq, e1.size
    );
    assert!(n > 3 && e1.size == data.len() as u64 && e1.executable && e1.version == 1);

    let frame = HubClient::next_frame(&mut ws).await.unwrap().unwrap();
    println!("ws frame: {frame:?}");
    match &frame {
        WsFrame::Change(e) => assert_eq!(e.seq, e1.seq),
        _ => panic!(),
    }

    // Same content at another path: nothing missing (debug log sent_chunks=0).
    let p2 = SyncPath::parse("b/copy.bin").unwrap();
    let out = c
        .upload_file(&f, &p2, 0, sha, 124, false, "tester")
        .await
        .unwrap();
    let CommitOutcome::Committed(e2) = out else {
        panic!("{out:?}")
    };
    assert_eq!(e2.chunks, e1.chunks);

    // Identical commit with the current base -> same entry.
    let out = c
        .upload_file(&f, &p, 1, sha, 999, true, "tester")
        .await
        .unwrap();
    assert_eq!(out, CommitOutcome::Committed(e1.clone()));

    // Conflict: stale base.
    let small = dir.path().join("small.txt");
    std::fs::write(&small, b"hello").unwrap();
    let out = c
        .upload_file(&small, &p, 0, Sha256Hex::of(b"hello"), 1, false, "other")
        .await
        .unwrap();
    match &out {
        CommitOutcome::Conflict(Some(cur)) => {
            assert_eq!(cur.version, 1);
            assert!(cur.chunks.is_some());
        }
        _ => panic!("{out:?}"),
    }
    println!("conflict ok");

    // FileChanged: wrong expected sha.
    let out = c
        .upload_file(
            &small,
            &SyncPath::parse("s.txt").unwrap(),
            0,
            Sha256Hex::of(b"other"),
            1,
            false,
            "t",
        )
        .await
        .unwrap();
    assert_eq!(out, CommitOutcome::FileChanged);

    // Empty file.
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let out = c
        .upload_file(
            &empty,
            &SyncPath::parse("empty").unwrap(),
            0,
            Sha256Hex::empty(),
            1,
            false,
            "t",
        )
        .await
        .unwrap();
    let CommitOutcome::Committed(ee) = out else {
        panic!("{out:?}")
    };
    assert_eq!(ee.chunks, Some(vec![]));

    // Missing file -> Io.
    let err = c
        .upload_file(&dir.path().join("nope"), &p, 1, sha, 1, false, "t")
        .await
        .unwrap_err();
    println!("missing file: {err} retryable={}", err.is_retryable());
    assert!(matches!(err, HubError::Io(_)));

    // Dir.
    let d = SyncPath::parse("emptydir").unwrap();
    let out = c.commit_dir(&d, 0, 5, "tester").await.unwrap();
    let CommitOutcome::Committed(de) = out else {
        panic!("{out:?}")
    };
    println!("dir: {de:?}");
    // File inside file -> path_conflict Refused.
    let err = c
        .upload_file(
            &small,
            &SyncPath::parse("a/big.bin/x").unwrap(),
            0,
            Sha256Hex::of(b"hello"),
            1,
            false,
            "t",
        )
        .await
        .unwrap_err();
    println!("path conflict: {err} retryable={}", err.is_retryable());
    assert!(matches!(err, HubError::Refused { status: 409, .. }));

    // Delete.
    let out = c.delete(&p2, 0, "tester").await.unwrap();
    println!(
        "delete stale base: {:?}",
        matches!(out, DeleteOutcome::Conflict(Some(_)))
    );
    assert!(matches!(out, DeleteOutcome::Conflict(Some(_))));
    let out = c.delete(&p2, 1, "tester").await.unwrap();
    let DeleteOutcome::Deleted(t2) = out else {
        panic!("{out:?}")
    };
    assert!(t2.deleted && t2.version == 2);
    let out = c
        .delete(&SyncPath::parse("never").unwrap(), 0, "tester")
        .await
        .unwrap();
    assert_eq!(out, DeleteOutcome::NotFound);

    // Changes.
    let ch = c.changes(0, 1000).await.unwrap();
    println!("changes: {} head {}", ch.changes.len(), ch.head);
    assert!(ch.changes.iter().all(|e| e.chunks.is_some()));
    let page = c.changes(0, 2).await.unwrap();
    assert_eq!(page.changes.len(), 2);
    let err = c.changes(0, 0).await.unwrap_err();
    println!("limit 0: {err}");

    // fetch_chunk.
    let chunks = e1.chunks.clone().unwrap();
    let mut joined = Vec::new();
    for r in &chunks {
        let b = c.fetch_chunk(&r.hash).await.unwrap();
        assert_eq!(b.len() as u64, r.len);
        joined.extend_from_slice(&b);
    }
    assert_eq!(joined, data);
    let err = c.fetch_chunk(&Sha256Hex::of(b"absent")).await.unwrap_err();
    println!("absent chunk: {err}");

    // Remaining ws frames.
    for _ in 0..4 {
        let f = HubClient::next_frame(&mut ws).await.unwrap().unwrap();
        if let WsFrame::Change(e) = f {
            println!(
                "ws change seq {} {} v{} deleted={}",
                e.seq, e.path, e.version, e.deleted
            );
        }
    }

    // Unreachable.
    let dead = HubClient::new("http://127.0.0.1:1").unwrap();
    let err = dead.changes(0, 10).await.unwrap_err();
    println!("dead hub: {err} retryable={}", err.is_retryable());
    let err = dead.connect_ws().await.unwrap_err();
    println!("dead ws: {err} retryable={}", err.is_retryable());
    // Lose chunks on the hub's disk, then upload the same content elsewhere.
    let dd = std::fs::read_to_string("/tmp/hubdir").unwrap();
    let dd = dd.trim();
    for r in &chunks {
        let h = r.hash.to_hex();
        let fp = format!("{dd}/chunks/{}/{}/{h}", &h[0..2], &h[2..4]);
        println!("rm {fp}: {:?}", std::fs::remove_file(&fp));
    }
    let out = c
        .upload_file(
            &f,
            &SyncPath::parse("c/lost.bin").unwrap(),
            0,
            sha,
            1,
            false,
            "tester",
        )
        .await;
    println!("after losing chunks: {out:?}");
    println!("waiting for close; kill the hub now");
    std::fs::write("/tmp/hubcheck_ready", b"1").unwrap();
    loop {
        match HubClient::next_frame(&mut ws).await {
            None => {
                println!("ws closed -> None");
                break;
            }
            Some(r) => println!("frame {r:?}"),
        }
    }
    println!("ALL OK");
}
