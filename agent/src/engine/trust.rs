//! What the agent does not take from the hub as it comes.
//!
//! - Entries that fail [`Entry::validate`], names this platform cannot hold
//!   ([`sf_protocol::platform::path_problem`]) and, on a case-insensitive
//!   file system, names that meet another live hub path are skipped: their
//!   path is left out of every decision (never written, renamed or deleted
//!   through), logged once and reported by `sf-agent status`. The entry
//!   stays stored and the feed moves on, so it is not asked for again; a
//!   newer version of the path replaces it and is judged afresh.
//! - A hub whose identity differs from the one the folder last synced with
//!   (restored from a backup, or another hub at the same URL) gets the
//!   folder merged as at a first sync: nothing is deleted because it lacks
//!   it.
//!
//! Paths that lead through a symlink are refused lower down, where the
//! change is made ([`crate::apply`]).

use std::collections::HashSet;
use std::path::Path;

use sf_protocol::SyncPath;
use sf_protocol::platform::{NameProblem, NameRule, path_problem};
use sf_protocol::v1::Entry;

use super::Engine;
use crate::model::Views;
use crate::scan::Stat;
use crate::state::{MetaKey, ProblemKind, STATE_DIR, StateError};

impl Engine {
    /// Why the hub's `entry` is not applied here, if it is not.
    async fn refusal(&self, entry: &Entry) -> Result<Option<String>, StateError> {
        if let Err(err) = entry.validate() {
            return Ok(Some(format!(
                "refused: the hub's version {} is invalid ({err})",
                entry.version
            )));
        }
        if let Some(problem) = path_problem(&entry.path, self.platform) {
            return Ok(Some(format!("not applied: {problem}")));
        }
        if self.case_insensitive
            && let Some(other) = self.state.case_twin(&entry.path).await?
        {
            let problem = NameProblem {
                name: entry.path.to_string(),
                platform: self.platform,
                rule: NameRule::Collision { other },
            };
            return Ok(Some(format!("not applied: {problem}")));
        }
        Ok(None)
    }

    /// The paths of `views` whose hub entry is refused, reported. Callers
    /// decide nothing for them, but still descend into a refused folder
    /// that is on disk: what is inside is not deleted because of it.
    pub(super) async fn refused(&mut self, views: &Views) -> Result<HashSet<SyncPath>, StateError> {
        let mut refused = HashSet::new();
        for entry in views.remote.values() {
            if let Some(reason) = self.refusal(entry).await? {
                self.refuse(&entry.path, &reason).await?;
                refused.insert(entry.path.clone());
            }
        }
        Ok(refused)
    }

    /// Reports that `path` is not synced, and why: logged once per reason,
    /// kept for `sf-agent status` until the path is synced.
    pub(super) async fn refuse(&mut self, path: &SyncPath, reason: &str) -> Result<(), StateError> {
        if self.warned.insert(format!("{path}: {reason}")) {
            tracing::error!(%path, reason, "hub entry not applied; other paths go on syncing");
        }
        // Every time: a record made since (the path synced once) cleared it.
        self.state
            .set_problem(path.as_str(), ProblemKind::Refused, reason)
            .await
    }

    /// Compares the hub's identity (from the change feed) with the one the
    /// folder last synced with. On a change, forgets everything synced and
    /// every hub entry: returns true, and the feed is read again from the
    /// start and the folder merged as at a first sync. An empty identity
    /// (a hub older than the field) changes nothing.
    pub(super) async fn hub_changed(&mut self, hub_id: &str) -> Result<bool, StateError> {
        if hub_id.is_empty() {
            return Ok(false);
        }
        match self.state.meta(MetaKey::HubId).await? {
            Some(known) if known == hub_id => Ok(false),
            Some(known) if !known.is_empty() => {
                tracing::warn!(
                    was = %known,
                    now = %hub_id,
                    "the hub at this address is not the one this folder last synced with \
                     (restored from a backup, or another hub): every file is treated as \
                     unsynced and merged as at a first sync; files only here are uploaded, \
                     files only on the hub downloaded, different contents kept as conflict \
                     copies, and nothing is deleted on either side"
                );
                self.state.adopt_hub(hub_id).await?;
                self.full_scan = true;
                self.warned.clear();
                Ok(true)
            }
            // The first identity seen: a new folder, or a hub that just
            // learnt to send one.
            _ => {
                self.state.set_meta(MetaKey::HubId, hub_id).await?;
                Ok(false)
            }
        }
    }
}

/// Whether the folder's file system ignores letter case: a probe file made
/// in `.sf` under a lower-case name is looked up under its upper-case one.
pub(super) fn case_insensitive(root: &Path) -> bool {
    let dir = root.join(STATE_DIR);
    let lower = dir.join(format!("case-probe-{}", std::process::id()));
    let upper = dir.join(format!("CASE-PROBE-{}", std::process::id()));
    if std::fs::write(&lower, b"").is_err() {
        return false;
    }
    let same = match (
        std::fs::symlink_metadata(&lower),
        std::fs::symlink_metadata(&upper),
    ) {
        (Ok(a), Ok(b)) => Stat::of(&a).inode == Stat::of(&b).inode,
        _ => false,
    };
    let _ = std::fs::remove_file(&lower);
    if same {
        tracing::info!(
            "the folder's file system ignores letter case: hub names that differ only in case are skipped"
        );
    }
    same
}

#[cfg(all(test, unix))]
mod tests;
