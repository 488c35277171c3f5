//! A child process's output in a file: stdout and stderr of every run
//! appended, a harness line (`=== e2e: … ===`) between runs, read back
//! from where a run began, and its last lines printed when a test fails.
//! A file rather than a pipe: nothing blocks on a full pipe, and the log
//! outlives the process (with `SF_E2E_KEEP`, the test too).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// The log file of one child (or of every run of one restartable child).
#[derive(Debug, Clone)]
pub struct LogFile {
    path: PathBuf,
}

impl LogFile {
    /// A log at `path` (created on first write; the folder must exist).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its size: where the next run's output starts.
    pub fn len(&self) -> u64 {
        fs::metadata(&self.path).map_or(0, |m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a harness line; returns where the next run's output starts.
    pub fn mark(&self, line: &str) -> u64 {
        let mut file = self.open();
        writeln!(file, "=== e2e: {line} ===").expect("write a log file");
        self.len()
    }

    /// Stdout and stderr for a child, both appending to the file.
    pub fn stdio(&self) -> (Stdio, Stdio) {
        let file = self.open();
        let copy = file.try_clone().expect("clone a log file handle");
        (Stdio::from(copy), Stdio::from(file))
    }

    /// Everything from byte `offset` on (lossy UTF-8; empty if unreadable).
    pub fn read_from(&self, offset: u64) -> String {
        let Ok(bytes) = fs::read(&self.path) else {
            return String::new();
        };
        let start = (offset as usize).min(bytes.len());
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }

    /// The whole log.
    pub fn read(&self) -> String {
        self.read_from(0)
    }

    /// The last `lines` lines.
    pub fn tail(&self, lines: usize) -> String {
        let text = self.read();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Prints the last `lines` lines to stderr, framed with `what`.
    pub fn print_tail(&self, what: &str, lines: usize) {
        let tail = self.tail(lines);
        eprintln!(
            "--- last {} lines of {what} ({}) ---\n{tail}\n--- end of {what} ---",
            tail.lines().count(),
            self.path.display(),
        );
    }

    fn open(&self) -> fs::File {
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .unwrap_or_else(|e| panic!("open the log file {}: {e}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_tails() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogFile::new(dir.path().join("child.log"));
        assert!(log.is_empty());
        let first = log.mark("run 1");
        fs::OpenOptions::new()
            .append(true)
            .open(log.path())
            .unwrap()
            .write_all(b"a\nb\n")
            .unwrap();
        let second = log.mark("run 2");
        assert_eq!(log.read_from(first), "a\nb\n=== e2e: run 2 ===\n");
        assert_eq!(log.read_from(second), "");
        assert_eq!(log.tail(2), "b\n=== e2e: run 2 ===");
        assert_eq!(log.tail(10).lines().count(), 4);
    }
}
