//! The connection a hub hears other hubs' commits on (PostgreSQL `LISTEN`,
//! `application_name` `sf-hub-feed`) is cut by the database, several times,
//! while commits keep coming on hub 1: a WebSocket client of hub 2 still
//! gets every commit, once, in seq order (the hub reads the feed from the
//! database while deaf, and once more when it hears again), and each hub's
//! log says it lost the connection and listens again. Then a storm: the
//! connections are ended again and again, faster than the hubs reconnect,
//! so hub 2 is deaf most of the time and the commits reach it by its
//! reading the feed from the database. Last, a commit made right after a
//! cut with nothing after it (no later notification to carry it) still
//! arrives.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::*;

/// What a hub logs when its notification connection drops, and when it
/// hears again (also once at start).
const LOST: &str = "lost the connection that hears other hubs' commits";
const LISTENING: &str = "listening for other hubs' commits";
/// The notification connections' `application_name`.
const LISTENER: &str = "sf-hub-feed";
const CUTS: usize = 3;
/// Pause between two of the writer's commits.
const PACE: Duration = Duration::from_millis(20);
/// Pause between two cuts of the storm: shorter than a reconnection.
const STORM_PACE: Duration = Duration::from_millis(25);

/// How many notification connections the hubs hold on the test database.
async fn listeners(admin: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE application_name = $1 AND datname = current_database()",
    )
    .bind(LISTENER)
    .fetch_one(admin)
    .await
    .expect("read pg_stat_activity")
}

/// Ends every hub's notification connection to the test database (other
/// tests' hubs, on other databases, are left alone); how many it ended.
async fn cut(admin: &mut sqlx::PgConnection) -> usize {
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = $1 AND datname = current_database()",
    )
    .bind(LISTENER)
    .fetch_all(admin)
    .await
    .expect("pg_terminate_backend");
    ended.into_iter().filter(|ended| *ended).count()
}

/// Whether `log` past `offset` says the connection was lost and, after
/// the last such line, that the hub listens again.
fn lost_and_back(log: &str, offset: usize) -> bool {
    let since = log.get(offset..).unwrap_or_default();
    since
        .rfind(LOST)
        .is_some_and(|at| since[at..].contains(LISTENING))
}

/// Waits until every hub's log past its offset says it lost the
/// connection and listens again.
async fn wait_back(hubs: &SharedHubs, offsets: &[usize]) {
    wait_for(
        CONVERGE,
        "every hub says it lost the connection and listens again",
        async || {
            hubs.hubs
                .iter()
                .zip(offsets)
                .all(|(hub, offset)| lost_and_back(&hub.log(), *offset))
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_commit_reaches_the_other_hub_while_its_notifications_are_cut() {
    const TEST: &str =
        "scale_out::every_commit_reaches_the_other_hub_while_its_notifications_are_cut";
    let sandbox = Sandbox::new("scale-out-listener-cut");
    let Some(hubs) = SharedHubs::start(TEST, &sandbox, 2).await else {
        return;
    };
    let (h1, h2) = (hubs.url(1), hubs.url(2));
    let http = sf_test_support::bearer_client(hubs.token());
    let mut admin = hubs.pg.connect().await;
    wait_for(CONVERGE, "both hubs listen for notifications", async || {
        listeners(&mut admin).await == 2
    })
    .await;
    let mut watcher = PushClient::connect(&h2, hubs.token()).await;

    sandbox.step("hub 1 commits a file every 20 ms; hub 2's WebSocket client watches");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (stop, http, h1) = (Arc::clone(&stop), http.clone(), h1.clone());
        async move {
            let mut committed = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let path = format!("flow/c{:04}.txt", committed.len());
                let content = format!("commit {}\n", committed.len());
                let (entry, _) = commit_file(&http, &h1, &path, content.as_bytes()).await;
                committed.push((entry.seq, path));
                tokio::time::sleep(PACE).await;
            }
            committed
        }
    });
    let mut received = Vec::new();
    while received.len() < 10 {
        received.push(watcher.next(FRAME_DEADLINE).await);
    }

    for round in 1..=CUTS {
        let offsets: Vec<usize> = hubs.hubs.iter().map(|hub| hub.log().len()).collect();
        let ended = cut(&mut admin).await;
        sandbox.step(&format!(
            "cut {round}: ended {ended} notification connections ({} commits pushed so far)",
            received.len()
        ));
        assert_eq!(ended, 2, "each hub had its notification connection");
        wait_back(&hubs, &offsets).await;
        // Commits made since the reconnect reach hub 2's client too.
        let target = received.len() + 10;
        while received.len() < target {
            received.push(watcher.next(FRAME_DEADLINE).await);
        }
    }

    sandbox.step(&format!(
        "a storm: the connections are ended every {STORM_PACE:?} until 20 more commits reach \
         hub 2's client (so hub 2 is deaf most of the time, and reads the feed every 250 ms)"
    ));
    let offsets: Vec<usize> = hubs.hubs.iter().map(|hub| hub.log().len()).collect();
    let (target, deadline) = (received.len() + 20, Instant::now() + CONVERGE);
    let mut storm = 0;
    while received.len() < target {
        storm += cut(&mut admin).await;
        received.extend(watcher.arrived());
        assert!(
            Instant::now() < deadline,
            "during the storm only {} of {target} commits reached hub 2's client within \
             {CONVERGE:?}",
            received.len()
        );
        tokio::time::sleep(STORM_PACE).await;
    }
    wait_back(&hubs, &offsets).await;
    sandbox.step(&format!(
        "the storm ended {storm} connections; both hubs listen again"
    ));

    stop.store(true, Ordering::Relaxed);
    let mut committed = writer.await.expect("the writer");
    sandbox.step(&format!(
        "one more cut, and one commit right after it: no later notification carries it ({} \
         commits so far)",
        committed.len()
    ));
    wait_for(CONVERGE, "both hubs listen after the storm", async || {
        listeners(&mut admin).await == 2
    })
    .await;
    assert_eq!(cut(&mut admin).await, 2);
    let last = "flow/last.txt".to_owned();
    let (entry, answered) = commit_file(&http, &h1, &last, b"the last commit\n").await;
    committed.push((entry.seq, last));
    while received.len() < committed.len() {
        received.push(watcher.next(FRAME_DEADLINE).await);
    }
    let arrived = received.last().expect("frames").at;
    sandbox.step(&format!(
        "the commit after the last cut arrived {:.1} ms after its HTTP answer",
        delay_ms(answered, arrived)
    ));

    // Nothing twice: later frames would be here by now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    received.extend(watcher.arrived());
    let got: Vec<(u64, String)> = received.into_iter().map(|a| (a.seq, a.path)).collect();
    assert_eq!(
        got, committed,
        "hub 2 pushed every commit made on hub 1, once, in seq order"
    );
    let seqs: Vec<u64> = committed.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(
        seqs,
        (1..=committed.len() as u64).collect::<Vec<_>>(),
        "the feed has no gap"
    );
    sandbox.step(&format!(
        "{} commits, {} cuts and a storm: every one pushed by hub 2, in order",
        committed.len(),
        CUTS + 1
    ));
}
