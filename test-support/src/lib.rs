//! What the hub's integration tests, the end-to-end harness (`sf-e2e`) and
//! both benchmarks share, written once:
//!
//! - [`hub`]: the `sf-hub` binary as a child process — a command cleared of
//!   every variable the hub reads ([`sf_hub::config::ENV_VARS`]), start-up
//!   read from its log line and `/readyz`, SIGKILL or SIGTERM, its log's
//!   tail printed when a test fails.
//! - [`process`]: any child process that cannot outlive its test.
//! - [`log`]: a child's output in a file, with markers between runs.
//! - [`postgres`]: a private PostgreSQL database per test on the server of
//!   `SF_TEST_DATABASE_URL`, dropped afterwards.
//! - [`s3`]: a real S3 protocol server (`moto_server`) per test process,
//!   a private bucket per test.
//! - [`skip`]: skipping a test whose service is missing — loudly, and
//!   never in CI.
//! - [`metrics`]: a metric's value in the hub's `/metrics` text.
//! - [`ports`]: free TCP ports on loopback.
//! - [`procfs`]: a process's memory (`VmHWM`, `VmRSS`) and other counts
//!   from `/proc/<pid>/status`.
//! - [`content`]: deterministic, incompressible bytes (xorshift64), in
//!   memory or streamed to a file.
//! - [`relay`]: a rate-limited TCP relay on loopback (a slow link).
//! - [`mod@bench`]: the benchmarks' statistics, settings and log summaries.
//!
//! Helpers panic with a message on the failures a test cannot recover from
//! (a folder that cannot be made, a child that cannot be killed); what a
//! caller may want to retry or report (a hub that does not start, a
//! database that cannot be made) is an error.

pub mod bench;
pub mod content;
pub mod hub;
pub mod log;
pub mod metrics;
pub mod ports;
pub mod postgres;
pub mod process;
pub mod procfs;
pub mod relay;
pub mod s3;
pub mod skip;

pub use content::{Content, Noise, random_bytes, write_random_file};
pub use hub::{
    HUB_ENV_VARS, HubChild, PROCESS_DEADLINE, StartError, bearer_client, clear_hub_env, hub_command,
};
pub use log::LogFile;
pub use metrics::metric_value;
pub use ports::{free_port, free_ports};
pub use postgres::{PgDatabase, PgError, PgUrl};
pub use process::Process;
pub use procfs::{peak_rss_kib, rss_kib, status_field, status_value};
pub use skip::{in_ci, unavailable};
