//! The hub's v1 calls other than uploads (`whoami`, the change feed,
//! directory commits, deletes, chunk downloads), and what every request
//! shares: sending it with the token, reading a refusal into a
//! [`HubError`], and reading answers no larger than a bound.

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use sf_protocol::chunking::MAX_CHUNK_SIZE;
use sf_protocol::v1::{ChangesQuery, ChangesResponse, CommitRequest, EntryKind, ErrorBody, WhoAmI};
use sf_protocol::{Sha256Hex, SyncPath};

use super::error::{is_gone_status, refusal_from, snippet, with_causes};
use super::tls::{rustls_error_in, tls_message};
use super::{CommitOutcome, HubClient, HubError};
use crate::credentials::TokenRefused;

/// The largest JSON answer read from the hub. A page of the change feed
/// with chunk lists is far below it (a 16 GiB file lists ~3 MB of chunks).
const MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;

impl HubClient {
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

    /// Sends `request`; a 401 answer becomes [`HubError::Unauthorized`].
    /// A hub that does not answer, or answers 502/503/504, is left for the
    /// next one given (see `endpoints`); the caller's retry goes there.
    pub(super) async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, HubError> {
        let (client, request) = request.build_split();
        let request = request.map_err(HubError::Unreachable)?;
        // The hub in use when the URL was made, which may have changed since.
        let hub = self.hubs.position_of(request.url());
        let sent = client
            .execute(request)
            .await
            .map_err(|err| match rustls_error_in(&err) {
                // reqwest's own message would only say "error sending request".
                Some(tls) => {
                    let url = err.url().map_or("the hub", reqwest::Url::as_str);
                    HubError::Tls(tls_message(url, tls))
                }
                None => HubError::Unreachable(err),
            });
        if let Some(hub) = hub {
            match &sent {
                Ok(resp) if is_gone_status(resp.status().as_u16()) => self
                    .hubs
                    .failed(hub, &format!("it answered HTTP {}", resp.status())),
                Ok(_) => self.hubs.answered(hub),
                Err(err) if err.means_hub_gone() => self.hubs.failed(hub, &with_causes(err)),
                Err(_) => {}
            }
        }
        let resp = sent?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Err(self.refusal(resp).await);
        }
        Ok(resp)
    }

    /// Reads a non-success answer into the error it stands for.
    pub(super) async fn refusal(&self, resp: reqwest::Response) -> HubError {
        let status = resp.status();
        match read_capped(resp, MAX_ANSWER_BYTES).await {
            Ok(body) => self.token_refused(status, &body),
            Err(err) => err,
        }
    }

    /// [`refusal_from`], with a 401 (whatever its body) as the refusal of
    /// this client's token.
    pub(super) fn token_refused(&self, status: StatusCode, body: &[u8]) -> HubError {
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
}

/// Reads a success answer's JSON body.
pub(super) async fn json_body<T: DeserializeOwned>(
    resp: reqwest::Response,
    what: &str,
) -> Result<T, HubError> {
    let body = read_capped(resp, MAX_ANSWER_BYTES).await?;
    serde_json::from_slice(&body)
        .map_err(|err| HubError::Protocol(format!("{what}: {err} in answer {}", snippet(&body))))
}

/// Reads an answer's body, refusing one larger than `limit`: a broken or
/// hostile hub cannot make the agent hold gigabytes.
pub(super) async fn read_capped(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, HubError> {
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
