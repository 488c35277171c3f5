//! Who is asking: every API route but the health probes needs a token.
//!
//! Layout:
//! - [`token`]: the token format, generation and hashing;
//! - [`provision`]: the tokens a hub makes at start (the first-start
//!   `default` token and its file, the deployment's bootstrap token);
//! - [`session`]: the web page's sign-in cookie and its anti-forgery checks;
//! - this module: [`Auth`], the credential cache and the middleware that
//!   turns a request into a [`Caller`] or a 401/403.
//!
//! Tokens are looked up by their SHA-256 in a cache of live tokens, refreshed
//! from the database every [`REFRESH_INTERVAL`] so a revocation made by
//! `sf-hub token revoke` (another process) takes effect within that time;
//! open WebSockets of a revoked token are closed through
//! [`Auth::revocations`]. A token not in the cache is looked up in the
//! database, so one created a moment ago works at once.

pub mod provision;
pub mod session;
pub mod token;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sf_protocol::v1::Scope;
use tokio::sync::watch;

use crate::db::{Database, DbError, TokenRow, now_ms};
use crate::error::ApiError;
use token::{Secret, TokenHash};

/// How often the cache re-reads the live tokens: the longest a revocation
/// made by another process takes to apply.
pub const REFRESH_INTERVAL: Duration = Duration::from_millis(500);
/// `last_used` is written at most this often per token, not per request.
const TOUCH_INTERVAL_MS: i64 = 60_000;

/// The authenticated party of a request, put in its extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// `None` under `--no-auth`.
    pub token_id: Option<i64>,
    pub token_name: Option<String>,
    pub scope: Scope,
    /// The web page's session the request came with (the SHA-256 of its
    /// secret), so a WebSocket it opened ends when the session does.
    pub session: Option<String>,
}

struct Cached {
    hash: TokenHash,
    id: i64,
    name: String,
    scope: Scope,
    last_touch_ms: AtomicI64,
}

/// Authentication for one hub: on (tokens) or off (`--no-auth`).
pub struct Auth {
    db: Database,
    enabled: bool,
    live: RwLock<HashMap<TokenHash, Arc<Cached>>>,
    /// Bumped whenever a token leaves the live set.
    revoked: watch::Sender<u64>,
    /// The hub serves TLS itself: session cookies are `Secure`.
    serves_tls: bool,
    /// The web page's session cookie on this hub (see [`session`]).
    cookie_name: String,
}

impl Auth {
    /// Authentication on `db` (off when not `enabled`) for the hub whose
    /// identity is `hub_id`.
    pub fn new(db: Database, enabled: bool, serves_tls: bool, hub_id: &str) -> Self {
        Self {
            db,
            enabled,
            live: RwLock::new(HashMap::new()),
            revoked: watch::channel(0).0,
            serves_tls,
            cookie_name: session::cookie_name(hub_id),
        }
    }

    /// Whether requests need a token (false under `--no-auth`).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether this hub serves TLS itself.
    pub fn serves_tls(&self) -> bool {
        self.serves_tls
    }

