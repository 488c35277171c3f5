//! The hub is SIGKILLed while an agent is writing, and comes back on the same
//! port and data dir: nothing is lost and everything converges.

use std::path::Path;
use std::time::Duration;

use sf_e2e::*;

const CONVERGE: Duration = Duration::from_secs(180);
/// Large enough to be many chunks (about 1 MiB each).
const BIG: u64 = 64 << 20;

/// How many chunk files the hub has stored (`<data>/chunks/ab/cd/<sha>`).
fn chunk_files(data_dir: &Path) -> usize {
    fn count(dir: &Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |entries| {
            entries
                .flatten()
                .map(|e| {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        count(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
    }
    count(&data_dir.join("chunks"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_sigkill_mid_sync() {
    let sandbox = Sandbox::new("hub-restart");
    let mut hub = Hub::start(&sandbox.dir("hub")).await;
    let url = hub.url().to_owned();
    let a_dir = sandbox.dir("a");
    let b_dir = sandbox.dir("b");
    let mut a = Agent::start(&url, &a_dir, "a", &[]).await;
    let mut b = Agent::start(&url, &b_dir, "b", &[]).await;
    let both = [a_dir.as_path(), b_dir.as_path()];

    sandbox.step("A writes; the hub is killed mid-upload at file 20 and back at file 40");
    let staged = sandbox.dir("staging").join("big.bin");
    let big_sha = tokio::task::block_in_place(|| write_random_file(&staged, 77, BIG));
    for i in 0..60u64 {
        // Some files span several chunks, so uploads are in flight.
        let len = if i % 5 == 0 {
            2 << 20
        } else {
            4096 + i as usize
        };
        write_file(
            &a_dir.join(format!("batch/{:02}/f{i:03}.bin", i % 7)),
            random_bytes(1000 + i, len),
        );
        if i % 10 == 3 {
            // Edit an earlier file too.
            write_file(&a_dir.join("batch/edited.txt"), format!("edit {i}\n"));
        }
        if i == 20 {
            // Kill the hub while A uploads the chunks of a large file.
            let before = chunk_files(hub.data_dir());
            std::fs::rename(&staged, a_dir.join("batch/big.bin")).unwrap();
            wait_until(CONVERGE, "the hub receives chunks of big.bin", || {
                chunk_files(hub.data_dir()) >= before + 3
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
            let committed = hub_index(hub.url())
                .await
                .is_ok_and(|index| index.contains_key("batch/big.bin"));
            hub.kill();
            sandbox.step(&format!(
                "hub killed with {} chunks stored (big.bin committed: {committed})",
                chunk_files(hub.data_dir())
            ));
        }
        if i == 40 {
            hub.restart().await;
            assert_eq!(hub.url(), url, "same port");
            sandbox.step("hub restarted");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sandbox.step("wait for convergence");
    wait_converged(&both, &url, CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(folder_files(&a_dir).len(), 62);
    assert_eq!(file_sha256(&b_dir.join("batch/big.bin")).unwrap(), big_sha);
    assert_eq!(read_file(&b_dir.join("batch/edited.txt")), b"edit 53\n");
    assert!(a.is_running() && b.is_running());

    assert!(a.stop().await.success());
    assert!(b.stop().await.success());
    sandbox.step("done");
}
