//! A path's versions on the hub: `GET /v1/history` (every page) and
//! `POST /v1/restore`, for `sf-agent history` and `sf-agent restore`.

use reqwest::StatusCode;
use sf_protocol::SyncPath;
use sf_protocol::v1::{Entry, HISTORY_MAX_LIMIT, HistoryResponse, PathQuery, RestoreRequest};

use super::requests::json_body;
use super::{HubClient, HubError};

impl HubClient {
    /// Every version of `path`, oldest first, tombstones included, read a
    /// page at a time from the newest; `None` when the hub has never had
    /// the path.
    pub async fn history(&self, path: &SyncPath) -> Result<Option<Vec<Entry>>, HubError> {
        let mut versions: Vec<Entry> = Vec::new();
        let mut before = None;
        loop {
            let query = PathQuery {
                path: path.clone(),
                limit: Some(HISTORY_MAX_LIMIT),
                before,
                after: None,
            };
            let resp = self
                .send(self.http.get(self.url("/v1/history")).query(&query))
                .await?;
            if resp.status() == StatusCode::NOT_FOUND && before.is_none() {
                return Ok(None);
            }
            if !resp.status().is_success() {
                return Err(self.refusal(resp).await);
            }
            let page: HistoryResponse = json_body(resp, "GET /v1/history").await?;
            for entry in &page.versions {
                check_entry(path, entry, "GET /v1/history")?;
            }
            let first = page.versions.first().map(|e| e.version);
            let more = page.more && first.is_some_and(|v| v > 1);
            let mut older = page.versions;
            older.append(&mut versions);
            versions = older;
            if !more {
                break;
            }
            before = first;
        }
        Ok(Some(versions))
    }

    /// `POST /v1/restore`: `version`'s content becomes `path`'s newest
    /// version (or stays current, when it already is the content).
    pub async fn restore(
        &self,
        path: &SyncPath,
        version: u64,
        origin: &str,
    ) -> Result<Entry, HubError> {
        let request = RestoreRequest {
            path: path.clone(),
            version,
            origin: origin.to_owned(),
        };
        let resp = self
            .send(self.patient.post(self.url("/v1/restore")).json(&request))
            .await?;
        if !resp.status().is_success() {
            return Err(self.refusal(resp).await);
        }
        let entry: Entry = json_body(resp, "POST /v1/restore").await?;
        check_entry(path, &entry, "POST /v1/restore")?;
        Ok(entry)
    }
}

/// An entry must be valid and about the path asked for.
fn check_entry(path: &SyncPath, entry: &Entry, what: &str) -> Result<(), HubError> {
    if entry.path != *path {
        return Err(HubError::Protocol(format!(
            "{what} for {path} answered about {}",
            entry.path
        )));
    }
    entry
        .validate()
        .map_err(|err| HubError::Protocol(format!("{what}: {err}")))
}
