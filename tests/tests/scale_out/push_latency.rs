//! How long a commit made through one hub takes to be pushed by another:
//! commits on hub 1 through the v1 HTTP API, one at a time, with a
//! WebSocket client on hub 2 (and one on hub 1 for comparison). Every
//! commit must arrive on both, once, in seq order; the delay from the
//! commit's HTTP answer to the `change` frame is printed, not asserted.

use super::*;

/// Commits measured.
const COMMITS: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_on_one_hub_is_pushed_by_the_other() {
    const TEST: &str = "scale_out::a_commit_on_one_hub_is_pushed_by_the_other";
    let sandbox = Sandbox::new("scale-out-push");
    let Some(hubs) = SharedHubs::start(TEST, &sandbox, 2).await else {
        return;
    };
    let (h1, h2) = (hubs.url(1), hubs.url(2));
    let http = sf_test_support::bearer_client(hubs.token());
    let mut same = PushClient::connect(&h1, hubs.token()).await;
    let mut other = PushClient::connect(&h2, hubs.token()).await;
    assert_eq!(
        (same.head, other.head),
        (0, 0),
        "both hubs start on an empty feed"
    );

    sandbox.step(&format!(
        "{COMMITS} commits on hub 1, watched on hub 1 and hub 2"
    ));
    let mut committed = Vec::new();
    let (mut same_ms, mut other_ms) = (Vec::new(), Vec::new());
    for i in 0..COMMITS {
        let path = format!("latency/c{i:03}.txt");
        let (entry, answered) =
            commit_file(&http, &h1, &path, format!("commit {i}\n").as_bytes()).await;
        committed.push(entry.seq);
        for (client, delays, hub) in [
            (&mut same, &mut same_ms, "hub 1"),
            (&mut other, &mut other_ms, "hub 2"),
        ] {
            let arrival = client.next(FRAME_DEADLINE).await;
            assert_eq!(
                (arrival.seq, arrival.path.as_str()),
                (entry.seq, path.as_str()),
                "{hub} pushes each commit once, in seq order"
            );
            delays.push(delay_ms(answered, arrival.at));
        }
    }
    assert_eq!(
        committed,
        (1..=COMMITS as u64).collect::<Vec<_>>(),
        "hub 1 gave the commits consecutive seqs"
    );
    // Nothing more (a duplicate would be here by now: each socket has
    // delivered later frames since).
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (client, hub) in [(&mut same, "hub 1"), (&mut other, "hub 2")] {
        let extra: Vec<u64> = client.arrived().iter().map(|a| a.seq).collect();
        assert!(
            extra.is_empty(),
            "{hub} pushed more than was committed: {extra:?}"
        );
    }

    for (delays, what) in [
        (&other_ms, "hub 2 (another hub's commits)"),
        (&same_ms, "hub 1 (its own commits)"),
    ] {
        sandbox.step(&format!(
            "PUSH LATENCY on {what}, from the commit's HTTP answer to the change frame, over \
             {COMMITS} commits: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            percentile(delays, 50.0),
            percentile(delays, 99.0),
            percentile(delays, 100.0)
        ));
    }
}
