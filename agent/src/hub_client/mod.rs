//! The agent's typed client for the hub's v1 API (`protocol/README.md`,
//! section 4): the change feed, chunk upload and download, commits, deletes
//! and the WebSocket that pushes changes.
//!
//! Layout: this module holds [`HubClient`] (its HTTP clients, hubs and
//! token) and what its calls answer; the calls are split by what they do:
//!
//! - `endpoints`: the hubs given (`--hub a,b`), the one in use, and moving
//!   on to the next when it stops answering;
//! - `requests`: `whoami`, the change feed, directory commits, deletes and
//!   chunk downloads, and what every request shares (sending with the
//!   token, reading refusals, bounded answers);
//! - `upload`: streams a file up with flat memory and commits it;
//! - `batch`: many commits and deletes in one request, and chunk packs
//!   up and down;
//! - `versions`: a path's history and restoring an old version (for
//!   `sf-agent history` and `sf-agent restore`);
//! - `ws`: the WebSocket that pushes changes (opening it, reading frames);
//! - `error`: [`HubError`] and reading the hub's refusals into it;
//! - `tls`: the rustls set-up and TLS failure messages.
//!
//! Every request and the WebSocket upgrade carry the agent's token
//! ([`crate::credentials`]); a 401, or a socket the hub closes because the
//! token was revoked, becomes [`HubError::Unauthorized`], which names the
//! token that was refused.
//!
//! Every request and the WebSocket go to the hub in use (`endpoints`); a
//! connection-level failure there moves the client to the next hub given,
//! for the caller's next attempt.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header;
use sf_protocol::v1::Entry;

mod batch;
mod endpoints;
mod error;
mod requests;
mod tls;
mod upload;
mod versions;
mod ws;

#[cfg(test)]
pub(crate) mod tests;

pub use batch::{PackReader, refused};
pub use endpoints::BadHubUrl;
pub use error::HubError;

use crate::credentials::{HubAccess, TokenSource};
use endpoints::HubEndpoints;
#[cfg(test)]
use endpoints::normalize_base_url;
use tls::ws_tls_config;

/// How long establishing a TCP connection to the hub may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Ordinary requests: the longest wait for the answer's headers, and for each
/// read of its body after that.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Chunk uploads and commits. reqwest's read timeout runs from the start of
/// the request until the answer's headers arrive, so it also covers sending a
/// 2 MiB chunk on a slow link and the hub re-reading every byte of a large
/// file to verify a commit.
const PATIENT_READ_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Chunks in flight between the reading thread and the uploader.
const CHANNEL_CAPACITY: usize = 3;
/// A batch of a large file's chunks, asked about in one
/// `/v1/chunks/missing` request and sent as one pack: with
/// [`PACKS_IN_FLIGHT`], an upload holds at most about 3 × 8 MiB.
const BATCH_MAX_CHUNKS: usize = 32;
const BATCH_MAX_BYTES: usize = 8 * 1024 * 1024;
/// Chunk packs of one file on their way to the hub at once: the next batch
/// is read and asked about while the last one is sent.
const PACKS_IN_FLIGHT: usize = 2;

/// What became of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The hub holds the new version (or the identical current one).
    Committed(Entry),
    /// `409 conflict`: `base_version` is not the path's current version. The
    /// hub's current entry (with chunks) is given unless the path never
    /// existed.
    Conflict(Option<Entry>),
    /// The file's bytes changed while being read: its sha differs from the
    /// expected one. Nothing was committed; rescan the file.
    FileChanged,
}

/// A client for the hubs given, one in use at a time. Cheap to clone:
/// clones share connection pools and which hub is in use. `Debug` never
/// shows the token: its header value is marked sensitive.
#[derive(Debug, Clone)]
pub struct HubClient {
    /// The hubs, `http(s)://host[:port]` without a trailing slash, and
    /// the one in use.
    hubs: Arc<HubEndpoints>,
    /// Ordinary requests.
    http: reqwest::Client,
    /// Chunk uploads and commits (see [`PATIENT_READ_TIMEOUT`]).
    patient: reqwest::Client,
    /// TLS for `wss://`, present when an `https://` hub is given.
    ws_tls: Option<Arc<rustls::ClientConfig>>,
    /// `Authorization: Bearer …` for the WebSocket upgrade (the reqwest
    /// clients send it as a default header).
    auth: Option<header::HeaderValue>,
    /// Where the token came from, for the message of a refusal.
    token_source: TokenSource,
    /// `X-SF-Agent: <name>` on the WebSocket upgrade, so the hub can show
    /// who is connected (its web page's activity view).
    agent_name: Option<header::HeaderValue>,
}

