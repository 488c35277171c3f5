//! The whole system at random: for each seed, a script of user operations
//! and faults runs against a real hub and three real agents, then every
//! invariant is checked (see `sf_e2e::scenario`). CI runs the fixed seeds
//! below; `replay` runs the seed in `SF_SCENARIO_SEED`; the soak is
//! `cargo bench -p sf-e2e --bench scenarios -- --seeds N`.

use sf_e2e::scenario::{self, Shape};

/// Seeds CI runs; every seed that once found a bug stays here, with what it
/// found:
/// - 2: the agent stopped when its folder's disk filled up (SQLite's "database
///   or disk is full" was fatal); it now waits for room and carries on.
/// - 1 to 6: `sf-agent status` showed "hub unreachable" as the last error
///   for ever after the hub came back; it is now cleared by the next cycle
///   that succeeds.
const SEEDS: &[u64] = &[1, 2, 3, 4, 5, 6];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fixed_seeds_keep_every_invariant() {
    let mut failures = Vec::new();
    for &seed in SEEDS {
        match scenario::run(seed, Shape::for_seed(seed)).await {
            Ok(summary) => eprintln!("seed {seed}: {summary:?}"),
            Err(failure) => failures.push(failure),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "replays the seed in SF_SCENARIO_SEED"]
async fn replay() {
    let seed: u64 = std::env::var("SF_SCENARIO_SEED")
        .expect("set SF_SCENARIO_SEED to the seed to replay")
        .parse()
        .expect("SF_SCENARIO_SEED is a number");
    if let Err(failure) = scenario::run(seed, Shape::for_seed(seed)).await {
        panic!("{failure}");
    }
}
