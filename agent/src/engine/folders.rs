//! Folders deleted here go to the hub in batches too. A folder goes only
//! once what was synced inside it is gone, so its deletion waits for the
//! cycle's other batches (those that delete its files), and nested folders
//! go in rounds from the deepest: a parent is looked at once its
//! subfolders' deletions are settled. A tree of a hundred folders moved out
//! of the folder costs a round per level, not a request per folder.

use sf_protocol::SyncPath;

use super::act::ActError;
use super::batch::Send;
use super::{CycleError, Engine};
use crate::model::SyncedFile;
use crate::reconcile::Action;

impl Engine {
    /// Deletes `folders` on the hub, each once nothing synced is left
    /// inside it; one that still holds something is looked at again shortly.
    pub(super) async fn delete_folders(
        &mut self,
        mut folders: Vec<(SyncPath, SyncedFile)>,
    ) -> Result<(), CycleError> {
        // Path descending: every subfolder comes before its parent.
        folders.sort_by(|a, b| b.0.cmp(&a.0));
        let mut rest = folders.into_iter().peekable();
        while rest.peek().is_some() {
            let mut round: Vec<(SyncPath, SyncedFile)> = Vec::new();
            while let Some((next, _)) = rest.peek() {
                if round.iter().any(|(inner, _)| is_inside(inner, next)) {
                    break;
                }
                round.extend(rest.next());
            }
            let mut ready = Vec::with_capacity(round.len());
            for (path, synced) in round {
                // Whatever is left (unreadable, deferred, failed, or a
                // subfolder whose deletion the hub refused) keeps it.
                if self.state.has_synced_under(&path).await? {
                    let action = Action::DeleteRemote {
                        base_version: synced.version,
                    };
                    let result = Err(ActError::Retry("folder not empty yet"));
                    self.settle(path, action, false, result).await?;
                } else {
                    ready.push((path, Send::Delete { synced }));
                }
            }
            if !ready.is_empty() {
                self.send_batch(ready).await?;
            }
        }
        Ok(())
    }
}

/// Whether `inner` is below `folder` (not `folder` itself).
fn is_inside(inner: &SyncPath, folder: &SyncPath) -> bool {
    inner
        .as_str()
        .strip_prefix(folder.as_str())
        .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(raw: &str) -> SyncPath {
        SyncPath::parse(raw).unwrap()
    }

    #[test]
    fn inside_means_below_a_slash() {
        assert!(is_inside(&path("a/b"), &path("a")));
        assert!(is_inside(&path("a/b/c"), &path("a")));
        assert!(!is_inside(&path("a"), &path("a")));
        assert!(!is_inside(&path("ab/c"), &path("a")));
        assert!(!is_inside(&path("a-b"), &path("a")));
        assert!(!is_inside(&path("a"), &path("a/b")));
    }
}
