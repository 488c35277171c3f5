//! SQLite is for one hub: a second `sf-hub` on a data dir another hub
//! serves from is refused at start with a message that says so, and exits
//! non-zero without serving; the first hub goes on serving. Once the first
//! is gone (SIGKILLed: no shutdown code ran), a hub starts there again.

use sf_test_support::{LogFile, Process, hub_command};

use super::*;

/// What the second hub must say.
const REFUSED: &str = "another hub is serving this SQLite database";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_hub_on_one_sqlite_database_is_refused() {
    let sandbox = Sandbox::new("scale-out-sqlite");
    let data_dir = sandbox.dir("hub");
    let mut hub = Hub::start(&data_dir).await;
    let url = hub.url().to_owned();
    let http = sf_test_support::bearer_client(&hub.token());
    commit_file(&http, &url, "before.txt", b"before\n").await;

    sandbox.step("a second sf-hub on the same data dir");
    let log = LogFile::new(sandbox.path().join("second-hub.log"));
    let (stdout, stderr) = log.stdio();
    let mut command = hub_command(&binary("sf-hub"), &data_dir);
    command
        .env("RUST_LOG", "info")
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(&data_dir)
        .stdout(stdout)
        .stderr(stderr);
    let mut second = Process::spawn(&mut command).expect("spawn the second sf-hub");
    let status = second.wait_exit(PROCESS_DEADLINE).await.unwrap_or_else(|| {
        panic!(
            "the second hub still runs after {PROCESS_DEADLINE:?}; its log:\n{}",
            log.read()
        )
    });
    let said = log.read();
    sandbox.step(&format!(
        "the second hub exited with {status}:\n{}",
        said.trim()
    ));
    assert!(!status.success(), "the second hub exits non-zero: {status}");
    assert!(said.contains(REFUSED), "the second hub says why:\n{said}");
    assert!(
        !said.contains("hub listening"),
        "the second hub never serves:\n{said}"
    );

    sandbox.step("the first hub goes on serving");
    let ready = http
        .get(format!("{url}/readyz"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}/readyz: {e}"));
    assert!(
        ready.status().is_success(),
        "{url}/readyz: {}",
        ready.status()
    );
    commit_file(&http, &url, "after.txt", b"after\n").await;
    let index = hub_index(&url).await.unwrap();
    assert_eq!(
        index.keys().collect::<Vec<_>>(),
        ["after.txt", "before.txt"],
        "the first hub serves every commit"
    );

    sandbox.step("the first hub SIGKILLed: a hub starts on the data dir again");
    hub.kill();
    hub.restart().await;
    assert_eq!(
        hub_index(hub.url()).await.unwrap(),
        index,
        "the new hub serves the same files"
    );
}
