//! File-system events as hints: notify + notify-debouncer-full, recursive.
//! Events only say which paths to look at; after an overflow or an error
//! nothing is trusted until a full scan.
//!
//! Most paths are reported once they have been quiet for the debounce
//! window. A file closed after writing is reported at once as well (see
//! [`CloseWriteTap`]): the writer says it is done, so waiting out the
//! window would only add latency. The engine still checks that the file is
//! stable while it reads it. Removals and renames are reported at once too:
//! the debouncer would drop them for a path created within its window.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use notify::{Event, EventHandler, RecursiveMode, Watcher};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer_opt};
use sf_protocol::SyncPath;
use tokio::sync::mpsc;

use crate::engine::Trigger;
use crate::state::STATE_DIR;

pub type FolderWatcher = Debouncer<CloseWriteTap, RecommendedCache>;

/// Starts watching `root`; events arrive on `triggers`. `None` when the
/// folder cannot be watched (the caller then relies on periodic scans).
pub fn watch(
    root: &Path,
    debounce: Duration,
    triggers: mpsc::UnboundedSender<Trigger>,
) -> Option<FolderWatcher> {
    let base = root.to_path_buf();
    let triggers_for_tap = triggers.clone();
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
    let tap = close_write_tap(root.to_path_buf(), debounce, triggers_for_tap);
    NEXT_TAP.with(|next| *next.borrow_mut() = Some((root.join(STATE_DIR), tap)));
    let debouncer = new_debouncer_opt::<_, CloseWriteTap, _>(
        debounce,
        None,
        handler,
        RecommendedCache::new(),
        notify::Config::default(),
    );
    NEXT_TAP.with(|next| next.borrow_mut().take());
    let mut debouncer = match debouncer {
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
    // The state directory's events (downloads being written, the state
    // database) are the agent's own: without its watches the kernel does
    // not even queue them, which on a burst of downloads was a fifth of
    // the receiving agent's work. Where that fails, or once a recreated
    // `.sf` is watched again, the tap still drops them.
    if let Err(error) = debouncer.unwatch(root.join(STATE_DIR)) {
        tracing::debug!(%error, "the state directory stays watched; its events are dropped");
    }
    Some(debouncer)
}

/// Sees every raw event before the debouncer does.
type Tap = Box<dyn FnMut(&Event) + Send>;

thread_local! {
    /// The folder's state directory and the tap, for the next
    /// [`CloseWriteTap`] built on this thread. The debouncer constructs its
    /// watcher itself through [`Watcher::new`], which takes no user data;
    /// this hands them over for that one call.
    static NEXT_TAP: RefCell<Option<(PathBuf, Tap)>> = const { RefCell::new(None) };
}

/// The platform's watcher with a tap on its raw events, so a file closed
/// after writing can be reported without waiting for the debouncer. Events
/// inside the state directory (`.sf/`: downloads being written, the state
/// database) go no further: they are the agent's own, and a burst of
/// downloads made them half of all events, each costing the debouncer
/// work. ([`watch`] also removes the state directory's watches; this
/// covers a `.sf` made again while the agent runs.)
pub struct CloseWriteTap(notify::RecommendedWatcher);

impl Watcher for CloseWriteTap {
    fn new<F: EventHandler>(mut handler: F, config: notify::Config) -> notify::Result<Self> {
        let (state_dir, mut tap) = NEXT_TAP
            .with(|next| next.borrow_mut().take())
            .map_or((None, None), |(dir, tap)| (Some(dir), Some(tap)));
        let inner = notify::RecommendedWatcher::new(
            move |event: notify::Result<Event>| {
                if let (Ok(event), Some(dir)) = (&event, &state_dir)
                    && only_inside(event, dir)
                {
                    return;
                }
                if let (Ok(event), Some(tap)) = (&event, tap.as_mut()) {
                    tap(event);
                }
                handler.handle_event(event);
            },
            config,
        )?;
        Ok(Self(inner))
    }

    fn watch(&mut self, path: &Path, recursive_mode: RecursiveMode) -> notify::Result<()> {
        self.0.watch(path, recursive_mode)
    }

    fn unwatch(&mut self, path: &Path) -> notify::Result<()> {
        self.0.unwatch(path)
    }

    fn configure(&mut self, option: notify::Config) -> notify::Result<bool> {
        self.0.configure(option)
    }

    fn kind() -> notify::WatcherKind {
        notify::RecommendedWatcher::kind()
    }
}

/// Reports at once what the debouncer could swallow or delay:
/// - a removal or a rename: the debouncer drops a path created and removed
///   (or renamed away) within its window, with no event at all, so a file
///   the agent just uploaded, or just downloaded, and that the user deletes
///   at once would wait for the next full scan; it also drops the pending
///   events of everything inside a removed folder;
/// - a file closed after writing, unless the same file was reported that
///   way within the window: a file rewritten again and again (a log) waits
///   for the debouncer like the rest.
fn close_write_tap(
    root: PathBuf,
    window: Duration,
    triggers: mpsc::UnboundedSender<Trigger>,
) -> Tap {
    let mut recent: HashMap<PathBuf, Instant> = HashMap::new();
    Box::new(move |event: &Event| {
        use notify::event::{AccessKind, AccessMode, ModifyKind};
        if matches!(
            event.kind,
            notify::EventKind::Remove(_) | notify::EventKind::Modify(ModifyKind::Name(_))
        ) {
            let paths: Vec<SyncPath> = event
                .paths
                .iter()
                .filter_map(|p| relative(&root, p))
                .collect();
            if !paths.is_empty() {
                let _ = triggers.send(Trigger::Paths(paths));
            }
            return;
        }
        if !matches!(
            event.kind,
            notify::EventKind::Access(AccessKind::Close(AccessMode::Write))
        ) {
            return;
        }
        let now = Instant::now();
        recent.retain(|_, at| now.duration_since(*at) < window);
        let paths: Vec<SyncPath> = event
            .paths
            .iter()
            .filter(|p| {
                let fresh = !recent.contains_key(*p);
                recent.insert((*p).clone(), now);
                fresh
            })
            .filter_map(|p| relative(&root, p))
            .collect();
        if !paths.is_empty() {
            let _ = triggers.send(Trigger::Paths(paths));
        }
    })
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

/// Whether every path of `event` lies below `dir` (not `dir` itself: the
/// folder marker's removal must be seen). An event with no path (an
/// overflow) is not.
fn only_inside(event: &Event, dir: &Path) -> bool {
    !event.paths.is_empty()
        && event
            .paths
            .iter()
            .all(|path| path != dir && path.starts_with(dir))
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

    /// Inodes of the directories some inotify instance of this process
    /// watches (`/proc/self/fdinfo` of each inotify descriptor).
    #[cfg(target_os = "linux")]
    fn watched_inodes() -> std::collections::HashSet<u64> {
        let mut inodes = std::collections::HashSet::new();
        for fd in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
            let is_inotify = std::fs::read_link(fd.path())
                .is_ok_and(|target| target.to_string_lossy() == "anon_inode:inotify");
            let info = std::fs::read_to_string(Path::new("/proc/self/fdinfo").join(fd.file_name()));
            let (true, Ok(info)) = (is_inotify, info) else {
                continue;
            };
            // One line per watch: `inotify wd:1 ino:3e8 sdev:… mask:…`.
            for line in info.lines().filter(|l| l.starts_with("inotify ")) {
                for field in line.split_whitespace() {
                    if let Some(hex) = field.strip_prefix("ino:") {
                        inodes.insert(u64::from_str_radix(hex, 16).unwrap());
                    }
                }
            }
        }
        inodes
    }

    /// The kernel watches the folder and its subfolders but nothing in the
    /// state directory, and a file written in the folder is still reported.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_state_dir_is_not_watched() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join(STATE_DIR).join("tmp")).unwrap();
        std::fs::create_dir(root.join("a")).unwrap();
        let ino = |p: &Path| std::fs::metadata(root.join(p)).unwrap().ino();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let watcher = watch(root, Duration::from_millis(50), tx).expect("watching works here");
        let watched = watched_inodes();
        assert!(
            watched.contains(&ino(Path::new(""))),
            "the folder is watched"
        );
        assert!(watched.contains(&ino(Path::new("a"))), "its subfolders are");
        assert!(!watched.contains(&ino(Path::new(STATE_DIR))), ".sf is not");
        assert!(
            !watched.contains(&ino(&Path::new(STATE_DIR).join("tmp"))),
            ".sf/tmp is not"
        );

        std::fs::write(root.join(STATE_DIR).join("tmp").join("1.part"), b"x").unwrap();
        std::fs::write(root.join("a").join("x.txt"), b"x").unwrap();
        let reported = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match rx.recv().await {
                    Some(Trigger::Paths(paths)) => {
                        if let Some(p) = paths.iter().find(|p| p.as_str() == "a/x.txt") {
                            return p.clone();
                        }
                    }
                    other => panic!("unexpected trigger {other:?}"),
                }
            }
        })
        .await
        .expect("the new file is reported");
        assert_eq!(reported.as_str(), "a/x.txt");
        drop(watcher);
    }

    #[test]
    fn the_agents_own_state_dir_events_stop_at_the_tap() {
        use notify::event::{CreateKind, ModifyKind, RenameMode};
        let dir = Path::new("/data/sync/.sf");
        let event = |kind, paths: &[&str]| Event {
            kind,
            paths: paths.iter().map(PathBuf::from).collect(),
            attrs: Default::default(),
        };
        let create = notify::EventKind::Create(CreateKind::File);
        let rename = notify::EventKind::Modify(ModifyKind::Name(RenameMode::Both));
        assert!(only_inside(
            &event(create, &["/data/sync/.sf/tmp/1.part"]),
            dir
        ));
        // A download moved into place is seen at its destination.
        assert!(!only_inside(
            &event(rename, &["/data/sync/.sf/tmp/1.part", "/data/sync/a.txt"]),
            dir
        ));
        // The folder marker itself, removed: seen.
        assert!(!only_inside(&event(create, &["/data/sync/.sf"]), dir));
        assert!(!only_inside(&event(create, &["/data/sync/.sfx/a"]), dir));
        // An overflow names no path and asks for a scan.
        assert!(!only_inside(&event(create, &[]), dir));
    }
}
