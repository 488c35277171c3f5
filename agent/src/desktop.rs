//! Desktop notifications: a conflict copy was made, or the agent stopped
//! on an error. On Linux the agent runs `notify-send` when it is installed
//! (no library is linked); where it is missing, or without the
//! `desktop-notify` feature, or with `--no-notify` (`notify = false`),
//! nothing happens. A notification never holds up syncing: the program
//! runs on its own and is not waited for beyond being reaped.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Sends notifications, or does nothing. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    /// The program to run; `None` when notifications are off.
    program: Option<PathBuf>,
    /// Set once the program turned out to be missing: not tried again.
    missing: Arc<AtomicBool>,
}

impl Notifier {
    /// Notifications as `enabled` says and as this build and system allow.
    pub fn new(enabled: bool) -> Self {
        let program = (enabled && cfg!(all(feature = "desktop-notify", target_os = "linux")))
            .then(|| PathBuf::from("notify-send"));
        Notifier {
            program,
            missing: Arc::default(),
        }
    }

    /// No notifications.
    pub fn off() -> Self {
        Self::default()
    }

    /// Notifications through `program` (tests: a script that records them).
    #[cfg(test)]
    pub fn with_program(program: PathBuf) -> Self {
        Notifier {
            program: Some(program),
            missing: Arc::default(),
        }
    }

    /// Shows `title` with `body`; returns at once.
    pub fn send(&self, title: &str, body: &str) {
        let Some(program) = &self.program else {
            return;
        };
        if self.missing.load(Ordering::Relaxed) {
            return;
        }
        let spawned = std::process::Command::new(program)
            .args(["--app-name=sf-agent", "--icon=folder-sync", title, body])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        match spawned {
            Ok(mut child) => {
                // Reaped off the async threads; notify-send returns at once.
                std::thread::spawn(move || child.wait());
            }
            Err(err) => {
                self.missing.store(true, Ordering::Relaxed);
                tracing::debug!(error = %err, program = %program.display(), "no desktop notifications");
            }
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_notification_runs_the_program_and_a_missing_one_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let script = dir.path().join("notify");
        std::fs::write(
            &script,
            format!("#!/bin/sh\nprintf '%s|' \"$@\" >> '{}'\n", log.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();

        Notifier::with_program(script).send("Conflict", "a.txt was edited on both sides");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(&log).unwrap_or_default().is_empty() {
            assert!(Instant::now() < deadline, "the program did not run");
            std::thread::sleep(Duration::from_millis(20));
        }
        let logged = std::fs::read_to_string(&log).unwrap();
        assert!(
            logged.ends_with("Conflict|a.txt was edited on both sides|"),
            "{logged}"
        );

        let missing = Notifier::with_program(dir.path().join("not-there"));
        missing.send("a", "b");
        assert!(missing.missing.load(Ordering::Relaxed));
        missing.send("a", "b");
        Notifier::off().send("a", "b");
        Notifier::new(false).send("a", "b");
    }
}
