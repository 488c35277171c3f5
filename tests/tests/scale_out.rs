//! Several hubs serving one set of files (issue 13, scale out), through the
//! real `sf-hub` and `sf-agent` binaries: hubs on one PostgreSQL database
//! and one S3 bucket (`moto_server`), started by [`SharedHubs`].
//!
//! - `three_hubs.rs`: three hubs, three agents each on a different hub
//!   only, taking turns to change their folders (small and large files,
//!   folders, a rename, a delete, a folder moved); every folder converges
//!   through cross-hub push, with the default scan interval, and equals
//!   every hub's view.
//! - `push_latency.rs`: commits on hub 1 through the v1 HTTP API, watched
//!   on hub 2's WebSocket; every commit arrives once, in seq order, and
//!   the delay (p50/p99) is printed.
//! - `listener_cut.rs`: the database ends every hub's notification
//!   connection (`pg_terminate_backend`) while commits keep coming; hub
//!   2's WebSocket client still gets every commit, once, in order, and the
//!   hubs log the loss and the reconnection.
//! - `sqlite_refused.rs`: a second hub on one SQLite data dir is refused
//!   with a clear message while the first goes on serving.
//!
//! (A hub SIGKILLed while its agents move to another, on the same S3
//! store, is `hub_failover.rs`.)
//!
//! Needs `SF_TEST_DATABASE_URL` (PostgreSQL) and `moto_server` (`pip
//! install 'moto[server]'`) for all but the SQLite test; without them a
//! test says `skipped` loudly, and fails in CI. Waits are hang guards,
//! never speed checks: figures are printed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sf_e2e::*;

// In a folder of their own, so cargo does not take them for test targets.
#[path = "scale_out/feed.rs"]
mod feed;
#[path = "scale_out/listener_cut.rs"]
mod listener_cut;
#[path = "scale_out/push_latency.rs"]
mod push_latency;
#[path = "scale_out/sqlite_refused.rs"]
mod sqlite_refused;
#[path = "scale_out/three_hubs.rs"]
mod three_hubs;

use feed::*;

/// A hang guard for what takes seconds when it works.
const CONVERGE: Duration = Duration::from_secs(30);

/// Polls `check` every 50 ms until it holds; panics after `within`.
async fn wait_for(within: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