    /// Loads the live tokens, then keeps reloading them until `stop` flips.
    pub async fn start(self: &Arc<Self>, mut stop: watch::Receiver<bool>) -> Result<(), DbError> {
        if !self.enabled {
            return Ok(());
        }
        self.refresh().await?;
        let auth = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REFRESH_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Err(err) = auth.refresh().await {
                            tracing::warn!(error = %err, "cannot re-read tokens; keeping the ones known");
                        }
                    }
                    () = stopped(&mut stop) => return,
                }
            }
        });
        Ok(())
    }

    /// Re-reads the tokens now (another hub's process revoked one, or
    /// ended a web session), and has open WebSockets look again at whether
    /// their access still holds.
    pub async fn refresh_now(&self) {
        if !self.enabled {
            return;
        }
        if let Err(err) = self.refresh().await {
            tracing::warn!(error = %err, "cannot re-read tokens; keeping the ones known");
        }
        self.revoked.send_modify(|generation| *generation += 1);
    }

    async fn refresh(&self) -> Result<(), DbError> {
        // What was known before reading: a token `authenticate` adds while
        // the query runs may be missing from the rows without being revoked.
        let before: HashSet<TokenHash> = self
            .live
            .read()
            .expect("token cache lock")
            .keys()
            .copied()
            .collect();
        let rows = self.db.live_tokens().await?;
        let mut fresh = HashMap::with_capacity(rows.len());
        for row in rows {
            if let Some(cached) = self.cached_from(row) {
                fresh.insert(cached.hash, cached);
            }
        }
        let removed = {
            let mut live = self.live.write().expect("token cache lock");
            let removed = before.iter().any(|hash| !fresh.contains_key(hash));
            for (hash, cached) in live.iter() {
                if let Some(kept) = fresh.get(hash) {
                    // Keep the touch times of tokens that stay.
                    let touched = cached.last_touch_ms.load(Ordering::Relaxed);
                    kept.last_touch_ms.store(touched, Ordering::Relaxed);
                } else if !before.contains(hash) {
                    // Added by `authenticate` while the query ran: the next
                    // refresh judges it.
                    fresh.insert(*hash, Arc::clone(cached));
                }
            }
            *live = fresh;
            removed
        };
        if removed {
            self.revoked.send_modify(|generation| *generation += 1);
        }
        Ok(())
    }

    fn cached_from(&self, row: TokenRow) -> Option<Arc<Cached>> {
        let Some(hash) = TokenHash::from_hex(&row.hash) else {
            tracing::warn!(token = %row.name, "token row has a malformed hash; ignoring it");
            return None;
        };
        Some(Arc::new(Cached {
            hash,
            id: row.id,
            name: row.name,
            scope: row.scope,
            last_touch_ms: AtomicI64::new(row.last_used_ms.unwrap_or(0)),
        }))
    }

    /// Changes whenever a token is revoked or a web session ends; see
    /// [`Auth::is_live`] and [`Auth::still_allowed`].
    pub fn revocations(&self) -> watch::Receiver<u64> {
        self.revoked.subscribe()
    }

    /// False once the token `id` is revoked (always true under `--no-auth`).
    pub fn is_live(&self, caller: &Caller) -> bool {
        match caller.token_id {
            None => true,
            Some(id) => self
                .live
                .read()
                .expect("token cache lock")
                .values()
                .any(|cached| cached.id == id),
        }
    }

    /// Whether `caller`'s access still holds: its token is live and, for
    /// the web page, its session has not ended (a database look-up).
    pub async fn still_allowed(&self, caller: &Caller) -> bool {
        if !self.is_live(caller) {
            return false;
        }
        match &caller.session {
            None => true,
            Some(hash) => match self.db.live_session(hash).await {
                Ok(found) => found.is_some(),
                // The database is away: keep the socket; the next change
                // of access looks again.
                Err(_) => true,
            },
        }
    }

    /// The caller a presented token stands for.
    pub async fn authenticate(&self, presented: &str) -> Result<Caller, ApiError> {
        let Some(secret) = Secret::parse(presented) else {
            return Err(unauthorized(
                "the token is not a synced-folder token (sft_…); check the token file",
            ));
        };
        let hash = secret.hash();
        let cached = self
            .live
            .read()
            .expect("token cache lock")
            .get(&hash)
            .cloned();
        let cached = match cached {
            Some(cached) => cached,
            None => {
                // Made since the last refresh? The database knows.
                let row = self.db.token_by_hash(&hash.to_hex()).await?;
                match row {
                    Some(row) if row.revoked_ms.is_none() => {
                        let Some(cached) = self.cached_from(row) else {
                            return Err(unknown_token());
                        };
                        self.live
                            .write()
                            .expect("token cache lock")
                            .insert(cached.hash, Arc::clone(&cached));
                        cached
                    }
                    Some(_) => {
                        return Err(unauthorized(
                            "this token was revoked; ask the hub's operator for a new one \
                             (sf-hub token create NAME)",
                        ));
                    }
                    None => return Err(unknown_token()),
                }
            }
        };
        if !cached.hash.constant_time_eq(&hash) {
            return Err(unknown_token());
        }
        self.touch(&cached);
        Ok(Caller {
            token_id: Some(cached.id),
            token_name: Some(cached.name.clone()),
            scope: cached.scope,
            session: None,
        })
    }

    /// Records `last_used`, at most once a minute per token, off the request path.
    fn touch(&self, cached: &Arc<Cached>) {
        let now = now_ms();
        let last = cached.last_touch_ms.load(Ordering::Relaxed);
        if now - last < TOUCH_INTERVAL_MS
            || cached
                .last_touch_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let db = self.db.clone();
        let id = cached.id;
        tokio::spawn(async move {
            if let Err(err) = db.touch_token(id, now).await {
                tracing::debug!(error = %err, "cannot record a token's last use");
            }
        });
    }

    /// The caller of a request under `--no-auth`: anyone on this machine,
    /// provided the `Host` is a loopback name (DNS rebinding otherwise lets
    /// a web page in the user's browser talk to the hub).
    fn local_caller(&self, request: &Request) -> Result<Caller, ApiError> {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| request.uri().authority().map(|a| a.as_str()));
        match host {
            Some(host) if is_loopback_host(host) => Ok(Caller {
                token_id: None,
                token_name: None,
                scope: Scope::Write,
                session: None,
            }),
            _ => Err(ApiError::Forbidden(
                "this hub runs with --no-auth and answers only requests addressed to a \
                 loopback name (localhost, 127.0.0.1, [::1])"
                    .into(),
            )),
        }
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    // Only completion matters; the borrowed value must not live across awaits.
    let _ = stop.wait_for(|stopping| *stopping).await.is_ok();
}

