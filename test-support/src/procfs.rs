//! What `/proc/<pid>/status` says about a process: its peak and current
//! resident memory (`VmHWM`, `VmRSS`, in KiB), its thread count, its
//! context switches; and CPU time, of a process (`/proc/<pid>/stat`) and
//! of the whole machine (`/proc/stat`). Linux only, like the tests that
//! read it.

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

/// Clock ticks per second of `/proc`'s CPU times (`USER_HZ`: 100 on every
/// Linux architecture this project runs on).
const USER_HZ: f64 = 100.0;

/// User plus system CPU seconds of a `/proc/<pid>/stat` text (all its
/// threads), if it is one.
pub fn stat_cpu_seconds(stat: &str) -> Option<f64> {
    // The command name (field 2) may hold spaces and parentheses: the
    // fields after it follow the last `)`. utime and stime are fields 14
    // and 15, so the 12th and 13th after the name.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user + system) as f64 / USER_HZ)
}

/// CPU seconds (user plus system, all threads) process `pid` has used.
pub fn cpu_seconds(pid: u32) -> io::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("read {path}: {e}")))?;
    stat_cpu_seconds(&stat).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("no CPU times in {path}"),
        )
    })
}

/// The machine's CPU seconds since boot, summed over every CPU: `(busy,
/// total)`, where busy is all but idle and iowait.
pub fn machine_cpu_seconds() -> io::Result<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    machine_cpu_of(&stat)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no `cpu` line in /proc/stat"))
}

/// [`machine_cpu_seconds`] of a `/proc/stat` text.
pub fn machine_cpu_of(stat: &str) -> Option<(f64, f64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    // user nice system idle iowait irq softirq steal (guest time is already
    // counted in user).
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    let total: u64 = ticks.iter().sum();
    let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
    Some(((total - idle) as f64 / USER_HZ, total as f64 / USER_HZ))
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
    fn cpu_times() {
        let stat = "4242 (sf hub (x)) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 75 0 0 20 0 9";
        assert_eq!(stat_cpu_seconds(stat), Some(3.25));
        assert_eq!(stat_cpu_seconds("4242 (short) S 1"), None);
        let machine = "cpu  100 5 50 800 45 0 0 0 0 0\ncpu0 50 2 25 400 20 0 0 0 0 0\n";
        assert_eq!(machine_cpu_of(machine), Some((1.55, 10.0)));
        assert!(cpu_seconds(std::process::id()).unwrap() >= 0.0);
        let (busy, total) = machine_cpu_seconds().unwrap();
        assert!(busy <= total && total > 0.0);
    }

    #[test]
    fn this_process() {
        let pid = std::process::id();
        let now = rss_kib(pid).unwrap();
        assert!(now > 0);
        assert!(peak_rss_kib(pid).unwrap() >= now);
    }
}
