//! Chunks damaged on the hub's disk (bit rot): the hub never serves them,
//! the agent that still has the files gives them back when asked, and an
//! agent that joins later gets the right bytes.

use std::path::Path;
use std::time::Duration;

use sf_e2e::*;
use sf_protocol::Sha256Hex;
use sf_protocol::chunking::Chunker;

const CONVERGE: Duration = Duration::from_secs(120);

/// Flips one bit in the middle of the hub's copy of chunk `hash`.
fn damage(hub_data: &Path, hash: &Sha256Hex) {
    let hex = hash.to_hex();
    let path = hub_data.join("chunks").join(&hex[..2]).join(&hex);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x04;
    std::fs::write(&path, bytes).unwrap();
}

fn chunks_of(bytes: &[u8]) -> Vec<Sha256Hex> {
    Chunker::new(bytes)
        .map(|chunk| chunk.unwrap().hash)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_gives_back_chunks_the_hub_lost() {
    let sandbox = Sandbox::new("damaged-chunks");
    let hub = Hub::start(&sandbox.dir("hub")).await;
    let a_dir = sandbox.dir("a");
    let a = Agent::start(hub.url(), &a_dir, "a", &[]).await;

    sandbox.step("A syncs a large file and a small one");
    let big = random_bytes(5, 3 << 20);
    let small = b"a small file of one chunk\n".to_vec();
    write_file(&a_dir.join("docs/big.bin"), &big);
    write_file(&a_dir.join("small.txt"), &small);
    wait_hub(hub.url(), CONVERGE, "the hub has both files", |index| {
        index.get("docs/big.bin") == Some(&Sha256Hex::of(&big))
            && index.get("small.txt") == Some(&Sha256Hex::of(&small))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    sandbox.step("two chunks rot on the hub's disk");
    let big_chunks = chunks_of(&big);
    assert!(big_chunks.len() >= 3, "{big_chunks:?}");
    damage(hub.data_dir(), &big_chunks[1]);
    damage(hub.data_dir(), &chunks_of(&small)[0]);

    sandbox.step("B joins: the hub refuses the damaged bytes and asks A for them");
    let b_dir = sandbox.dir("b");
    let b = Agent::start(hub.url(), &b_dir, "b", &[]).await;
    wait_converged(&[&a_dir, &b_dir], hub.url(), CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("{e}\nA:\n{}\nB:\n{}", a.log(), b.log()));
    assert_eq!(std::fs::read(b_dir.join("docs/big.bin")).unwrap(), big);
    assert_eq!(std::fs::read(b_dir.join("small.txt")).unwrap(), small);

    let hub_log = hub.log();
    assert!(
        hub_log.contains("a stored chunk is damaged"),
        "the hub says what it found:\n{hub_log}"
    );
    assert!(
        a.log().contains("gave the hub back chunks it had lost"),
        "A gave them back:\n{}",
        a.log()
    );
    let kept = std::fs::read_dir(hub.data_dir().join("damaged"))
        .unwrap()
        .count();
    assert_eq!(kept, 2, "the damaged copies are kept for the operator");
    assert!(
        !b.log().contains("panicked"),
        "B did not panic:\n{}",
        b.log()
    );
}
