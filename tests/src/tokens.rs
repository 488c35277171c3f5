//! The hubs' tokens and private CAs, so every helper that talks to a hub by
//! URL authenticates and verifies TLS the way an agent does: a hub started
//! by the harness makes its first-start token (`<data-dir>/agent-token`) and
//! registers it here under its URL; a TLS hub registers the CA that signed
//! its certificate.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

fn registry() -> &'static Mutex<HashMap<String, String>> {
    static TOKENS: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    TOKENS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Remembers `token` for every request to `hub_url` (`http://host:port`).
pub fn register(hub_url: &str, token: &str) {
    registry()
        .lock()
        .unwrap()
        .insert(hub_url.trim_end_matches('/').to_owned(), token.to_owned());
}

/// The token registered for the hub `url` points into, if any.
pub fn token_for(url: &str) -> Option<String> {
    let tokens = registry().lock().unwrap();
    tokens
        .iter()
        .find(|(base, _)| {
            url.strip_prefix(base.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
        .map(|(_, token)| token.clone())
}

/// `request` with `Authorization: Bearer` for the hub `url` belongs to.
pub fn authorize(request: reqwest::RequestBuilder, url: &str) -> reqwest::RequestBuilder {
    match token_for(url) {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

fn cas() -> &'static Mutex<Vec<String>> {
    static CAS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    CAS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Trusts the PEM CA `pem` in every client the convergence helpers make from now on.
pub fn trust_ca(pem: &str) {
    let mut cas = cas().lock().unwrap();
    if !cas.iter().any(|known| known == pem) {
        cas.push(pem.to_owned());
    }
}

/// The CAs registered with [`trust_ca`].
pub fn trusted_cas() -> Vec<reqwest::Certificate> {
    cas()
        .lock()
        .unwrap()
        .iter()
        .map(|pem| reqwest::Certificate::from_pem(pem.as_bytes()).expect("a PEM CA certificate"))
        .collect()
}
