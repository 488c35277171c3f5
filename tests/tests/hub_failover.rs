//! Agents that outlive a hub (issue 13): two `sf-hub` processes share one
//! PostgreSQL database and one S3 bucket (the chunk store, on
//! `moto_server`), each with a data dir of its own, so they report the same
//! hub identity and the same seqs. Agents A and B are given both (`--hub
//! hub1,hub2`) and sync through hub 1; agent C is given hub 2 only, with
//! the default scan interval (60 s), so what A and B commit through hub 1
//! reaches C by hub 2's push. Hub 1 is SIGKILLed while B uploads a large
//! file (some of its chunks already in the bucket) and has small files
//! waiting, and while A's files are arriving at B. A and B must move to
//! hub 2 and carry on from their last applied seq (not merge as with a new
//! hub), and every file written on any agent, before and after the kill,
//! must end on the hub and every agent.
//!
//! The failover time (from the SIGKILL to B's first answer from hub 2, and
//! to B's first commit through it) is printed, not asserted.
//!
//! Needs `SF_TEST_DATABASE_URL` (PostgreSQL) and `moto_server`; without
//! them the test says `skipped` loudly (and fails in CI).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sf_e2e::*;

const TEST: &str = "hub_failover";
const CONVERGE: Duration = Duration::from_secs(180);
/// The hang guard while C can learn of hub 1's commits only by hub 2's
/// push: well under C's first periodic scan (60 s after it starts).
const PUSHED: Duration = Duration::from_secs(30);
/// A hang guard for the failover itself, not a speed check.
const FAILOVER_DEADLINE: Duration = Duration::from_secs(90);
/// Several packs of chunks (about 1 MiB each): still uploading when hub 1 dies.
const BIG: u64 = 32 << 20;
/// What the agent logs on leaving a hub, and on the first answer of the next.
const SWITCHING: &str = "switching to the next hub";
const ANSWERS: &str = "the hub answers";
/// What the agent logs when a hub is another hub than the folder's.
const OTHER_HUB: &str = "is not the one this folder last synced with";

/// The bucket keys of the chunks `file` is cut into.
fn chunk_keys(file: &Path) -> BTreeSet<String> {
    let file = std::fs::File::open(file).expect("open the staged file");
    sf_protocol::chunking::Chunker::new(std::io::BufReader::new(file))
        .map(|chunk| TestBucket::chunk_key(&chunk.expect("read the staged file").hash.to_hex()))
        .collect()
}

/// How many of `keys` the shared bucket holds.
async fn stored(bucket: &TestBucket, keys: &BTreeSet<String>) -> usize {
    let listed = bucket.keys("chunks/").await;
    listed.iter().filter(|key| keys.contains(*key)).count()
}

/// The hub's feed after `since`, one page: its entries' (seq, origin) and
/// its head.
async fn feed_after(
    http: &reqwest::Client,
    hub: &str,
    since: u64,
) -> Result<(Vec<(u64, String)>, u64), String> {
    let url = format!("{hub}/v1/changes?since={since}&limit=1000");
    let resp = http.get(&url).send().await.map_err(|e| e.to_string())?;
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    let page = sf_protocol::v1::decode_changes(&body).map_err(|e| format!("{url}: {e}"))?;
    let entries = page
        .changes
        .into_iter()
        .map(|e| (e.seq, e.origin))
        .collect();
    Ok((entries, page.head))
}

/// Writes `content` at `rel` in `dir` and notes it in `ledger`.
fn write_noted(ledger: &mut BTreeMap<String, Sha256Hex>, dir: &Path, rel: &str, content: &[u8]) {
    write_file(&dir.join(rel), content);
    ledger.insert(rel.to_owned(), sha256(content));
}

