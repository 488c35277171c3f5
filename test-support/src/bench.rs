//! What both benchmarks (`sf-hub`'s `hub_throughput`, `sf-e2e`'s
//! `agent_figures`) share: running only under `cargo bench`, sizes from
//! `SF_BENCH_*` variables, median and min–max over repetitions, and the
//! WARN and ERROR lines of the processes' logs.

use std::str::FromStr;

/// Whether the bench was started by `cargo bench` (which passes `--bench`);
/// `cargo test --all-targets` runs bench targets without it, and then they
/// do nothing.
pub fn requested() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

/// The number in variable `name`, or `default` when it is unset.
pub fn env_number<T: FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Ok(raw) => raw
            .trim()
            .parse()
            .map_err(|_| format!("{name}={raw:?} is not a number")),
        Err(_) => Ok(default),
    }
}

/// Median and range of a measurement's repetitions.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

/// The [`Spread`] of `values` (NaN for none; the mean of the middle two
/// for an even count).
pub fn spread(values: &[f64]) -> Spread {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    };
    Spread {
        median,
        min: sorted.first().copied().unwrap_or(f64::NAN),
        max: sorted.last().copied().unwrap_or(f64::NAN),
    }
}

/// KiB (as `/proc` reports memory) in MiB.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Two table cells for memory samples in KiB: the median and the min–max,
/// in MiB with one decimal; `-` for no samples.
pub fn mib_cells(kib: &[u64]) -> (String, String) {
    if kib.is_empty() {
        return ("-".to_owned(), "-".to_owned());
    }
    let values: Vec<f64> = kib.iter().map(|&k| mib(k)).collect();
    let s = spread(&values);
    (
        format!("{:.1}", s.median),
        format!("{:.1}–{:.1}", s.min, s.max),
    )
}

/// The WARN and ERROR lines of processes' logs (the level is a line's
/// second word, as `tracing`'s default format writes it): counted, and the
/// first few kept, shortened, as samples.
#[derive(Debug, Clone)]
pub struct LogNotes {
    pub warnings: usize,
    pub errors: usize,
    pub samples: Vec<String>,
    max_samples: usize,
    max_chars: usize,
}

impl LogNotes {
    /// Keeps at most `max_samples` lines of at most `max_chars` characters.
    pub fn new(max_samples: usize, max_chars: usize) -> Self {
        Self {
            warnings: 0,
            errors: 0,
            samples: Vec::new(),
            max_samples,
            max_chars,
        }
    }

    /// Counts the lines of `log`; samples are prefixed `who: ` when given.
    pub fn add(&mut self, who: Option<&str>, log: &str) {
        for line in log.lines() {
            match line.split_whitespace().nth(1) {
                Some("WARN") => self.warnings += 1,
                Some("ERROR") => self.errors += 1,
                _ => continue,
            }
            if self.samples.len() < self.max_samples {
                let short: String = line.chars().take(self.max_chars).collect();
                self.samples.push(match who {
                    Some(who) => format!("{who}: {short}"),
                    None => short,
                });
            }
        }
    }

    /// An extra problem that is not a log line (e.g. an exit status).
    pub fn error(&mut self, sample: String) {
        self.errors += 1;
        self.samples.push(sample);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads() {
        let s = spread(&[3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(spread(&[1.0, 2.0, 4.0, 8.0]).median, 3.0);
        assert!(spread(&[]).median.is_nan());
    }

    #[test]
    fn log_notes() {
        let mut notes = LogNotes::new(1, 12);
        notes.add(
            Some("hub"),
            "t0  INFO started\nt1  WARN slow disk here\nt2 ERROR broken\n",
        );
        assert_eq!((notes.warnings, notes.errors), (1, 1));
        assert_eq!(notes.samples, ["hub: t1  WARN slo"]);
        notes.error("a: exited with 1".to_owned());
        assert_eq!(notes.errors, 2);
    }
}
