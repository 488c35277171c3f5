//! The markdown the sections print: tables, `median (min–max)` cells,
//! ratios to a baseline, nearest-rank quantiles and the processes' log
//! notes.

use std::fmt::Write as _;
use std::time::Duration;

use sf_test_support::bench::{LogNotes, spread};

use crate::MIB;

/// Nearest-rank quantile (`q` in 0..=1) of `values`.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `median (min–max)` with `prec` decimals; just the value for one rep.
pub fn cell(values: &[f64], prec: usize) -> String {
    let s = spread(values);
    if values.len() == 1 {
        format!("{:.prec$}", s.median)
    } else {
        format!("{:.prec$} ({:.prec$}–{:.prec$})", s.median, s.min, s.max)
    }
}

pub fn ratio(value: f64, baseline: f64) -> String {
    if baseline > 0.0 && value.is_finite() {
        format!("{:.1}×", value / baseline)
    } else {
        "-".to_owned()
    }
}

pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

pub fn mib(bytes: f64) -> f64 {
    bytes / MIB as f64
}

/// Markdown table builder.
pub struct Table {
    pub text: String,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        let mut text = format!("| {} |\n|", headers.join(" | "));
        for (i, _) in headers.iter().enumerate() {
            text.push_str(if i == 0 { "---|" } else { "---:|" });
        }
        text.push('\n');
        Self { text }
    }

    pub fn row(&mut self, cells: &[String]) {
        writeln!(self.text, "| {} |", cells.join(" | ")).unwrap();
    }
}

/// Where a section collects its processes' WARN and ERROR lines: five
/// samples of at most 240 characters.
pub fn log_notes() -> LogNotes {
    LogNotes::new(5, 240)
}

/// `Process logs: N WARN, M ERROR line(s)` and the samples.
pub fn render_notes(notes: &LogNotes) -> String {
    let mut text = format!(
        "Process logs: {} WARN, {} ERROR line(s)",
        notes.warnings, notes.errors
    );
    for sample in &notes.samples {
        write!(text, "\n    {sample}").unwrap();
    }
    text
}
