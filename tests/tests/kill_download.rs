//! An agent SIGKILLed in the middle of downloading a 200 MiB file leaves
//! nothing at the target path, and after a restart the file arrives whole.

use std::fs;
use std::time::{Duration, Instant};

use sf_e2e::*;

const SIZE: u64 = 200 << 20;
const CONVERGE: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_download() {
    let sandbox = Sandbox::new("kill-download");
    let TwoAgents {
        hub,
        a_dir,
        b_dir,
        mut a,
        mut b,
    } = TwoAgents::start(&sandbox, &[]).await;
    let both = [a_dir.as_path(), b_dir.as_path()];

    sandbox.step("write 200 MiB outside the folder, then move it into A");
    let staged = sandbox.dir("staging").join("big.bin");
    let sha = {
        let staged = staged.clone();
        tokio::task::spawn_blocking(move || write_random_file(&staged, 42, SIZE))
            .await
            .unwrap()
    };
    fs::rename(&staged, a_dir.join("big.bin")).unwrap();

    sandbox.step("wait for a .part file in B's .sf/tmp");
    let target = b_dir.join("big.bin");
    let deadline = Instant::now() + CONVERGE;
    let part = loop {
        if let Some(part) = part_files(&b_dir).into_iter().find(|(_, len)| *len > 0) {
            break part;
        }
        assert!(
            !target.exists(),
            "B finished the download before a .part file was seen"
        );
        assert!(
            Instant::now() < deadline,
            "no .part file in B within {CONVERGE:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    b.kill();
    sandbox.step(&format!(
        "killed B with {} holding {} bytes",
        part.0.display(),
        part.1
    ));
    assert!(
        !target.exists(),
        "a partial file at the target path after SIGKILL"
    );

    sandbox.step("restart B");
    b.restart().await;
    wait_converged(&both, hub.url(), CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fs::metadata(&target).unwrap().len(), SIZE);
    assert_eq!(file_sha256(&target).unwrap(), sha);
    assert_eq!(
        part_files(&b_dir),
        Vec::new(),
        "no temp files left behind in B"
    );

    assert!(a.stop().await.success());
    assert!(b.stop().await.success());
    sandbox.step("done");
}
