//! A burst of many small files in many folders, written as fast as the test
//! can: the other agent converges.
//!
//! `SF_E2E_BURST` sets the file count (default below); the files are spread
//! over 100 folders, 1–16 KiB each.

use std::time::Duration;

use sf_e2e::*;

/// Default file count: the 10,000. On the 2-core CI machine (debug
/// build) the whole scenario, writing included, takes about 80 s; set
/// `SF_E2E_BURST` lower for a quicker local run.
const DEFAULT_FILES: usize = 10_000;
const FOLDERS: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_of_small_files() {
    let files: usize = std::env::var("SF_E2E_BURST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_FILES);
    // Generous: at least 10 files/s end to end, never under 5 minutes.
    let converge = Duration::from_secs(300).max(Duration::from_millis(100) * files as u32);
    let sandbox = Sandbox::new("burst");
    let TwoAgents {
        hub,
        a_dir,
        b_dir,
        mut a,
        mut b,
    } = TwoAgents::start(&sandbox, &[]).await;

    sandbox.step(&format!("A writes {files} files in {FOLDERS} folders"));
    {
        let a_dir = a_dir.clone();
        tokio::task::spawn_blocking(move || {
            let mut noise = Noise::new(9);
            for i in 0..files {
                let len = 1024 + (noise.next_u64() % (15 * 1024 + 1)) as usize;
                let mut bytes = vec![0u8; len];
                noise.fill(&mut bytes);
                write_file(
                    &a_dir.join(format!("d{:03}/f{i:05}.bin", i % FOLDERS)),
                    bytes,
                );
            }
        })
        .await
        .unwrap();
    }
    sandbox.step("written; waiting for convergence");
    wait_converged(&[a_dir.as_path(), b_dir.as_path()], hub.url(), converge)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(folder_files(&b_dir).len(), files);
    sandbox.step("converged");

    assert!(a.stop().await.success());
    assert!(b.stop().await.success());
    sandbox.step("done");
}
