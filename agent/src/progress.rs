//! Progress reporting for big batches of transfers (e.g. the first sync of a
//! big folder): files, bytes, rate and ETA.
//!
//! This module owns:
//! - [`Progress`]: one batch of transfers (the uploads and downloads planned
//!   in one sync cycle). It picks its output once, at [`Progress::start`]:
//!   - **bar**: an indicatif bar on stderr (files done/total, bytes
//!     done/total, rate, ETA), when stderr is a terminal *and* log lines are
//!     routed around the bar (see below);
//!   - **log lines** otherwise: one `info` line at start, a `progress` line
//!     at most every [`LOG_INTERVAL`], and one line at finish with totals and
//!     elapsed time.
//! - [`worth_showing`]: whether a batch is big enough for either (small
//!   batches get no progress output at all, so there is no spam).
//! - [`log_writer`]: the `tracing` writer that keeps log lines and the bar
//!   apart.
//!
//! # Log lines and the bar
//! A log line written to stderr while a bar is drawn there garbles both. The
//! rule chosen: every log line goes through [`log_writer`], which writes it
//! inside the active bar's [`ProgressBar::suspend`] (the bar is cleared, the
//! line printed, the bar redrawn below it). A bar is drawn only if that
//! writer has been created (installed in `main` with
//! `tracing_subscriber::fmt().with_writer(progress::log_writer())`);
//! without it — in tests, or a program embedding the agent with its own
//! subscriber — progress falls back to log lines, so nothing garbles.
//! At most one bar is drawn per process; a second concurrent batch (several
//! engines in one process) reports through log lines.
//!
//! All [`Progress`] methods take `&self`, never block beyond a short
//! uncontended lock inside indicatif, and hold no lock across an `.await`:
//! call them from async code directly (share through `Arc` across tasks).

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing_subscriber::fmt::MakeWriter;

/// A batch with at least this many files is worth a progress display.
pub const MIN_FILES: u64 = 100;
/// A batch with at least this many bytes (64 MiB) is worth a progress
/// display.
pub const MIN_BYTES: u64 = 64 << 20;
/// Least time between two periodic progress log lines.
pub const LOG_INTERVAL: Duration = Duration::from_secs(5);

/// How often the bar redraws on its own, so rate, ETA and elapsed time move
/// during one long transfer too.
const TICK: Duration = Duration::from_millis(250);

/// The bar currently on stderr, if any: [`log_writer`] suspends it around
/// each log line.
static ACTIVE_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);
/// Set once [`log_writer`] was called: only then may a bar be drawn.
static LOGS_ROUTED: AtomicBool = AtomicBool::new(false);

/// Whether a batch of `files` files totalling `bytes` bytes is big enough to
/// report progress for: at least [`MIN_FILES`] files or [`MIN_BYTES`] bytes.
pub fn worth_showing(files: u64, bytes: u64) -> bool {
    files >= MIN_FILES || bytes >= MIN_BYTES
}

/// Progress of one batch of transfers. Create it with [`Progress::start`],
/// report with [`Progress::file_done`] / [`Progress::add_bytes`], end it with
/// [`Progress::finish`]. Dropping it unfinished (the cycle failed or was
/// stopped) clears the bar and logs where the batch stopped, not a
/// "finished" line.
#[derive(Debug)]
pub struct Progress {
    label: String,
    /// Totals can change while the batch runs: a full scan learns its size
    /// as it walks (see [`Progress::adjust_total`]).
    files_total: AtomicU64,
    bytes_total: AtomicU64,
    /// Whether the bar's position counts bytes (else files): fixed at start.
    counts_bytes: bool,
    files_done: AtomicU64,
    bytes_done: AtomicU64,
    started: Instant,
    output: Output,
    closed: bool,
}

#[derive(Debug)]
enum Output {
    /// An indicatif bar on stderr, registered in [`ACTIVE_BAR`]. Its
    /// position counts bytes, or files when the batch has no bytes at all.
    Bar(ProgressBar),
    /// Periodic `info` lines.
    Log {
        interval: Duration,
        /// Milliseconds after `started` of the last progress line (0 at
        /// start).
        last_ms: AtomicU64,
        /// Periodic progress lines emitted so far (not counting the start
        /// and finish lines).
        lines: AtomicU64,
    },
}

