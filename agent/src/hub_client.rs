//! The agent's typed client for the hub's v1 API (`protocol/README.md`,
//! section 4): the change feed, chunk upload and download, commits, deletes
//! and the WebSocket that pushes changes.
//!
//! Layout: this module holds the client, its requests and the WebSocket;
//! `upload` streams a file up with flat memory; `error` is [`HubError`] and
//! reading refusals; `tls` is the rustls set-up and TLS failure messages.
//!
//! Every request and the WebSocket upgrade carry the agent's token
//! ([`crate::credentials`]); a 401, or a socket the hub closes because the
//! token was revoked, becomes [`HubError::Unauthorized`], which names the
//! token that was refused.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::{StatusCode, header};
use serde::de::DeserializeOwned;
use sf_protocol::chunking::MAX_CHUNK_SIZE;
use sf_protocol::v1::{
    ChangesQuery, ChangesResponse, CommitRequest, DeleteRequest, Entry, EntryKind, ErrorBody,
    ErrorCode, WS_CLOSE_REVOKED, WhoAmI, WsFrame,
};
use sf_protocol::{Sha256Hex, SyncPath};

mod error;
mod tls;
mod upload;

pub use error::HubError;

use crate::credentials::{HubAccess, TokenRefused, TokenSource};
use error::{refusal_from, snippet, ws_error, ws_timeout};
#[cfg(test)]
use tls::crypto_provider;
use tls::{rustls_error_in, tls_failure, tls_message, ws_tls_config};
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

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
/// Opening the WebSocket: TCP connect plus the upgrade handshake.
const WS_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// The hub pings every 30 s; this much silence means the socket is dead.
const WS_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Chunks in flight between the reading thread and the uploader.
const CHANNEL_CAPACITY: usize = 3;
/// A batch of chunks asked about in one `/v1/chunks/missing` request.
const BATCH_MAX_CHUNKS: usize = 32;
const BATCH_MAX_BYTES: usize = 32 * 1024 * 1024;
/// The largest JSON answer read from the hub. A page of the change feed
/// with chunk lists is far below it (a 16 GiB file lists ~3 MB of chunks).
const MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;
/// Concurrent `PUT /v1/chunks/{hash}` requests within one batch.
const PUT_CONCURRENCY: usize = 4;

/// An open `/v1/ws` socket.
pub type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

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

/// What became of a delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The tombstone (new, or the existing one when the path was already deleted).
    Deleted(Entry),
    /// `409 conflict`: `base_version` is not the path's current version.
    Conflict(Option<Entry>),
    /// The path never existed on the hub.
    NotFound,
}

/// A client for one hub. Cheap to clone: clones share connection pools.
/// `Debug` never shows the token: its header value is marked sensitive.
#[derive(Debug, Clone)]
pub struct HubClient {
    /// `http(s)://host[:port]`, without a trailing slash.
    base: String,
    /// Ordinary requests.
    http: reqwest::Client,
    /// Chunk uploads and commits (see [`PATIENT_READ_TIMEOUT`]).
    patient: reqwest::Client,
    /// TLS for `wss://`, present for `https://` hubs.
    ws_tls: Option<Arc<rustls::ClientConfig>>,
    /// `Authorization: Bearer …` for the WebSocket upgrade (the reqwest
    /// clients send it as a default header).
    auth: Option<header::HeaderValue>,
    /// Where the token came from, for the message of a refusal.
    token_source: TokenSource,
}

impl HubClient {
    /// A client without a token or extra CA certificates; see
    /// [`HubClient::with_access`].
    pub fn new(base_url: &str) -> Result<Self, HubError> {
        Self::with_access(base_url, &HubAccess::default())
    }

