//! What the commands print for a person: aligned columns, sizes in KiB and
//! MiB, times in the local time zone.
//!
//! The local offset is read once by [`remember_local_offset`], before the
//! runtime starts its threads: the `time` crate reads the time zone only
//! while the process has one thread (another thread may be changing the
//! environment). Without it, times are shown in UTC and say so.

use std::fmt::Write as _;
use std::sync::OnceLock;

use time::{OffsetDateTime, UtcOffset};

static LOCAL_OFFSET: OnceLock<UtcOffset> = OnceLock::new();

/// Reads this machine's UTC offset now, for every later [`local_time`].
/// Call it before any other thread starts.
pub fn remember_local_offset() {
    if let Ok(offset) = UtcOffset::current_local_offset() {
        let _ = LOCAL_OFFSET.set(offset);
    }
}

/// `ms` since the epoch as `YYYY-MM-DD HH:MM:SS` in local time (or with
/// ` UTC` when the local offset is unknown).
pub fn local_time(ms: i64) -> String {
    match LOCAL_OFFSET.get() {
        Some(offset) => time_at(ms, *offset),
        None => format!("{} UTC", time_at(ms, UtcOffset::UTC)),
    }
}

/// `ms` since the epoch as `YYYY-MM-DD HH:MM:SS` at `offset`.
pub fn time_at(ms: i64, offset: UtcOffset) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.to_offset(offset).format(format).ok())
        .unwrap_or_else(|| "?".to_owned())
}

/// Nanoseconds since the epoch as milliseconds.
pub fn ms_of_ns(ns: i64) -> i64 {
    ns.div_euclid(1_000_000)
}

/// `bytes` for a person: `512 B`, `1.5 KiB`, `12.0 MiB`, `3.2 GiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Columns of text, each as wide as its widest cell, two spaces apart;
/// columns marked `right` are right-aligned (numbers, sizes).
pub struct Table {
    headers: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns: `(header, right-aligned)`.
    pub fn new(columns: &[(&'static str, bool)]) -> Self {
        Table {
            headers: columns.iter().map(|c| c.0).collect(),
            right: columns.iter().map(|c| c.1).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.headers.len());
        self.rows.push(cells);
    }

    /// The table, one line per row after the header; trailing spaces
    /// trimmed.
    pub fn render(&self) -> String {
        let width = |cell: &str| cell.chars().count();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let mut out = String::new();
        let headers = self.headers.iter().map(|h| (*h).to_owned()).collect();
        for row in std::iter::once(&headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = widths[i] - width(cell);
                if self.right[i] {
                    let _ = write!(line, "{}{cell}", " ".repeat(pad));
                } else {
                    let _ = write!(line, "{cell}{}", " ".repeat(pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1.0 KiB");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(12 << 20), "12.0 MiB");
        assert_eq!(human_size(5 << 30), "5.0 GiB");
    }

    #[test]
    fn times_are_shown_at_the_offset() {
        let ms = 1_795_486_717_131; // 2026-11-24 02:18:37.131 UTC
        assert_eq!(time_at(ms, UtcOffset::UTC), "2026-11-24 02:18:37");
        let plus_two = UtcOffset::from_hms(2, 0, 0).unwrap();
        assert_eq!(time_at(ms, plus_two), "2026-11-24 04:18:37");
        assert_eq!(ms_of_ns(1_500_000_000), 1_500);
        assert_eq!(ms_of_ns(-1), -1);
    }

    #[test]
    fn columns_line_up() {
        let mut table = Table::new(&[("VERSION", true), ("WHO", false), ("SIZE", true)]);
        table.row(vec!["1".into(), "laptop".into(), "12 B".into()]);
        table.row(vec!["10".into(), "pc".into(), "1.5 KiB".into()]);
        assert_eq!(
            table.render(),
            "VERSION  WHO        SIZE\n      \
                   1  laptop     12 B\n     \
                  10  pc      1.5 KiB\n"
        );
    }
}