impl Progress {
    /// Starts reporting a batch of `files` transfers totalling `bytes`
    /// bytes; `label` names it in the output (e.g. `"first sync"`). Draws a
    /// bar if stderr is a terminal, [`log_writer`] is installed and no other
    /// bar is shown; otherwise logs every [`LOG_INTERVAL`]. Logs a start line
    /// either way.
    pub fn start(label: &str, files: u64, bytes: u64) -> Progress {
        if LOGS_ROUTED.load(Ordering::Relaxed)
            && io::stderr().is_terminal()
            && let Some(bar) = claim_bar(label, files, bytes, ProgressDrawTarget::stderr())
        {
            return Progress::new(label, files, bytes, Output::Bar(bar));
        }
        Progress::logging(label, files, bytes, LOG_INTERVAL)
    }

    /// Like [`Progress::start`] but always reports through log lines, at
    /// most one periodic line per `interval` (zero: one per update).
    pub fn logging(label: &str, files: u64, bytes: u64, interval: Duration) -> Progress {
        Progress::new(
            label,
            files,
            bytes,
            Output::Log {
                interval,
                last_ms: AtomicU64::new(0),
                lines: AtomicU64::new(0),
            },
        )
    }

    fn new(label: &str, files: u64, bytes: u64, output: Output) -> Progress {
        tracing::info!(
            files_total = files,
            bytes_total = bytes,
            "{label}: transferring {files} files, {}",
            format_bytes(bytes)
        );
        Progress {
            label: label.to_owned(),
            files_total: AtomicU64::new(files),
            bytes_total: AtomicU64::new(bytes),
            counts_bytes: bytes > 0,
            files_done: AtomicU64::new(0),
            bytes_done: AtomicU64::new(0),
            started: Instant::now(),
            output,
            closed: false,
        }
    }

    /// One file of the batch is done; `bytes` are its bytes not already
    /// reported through [`Progress::add_bytes`] (its whole size if
    /// `add_bytes` was never called for it).
    pub fn file_done(&self, bytes: u64) {
        let files_done = self.files_done.fetch_add(1, Ordering::Relaxed) + 1;
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
        match &self.output {
            Output::Bar(bar) => {
                if self.counts_bytes {
                    bar.inc(bytes);
                    bar.set_message(files_message(files_done, self.files_total()));
                } else {
                    bar.inc(1);
                }
            }
            Output::Log { .. } => self.maybe_log(),
        }
    }

    /// Partial progress inside a big file: `n` more bytes moved. Count
    /// these bytes once: leave them out of the later
    /// [`Progress::file_done`] for that file.
    pub fn add_bytes(&self, n: u64) {
        self.bytes_done.fetch_add(n, Ordering::Relaxed);
        match &self.output {
            Output::Bar(bar) => {
                if self.counts_bytes {
                    bar.inc(n);
                }
            }
            Output::Log { .. } => self.maybe_log(),
        }
    }

