//! Reading the hub's change feed into the state database: from the last
//! applied seq to the head, a page at a time, noticing a hub that was
//! replaced or went back in time, and returning the paths that others
//! changed (our own commits coming back hold nothing new).

use std::collections::BTreeSet;

use sf_protocol::SyncPath;

use super::{CycleError, Engine, MAX_LOOKED_AT};

impl Engine {
    /// Reads the change feed from the last applied seq; returns the paths
    /// it touched.
    pub(super) async fn catch_up(&mut self) -> Result<BTreeSet<SyncPath>, CycleError> {
        let mut changed = BTreeSet::new();
        let mut since = self.state.last_seq().await?;
        loop {
            let page = self
                .hub
                .changes(since, 1000)
                .await
                .map_err(CycleError::from_hub)?;
            if self.hub_changed(&page.hub_id).await? {
                changed.clear();
                since = 0;
                continue;
            }
            if page.head < since {
                // The hub's feed is behind what we applied: it was reset or
                // restored from a backup. Forget its old entries and re-read.
                tracing::warn!(
                    head = page.head,
                    applied = since,
                    "the hub's history is older than ours; re-reading it"
                );
                self.state.reset_remote().await?;
                self.full_scan = true;
                since = 0;
                continue;
            }
            let Some(last) = page.changes.last().map(|e| e.seq) else {
                break;
            };
            if !self.full_scan {
                // Our own commits coming back hold nothing new.
                let agreed = self.state.synced_as(&page.changes).await?;
                changed.extend(
                    page.changes
                        .iter()
                        .filter(|e| !agreed.contains(&e.path))
                        .map(|e| e.path.clone()),
                );
                if changed.len() > MAX_LOOKED_AT {
                    // A big burst from elsewhere: a full scan takes it in
                    // windows instead of one batch of every path.
                    self.full_scan = true;
                    changed.clear();
                }
            }
            self.state.apply_changes(&page.changes, last).await?;
            since = last;
            if last >= page.head {
                break;
            }
        }
        Ok(changed)
    }
}
