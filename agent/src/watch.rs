//! File-system events as hints: notify + notify-debouncer-full, recursive.
//! Events only say which paths to look at; after an overflow or an error
//! nothing is trusted until a full scan.

use std::path::Path;
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use sf_protocol::SyncPath;
use tokio::sync::mpsc;

use crate::engine::Trigger;
use crate::state::STATE_DIR;

pub type FolderWatcher = Debouncer<notify::RecommendedWatcher, RecommendedCache>;

/// Starts watching `root`; events arrive on `triggers`. `None` when the
/// folder cannot be watched (the caller then relies on periodic scans).
pub fn watch(
    root: &Path,
    debounce: Duration,
    triggers: mpsc::UnboundedSender<Trigger>,
) -> Option<FolderWatcher> {
    let base = root.to_path_buf();
    let handler = move |result: DebounceEventResult| {
        let trigger = match result {
            Ok(events) => {
                if events.iter().any(|e| e.need_rescan()) {
                    tracing::warn!("file events overflowed; scanning the whole folder");
                    Trigger::FullScan
                } else {
                    // Opening or reading a file changes nothing, and the
                    // agent's own reads would otherwise wake it again.
                    let paths: Vec<SyncPath> = events
                        .iter()
                        .filter(|e| !is_read_only(&e.kind))
                        .flat_map(|e| e.paths.iter())
                        .filter_map(|p| relative(&base, p))
                        .collect();
                    if paths.is_empty() {
                        return;
                    }
                    Trigger::Paths(paths)
                }
            }
            Err(errors) => {
                for error in &errors {
                    warn_watch_error(error);
                }
                Trigger::FullScan
            }
        };
        let _ = triggers.send(trigger);
    };
    let mut debouncer = match new_debouncer(debounce, None, handler) {
        Ok(debouncer) => debouncer,
        Err(error) => {
            warn_watch_error(&error);
            return None;
        }
    };
    if let Err(error) = debouncer.watch(root, RecursiveMode::Recursive) {
        warn_watch_error(&error);
        return None;
    }
    Some(debouncer)
}

fn warn_watch_error(error: &notify::Error) {
    if matches!(error.kind, notify::ErrorKind::MaxFilesWatch) {
        tracing::warn!(
            "too many folders to watch: raise the limit with `sysctl fs.inotify.max_user_watches=524288`; \
             until then changes are found by periodic scans"
        );
    } else {
        tracing::warn!(error = %error, "file watching failed; changes are found by scans");
    }
}

fn is_read_only(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode};
    matches!(kind, notify::EventKind::Access(access)
        if !matches!(access, AccessKind::Close(AccessMode::Write)))
}

/// The synced path for an event path, or `None` for the agent's own state
/// and anything outside the folder.
fn relative(root: &Path, path: &Path) -> Option<SyncPath> {
    let rest = path.strip_prefix(root).ok()?;
    let parts: Vec<&str> = rest.iter().map(|c| c.to_str()).collect::<Option<_>>()?;
    if parts.first() == Some(&STATE_DIR) || parts.is_empty() {
        return None;
    }
    SyncPath::parse(parts.join("/")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_paths_become_sync_paths() {
        let root = Path::new("/data/sync");
        assert_eq!(
            relative(root, Path::new("/data/sync/a/b.txt"))
                .unwrap()
                .as_str(),
            "a/b.txt"
        );
        assert!(relative(root, Path::new("/data/sync/.sf/state.db")).is_none());
        assert!(relative(root, Path::new("/data/sync")).is_none());
        assert!(relative(root, Path::new("/elsewhere/x")).is_none());
    }
}