    /// Changes the batch's totals by `files` and `bytes` (negative: fewer),
    /// never below zero: for a batch whose size is estimated at the start
    /// and corrected as it goes.
    pub fn adjust_total(&self, files: i64, bytes: i64) {
        let adjust = |total: &AtomicU64, delta: i64| {
            let _ = total.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
                Some(now.saturating_add_signed(delta))
            });
            total.load(Ordering::Relaxed)
        };
        let files_total = adjust(&self.files_total, files);
        let bytes_total = adjust(&self.bytes_total, bytes);
        if let Output::Bar(bar) = &self.output {
            if self.counts_bytes {
                bar.set_length(bytes_total);
                bar.set_message(files_message(
                    self.files_done.load(Ordering::Relaxed),
                    files_total,
                ));
            } else {
                bar.set_length(files_total);
            }
        }
    }

    fn files_total(&self) -> u64 {
        self.files_total.load(Ordering::Relaxed)
    }

    fn bytes_total(&self) -> u64 {
        self.bytes_total.load(Ordering::Relaxed)
    }

    /// Ends the batch: clears the bar and logs totals, elapsed time and the
    /// average rate.
    pub fn finish(mut self) {
        self.close();
        let elapsed = self.started.elapsed();
        let files_done = self.files_done.load(Ordering::Relaxed);
        let bytes_done = self.bytes_done.load(Ordering::Relaxed);
        tracing::info!(
            files_done,
            files_total = self.files_total(),
            bytes_done,
            bytes_total = self.bytes_total(),
            elapsed = %format_duration(elapsed),
            rate = %format_rate(bytes_done, elapsed),
            "{}: finished, {files_done} files, {} in {}",
            self.label,
            format_bytes(bytes_done),
            format_duration(elapsed),
        );
    }

    /// Clears the bar and gives up the bar slot; idempotent.
    fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        if let Output::Bar(bar) = &self.output {
            bar.finish_and_clear();
            *ACTIVE_BAR.lock().unwrap_or_else(PoisonError::into_inner) = None;
        }
    }

    /// Logs a progress line if the interval since the last one has passed.
    /// Only one of several concurrent callers wins a given slot.
    fn maybe_log(&self) {
        let Output::Log {
            interval,
            last_ms,
            lines,
        } = &self.output
        else {
            return;
        };
        let elapsed = self.started.elapsed();
        let now_ms = millis(elapsed);
        let last = last_ms.load(Ordering::Relaxed);
        if !should_log(now_ms, last, millis(*interval)) {
            return;
        }
        if last_ms
            .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        lines.fetch_add(1, Ordering::Relaxed);
        let files_done = self.files_done.load(Ordering::Relaxed);
        let bytes_done = self.bytes_done.load(Ordering::Relaxed);
        let (files_total, bytes_total) = (self.files_total(), self.bytes_total());
        let eta = if self.counts_bytes {
            eta(bytes_done, bytes_total, elapsed)
        } else {
            eta(files_done, files_total, elapsed)
        };
        tracing::info!(
            files_done,
            files_total,
            bytes_done,
            bytes_total,
            rate = %format_rate(bytes_done, elapsed),
            eta = %format_eta(eta),
            "{}: {files_done}/{files_total} files, {} of {}",
            self.label,
            format_bytes(bytes_done),
            format_bytes(bytes_total),
        );
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        self.close();
        let files_done = self.files_done.load(Ordering::Relaxed);
        tracing::info!(
            files_done,
            files_total = self.files_total(),
            bytes_done = self.bytes_done.load(Ordering::Relaxed),
            bytes_total = self.bytes_total(),
            "{}: stopped after {files_done} of {} files",
            self.label,
            self.files_total(),
        );
    }
}

/// Creates the bar and registers it as the process's one active bar, or
/// `None` if another bar is already shown.
fn claim_bar(
    label: &str,
    files: u64,
    bytes: u64,
    target: ProgressDrawTarget,
) -> Option<ProgressBar> {
    let mut slot = ACTIVE_BAR.lock().unwrap_or_else(PoisonError::into_inner);
    if slot.is_some() {
        return None;
    }
    let (len, template) = if bytes > 0 {
        (
            bytes,
            "{prefix} {msg} [{wide_bar}] {binary_bytes}/{binary_total_bytes} \
             ({binary_bytes_per_sec}, eta {eta})",
        )
    } else {
        (
            files,
            "{prefix} [{wide_bar}] {pos}/{len} files ({per_sec}, eta {eta})",
        )
    };
    let style = ProgressStyle::with_template(template)
        .expect("valid progress template")
        .progress_chars("=> ");
    let bar = ProgressBar::with_draw_target(Some(len), target)
        .with_style(style)
        .with_prefix(label.to_owned())
        .with_message(files_message(0, files));
    bar.enable_steady_tick(TICK);
    *slot = Some(bar.clone());
    Some(bar)
}

fn files_message(done: u64, total: u64) -> String {
    format!("{done}/{total} files")
}

/// The `tracing` writer for the agent's logs: writes to stderr, around the
/// active progress bar if there is one. Creating it allows [`Progress`] to
/// draw bars, so install it as the fmt subscriber's writer in `main`:
/// `tracing_subscriber::fmt().with_writer(progress::log_writer())`.
pub fn log_writer() -> LogWriter {
    LogWriter::new()
}

