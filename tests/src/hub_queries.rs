//! The hub queries the tests and scenarios make over real HTTP, with the
//! hub's token: the index, a path's history, every content the change feed
//! ever held, waiting for the index to reach a state.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use sf_protocol::Sha256Hex;
use sf_protocol::legacy::IndexResponse;
use sf_protocol::v1::{ChangesResponse, Entry, HistoryResponse};

/// A client trusting the tests' CAs, with a hang guard.
pub(crate) fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .tls_certs_merge(crate::tokens::trusted_cas())
        .build()
        .expect("an HTTP client")
}

/// Every content any version in the hub's change feed ever had: the hub's
/// whole history, deleted and overwritten versions included.
pub async fn hub_contents(hub_url: &str) -> Result<HashSet<Sha256Hex>, String> {
    let http = http_client();
    let mut contents = HashSet::new();
    let mut since = 0;
    loop {
        let url = format!("{hub_url}/v1/changes?since={since}&limit=10000");
        let page = get_changes(&http, &url).await?;
        let Some(last) = page.changes.last().map(|e| e.seq) else {
            return Ok(contents);
        };
        contents.extend(page.changes.iter().filter_map(|e| e.sha256));
        since = last;
        if last >= page.head {
            return Ok(contents);
        }
    }
}

/// Declares `get_json(http, url) -> Result<T, String>` for each wire type
/// (no generic version: that would need `serde` as a dependency).
macro_rules! get_json_fns {
    ($($name:ident -> $ty:ty;)*) => {$(
        pub(crate) async fn $name(http: &reqwest::Client, url: &str) -> Result<$ty, String> {
            let body = get_body(http, url).await?;
            serde_json::from_slice(&body).map_err(|e| format!("GET {url}: bad JSON: {e}"))
        }
    )*};
}

get_json_fns! {
    get_index -> IndexResponse;
    get_changes -> ChangesResponse;
}

async fn get_body(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let resp = crate::tokens::authorize(http.get(url), url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| format!("GET {url}: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "GET {url}: {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    Ok(body.to_vec())
}

/// `GET /index`: path → sha256 of every live file.
pub async fn hub_index(hub_url: &str) -> Result<BTreeMap<String, Sha256Hex>, String> {
    let index = get_index(&http_client(), &format!("{hub_url}/index")).await?;
    Ok(index.index.into_iter().map(|(p, e)| (p, e.sha)).collect())
}

/// `GET /v1/history?path=`: every version, oldest first (empty for a path
/// the hub never saw).
pub async fn hub_history(hub_url: &str, path: &str) -> Result<Vec<Entry>, String> {
    let http = http_client();
    let url = format!("{hub_url}/v1/history");
    let resp = crate::tokens::authorize(http.get(&url), &url)
        .query(&[("path", path)])
        .send()
        .await
        .map_err(|e| format!("GET /v1/history?path={path}: {e}"))?;
    if resp.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(Vec::new());
    }
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!(
            "GET /v1/history?path={path}: {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    let history: HistoryResponse =
        serde_json::from_slice(&body).map_err(|e| format!("history JSON: {e}"))?;
    Ok(history.versions)
}

/// Polls `GET /index` until `ready(index)` holds; on timeout returns the
/// last index seen.
pub async fn wait_hub(
    hub_url: &str,
    timeout: Duration,
    what: &str,
    mut ready: impl FnMut(&BTreeMap<String, Sha256Hex>) -> bool,
) -> Result<BTreeMap<String, Sha256Hex>, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = hub_index(hub_url).await;
        if let Ok(index) = &last
            && ready(index)
        {
            return Ok(index.clone());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the hub did not reach `{what}` within {timeout:?}; last index: {last:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
