//! What the deployment checks need besides [`crate::Hub`] and
//! [`crate::Agent`]: where the repository's deployment files are
//! ([`repo_root`]), a private PostgreSQL database ([`PgDatabase`], from
//! `sf-test-support`), a hub started with a chosen environment
//! ([`HubProcess`]: on PostgreSQL, or with a compose service's variables),
//! a real Prometheus ([`Prometheus`]) and the Grafana dashboards' queries
//! ([`load_dashboards`], [`dashboard_targets`]).
//!
//! A service that is not installed skips the test with a loud line, except
//! in CI (`CI` set), where it fails it: see [`unavailable`].

mod dashboards;
mod hub_process;
mod prometheus;

use std::fs;
use std::path::{Path, PathBuf};

pub use dashboards::{DashboardTarget, dashboard_panels, dashboard_targets, load_dashboards};
pub use hub_process::HubProcess;
pub use prometheus::Prometheus;
pub use sf_test_support::{PgDatabase, PgUrl, free_port, in_ci, unavailable};

/// The repository whose `dashboards/` and `compose/` are checked:
/// `SF_REPO_ROOT`, or this workspace. Point it at a modified copy to see a
/// check fail.
pub fn repo_root() -> PathBuf {
    match std::env::var_os("SF_REPO_ROOT") {
        Some(root) => PathBuf::from(root),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the e2e crate lives in the workspace")
            .to_path_buf(),
    }
}

/// `name` as an executable in a folder of `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            fs::metadata(candidate).is_ok_and(|m| {
                m.is_file()
                    && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            })
        })
}