/// See [`log_writer`].
#[derive(Debug, Clone, Copy)]
pub struct LogWriter {
    _private: (),
}

impl LogWriter {
    fn new() -> LogWriter {
        LOGS_ROUTED.store(true, Ordering::Relaxed);
        LogWriter { _private: () }
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LogWrite;

    fn make_writer(&'a self) -> LogWrite {
        LogWrite { _private: () }
    }
}

/// One log line's writer from [`LogWriter`].
#[derive(Debug)]
pub struct LogWrite {
    _private: (),
}

impl Write for LogWrite {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Clone the bar out so the slot's lock is not held while writing.
        let bar = ACTIVE_BAR
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match bar {
            // The fmt layer hands over a whole formatted line at once; write
            // it all while the bar is cleared.
            Some(bar) => bar
                .suspend(|| io::stderr().write_all(buf))
                .map(|()| buf.len()),
            None => io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// Whether a periodic line is due: at least `interval` since the `last`
/// one (all in milliseconds since the batch started).
fn should_log(now: u64, last: u64, interval: u64) -> bool {
    now.saturating_sub(last) >= interval
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Remaining time if the rest goes at the average pace so far; `None` before
/// anything is done or time has passed.
fn eta(done: u64, total: u64, elapsed: Duration) -> Option<Duration> {
    if done == 0 || elapsed.is_zero() {
        return None;
    }
    let remaining = total.saturating_sub(done);
    Some(elapsed.mul_f64(remaining as f64 / done as f64))
}

/// A byte count in binary units: `"512 B"`, `"1.5 KiB"`, `"12.3 MiB"`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    // Move up while the value would print as 1024.0 or more.
    while value >= 1023.95 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Average rate: `"12.3 MiB/s"`; `"0 B/s"` when no time has passed.
fn format_rate(bytes: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let per_sec = if secs > 0.0 { bytes as f64 / secs } else { 0.0 };
    // Saturating float-to-int cast: fine for a display value.
    format!("{}/s", format_bytes(per_sec.round() as u64))
}

/// A duration for humans, to the second: `"42s"`, `"3m 05s"`, `"2h 07m"`.
fn format_duration(d: Duration) -> String {
    let secs = d.as_secs_f64().round() as u64;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// An ETA for humans; `"unknown"` when there is no estimate yet.
fn format_eta(eta: Option<Duration>) -> String {
    match eta {
        Some(d) => format_duration(d),
        None => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(p: &Progress) -> u64 {
        match &p.output {
            Output::Log { lines, .. } => lines.load(Ordering::Relaxed),
            Output::Bar(_) => panic!("expected log output"),
        }
    }

    #[test]
    fn progress_is_shareable_across_tasks() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Progress>();
    }

    #[test]
    fn worth_showing_only_big_batches() {
        assert!(!worth_showing(0, 0));
        assert!(!worth_showing(99, MIN_BYTES - 1));
        assert!(worth_showing(100, 0));
        assert!(worth_showing(1, 64 * 1024 * 1024));
        assert!(worth_showing(MIN_FILES, MIN_BYTES));
    }

    #[test]
    fn bytes_format_in_binary_units() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(1024), "1.0 KiB");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(12_897_484), "12.3 MiB");
        assert_eq!(format_bytes(5 << 30), "5.0 GiB");
        // Never "1024.0 KiB": rounding up moves to the next unit.
        assert_eq!(format_bytes(1024 * 1024 - 1), "1.0 MiB");
        assert_eq!(format_bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn rate_is_bytes_per_second() {
        assert_eq!(format_rate(0, Duration::ZERO), "0 B/s");
        assert_eq!(format_rate(1 << 20, Duration::ZERO), "0 B/s");
        assert_eq!(format_rate(500, Duration::from_secs(1)), "500 B/s");
        assert_eq!(
            format_rate(123 * (1 << 20), Duration::from_secs(10)),
            "12.3 MiB/s"
        );
        assert_eq!(format_rate(3 << 30, Duration::from_secs(2)), "1.5 GiB/s");
    }

    #[test]
    fn eta_extrapolates_the_average_pace() {
        assert_eq!(eta(0, 100, Duration::from_secs(5)), None);
        assert_eq!(eta(10, 100, Duration::ZERO), None);
        assert_eq!(
            eta(25, 100, Duration::from_secs(10)),
            Some(Duration::from_secs(30))
        );
        assert_eq!(eta(100, 100, Duration::from_secs(10)), Some(Duration::ZERO));
        // More done than planned (a file grew): nothing left, no underflow.
        assert_eq!(eta(150, 100, Duration::from_secs(10)), Some(Duration::ZERO));
    }

    #[test]
    fn durations_format_for_humans() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_millis(41_600)), "42s");
        assert_eq!(format_duration(Duration::from_secs(185)), "3m 05s");
        assert_eq!(
            format_duration(Duration::from_secs(2 * 3600 + 7 * 60 + 59)),
            "2h 07m"
        );
        assert_eq!(format_eta(None), "unknown");
        assert_eq!(format_eta(Some(Duration::from_secs(59))), "59s");
    }