/// What a log holds past `offset` (a length it had earlier).
fn after(log: &str, offset: usize) -> &str {
    log.get(offset..).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_move_to_the_next_hub_when_theirs_is_killed() {
    let sandbox = Sandbox::new("hub-failover");
    let Some(mut hubs) = SharedHubs::start(TEST, &sandbox, 2).await else {
        return;
    };
    let (h1, h2) = (hubs.url(1), hubs.url(2));
    let token = hubs.token().to_owned();
    let http = sf_test_support::bearer_client(&token);

    let both = format!("{h1},{h2}");
    let token_file = hubs.token_file(&sandbox.dir("tokens"));
    let token_args = ["--token-file", token_file.to_str().unwrap()];
    let (a_dir, b_dir, c_dir) = (sandbox.dir("a"), sandbox.dir("b"), sandbox.dir("c"));
    let mut a = Agent::start(&both, &a_dir, "a", &token_args).await;
    let mut b = Agent::start(&both, &b_dir, "b", &token_args).await;
    // The default scan interval: C, on hub 2 alone, learns in time of what
    // A and B commit through hub 1 only by hub 2's push.
    let mut c = Agent::start(&h2, &c_dir, "c", &[]).await;
    assert!(
        c.log_of_run().contains("scan_every=60s"),
        "C scans every 60 s:\n{}",
        c.log_of_run()
    );
    let all = [a_dir.as_path(), b_dir.as_path(), c_dir.as_path()];

    sandbox.step("both hubs up: A and B write, everything converges through either hub");
    let mut ledger = BTreeMap::new();
    for i in 0..10 {
        write_noted(
            &mut ledger,
            &a_dir,
            &format!("before/a{i}.txt"),
            format!("a {i}\n").as_bytes(),
        );
        write_noted(
            &mut ledger,
            &b_dir,
            &format!("before/b{i}.txt"),
            format!("b {i}\n").as_bytes(),
        );
    }
    wait_converged(&all, &h2, PUSHED)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        hub_index(&h1).await.unwrap(),
        hub_index(&h2).await.unwrap(),
        "both hubs serve the same database"
    );

    sandbox.step("A writes a file every 40 ms; B uploads a large file");
    let writer_dir: PathBuf = a_dir.clone();
    let a_writer = tokio::spawn(async move {
        let mut written = BTreeMap::new();
        for i in 0..100 {
            let content = random_bytes(500 + i, 3000 + i as usize);
            write_noted(
                &mut written,
                &writer_dir,
                &format!("flow/a{i:03}.bin"),
                &content,
            );
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        written
    });
    wait_until(CONVERGE, "A's files arrive at B", || {
        b_dir.join("flow/a002.bin").exists()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let staged = sandbox.dir("staging").join("big.bin");
    let big_sha = tokio::task::block_in_place(|| write_random_file(&staged, 77, BIG));
    let big_chunks = tokio::task::block_in_place(|| chunk_keys(&staged));
    std::fs::rename(&staged, b_dir.join("big.bin")).unwrap();
    ledger.insert("big.bin".to_owned(), big_sha);
    let mid_upload = Instant::now() + CONVERGE;
    while stored(&hubs.bucket, &big_chunks).await < 3 {
        assert!(
            Instant::now() < mid_upload,
            "the bucket did not receive chunks of big.bin within {CONVERGE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Small files B has not sent yet when the hub dies.
    for i in 0..20 {
        write_noted(
            &mut ledger,
            &b_dir,
            &format!("pending/b{i:02}.txt"),
            format!("pending {i}\n").as_bytes(),
        );
    }
    let big_committed = hub_index(&h1)
        .await
        .is_ok_and(|index| index.contains_key("big.bin"));
    let (a_offset, b_offset) = (a.log().len(), b.log().len());

    let uploaded = stored(&hubs.bucket, &big_chunks).await;
    hubs.hubs[0].kill();
    let killed = Instant::now();
    sandbox.step(&format!(
        "hub 1 SIGKILLed (about {uploaded} of big.bin's {} chunks in the bucket, big.bin \
         committed: {big_committed})",
        big_chunks.len()
    ));

    // From now on only hub 2 can commit: B's first entry above this head
    // went through it (a commit hub 1 had under way either landed before
    // the kill, or never).
    let (_, head_at_kill) = feed_after(&http, &h2, 0).await.unwrap();
    let mut b_answered = None;
    let mut b_committed = None;
    let mut a_answered = None;
    while b_answered.is_none() || b_committed.is_none() || a_answered.is_none() {
        assert!(
            killed.elapsed() < FAILOVER_DEADLINE,
            "no failover within {FAILOVER_DEADLINE:?}: B answered {b_answered:?}, B committed \
             {b_committed:?}, A answered {a_answered:?}"
        );
        if b_answered.is_none() && after(&b.log(), b_offset).contains(ANSWERS) {
            b_answered = Some(killed.elapsed());
        }
        if a_answered.is_none() && after(&a.log(), a_offset).contains(ANSWERS) {
            a_answered = Some(killed.elapsed());
        }
        if b_committed.is_none()
            && let Ok((entries, _)) = feed_after(&http, &h2, head_at_kill).await
            && entries.iter().any(|(_, origin)| origin == "b")
        {
            b_committed = Some(killed.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (b_answered, b_committed, a_answered) = (
        b_answered.unwrap(),
        b_committed.unwrap(),
        a_answered.unwrap(),
    );
    sandbox.step(&format!(
        "FAILOVER: B's first answer from hub 2 {b_answered:?} after the SIGKILL, its first commit \
         through hub 2 {b_committed:?}; A's first answer {a_answered:?}"
    ));

    sandbox.step("B writes and edits after the kill; A's writer goes on");
    for i in 0..20 {
        write_noted(
            &mut ledger,
            &b_dir,
            &format!("after/b{i:02}.txt"),
            format!("after {i}\n").as_bytes(),
        );
    }
    write_noted(
        &mut ledger,
        &b_dir,
        "before/b0.txt",
        b"b 0, edited after the kill\n",
    );
    write_noted(
        &mut ledger,
        &a_dir,
        "before/a0.txt",
        b"a 0, edited after the kill\n",
    );
    ledger.extend(a_writer.await.expect("A's writer"));

    sandbox.step("wait for convergence through hub 2");
    wait_converged(&all, &h2, CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for dir in all {
        assert_eq!(
            folder_files(dir),
            ledger,
            "{} holds every file written, as last written, and nothing else",
            dir.display()
        );
    }
    let index = hub_index(&h2).await.unwrap();
    assert_eq!(index.len(), ledger.len(), "the hub holds every file");

    for agent in [&a, &b] {
        let log = agent.log();
        let switched = format!("to={h2}");
        assert!(
            after(
                &log,
                if agent.name() == "a" {
                    a_offset
                } else {
                    b_offset
                }
            )
            .lines()
            .any(|line| line.contains(SWITCHING) && line.contains(&switched)),
            "agent {} did not log its move to hub 2",
            agent.name()
        );
        // The same database, the same hub: no merge as with a new one.
        assert!(
            !log.contains(OTHER_HUB),
            "agent {} took hub 2 for another hub",
            agent.name()
        );
    }
    assert!(
        !c.log().contains(SWITCHING),
        "C has one hub: it never moves"
    );
    let status = agent_status(&b_dir);
    assert!(status.contains(&format!("hub:      {h2}")), "{status}");

    for agent in [&mut a, &mut b, &mut c] {
        assert!(
            agent.is_running(),
            "agent {} is still running",
            agent.name()
        );
        assert!(agent.stop().await.success());
    }
    sandbox.step(&format!(
        "done: {} files; failover: first answer {b_answered:?}, first commit {b_committed:?}",
        ledger.len()
    ));
}
