//! End-to-end harness for synced-folder: the real `sf-hub` and `sf-agent`
//! binaries run as child processes on 127.0.0.1, each logging to its own
//! file, killed (SIGKILL) when dropped, and the last lines of every log
//! printed when a test fails.
//!
//! - [`Hub`]: starts on a data dir, can be SIGKILLed and restarted on the
//!   same data dir and port (so running agents reconnect).
//! - [`Agent`]: one folder, its own `--state-home`; SIGKILL, SIGTERM,
//!   restart with the same state.
//! - [`wait_converged`]: the one assertion every scenario uses — polls until
//!   every folder and the hub hold the same files (and folders the same
//!   directories), or says exactly what differs.
//!
//! The binaries are the real ones from the target directory next to the
//! test executable; under Cargo they are brought up to date first (see
//! [`binary`]).
//!
//! Layout: [`Hub`] (`hub.rs`) and [`Agent`] (`agent.rs`) are the processes,
//! [`Sandbox`] (`sandbox.rs`) the test's folder and the children's shared
//! knobs, `converge.rs` the convergence checks, `hub_queries.rs` the hub
//! queries, `files.rs` the file helpers, [`tokens`] the hubs' tokens and
//! CAs, `access.rs` the token commands and `sf-agent status`, `cli.rs` the
//! agent's other commands as a user runs them ([`agent_cli`]), [`services`]
//! what the deployment checks start (PostgreSQL, a hub with a given environment, Prometheus),
//! [`SharedHubs`] (`shared_hubs.rs`) several hubs on one PostgreSQL
//! database and one S3 bucket.
//! What the hub's own tests and the benchmarks share with this harness —
//! the hub child process, PostgreSQL per test, ports, `/proc`, test
//! content — is in `sf-test-support`.
//!
//! Every helper that walks folders uses `tokio::task::block_in_place`, so
//! the tests must run on the multi-thread runtime
//! (`#[tokio::test(flavor = "multi_thread")]`).
//!
//! Environment knobs: `SF_E2E_LOG_LINES` (log lines printed per process on
//! failure, default 40), `SF_E2E_RUST_LOG` (the children's `RUST_LOG`,
//! default `info`), `SF_E2E_KEEP` (keep the sandbox, logs and state
//! homes), `SF_E2E_NO_BUILD` and `SF_E2E_BIN_DIR` (see [`binary`]).

mod access;
mod agent;
mod bins;
mod cli;
mod converge;
mod files;
mod hub;
mod hub_queries;
mod pki;
mod sandbox;
pub mod scenario;
pub mod services;
mod shared_hubs;
pub mod tokens;

pub use access::{agent_status, create_token, hub_token_command, write_token_file};
pub use agent::{Agent, AgentOptions, TwoAgents};
pub use bins::binary;
pub use cli::{CliOutput, agent_cli};
pub use converge::{folder_dirs, folder_files, wait_converged, wait_converged_except, wait_until};
pub use files::{
    file_sha256, is_conflict_copy, is_executable, part_files, read_file, set_mode, sha256,
    trashed_copies, write_file,
};
pub use hub::{Hub, HubOptions};
pub use hub_queries::{hub_contents, hub_history, hub_index, wait_hub};
pub use pki::TestPki;
pub use sandbox::Sandbox;
pub use sf_protocol::Sha256Hex;
pub use sf_test_support::s3::TestBucket;
pub use sf_test_support::{
    Noise, PROCESS_DEADLINE, clear_hub_env, random_bytes, write_random_file,
};
pub use shared_hubs::SharedHubs;
