//! The hub's Prometheus text exposition (`GET /metrics`) as the tests read
//! it: one metric's value, summed over all its series.

/// The sum of every sample of metric `name` (all label sets) in a
/// Prometheus text exposition; `None` when it has none.
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        // `name 3` or `name{label="…"} 3`, not `name_total 3`.
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        if let Some(value) = line
            .split_whitespace()
            .last()
            .and_then(|v| v.parse::<f64>().ok())
        {
            *found.get_or_insert(0.0) += value;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_series() {
        let text = "# HELP sync_uploads_total Uploads.\n\
                    # TYPE sync_uploads_total counter\n\
                    sync_uploads_total{kind=\"legacy\"} 2\n\
                    sync_uploads_total{kind=\"v1 api\"} 3.5\n\
                    sync_uploads_total_extra 100\n\
                    sync_websocket_clients 2\n";
        assert_eq!(metric_value(text, "sync_uploads_total"), Some(5.5));
        assert_eq!(metric_value(text, "sync_websocket_clients"), Some(2.0));
        assert_eq!(metric_value(text, "sync_uploads"), None);
    }
}
