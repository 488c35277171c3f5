//! The web page's sign-in: a token exchanged for a session cookie, and the
//! checks that keep another site from acting through that cookie.
//!
//! - The cookie holds a random secret; the database keeps only its SHA-256
//!   (`db::sessions`). It is `HttpOnly` (scripts cannot read it),
//!   `SameSite=Strict` (other sites' pages do not send it) and `Secure` when
//!   the hub serves TLS or a proxy says the request came over https. Its
//!   name carries the hub's identity (`sf_session_<id>`, `__Host-` first
//!   when `Secure`, so no other subdomain can set it): browsers keep cookies
//!   per host, not per port, and two hubs on one host must not sign each
//!   other out.
//! - Against cross-site request forgery: every request that may change
//!   something and is authenticated by the cookie must carry the session's
//!   own second secret in `X-SF-CSRF`, which only the page (same origin)
//!   can read from `GET /ui/session`; and any such request from a browser
//!   whose `Origin` is another site's is refused whatever it carries
//!   (see [`cross_site`]).
//! - A session lasts [`SESSION_LIFETIME`], ends at sign-out, and ends with
//!   its token: revoking the token revokes every page signed in with it.
//!   A WebSocket the page opened closes when its session ends, on every
//!   hub (a sign-out is announced like a revocation).

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use sha2::{Digest, Sha256};

use super::{Auth, Caller, unauthorized};
use crate::db::now_ms;
use crate::error::ApiError;

/// The start of the cookie's name.
const COOKIE_PREFIX: &str = "sf_session_";
/// The prefix browsers accept only on a `Secure` cookie set by this very host.
const HOST_ONLY: &str = "__Host-";
/// The header the page sends its anti-forgery secret in.
pub const CSRF_HEADER: &str = "x-sf-csrf";
/// How long a sign-in lasts.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// A session just made: the cookie to set and the secret the page keeps.
pub struct NewSession {
    pub cookie: HeaderValue,
    pub csrf: String,
}

/// A signed-in caller, and the anti-forgery secret of their session.
pub struct SessionCaller {
    pub caller: Caller,
    pub csrf: String,
}

impl Auth {
    /// Exchanges `caller` (just authenticated by its token) for a session.
    pub async fn start_session(
        &self,
        caller: &Caller,
        over_tls: bool,
    ) -> Result<NewSession, ApiError> {
        let Some(token_id) = caller.token_id else {
            return Err(ApiError::InvalidRequest(
                "this hub runs with --no-auth: the page needs no sign-in".into(),
            ));
        };
        let secret = random_secret();
        let csrf = random_secret();
        let expires_ms = now_ms() + SESSION_LIFETIME.as_millis() as i64;
        self.db
            .add_session(&hash(&secret), token_id, &csrf, expires_ms)
            .await?;
        let db = self.db.clone();
        tokio::spawn(async move {
            if let Err(err) = db.remove_expired_sessions().await {
                tracing::debug!(error = %err, "cannot forget expired web sessions");
            }
        });
        let secure = self.serves_tls || over_tls;
        let cookie = format!(
            "{}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
            self.cookie_name_for(secure),
            SESSION_LIFETIME.as_secs(),
            secure_attribute(secure)
        );
        Ok(NewSession {
            cookie: HeaderValue::from_str(&cookie).expect("the cookie is ASCII"),
            csrf,
        })
    }

    /// The caller a request's session cookie stands for, if any is live.
    pub async fn session(&self, headers: &HeaderMap) -> Result<SessionCaller, ApiError> {
        let Some(secret) = self.session_cookie(headers) else {
            return Err(not_signed_in());
        };
        let session = hash(secret);
        let Some(row) = self.db.live_session(&session).await? else {
            return Err(not_signed_in());
        };
        let mut caller = match self.caller_by_id(row.token_id) {
            Some(caller) => caller,
            None => {
                // Made since the last refresh (another hub's new token).
                self.refresh_now().await;
                self.caller_by_id(row.token_id).ok_or_else(not_signed_in)?
            }
        };
        caller.session = Some(session);
        Ok(SessionCaller {
            caller,
            csrf: row.csrf,
        })
    }

    /// Whether the request may change its session (sign out): it carries
    /// the session's anti-forgery secret, or its session is over anyway.
    pub async fn session_allows_change(&self, headers: &HeaderMap) -> Result<bool, ApiError> {
        match self.session(headers).await {
            Ok(session) => Ok(csrf_matches(headers, &session.csrf)),
            Err(ApiError::Unauthorized(_)) => Ok(true),
            Err(err) => Err(err),
        }
    }

    /// Ends the request's session, if it has one.
    pub async fn end_session(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if let Some(secret) = self.session_cookie(headers) {
            self.db.remove_session(&hash(secret)).await?;
            // The page's WebSocket closes too, on every hub.
            self.db.announce_access_change().await?;
            self.revoked.send_modify(|generation| *generation += 1);
        }
        Ok(())
    }

    /// The caller of a request authenticated by its session cookie: refused
    /// when a request that may change something lacks the session's
    /// anti-forgery secret.
    pub(super) async fn session_caller(
        &self,
        headers: &HeaderMap,
        only_reads: bool,
    ) -> Result<Caller, ApiError> {
        let session = self.session(headers).await?;
        if !only_reads && !csrf_matches(headers, &session.csrf) {
            return Err(ApiError::Forbidden(
                "this change lacks the page's X-SF-CSRF header (a request made from another \
                 site, or a page loaded before sign-in); reload the page and try again"
                    .into(),
            ));
        }
        Ok(session.caller)
    }

