//! The temporary directory one test works in (hub data, folders, staging
//! areas), the test's timestamped progress lines, and the environment knobs
//! every child process of the harness shares: `SF_E2E_RUST_LOG`,
//! `SF_E2E_LOG_LINES`, `SF_E2E_KEEP`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The children's `RUST_LOG` (`SF_E2E_RUST_LOG`, default `info`).
pub(crate) fn child_rust_log() -> String {
    std::env::var("SF_E2E_RUST_LOG").unwrap_or_else(|_| "info".to_owned())
}

/// Log lines printed per process when a test fails (`SF_E2E_LOG_LINES`,
/// default 40).
pub(crate) fn log_lines_on_failure() -> usize {
    std::env::var("SF_E2E_LOG_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

/// With `SF_E2E_KEEP` set, tells the temp dir not to delete itself.
pub(crate) fn keep_if_asked(dir: &mut tempfile::TempDir) {
    if std::env::var_os("SF_E2E_KEEP").is_some() {
        dir.disable_cleanup(true);
        eprintln!("kept {}", dir.path().display());
    }
}

/// A temporary directory for one test: hub data, folders, staging areas.
/// Also timestamps the test's progress messages.
pub struct Sandbox {
    root: Option<tempfile::TempDir>,
    path: PathBuf,
    started: Instant,
}

impl Sandbox {
    pub fn new(test: &str) -> Self {
        let root = tempfile::Builder::new()
            .prefix(&format!("sf-e2e-{test}-"))
            .tempdir()
            .expect("create the sandbox");
        let path = root.path().to_path_buf();
        eprintln!("[{test}] sandbox {}", path.display());
        Self {
            root: Some(root),
            path,
            started: Instant::now(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `<sandbox>/<name>`, created (with parents) if missing.
    pub fn dir(&self, name: &str) -> PathBuf {
        let dir = self.path.join(name);
        fs::create_dir_all(&dir).expect("create a sandbox folder");
        dir
    }

    /// Prints a progress line with the time since the test started.
    pub fn step(&self, what: &str) {
        eprintln!("[{:>7.2}s] {what}", self.started.elapsed().as_secs_f64());
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if std::env::var_os("SF_E2E_KEEP").is_some()
            && let Some(root) = self.root.take()
        {
            eprintln!("kept the sandbox {}", root.keep().display());
        }
    }
}