    #[test]
    fn should_log_waits_for_the_interval() {
        assert!(!should_log(0, 0, 5000));
        assert!(!should_log(4999, 0, 5000));
        assert!(should_log(5000, 0, 5000));
        assert!(!should_log(9999, 5000, 5000));
        assert!(should_log(10_000, 5000, 5000));
        // Zero interval: every update logs.
        assert!(should_log(0, 0, 0));
        // A clock that seems to go back never logs early nor panics.
        assert!(!should_log(10, 20, 5));
    }

    #[test]
    fn zero_interval_logs_every_update() {
        let p = Progress::logging("test", 3, 300, Duration::ZERO);
        p.file_done(100);
        p.add_bytes(50);
        p.file_done(50);
        p.file_done(100);
        assert_eq!(lines(&p), 4);
        assert_eq!(p.files_done.load(Ordering::Relaxed), 3);
        assert_eq!(p.bytes_done.load(Ordering::Relaxed), 300);
        p.finish();
    }

    #[test]
    fn long_interval_throttles_periodic_lines() {
        let p = Progress::logging("test", 1000, 0, Duration::from_secs(3600));
        for _ in 0..1000 {
            p.file_done(0);
        }
        assert_eq!(lines(&p), 0);
        assert_eq!(p.files_done.load(Ordering::Relaxed), 1000);
        p.finish();
    }

    #[test]
    fn start_without_log_writer_logs_instead_of_drawing() {
        // No test installs `log_writer`, so no bar is drawn even on a
        // terminal.
        let p = Progress::start("test", 10, 10);
        assert!(matches!(p.output, Output::Log { .. }));
        drop(p);
    }

    #[test]
    fn one_bar_at_a_time_and_released_at_finish_or_drop() {
        // The only test touching the global bar slot; hidden targets draw
        // nothing.
        let bar = claim_bar("test", 200, 1 << 30, ProgressDrawTarget::hidden()).unwrap();
        let first = Progress::new("test", 200, 1 << 30, Output::Bar(bar));
        assert!(claim_bar("other", 1, 1, ProgressDrawTarget::hidden()).is_none());
        first.add_bytes(1 << 20);
        first.file_done(1 << 20);
        assert_eq!(first.bytes_done.load(Ordering::Relaxed), 2 << 20);
        if let Output::Bar(bar) = &first.output {
            assert_eq!(bar.position(), 2 << 20);
            assert_eq!(bar.message(), "1/200 files");
        }
        first.finish();

        let bar = claim_bar("test", 200, 0, ProgressDrawTarget::hidden()).unwrap();
        let second = Progress::new("test", 200, 0, Output::Bar(bar));
        second.file_done(0);
        if let Output::Bar(bar) = &second.output {
            assert_eq!(bar.position(), 1, "a batch without bytes counts files");
        }
        drop(second);
        let third = claim_bar("test", 1, 1, ProgressDrawTarget::hidden());
        assert!(third.is_some(), "drop released the slot");
        *ACTIVE_BAR.lock().unwrap() = None;
    }

    #[test]
    fn dropping_unfinished_batch_marks_it_closed() {
        let mut p = Progress::logging("test", 10, 10, Duration::ZERO);
        p.file_done(1);
        p.close();
        assert!(p.closed);
        // Drop after close does nothing more (no second line, no panic).
        drop(p);
    }
}