    /// The secret of this hub's session cookie among the request's
    /// cookies; `None` for anything that cannot be one (not 64 hex digits),
    /// which is refused without a database look-up.
    pub fn session_cookie<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        find_cookie(headers, &self.cookie_name)
            .filter(|value| value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
    }

    /// The cookie that ends a session in the browser.
    pub fn clearing_cookie(&self, secure: bool) -> HeaderValue {
        let cookie = format!(
            "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
            self.cookie_name_for(secure),
            secure_attribute(secure)
        );
        HeaderValue::from_str(&cookie).expect("the cookie is ASCII")
    }

    fn cookie_name_for(&self, secure: bool) -> String {
        if secure {
            format!("{HOST_ONLY}{}", self.cookie_name)
        } else {
            self.cookie_name.clone()
        }
    }

    fn caller_by_id(&self, id: i64) -> Option<Caller> {
        self.live
            .read()
            .expect("token cache lock")
            .values()
            .find(|cached| cached.id == id)
            .map(|cached| Caller {
                token_id: Some(cached.id),
                token_name: Some(cached.name.clone()),
                scope: cached.scope,
                session: None,
            })
    }
}

/// The session cookie's name on the hub whose identity is `hub_id`.
pub fn cookie_name(hub_id: &str) -> String {
    let id: String = hub_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(12)
        .collect();
    format!("{COOKIE_PREFIX}{id}")
}

fn secure_attribute(secure: bool) -> &'static str {
    if secure { "; Secure" } else { "" }
}

/// Whether a proxy in front says the browser used https.
pub fn forwarded_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// The value of the cookie `name` (or `__Host-name`) among the request's.
fn find_cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, _)| found.strip_prefix(HOST_ONLY).unwrap_or(found) == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

fn csrf_matches(headers: &HeaderMap, expected: &str) -> bool {
    let Some(sent) = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    // Compared in constant time: the secret must not leak through timing.
    let (sent, expected) = (sent.trim().as_bytes(), expected.as_bytes());
    sent.len() == expected.len()
        && sent
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Whether a request comes from a page of another site: its `Origin` names
/// another host than the one addressed, or the browser says so
/// (`Sec-Fetch-Site: cross-site`). Agents and scripts send neither.
pub fn cross_site(headers: &HeaderMap) -> bool {
    let fetch_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    if fetch_site.is_some_and(|site| site.eq_ignore_ascii_case("cross-site")) {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match (origin.to_str().ok(), host) {
        (Some(origin), Some(host)) => !same_origin(origin, host),
        _ => true,
    }
}

/// Whether `origin` (`scheme://host[:port]`) names the authority `host`
/// (`host[:port]`, the Host header), default ports filled in.
pub fn same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => "80",
        "https" => "443",
        _ => return false,
    };
    let split = |authority: &str| -> (String, String) {
        let authority = authority.trim().to_ascii_lowercase();
        match authority.rfind(':') {
            // An IPv6 literal's colons sit inside brackets.
            Some(i) if !authority[i..].contains(']') => {
                (authority[..i].to_owned(), authority[i + 1..].to_owned())
            }
            _ => (authority.clone(), default_port.to_owned()),
        }
    };
    !authority.contains('/') && split(authority) == split(host)
}

fn not_signed_in() -> ApiError {
    unauthorized("not signed in, or the sign-in expired or its token was revoked; sign in again")
}

fn random_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn finds_the_session_cookie_among_others() {
        let name = cookie_name("5f1c0d0a7f3e4b6e9d2c8a1b3e5f7a9c");
        assert_eq!(name, "sf_session_5f1c0d0a7f3e");
        let find =
            |pairs: &[(&'static str, &str)]| find_cookie(&headers(pairs), &name).map(str::to_owned);
        let plain = [("cookie", "a=1; sf_session_5f1c0d0a7f3e=abc ; b=2")];
        assert_eq!(find(&plain).as_deref(), Some("abc"));
        let host_only = [
            ("cookie", "a=1"),
            ("cookie", "__Host-sf_session_5f1c0d0a7f3e=x"),
        ];
        assert_eq!(find(&host_only).as_deref(), Some("x"));
        // Another hub's cookie on the same host, an empty one, none.
        assert_eq!(find(&[("cookie", "sf_session_000000000000=y")]), None);
        assert_eq!(find(&[("cookie", "sf_session_5f1c0d0a7f3e=")]), None);
        assert_eq!(find(&[]), None);
    }

    #[test]
    fn the_csrf_header_must_match_exactly() {
        assert!(csrf_matches(&headers(&[("x-sf-csrf", "abc")]), "abc"));
        assert!(!csrf_matches(&headers(&[("x-sf-csrf", "abd")]), "abc"));
        assert!(!csrf_matches(&headers(&[("x-sf-csrf", "ab")]), "abc"));
        assert!(!csrf_matches(&HeaderMap::new(), "abc"));
    }

    #[test]
    fn requests_from_other_sites_are_told_apart() {
        let from =
            |origin: &str, host: &str| cross_site(&headers(&[("origin", origin), ("host", host)]));
        assert!(!from("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(!from("https://hub.example", "HUB.example:443"));
        assert!(from("http://127.0.0.1:9999", "127.0.0.1:8080"));
        assert!(from("http://evil.example", "127.0.0.1:8080"));
        assert!(from("null", "127.0.0.1:8080"));
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(!cross_site(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!cross_site(&HeaderMap::new()));
    }
}
