//! The hubs this agent may use (`--hub a,b`) and which one it uses now.
//!
//! Several hubs on one database and one chunk store report the same
//! identity and the same seqs, so any of them carries on the change feed
//! from the agent's last applied seq. The agent talks to one at a time.
//! When the one in use fails at the connection level (refused, reset,
//! timed out, a TLS handshake that fails, HTTP 502/503/504: see
//! [`HubError::means_hub_gone`]), the agent moves on to the next in the
//! list, wrapping around, and the caller's retry (after its usual backoff)
//! goes there. A hub that answers is kept, whatever it answers (a 401, a
//! 409): there is no going back to the first, so two hubs never take turns.
//!
//! A failure counts only against the hub in use ([`after_failure`]): when
//! a hub dies, every request in flight to it fails, and the first moves
//! the agent once, not once each (which would skip the next hub, or come
//! back round to the dead one).
//!
//! One URL behaves as before this existed: a failure leaves it in use.

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use super::HubError;

/// A `--hub` value that is not a hub's base URL.
#[derive(Debug, thiserror::Error)]
#[error(
    "hub URL {raw:?} {why}: give each hub as http://host[:port] or https://host[:port] \
     (several: --hub URL,URL or --hub URL --hub URL)"
)]
pub struct BadHubUrl {
    raw: String,
    why: String,
}

impl From<BadHubUrl> for HubError {
    fn from(err: BadHubUrl) -> Self {
        HubError::Config(err.to_string())
    }
}

/// The hubs given, in order, and the one in use.
pub struct HubEndpoints {
    /// Normalized base URLs (`http(s)://host[:port]`), each once.
    bases: Vec<String>,
    position: Mutex<Position>,
}

#[derive(Debug, Clone, Copy)]
struct Position {
    /// Index into `bases` of the hub in use.
    current: usize,
    /// When the agent last moved to another hub, until that hub first
    /// answers (for the log line that says it did).
    switched: Option<Instant>,
}

impl HubEndpoints {
    /// The hubs of `urls`, each checked and normalized; the first is used
    /// first. A URL given twice, or none at all, is an error.
    pub fn new<S: AsRef<str>>(urls: &[S]) -> Result<Self, HubError> {
        let mut bases: Vec<String> = Vec::with_capacity(urls.len());
        for raw in urls {
            let base = normalize_base_url(raw.as_ref())?;
            if bases.contains(&base) {
                return Err(HubError::Config(format!(
                    "hub URL {base} is given twice in --hub (or SERVER_URL): give each hub once"
                )));
            }
            bases.push(base);
        }
        if bases.is_empty() {
            return Err(HubError::Config(
                "no hub URL given: pass --hub URL (or set SERVER_URL)".into(),
            ));
        }
        Ok(Self {
            bases,
            position: Mutex::new(Position {
                current: 0,
                switched: None,
            }),
        })
    }

    /// The hub in use: its index (to report how a request to it went) and
    /// its base URL.
    pub fn current(&self) -> (usize, &str) {
        let at = self.position().current;
        (at, &self.bases[at])
    }

    /// Every hub given, in order.
    pub fn all(&self) -> &[String] {
        &self.bases
    }

    /// The index of the hub `url` points into.
    pub fn position_of(&self, url: &reqwest::Url) -> Option<usize> {
        let base = base_of(url)?;
        self.bases.iter().position(|known| *known == base)
    }

    /// The hub at `at` failed at the connection level (`why`, for the
    /// log): if it is the one in use, the next one is used from now on.
    pub fn failed(&self, at: usize, why: &str) {
        let moved = {
            let mut position = self.position();
            let next = after_failure(position.current, at, self.bases.len());
            let moved = next != position.current;
            if moved {
                *position = Position {
                    current: next,
                    switched: Some(Instant::now()),
                };
            }
            moved.then_some(next)
        };
        if let Some(next) = moved {
            tracing::info!(
                from = %self.bases[at],
                to = %self.bases[next],
                reason = why,
                "the hub in use does not answer; switching to the next hub"
            );
        }
    }

    /// The hub at `at` answered: after a switch to it, says so once.
    pub fn answered(&self, at: usize) {
        let since = {
            let mut position = self.position();
            if position.current != at {
                return;
            }
            position.switched.take()
        };
        if let Some(since) = since {
            tracing::info!(
                hub = %self.bases[at],
                after = ?since.elapsed(),
                "the hub answers; syncing through it from the last applied change"
            );
        }
    }

    fn position(&self) -> std::sync::MutexGuard<'_, Position> {
        // Two plain fields, always consistent: a panic elsewhere while the
        // lock was held leaves nothing half-written.
        self.position.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for HubEndpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubEndpoints")
            .field("bases", &self.bases)
            .field("current", &self.position().current)
            .finish()
    }
}