impl HubClient {
    /// A client without a token or extra CA certificates; see
    /// [`HubClient::with_access`].
    #[cfg(test)]
    pub fn new(base_url: &str) -> Result<Self, HubError> {
        Self::with_access(&[base_url], &HubAccess::default())
    }

    /// A client for the hubs at `hubs`, used in that order (see
    /// [`endpoints`]). Each must be `http://host[:port]` or
    /// `https://host[:port]` (a trailing slash is tolerated; a path, query,
    /// fragment or credentials are not). It presents `access.token` to
    /// each, trusting `access.extra_roots` besides the system's CAs.
    pub fn with_access<S: AsRef<str>>(hubs: &[S], access: &HubAccess) -> Result<Self, HubError> {
        let hubs = HubEndpoints::new(hubs)?;
        let ws_tls = if hubs.all().iter().any(|base| base.starts_with("https://")) {
            Some(ws_tls_config(&access.extra_roots)?)
        } else {
            None
        };
        let auth = access.token.as_ref().map(|token| token.header_value());
        for base in hubs.all() {
            if auth.is_some() && base.starts_with("http://") && !is_loopback_url(base) {
                tracing::warn!(
                    hub = %base,
                    "the token crosses the network in clear: serve the hub over TLS \
                     (sf-hub --tls-cert/--tls-key, or a TLS proxy) and use https://"
                );
            }
        }
        Ok(Self {
            hubs: Arc::new(hubs),
            http: build_http(READ_TIMEOUT, auth.as_ref(), &access.extra_roots)?,
            patient: build_http(PATIENT_READ_TIMEOUT, auth.as_ref(), &access.extra_roots)?,
            ws_tls,
            auth,
            token_source: access.token_source(),
            agent_name: None,
        })
    }

    /// Names this agent to the hub when it opens the WebSocket. A name
    /// that cannot be a header value is not sent.
    pub fn named(mut self, name: &str) -> Self {
        self.agent_name = header::HeaderValue::from_str(name).ok();
        self
    }

    /// The base URL of the hub in use, `http(s)://host[:port]` without a
    /// trailing slash.
    pub fn base_url(&self) -> &str {
        self.hubs.current().1
    }

    /// Every hub given, in order.
    pub fn hub_urls(&self) -> &[String] {
        self.hubs.all()
    }

    /// `path` at the hub in use.
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }
}

fn build_http(
    read_timeout: Duration,
    auth: Option<&header::HeaderValue>,
    extra_roots: &[rustls::pki_types::CertificateDer<'static>],
) -> Result<reqwest::Client, HubError> {
    let mut headers = header::HeaderMap::new();
    if let Some(auth) = auth {
        headers.insert(header::AUTHORIZATION, auth.clone());
    }
    let roots = extra_roots
        .iter()
        .map(|der| reqwest::Certificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| HubError::Config(format!("cannot use a --ca-cert certificate: {err}")))?;
    reqwest::Client::builder()
        .default_headers(headers)
        // The system's CAs and these: reqwest hands both to the platform
        // verifier, as `ws_tls_config` does for the WebSocket.
        .tls_certs_merge(roots)
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(read_timeout)
        .tcp_keepalive(Duration::from_secs(30))
        // Below the hub's default --header-timeout (15 s), which also closes
        // idle connections: the agent drops an idle connection first rather
        // than send a request into one the hub is closing.
        .pool_idle_timeout(Duration::from_secs(10))
        // The hub never redirects, and a streamed body cannot be replayed.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("sf-agent/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|err| HubError::Config(format!("cannot build the HTTP client: {err}")))
}

/// Checks one hub URL (`--hub`) and returns it as the client keeps it:
/// `http(s)://host[:port]`, without a trailing slash.
pub fn normalize_hub_url(raw: &str) -> Result<String, BadHubUrl> {
    endpoints::normalize_base_url(raw)
}

/// Whether `base` (`http(s)://host[:port]`) names this machine.
fn is_loopback_url(base: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(base) else {
        return false;
    };
    let host = url.host_str().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
