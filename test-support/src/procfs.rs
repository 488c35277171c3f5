//! What `/proc/<pid>/status` says about a process: its peak and current
//! resident memory (`VmHWM`, `VmRSS`, in KiB), its thread count, its
//! context switches. Linux only, like the tests that read it.

use std::io;

/// The number on the `key:` line of a `/proc/<pid>/status` text (`kB`
/// dropped), if there is one.
pub fn status_field(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The `key:` number of `/proc/<pid>/status`.
pub fn status_value(pid: u32, key: &str) -> io::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("read {path}: {e}")))?;
    status_field(&status, key).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("no number for {key} in {path}"),
        )
    })
}

/// Peak resident set size so far (`VmHWM`), in KiB.
pub fn peak_rss_kib(pid: u32) -> io::Result<u64> {
    status_value(pid, "VmHWM")
}

/// Resident set size now (`VmRSS`), in KiB.
pub fn rss_kib(pid: u32) -> io::Result<u64> {
    status_value(pid, "VmRSS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields() {
        let status = "Name:\tsf-hub\nVmHWM:\t   20480 kB\nVmRSS:\t 1024 kB\nThreads:\t7\n";
        assert_eq!(status_field(status, "VmHWM"), Some(20480));
        assert_eq!(status_field(status, "VmRSS"), Some(1024));
        assert_eq!(status_field(status, "Threads"), Some(7));
        assert_eq!(status_field(status, "Vm"), None);
        assert_eq!(status_field(status, "Name"), None);
    }

    #[test]
    fn this_process() {
        let pid = std::process::id();
        let now = rss_kib(pid).unwrap();
        assert!(now > 0);
        assert!(peak_rss_kib(pid).unwrap() >= now);
    }
}