/// The rotation rule: the hub in use after the one at `failed` failed,
/// while `current` was in use among `count`. Only a failure of the hub in
/// use moves on (a late failure of one already left behind changes
/// nothing), to the next, wrapping around.
pub(super) fn after_failure(current: usize, failed: usize, count: usize) -> usize {
    if failed == current && count > 0 {
        (current + 1) % count
    } else {
        current
    }
}

/// Checks `raw` is `http(s)://host[:port]` (optionally with a trailing slash)
/// and returns it without the slash.
pub(super) fn normalize_base_url(raw: &str) -> Result<String, BadHubUrl> {
    let bad = |why: &str| BadHubUrl {
        raw: raw.to_owned(),
        why: why.to_owned(),
    };
    if raw.trim().is_empty() {
        return Err(bad("is empty (a stray comma?)"));
    }
    let url =
        reqwest::Url::parse(raw.trim()).map_err(|err| bad(&format!("is not a URL ({err})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("does not start with http:// or https://"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("carries credentials"));
    }
    if url.path() != "/" && !url.path().is_empty() {
        return Err(bad("has a path"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("has a query or fragment"));
    }
    base_of(&url).ok_or_else(|| bad("has no host"))
}

/// `scheme://host[:port]` of `url` (no default port), as bases are kept.
fn base_of(url: &reqwest::Url) -> Option<String> {
    let host = url.host_str().filter(|host| !host.is_empty())?;
    Some(match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_failure_of_the_hub_in_use_moves_on() {
        // (current, failed, count) → in use afterwards
        let table = [
            // One hub: nothing to move to, as before several existed.
            ((0, 0, 1), 0),
            // The hub in use fails: the next one.
            ((0, 0, 2), 1),
            ((1, 1, 3), 2),
            // The last one fails: round to the first.
            ((1, 1, 2), 0),
            ((2, 2, 3), 0),
            // A late failure of a hub already left behind: stay.
            ((1, 0, 2), 1),
            ((2, 0, 3), 2),
            ((0, 2, 3), 0),
        ];
        for ((current, failed, count), expected) in table {
            assert_eq!(
                after_failure(current, failed, count),
                expected,
                "current {current}, failed {failed}, {count} hubs"
            );
        }
    }

    #[test]
    fn a_hub_is_left_once_and_a_working_one_kept() {
        let hubs = HubEndpoints::new(&["http://a:1", "http://b:2", "http://c:3"]).unwrap();
        assert_eq!(hubs.current(), (0, "http://a:1"));
        // Three requests in flight to `a` all fail: one move, to `b`.
        for _ in 0..3 {
            hubs.failed(0, "connection refused");
        }
        assert_eq!(hubs.current(), (1, "http://b:2"));
        // `b` answers; a late failure from `a` does not move it.
        hubs.answered(1);
        hubs.failed(0, "connection reset");
        assert_eq!(hubs.current(), (1, "http://b:2"));
        // `b` and then `c` fail: round to `a`.
        hubs.failed(1, "timed out");
        hubs.failed(2, "HTTP 503");
        assert_eq!(hubs.current(), (0, "http://a:1"));
    }

    #[test]
    fn requests_are_traced_back_to_their_hub() {
        let hubs =
            HubEndpoints::new(&["http://127.0.0.1:8080/", "https://hub.example.org"]).unwrap();
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        assert_eq!(
            hubs.position_of(&url("http://127.0.0.1:8080/v1/changes?since=3")),
            Some(0)
        );
        assert_eq!(
            hubs.position_of(&url("https://hub.example.org:443/v1/batch")),
            Some(1)
        );
        assert_eq!(hubs.position_of(&url("http://127.0.0.1:8081/v1")), None);
        assert_eq!(hubs.position_of(&url("https://127.0.0.1:8080/v1")), None);
    }

    #[test]
    fn the_list_is_checked_whole() {
        let err = |urls: &[&str]| HubEndpoints::new(urls).unwrap_err().to_string();
        assert!(err(&[]).contains("no hub URL given"));
        // The same hub twice, also when written differently.
        let twice = err(&["http://a:8080", "http://A:8080/"]);
        assert!(twice.contains("http://a:8080 is given twice"), "{twice}");
        let stray = err(&["http://a:8080", " "]);
        assert!(stray.contains("stray comma"), "{stray}");
        let scheme = err(&["http://a:8080", "hub-b:8080"]);
        assert!(scheme.contains("\"hub-b:8080\""), "{scheme}");
        assert!(scheme.contains("http://host[:port]"), "{scheme}");
    }
}
