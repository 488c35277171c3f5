//! The push connection after many hub restarts. Every restart ends the
//! agents' WebSocket sessions with an error; the reconnect delay must start
//! from the shortest again once a session is up, not keep doubling for the
//! life of the process (issue 10: after 10 restarts a change took 11 s, up
//! to the 30 s cap, to reach the other agent).

use std::time::Duration;

use sf_e2e::*;

/// More restarts than it takes the doubling delay to reach its cap.
const RESTARTS: usize = 10;
/// How long an agent may take to reconnect while the restarts go on: far
/// more than the longest delay, so the loop itself never fails on timing.
const RECONNECT: Duration = Duration::from_secs(90);
/// How long the agents may take to reconnect after the last restart, and
/// the change to reach B then. With a delay that kept doubling they would
/// wait 15–30 s for their next attempt; from the shortest, well under 1 s.
const PROMPTLY: Duration = Duration::from_secs(8);

/// How many agents hold a WebSocket to the hub right now.
async fn connected_agents(hub: &Hub) -> f64 {
    let Ok(answer) = reqwest::get(hub.metrics_url()).await else {
        return 0.0;
    };
    let text = answer.text().await.unwrap_or_default();
    sf_test_support::metric_value(&text, "sync_websocket_clients").unwrap_or(0.0)
}

async fn wait_connected(hub: &Hub, agents: f64, within: Duration, what: &str) {
    let deadline = tokio::time::Instant::now() + within;
    while connected_agents(hub).await != agents {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: the agents did not reconnect within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_arrives_promptly_after_many_hub_restarts() {
    let sandbox = Sandbox::new("push-reconnect");
    let mut hub = Hub::start(&sandbox.dir("hub")).await;
    let url = hub.url().to_owned();
    let (a_dir, b_dir) = (sandbox.dir("a"), sandbox.dir("b"));
    let hourly = ["--scan-interval", "3600"];
    let _a = Agent::start(&url, &a_dir, "a", &hourly).await;
    let _b = Agent::start(&url, &b_dir, "b", &hourly).await;
    wait_connected(&hub, 2.0, RECONNECT, "at start").await;

    sandbox.step(&format!(
        "the hub is SIGKILLed and restarted {RESTARTS} times"
    ));
    for restart in 1..=RESTARTS {
        hub.kill();
        hub.restart().await;
        wait_connected(&hub, 2.0, RECONNECT, &format!("restart {restart}")).await;
    }

    sandbox.step("once more: both reconnect at once, and A's next change is pushed to B");
    hub.kill();
    hub.restart().await;
    wait_connected(&hub, 2.0, PROMPTLY, "after the last restart").await;
    write_file(&a_dir.join("after-restarts.txt"), "still pushed at once\n");
    wait_until(PROMPTLY, "the change reaches B", || {
        b_dir.join("after-restarts.txt").exists()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        read_file(&b_dir.join("after-restarts.txt")),
        b"still pushed at once\n"
    );
}
