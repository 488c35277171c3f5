//! How long to wait before trying the hub again: shared by the engine's
//! cycles and the push connection.

use std::time::Duration;

/// Exponential backoff with jitter, capped at about 30 s.
#[derive(Default)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    pub fn next_delay(&mut self) -> Duration {
        let base = Duration::from_millis(250) * 2u32.saturating_pow(self.attempt.min(7));
        self.attempt += 1;
        let capped = base.min(Duration::from_secs(30));
        let jitter = rand::random_range(0.5..1.0);
        capped.mul_f64(jitter)
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}