    /// A client for the hub at `base_url`, which must be `http://host[:port]`
    /// or `https://host[:port]` (a trailing slash is tolerated; a path, query,
    /// fragment or credentials are not), presenting `access.token` and
    /// trusting `access.extra_roots` besides the system's CAs.
    pub fn with_access(base_url: &str, access: &HubAccess) -> Result<Self, HubError> {
        let base = normalize_base_url(base_url)?;
        let ws_tls = if base.starts_with("https://") {
            Some(ws_tls_config(&access.extra_roots)?)
        } else {
            None
        };
        let auth = access.token.as_ref().map(|token| token.header_value());
        if auth.is_some() && base.starts_with("http://") && !is_loopback_url(&base) {
            tracing::warn!(
                hub = %base,
                "the token crosses the network in clear: serve the hub over TLS \
                 (sf-hub --tls-cert/--tls-key, or a TLS proxy) and use https://"
            );
        }
        Ok(Self {
            base,
            http: build_http(READ_TIMEOUT, auth.as_ref(), &access.extra_roots)?,
            patient: build_http(PATIENT_READ_TIMEOUT, auth.as_ref(), &access.extra_roots)?,
            ws_tls,
            auth,
            token_source: access.token_source(),
        })
    }

    /// The hub's base URL, `http(s)://host[:port]` without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET /v1/whoami`: the token's name and scope. `None` from a hub that
    /// predates the route (404): such a hub lets every client write.
    pub async fn whoami(&self) -> Result<Option<WhoAmI>, HubError> {
        let resp = self.send(self.http.get(self.url("/v1/whoami"))).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self.refusal(resp).await);
        }
        json_body(resp, "GET /v1/whoami").await.map(Some)
    }

    /// `GET /v1/changes?since=SEQ&limit=N&chunks=true`: committed versions with
    /// `seq > since`, in seq order, each with its chunk list.
    pub async fn changes(&self, since: u64, limit: u32) -> Result<ChangesResponse, HubError> {
        let query = ChangesQuery {
            since,
            limit: Some(limit),
            chunks: true,
        };
        let resp = self
            .send(self.http.get(self.url("/v1/changes")).query(&query))
            .await?;
        if !resp.status().is_success() {
            return Err(self.refusal(resp).await);
        }
        let body = read_capped(resp, MAX_ANSWER_BYTES).await?;
        // Entries are validated one by one by the engine (engine/trust.rs):
        // one unusable entry is skipped and reported, and must not stop the
        // rest of the feed.
        sf_protocol::v1::decode_changes(&body).map_err(|err| {
            HubError::Protocol(format!(
                "GET /v1/changes: {err} in answer {}",
                snippet(&body)
            ))
        })
    }

    /// Commits a directory entry at `path`.
    pub async fn commit_dir(
        &self,
        path: &SyncPath,
        base_version: u64,
        mtime_ns: i64,
        origin: &str,
    ) -> Result<CommitOutcome, HubError> {
        let request = CommitRequest {
            path: path.clone(),
            kind: EntryKind::Dir,
            base_version,
            sha256: Sha256Hex::empty(),
            size: 0,
            mtime_ns,
            executable: false,
            chunks: Vec::new(),
            origin: origin.to_owned(),
        };
        self.commit(&request).await
    }

    /// `POST /v1/delete`: writes a tombstone over `path`.
    pub async fn delete(
        &self,
        path: &SyncPath,
        base_version: u64,
        origin: &str,
    ) -> Result<DeleteOutcome, HubError> {
        let request = DeleteRequest {
            path: path.clone(),
            base_version,
            origin: origin.to_owned(),
        };
        let resp = self
            .send(self.http.post(self.url("/v1/delete")).json(&request))
            .await?;
        if resp.status().is_success() {
            return Ok(DeleteOutcome::Deleted(
                json_body(resp, "POST /v1/delete").await?,
            ));
        }
        match self.refusal(resp).await {
            HubError::Refused { status: 409, body } if body.error == ErrorCode::Conflict => {
                Ok(DeleteOutcome::Conflict(body.current))
            }
            HubError::Refused { status: 404, body } if body.error == ErrorCode::NotFound => {
                Ok(DeleteOutcome::NotFound)
            }
            other => Err(other),
        }
    }

    /// `GET /v1/chunks/{hash}`: one chunk's bytes, checked against `hash`.
    pub async fn fetch_chunk(&self, hash: &Sha256Hex) -> Result<bytes::Bytes, HubError> {
        let mut resp = self
            .send(self.http.get(self.url(&format!("/v1/chunks/{hash}"))))
            .await?;
        if !resp.status().is_success() {
            return Err(self.refusal(resp).await);
        }
        let too_big = || {
            HubError::Protocol(format!(
                "chunk {hash} is larger than {MAX_CHUNK_SIZE} bytes"
            ))
        };
        let expected = resp.content_length().unwrap_or(0);
        if expected > MAX_CHUNK_SIZE as u64 {
            return Err(too_big());
        }
        let mut data = bytes::BytesMut::with_capacity(expected as usize);
        while let Some(piece) = resp.chunk().await.map_err(HubError::Unreachable)? {
            if data.len() + piece.len() > MAX_CHUNK_SIZE {
                return Err(too_big());
            }
            data.extend_from_slice(&piece);
        }
        let data = data.freeze();
        let actual = Sha256Hex::of(&data);
        if actual != *hash {
            return Err(HubError::Protocol(format!(
                "chunk {hash} arrived as {} bytes that hash to {actual}",
                data.len()
            )));
        }
        Ok(data)
    }

    /// `ws(s)://host[:port]/v1/ws`.
    pub fn ws_url(&self) -> String {
        ws_url_for(&self.base)
    }

    /// Opens `/v1/ws` (`wss://` with certificate verification for an
    /// `https://` hub), presenting the token. The first frame will be
    /// `hello`.
    pub async fn connect_ws(&self) -> Result<WsStream, HubError> {
        let url = self.ws_url();
        let connector = match &self.ws_tls {
            Some(config) => Connector::Rustls(Arc::clone(config)),
            None => Connector::Plain,
        };
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|err| self.ws_error(err))?;
        if let Some(auth) = &self.auth {
            request
                .headers_mut()
                .insert(header::AUTHORIZATION, auth.clone());
        }
        let connect =
            tokio_tungstenite::connect_async_tls_with_config(request, None, false, Some(connector));
        match tokio::time::timeout(WS_CONNECT_TIMEOUT, connect).await {
            Ok(Ok((ws, _response))) => Ok(ws),
            Ok(Err(err)) => Err(tls_failure(&err, &url).unwrap_or_else(|| self.ws_error(err))),
            Err(_) => Err(ws_timeout(format!(
                "opening {url} took longer than {WS_CONNECT_TIMEOUT:?}"
            ))),
        }
    }

    /// The next frame from the hub. Skips ping, pong and binary messages
    /// (pongs are sent automatically). `None` once the socket is closed; the
    /// close code and reason are logged. A socket silent for longer than
    /// [`WS_IDLE_TIMEOUT`] (the hub pings every 30 s) gives a retryable error;
    /// one the hub closes because the token was revoked gives
    /// [`HubError::Unauthorized`].
    pub async fn next_frame(&self, ws: &mut WsStream) -> Option<Result<WsFrame, HubError>> {
        loop {
            let message = match tokio::time::timeout(WS_IDLE_TIMEOUT, ws.next()).await {
                Err(_) => {
                    return Some(Err(ws_timeout(format!(
                        "the hub sent nothing for {WS_IDLE_TIMEOUT:?}"
                    ))));
                }
                Ok(None) => {
                    tracing::info!("hub WebSocket ended");
                    return None;
                }
                Ok(Some(Err(
                    tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed,
                ))) => {
                    tracing::info!("hub WebSocket closed");
                    return None;
                }
                Ok(Some(Err(err))) => return Some(Err(self.ws_error(err))),
                Ok(Some(Ok(message))) => message,
            };
            match message {
                Message::Text(text) => {
                    return Some(
                        sf_protocol::v1::decode_ws_frame(text.as_str()).map_err(|err| {
                            HubError::Protocol(format!(
                                "WebSocket frame is not a hub frame ({err}): {}",
                                snippet(text.as_bytes())
                            ))
                        }),
                    );
                }
                Message::Close(frame) => {
                    match frame {
                        Some(frame) if u16::from(frame.code) == WS_CLOSE_REVOKED => {
                            let reason = match frame.reason.as_str() {
                                "" => "token revoked",
                                reason => reason,
                            };
                            return Some(Err(HubError::Unauthorized(TokenRefused {
                                token: self.token_source.clone(),
                                detail: format!(
                                    "the hub closed the WebSocket with code \
                                     {WS_CLOSE_REVOKED}: {reason}"
                                ),
                            })));
                        }
                        Some(frame) => tracing::info!(
                            code = u16::from(frame.code),
                            reason = %frame.reason,
                            "hub closed the WebSocket"
                        ),
                        None => tracing::info!("hub closed the WebSocket without a code"),
                    }
                    return None;
                }
                Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
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

/// Checks `raw` is `http(s)://host[:port]` (optionally with a trailing slash)
/// and returns it without the slash.
fn normalize_base_url(raw: &str) -> Result<String, HubError> {
    let bad = |why: &str| {
        HubError::Config(format!(
            "hub URL {raw:?} {why}: expected http://host[:port] or https://host[:port]"
        ))
    };
    let url =
        reqwest::Url::parse(raw.trim()).map_err(|err| bad(&format!("is not a URL ({err})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("does not start with http:// or https://"));
    }
    let host = match url.host_str() {
        Some(host) if !host.is_empty() => host,
        _ => return Err(bad("has no host")),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("carries credentials"));
    }
    if url.path() != "/" && !url.path().is_empty() {
        return Err(bad("has a path"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("has a query or fragment"));
    }
    Ok(match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    })
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

/// `http://…` → `ws://…/v1/ws`, `https://…` → `wss://…/v1/ws`.
fn ws_url_for(base: &str) -> String {
    let rest = base
        .strip_prefix("https://")
        .map(|rest| format!("wss://{rest}"))
        .or_else(|| {
            base.strip_prefix("http://")
                .map(|rest| format!("ws://{rest}"))
        })
        .unwrap_or_else(|| base.to_owned());
    format!("{rest}/v1/ws")
}

impl HubClient {
    /// Sends `request`; a 401 answer becomes [`HubError::Unauthorized`].
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, HubError> {
        let resp = request
            .send()
            .await
            .map_err(|err| match rustls_error_in(&err) {
                // reqwest's own message would only say "error sending request".
                Some(tls) => {
                    let url = err.url().map_or("the hub", reqwest::Url::as_str);
                    HubError::Tls(tls_message(url, tls))
                }
                None => HubError::Unreachable(err),
            })?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Err(self.refusal(resp).await);
        }
        Ok(resp)
    }

    /// Reads a non-success answer into the error it stands for.
    async fn refusal(&self, resp: reqwest::Response) -> HubError {
        let status = resp.status();
        match read_capped(resp, MAX_ANSWER_BYTES).await {
            Ok(body) => self.token_refused(status, &body),
            Err(err) => err,
        }
    }

    /// [`refusal_from`], with a 401 (whatever its body) as the refusal of
    /// this client's token.
    fn token_refused(&self, status: StatusCode, body: &[u8]) -> HubError {
        if status != StatusCode::UNAUTHORIZED {
            return refusal_from(status, body);
        }
        let detail = match serde_json::from_slice::<ErrorBody>(body) {
            Ok(parsed) if !parsed.detail.is_empty() => format!("HTTP 401: {}", parsed.detail),
            _ => "HTTP 401".to_owned(),
        };
        HubError::Unauthorized(TokenRefused {
            token: self.token_source.clone(),
            detail,
        })
    }

    /// A failed WebSocket upgrade or session as a [`HubError`].
    fn ws_error(&self, err: tungstenite::Error) -> HubError {
        match err {
            // The upgrade was refused with an HTTP answer, e.g. `401 unauthorized`.
            tungstenite::Error::Http(response) => {
                let status = response.status();
                self.token_refused(status, response.body().as_deref().unwrap_or_default())
            }
            other => ws_error(other),
        }
    }
}

/// Reads a success answer's JSON body.
async fn json_body<T: DeserializeOwned>(
    resp: reqwest::Response,
    what: &str,
) -> Result<T, HubError> {
    let body = read_capped(resp, MAX_ANSWER_BYTES).await?;
    serde_json::from_slice(&body)
        .map_err(|err| HubError::Protocol(format!("{what}: {err} in answer {}", snippet(&body))))
}

/// Reads an answer's body, refusing one larger than `limit`: a broken or
/// hostile hub cannot make the agent hold gigabytes.
async fn read_capped(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, HubError> {
    let too_big = || {
        HubError::Protocol(format!(
            "the hub's answer is larger than {limit} bytes; is this a synced-folder hub?"
        ))
    };
    if resp.content_length().is_some_and(|len| len > limit as u64) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(piece) = resp.chunk().await.map_err(HubError::Unreachable)? {
        if body.len() + piece.len() > limit {
            return Err(too_big());
        }
        body.extend_from_slice(&piece);
    }
    Ok(body)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn base(raw: &str) -> Result<String, HubError> {
        normalize_base_url(raw)
    }

    #[test]
    fn base_urls_are_http_host_and_port_only() {
        assert_eq!(
            base("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            base("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            base("https://hub.example.org").unwrap(),
            "https://hub.example.org"
        );
        assert_eq!(
            base("https://Hub.Example.org/").unwrap(),
            "https://hub.example.org"
        );
        assert_eq!(base(" http://[::1]:9000/ ").unwrap(), "http://[::1]:9000");
        // A default port is dropped by the URL parser; that is the same URL.
        assert_eq!(base("http://localhost:80").unwrap(), "http://localhost");

        for bad in [
            "",
            "localhost:8080",
            "127.0.0.1:8080",
            "ftp://hub.example.org",
            "ws://hub.example.org",
            "http://",
            "http://hub.example.org/sf",
            "http://hub.example.org/v1/",
            "http://hub.example.org//",
            "http://hub.example.org/?x=1",
            "http://hub.example.org/#top",
            "http://user:pw@hub.example.org",
            "http://hub.example.org:99999",
        ] {
            match base(bad) {
                Err(HubError::Config(_)) => {}
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn ws_url_follows_the_scheme() {
        let client = HubClient::new("http://127.0.0.1:18941/").unwrap();
        assert_eq!(client.ws_url(), "ws://127.0.0.1:18941/v1/ws");
        assert_eq!(client.base_url(), "http://127.0.0.1:18941");
        let client = HubClient::new("https://hub.example.org").unwrap();
        assert_eq!(client.ws_url(), "wss://hub.example.org/v1/ws");
        let client = HubClient::new("http://[::1]:8080").unwrap();
        assert_eq!(client.ws_url(), "ws://[::1]:8080/v1/ws");
        let client = HubClient::new("https://[::1]:8443/").unwrap();
        assert_eq!(client.ws_url(), "wss://[::1]:8443/v1/ws");
        // Only an https:// hub gets a TLS set-up.
        assert!(client.ws_tls.is_some());
        assert!(HubClient::new("http://hub").unwrap().ws_tls.is_none());

        // `HubClient::new` refuses base URLs with a path; the mapping itself
        // keeps a path prefix (a hub mounted below a reverse proxy's path).
        assert_eq!(
            ws_url_for("https://proxy.example.org/sync"),
            "wss://proxy.example.org/sync/v1/ws"
        );
        assert_eq!(
            ws_url_for("http://10.0.0.1:8080/a/b"),
            "ws://10.0.0.1:8080/a/b/v1/ws"
        );
    }

    // A test CA and a leaf certificate it issued for 127.0.0.1 and localhost
    // (ECDSA P-256, valid 2000-2125), made once with openssl:
    //   openssl ca -selfsign … -extensions root   (CA:TRUE, keyCertSign)
    //   openssl ca … -extensions leaf   (CA:FALSE, serverAuth,
    //                                    subjectAltName=IP:127.0.0.1,DNS:localhost)
    // The key is the leaf's, in PKCS#8. Nothing outside these tests trusts it.
    pub(crate) const TEST_CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBajCCAQ+gAwIBAgIBATAKBggqhkjOPQQDAjAbMRkwFwYDVQQDDBBzZi1hZ2Vu
dCB0ZXN0IENBMCAXDTAwMDEwMTAwMDAwMFoYDzIxMjUwMTAxMDAwMDAwWjAbMRkw
FwYDVQQDDBBzZi1hZ2VudCB0ZXN0IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcD
QgAEkIuhk3Ttuiu5jLtc7uXlT3tnaiiwF2aOkfEKYOqsTMf8a9wesZ+8Ze/84rMm
oIzeyhoXyWZ8XQsDkYSE/nTDwqNCMEAwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8B
Af8EBAMCAQYwHQYDVR0OBBYEFAVsj94D3QzN6Fb2IjUuf96cHczVMAoGCCqGSM49
BAMCA0kAMEYCIQCHCqObdim8SPvuwLPcvlPinIV6viYuNJ3RXuKdztsKVwIhAP5e
21ntEb90vt7n2TrMkVNIPe9M5ZLnIE924DoXeYk5
-----END CERTIFICATE-----
";
    const TEST_LEAF_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBszCCAVmgAwIBAgIBAjAKBggqhkjOPQQDAjAbMRkwFwYDVQQDDBBzZi1hZ2Vu
dCB0ZXN0IENBMCAXDTAwMDEwMTAwMDAwMFoYDzIxMjUwMTAxMDAwMDAwWjAUMRIw
EAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATRxuWC
tXatj0xB5et9Hbcmjf71Pc4ID7kIgnhxbuZ9k9lzV1WmHNCAGmKF93N2L1YssI8O
cSUtVbnRoMylRTbEo4GSMIGPMAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQDAgeA
MBMGA1UdJQQMMAoGCCsGAQUFBwMBMBoGA1UdEQQTMBGHBH8AAAGCCWxvY2FsaG9z
dDAdBgNVHQ4EFgQUzfiCIiMdy+/yYKU8t8EZlzEBCAQwHwYDVR0jBBgwFoAUBWyP
3gPdDM3oVvYiNS5/3pwdzNUwCgYIKoZIzj0EAwIDSAAwRQIgbh+BvaPDZ784CZq0
KzhDwfNrCSJzEjETG7bdA/JiYAECIQDbS7l892+Tx726rbE3vNSIFaciPEWzgE3d
wppAcv1bvA==
-----END CERTIFICATE-----
";
    const TEST_LEAF_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgTteiXPhFOHL0czgH
E90PHAq+Yp4bgJgf0NWzEbLhHUuhRANCAATRxuWCtXatj0xB5et9Hbcmjf71Pc4I
D7kIgnhxbuZ9k9lzV1WmHNCAGmKF93N2L1YssI8OcSUtVbnRoMylRTbE
-----END PRIVATE KEY-----
";

    /// How long a test server waits on a silent client before giving up.
    const TEST_SERVER_PATIENCE: Duration = Duration::from_secs(10);

    fn test_server_tls() -> Arc<rustls::ServerConfig> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = vec![CertificateDer::from_pem_slice(TEST_LEAF_PEM.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(TEST_LEAF_KEY_PEM.as_bytes()).unwrap();
        Arc::new(
            rustls::ServerConfig::builder_with_provider(crypto_provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap(),
        )
    }

    /// A one-connection stand-in for the hub's `/v1/ws` on 127.0.0.1, behind
    /// TLS with the test certificate when `tls` is given: completes the
    /// upgrade, sends `hello` with head 7 and closes. A client that gives up
    /// during the handshake just ends it. Runs on a thread that stops by
    /// itself.
    fn spawn_ws_hub(tls: Option<Arc<rustls::ServerConfig>>) -> u16 {
        fn serve<S: std::io::Read + std::io::Write>(stream: S) {
            // A client that rejects the certificate aborts in here.
            let Ok(mut ws) = tungstenite::accept(stream) else {
                return;
            };
            let hello = serde_json::to_string(&WsFrame::Hello {
                head: 7,
                hub_id: String::new(),
            })
            .unwrap();
            if ws.send(Message::text(hello)).is_ok() && ws.close(None).is_ok() {
                // Until the client answers the close, or goes quiet.
                while ws.read().is_ok() {}
            }
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let Ok((tcp, _)) = listener.accept() else {
                return;
            };
            tcp.set_read_timeout(Some(TEST_SERVER_PATIENCE)).unwrap();
            tcp.set_write_timeout(Some(TEST_SERVER_PATIENCE)).unwrap();
            match tls {
                Some(config) => serve(rustls::StreamOwned::new(
                    rustls::ServerConnection::new(config).unwrap(),
                    tcp,
                )),
                None => serve(tcp),
            }
        });
        port
    }

    /// A one-connection server on 127.0.0.1 that does not speak TLS: it
    /// writes `answer` (possibly nothing), closes its side and waits for
    /// the client to go.
    fn spawn_plain_server(answer: &'static [u8]) -> u16 {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let Ok((mut tcp, _)) = listener.accept() else {
                return;
            };
            tcp.set_read_timeout(Some(TEST_SERVER_PATIENCE)).unwrap();
            let _ = tcp.write_all(answer);
            // A FIN, not a reset: the client's hello is read below, so
            // closing never discards unread data.
            let _ = tcp.shutdown(std::net::Shutdown::Write);
            let mut sink = [0u8; 4096];
            while matches!(tcp.read(&mut sink), Ok(n) if n > 0) {}
        });
        port
    }

    /// A client for `base` that also trusts the test CA, as `--ca-cert`
    /// gives it.
    fn client_trusting_test_ca(base: &str) -> HubClient {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let ca = CertificateDer::from_pem_slice(TEST_CA_PEM.as_bytes()).unwrap();
        let access = HubAccess {
            token: None,
            extra_roots: vec![ca],
        };
        HubClient::with_access(base, &access).unwrap()
    }

    async fn expect_hello(client: &HubClient) {
        let mut ws = client.connect_ws().await.unwrap();
        match client.next_frame(&mut ws).await {
            Some(Ok(WsFrame::Hello { head: 7, .. })) => {}
            other => panic!("expected hello, got {other:?}"),
        }
        assert!(client.next_frame(&mut ws).await.is_none());
    }

    #[tokio::test]
    async fn ws_opens_without_tls() {
        let port = spawn_ws_hub(None);
        let client = HubClient::new(&format!("http://127.0.0.1:{port}")).unwrap();
        expect_hello(&client).await;
    }

    #[tokio::test]
    async fn wss_opens_when_the_certificate_is_trusted() {
        let port = spawn_ws_hub(Some(test_server_tls()));
        let client = client_trusting_test_ca(&format!("https://127.0.0.1:{port}"));
        let mut ws = client.connect_ws().await.unwrap();
        assert!(
            matches!(ws.get_ref(), tokio_tungstenite::MaybeTlsStream::Rustls(_)),
            "the socket is not TLS"
        );
        match client.next_frame(&mut ws).await {
            Some(Ok(WsFrame::Hello { head: 7, .. })) => {}
            other => panic!("expected hello, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn wss_to_an_untrusted_certificate_says_to_install_the_ca() {
        // The same server, but the client trusts only the system's CAs.
        let port = spawn_ws_hub(Some(test_server_tls()));
        let client = HubClient::new(&format!("https://127.0.0.1:{port}")).unwrap();
        let err = client.connect_ws().await.unwrap_err();
        let HubError::Tls(message) = &err else {
            panic!("expected a TLS error, got {err:?}");
        };
        assert!(message.contains("UnknownIssuer"), "{message}");
        assert!(message.contains("not trusted"), "{message}");
        assert!(message.contains("system trust store"), "{message}");
        assert!(
            message.contains(&format!("wss://127.0.0.1:{port}/v1/ws")),
            "{message}"
        );
        assert!(
            err.to_string().starts_with("TLS with the hub failed: "),
            "{err}"
        );
        assert!(err.is_retryable());
    }

    #[tokio::test]
    async fn https_requests_explain_an_untrusted_certificate_too() {
        let port = spawn_ws_hub(Some(test_server_tls()));
        let client = HubClient::new(&format!("https://127.0.0.1:{port}")).unwrap();
        let err = client.changes(0, 10).await.unwrap_err();
        let HubError::Tls(message) = &err else {
            panic!("expected a TLS error, got {err:?}");
        };
        assert!(message.contains("UnknownIssuer"), "{message}");
        assert!(message.contains("system trust store"), "{message}");
        assert!(
            message.contains(&format!("https://127.0.0.1:{port}/v1/changes")),
            "{message}"
        );
    }

    #[tokio::test]
    async fn wss_to_a_server_without_tls_is_a_tls_error() {
        // Closes without a word: the TLS handshake ends early.
        let port = spawn_plain_server(b"");
        let client = HubClient::new(&format!("https://127.0.0.1:{port}")).unwrap();
        let err = client.connect_ws().await.unwrap_err();
        let HubError::Tls(message) = &err else {
            panic!("expected a TLS error, got {err:?}");
        };
        assert!(message.contains("during the TLS handshake"), "{message}");
        assert!(message.contains("http://"), "{message}");

        // A plain HTTP server (a hub without TLS) answers the client hello.
        let port = spawn_plain_server(
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        );
        let client = HubClient::new(&format!("https://127.0.0.1:{port}")).unwrap();
        let err = client.connect_ws().await.unwrap_err();
        let HubError::Tls(message) = &err else {
            panic!("expected a TLS error, got {err:?}");
        };
        assert!(message.contains("does not speak TLS"), "{message}");
        assert!(!message.contains("scheme"), "{message}");
    }

    #[test]
    fn error_bodies_map_to_refusals_and_retryability() {
        let conflict = br#"{"error":"conflict","detail":"stale","current":null}"#;
        match refusal_from(StatusCode::CONFLICT, conflict) {
            HubError::Refused { status: 409, body } => {
                assert_eq!(body.error, ErrorCode::Conflict);
                assert!(body.current.is_none());
            }
            other => panic!("{other:?}"),
        }
        let internal = refusal_from(
            StatusCode::INTERNAL_SERVER_ERROR,
            br#"{"error":"internal","detail":"db"}"#,
        );
        assert!(internal.is_retryable());
        assert_eq!(internal.code(), Some(ErrorCode::Internal));

        // A proxy's HTML page: 5xx stays retryable, 4xx is a protocol error.
        let gateway = refusal_from(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>");
        assert!(gateway.is_retryable(), "{gateway:?}");
        let unavailable = refusal_from(StatusCode::SERVICE_UNAVAILABLE, b"");
        assert_eq!(unavailable.code(), Some(ErrorCode::NotReady));
        let not_found = refusal_from(StatusCode::NOT_FOUND, b"<html>nope</html>");
        assert!(matches!(not_found, HubError::Protocol(_)), "{not_found:?}");
        assert!(!not_found.is_retryable());

        let bad = refusal_from(
            StatusCode::BAD_REQUEST,
            br#"{"error":"invalid_path","detail":"invalid path"}"#,
        );
        assert!(!bad.is_retryable());
        assert!(!HubError::Io(std::io::Error::other("x")).is_retryable());
        assert!(ws_timeout("quiet".into()).is_retryable());
    }

    #[test]
    fn loopback_hub_urls() {
        for local in [
            "http://127.0.0.1:8080",
            "http://localhost",
            "http://[::1]:80",
        ] {
            assert!(is_loopback_url(local), "{local}");
        }
        for remote in ["http://hub.lan:8080", "http://10.0.0.2", "http://[fe80::1]"] {
            assert!(!is_loopback_url(remote), "{remote}");
        }
    }

    #[test]
    fn snippets_are_bounded() {
        assert_eq!(snippet(b"short"), "short");
        let long = vec![b'a'; 1000];
        assert_eq!(snippet(&long).chars().count(), 201);
    }

    /// Tokens on requests and the WebSocket, refusals, `/v1/whoami` and
    /// `--ca-cert`, against stand-in hubs.
    pub(crate) mod auth;
}