fn unauthorized(detail: &str) -> ApiError {
    ApiError::Unauthorized(detail.to_owned())
}

fn unknown_token() -> ApiError {
    unauthorized(
        "the hub does not know this token; check the token file, or ask the hub's operator \
         for a token (sf-hub token create NAME)",
    )
}

/// Whether a `Host` header value names this machine.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((inside, _port)) => inside,
            None => return false,
        }
    } else {
        host.rsplit_once(':').map_or(host, |(name, _port)| name)
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Middleware for routes that take `Authorization: Bearer <token>`, or the
/// web page's session cookie.
pub async fn bearer(State(auth): State<Arc<Auth>>, request: Request, next: Next) -> Response {
    let caller = if auth.enabled {
        match bearer_token(request.headers()) {
            Some(token) => auth.authenticate(token).await,
            None if auth.session_cookie(request.headers()).is_some() => {
                let only_reads = changes_nothing(&request);
                auth.session_caller(request.headers(), only_reads).await
            }
            None => Err(unauthorized(
                "this hub needs a token: send Authorization: Bearer <token> (agents: \
                 --token-file; the original client: SERVER_URL=http://HUB/t/<token>; \
                 a browser: sign in on the hub's page at /ui/)",
            )),
        }
    } else {
        auth.local_caller(&request)
    };
    run_as(caller, request, next).await
}

/// Middleware for the legacy routes under `/t/{token}/`: the original client
/// cannot send headers, so the token travels in the path.
pub async fn path_token(
    State(auth): State<Arc<Auth>>,
    params: RawPathParams,
    request: Request,
    next: Next,
) -> Response {
    let caller = if auth.enabled {
        match params.iter().find(|(key, _)| *key == "token") {
            Some((_, token)) => auth.authenticate(token).await,
            None => Err(unknown_token()),
        }
    } else {
        auth.local_caller(&request)
    };
    run_as(caller, request, next).await
}

/// Runs the request as `caller`, or answers 401/403.
async fn run_as(caller: Result<Caller, ApiError>, mut request: Request, next: Next) -> Response {
    let caller = match caller {
        Ok(caller) => caller,
        Err(err) => return err.into_response(),
    };
    // Whatever authenticated it: a change a page of another site asks a
    // browser to make (a hub on localhost under --no-auth, a cookie) is
    // refused before it is looked at.
    if !changes_nothing(&request) && session::cross_site(request.headers()) {
        return ApiError::Forbidden(
            "a change requested by a page of another site (its Origin is not this hub) is \
             refused"
                .into(),
        )
        .into_response();
    }
    if caller.scope == Scope::Read && !changes_nothing(&request) {
        return ApiError::Forbidden(format!(
            "token {:?} is read-only: it can read and follow changes but not change anything; \
             use a write token (sf-hub token create NAME)",
            caller.token_name.as_deref().unwrap_or_default()
        ))
        .into_response();
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// `POST` routes that change nothing: a read whose request is too long for
/// a URL. Read-only tokens may use them. (`POST /v1/chunks/missing` is not
/// one: it is asked before an upload, and refreshes what it finds.)
const READING_POSTS: &[&str] = &["/v1/chunks/fetch"];

/// Whether a request only reads, so a read-only token may make it: the
/// methods that change nothing, and the reading `POST`s by their route.
fn changes_nothing(request: &Request) -> bool {
    match *request.method() {
        Method::GET | Method::HEAD => true,
        Method::POST => request
            .extensions()
            .get::<MatchedPath>()
            .is_some_and(|route| READING_POSTS.contains(&route.as_str())),
        _ => false,
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme matched
/// case-insensitively, as RFC 9110 says).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for ok in [
            "localhost",
            "localhost:8080",
            "LOCALHOST.",
            "hub.localhost:1",
            "127.0.0.1",
            "127.1.2.3:80",
            "[::1]",
            "[::1]:8080",
        ] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "example.com",
            "localhost.example.com",
            "10.0.0.1:8080",
            "0.0.0.0",
            "[::]:80",
            "[::1",
            "evil.com:127.0.0.1",
            "",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn bearer_headers() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, value.parse().unwrap());
            headers
        };
        assert_eq!(bearer_token(&with("Bearer sft_x")), Some("sft_x"));
        assert_eq!(bearer_token(&with("bearer  sft_x ")), Some("sft_x"));
        assert_eq!(bearer_token(&with("Basic abc")), None);
        assert_eq!(bearer_token(&with("Bearer ")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }
}
