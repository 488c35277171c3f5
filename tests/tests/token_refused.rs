//! An agent whose token the hub refuses stops, non-zero, with a message
//! that names the token (its file) and says what to do, instead of
//! retrying forever: a token the hub never issued, and one revoked while
//! the agent runs (its WebSocket is closed by the hub).

use std::process::ExitStatus;
use std::time::Duration;

use sf_e2e::*;

const CONVERGE: Duration = Duration::from_secs(60);

/// Checks the agent's last run ended non-zero with the refusal of the
/// token in `token_file`, and that `sf-agent status` shows it too.
fn assert_refused(agent: &Agent, status: ExitStatus, token_file: &std::path::Path, secret: &str) {
    let log = agent.log_of_run();
    assert!(!status.success(), "exit status {status}; log:\n{log}");
    let named = format!("the hub refused the token in {}", token_file.display());
    assert!(log.contains(&named), "no {named:?} in the log:\n{log}");
    assert!(log.contains("sf-hub token create NAME"), "{log}");
    assert!(log.contains("sf-hub token list"), "{log}");
    assert!(!log.contains(secret), "the token is in the log:\n{log}");
    let report = agent_status(agent.dir());
    assert!(
        report.contains("last error: the hub refused the token in"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_token_stops_the_agent_with_what_to_do() {
    let sandbox = Sandbox::new("unknown-token");
    let hub = Hub::start(&sandbox.dir("hub")).await;
    let secret = "sft_bm90LWEtdG9rZW4tdGhpcy1odWItaXNzdWVk";
    let token_file = write_token_file(&sandbox.dir("secrets"), "wrong-token", secret);
    let dir = sandbox.dir("a");
    write_file(&dir.join("local.txt"), "stays here\n");

    sandbox.step("an agent with a token the hub never issued");
    let mut agent = Agent::start(
        hub.url(),
        &dir,
        "a",
        &["--token-file", token_file.to_str().expect("a UTF-8 path")],
    )
    .await;
    let status = agent.wait_exit(PROCESS_DEADLINE).await;
    assert_refused(&agent, status, &token_file, secret);
    let index = hub_index(hub.url()).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(index.is_empty(), "{index:?}");
    assert_eq!(read_file(&dir.join("local.txt")), b"stays here\n");
    sandbox.step("done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_stops_the_running_agent() {
    let sandbox = Sandbox::new("revoked-token");
    let hub = Hub::start(&sandbox.dir("hub")).await;
    let secret = create_token(&hub, "laptop", false);
    let token_file = write_token_file(&sandbox.dir("secrets"), "laptop-token", &secret);
    let dir = sandbox.dir("a");

    sandbox.step("the agent syncs with its token");
    let mut agent = Agent::start(
        hub.url(),
        &dir,
        "a",
        &["--token-file", token_file.to_str().expect("a UTF-8 path")],
    )
    .await;
    write_file(&dir.join("before.txt"), "sent before the revocation\n");
    wait_converged(&[dir.as_path()], hub.url(), CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    sandbox.step("revoke it while the agent runs");
    hub_token_command(&hub, &["revoke", "laptop"]);
    let status = agent.wait_exit(PROCESS_DEADLINE).await;
    assert_refused(&agent, status, &token_file, &secret);
    assert_eq!(
        read_file(&dir.join("before.txt")),
        b"sent before the revocation\n"
    );
    sandbox.step("done");
}
