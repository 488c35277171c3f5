//! The full scan: every path of the folder, on disk, in the last synced
//! state and on the hub, decided and acted on — one directory at a time, so
//! that what it holds follows the size of a directory, not of the folder.
//!
//! The walk is depth first. At each directory it lists the disk (names
//! only), then goes through the names in windows of [`WINDOW`] paths,
//! merging three sorted sources: the listing, the synced records directly
//! inside the directory and the hub entries directly inside it (both read
//! from the state database by range, see [`crate::state::State::synced_children`]). Each
//! window is examined (stat; reading only files whose stat data changed),
//! decided by [`crate::reconcile`] and carried out before the next is read.
//!
//! It descends into every subdirectory that is on disk, synced or on the
//! hub, and into any folder that holds records further down even without a
//! record of its own ([`crate::state::State::folders_with_records`]). Removing a
//! directory (on the hub or to the trash) waits until its subtree is done,
//! so children always go first, as in [`crate::reconcile::decide_all`].
//!
//! What cannot be known this time is never taken as deleted: a directory
//! that cannot be listed is not descended into (its records are left as
//! they are), and a file that cannot be read or changes while it is read is
//! left out and looked at again later.

use std::collections::{BTreeMap, HashMap, HashSet};

use sf_protocol::SyncPath;
use sf_protocol::v1::{Entry, EntryKind};

use super::{CycleError, Engine, EngineError, Views};
use crate::model::{LocalFile, SyncedFile};
use crate::progress::{self, Progress};
use crate::reconcile::{Decision, decide_all};
use crate::scan::{self, DirListing, Names, ScanError};
use crate::state::{StateError, folder_prefix};

/// Paths decided together: bounds what a scan holds in a directory of any
/// size, and is big enough that the database round trips do not matter.
const WINDOW: u32 = 512;

/// One step of the walk.
enum Step {
    /// Look at everything directly inside this directory (`None`: the
    /// folder itself).
    Visit(Option<SyncPath>, Presence),
    /// Remove this directory, its subtree being done.
    Remove(Removal),
}

/// A directory's removal, put off until its subtree is done.
struct Removal {
    path: SyncPath,
    decision: Decision,
    local: Option<LocalFile>,
    synced: Option<SyncedFile>,
}

/// Whether a directory to visit was a directory in its parent's listing.
/// Only then is it listed: a name known only from records is never looked
/// up on disk, where a case- or normalisation-insensitive file system could
/// answer for another name, or a symlink could lead outside the folder.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Presence {
    OnDisk,
    RecordsOnly,
}

/// The subdirectories to visit after the current directory: whether each
/// is on disk, and its removal if it is to be removed.
type Subdirs = BTreeMap<SyncPath, (Presence, Option<Removal>)>;

/// The size of a full scan's transfers, learnt as it walks.
struct Sizing {
    /// A first sync starts its display from an estimate (every file on
    /// disk and on the hub) and corrects it window by window.
    estimating: bool,
    /// Transfers planned so far, for a scan that starts without a display.
    planned: (u64, u64),
}

impl Engine {
    /// Scans the whole folder and acts on what it finds.
    pub(super) async fn scan_everything(&mut self) -> Result<(), CycleError> {
        self.full_scan = false;
        self.dirty.clear();
        // A display left over from a scan the hub interrupted.
        self.batch = None;
        let first_sync = !self.state.has_synced().await?;
        let mut sizing = Sizing {
            estimating: false,
            planned: (0, 0),
        };
        if first_sync {
            let (root, rules) = (self.root.clone(), self.rules.clone());
            let (local_files, local_bytes) =
                tokio::task::spawn_blocking(move || scan::count_files(&root, &rules))
                    .await
                    .expect("counting does not panic");
            let (hub_files, hub_bytes) = self.state.live_remote_files().await?;
            let (files, bytes) = (local_files + hub_files, local_bytes + hub_bytes);
            if progress::worth_showing(files, bytes) {
                self.batch = Some(Progress::start("first sync", files, bytes));
                sizing.estimating = true;
            }
        }
        let started = std::time::Instant::now();
        let mut visited = 0u64;
        let mut steps = vec![Step::Visit(None, Presence::OnDisk)];
        while let Some(step) = steps.pop() {
            if *self.stop.borrow() {
                // Logs where the batch stopped.
                self.batch = None;
                return Ok(());
            }
            match step {
                Step::Visit(dir, presence) => {
                    visited += 1;
                    let subdirs = self.visit(dir.as_ref(), presence, &mut sizing).await?;
                    // Popped in path order, each subtree before its removal.
                    for (path, (presence, removal)) in subdirs.into_iter().rev() {
                        if let Some(removal) = removal {
                            steps.push(Step::Remove(removal));
                        }
                        steps.push(Step::Visit(Some(path), presence));
                    }
                }
                Step::Remove(removal) => {
                    // A subtree not done (unreadable, deferred, failed)
                    // keeps its directory on the hub.
                    if matches!(removal.decision, Decision::DeleteRemote { .. })
                        && self.state.has_synced_under(&removal.path).await?
                    {
                        tracing::debug!(path = %removal.path, "folder not empty yet; removing it later");
                        self.defer(removal.path);
                        continue;
                    }
                    let mut views = Views::default();
                    if let Some(local) = removal.local {
                        views.local.insert(removal.path.clone(), local);
                    }
                    if let Some(synced) = removal.synced {
                        views.synced.insert(removal.path.clone(), synced);
                    }
                    self.act(vec![(removal.path, removal.decision)], &views)
                        .await?;
                }
            }
        }
        if let Some(batch) = self.batch.take() {
            batch.finish();
        }
        tracing::debug!(
            directories = visited,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "full scan done"
        );
        Ok(())
    }

    /// Decides and acts on everything directly inside `dir`; returns the
    /// subdirectories to visit next.
    async fn visit(
        &mut self,
        dir: Option<&SyncPath>,
        presence: Presence,
        sizing: &mut Sizing,
    ) -> Result<Subdirs, CycleError> {
        let listing = match presence {
            Presence::OnDisk => match self.list(dir).await? {
                Some(listing) => listing,
                None => return Ok(Subdirs::new()),
            },
            Presence::RecordsOnly => DirListing::default(),
        };
        self.new_copies.clear();
        let mut uncertain: HashSet<SyncPath> = HashSet::new();
        for (path, reason) in &listing.unreadable {
            tracing::warn!(%path, reason, "cannot read; will retry");
            self.defer(path.clone());
            uncertain.insert(path.clone());
        }
        for (path, reason) in &listing.skipped {
            if self.warned.insert(path.clone()) {
                tracing::warn!(path, reason, "not synced");
            }
        }

        let prefix = folder_prefix(dir);
        let mut subdirs = Subdirs::new();
        let mut on_disk = listing.entries.as_slice();
        let mut after = String::new();
        loop {
            if *self.stop.borrow() {
                return Ok(Subdirs::new());
            }
            let synced = self.state.synced_children(&prefix, &after, WINDOW).await?;
            let remote = self.state.remote_children(&prefix, &after, WINDOW).await?;
            // The window ends at the last path of any source that may have
            // more; paths above it wait for the next window.
            let disk = &on_disk[..on_disk.len().min(WINDOW as usize)];
            let end = [
                (disk.len() == WINDOW as usize)
                    .then(|| disk.last())
                    .flatten(),
                (synced.len() == WINDOW as usize)
                    .then(|| synced.last().map(|(p, _)| p))
                    .flatten(),
                (remote.len() == WINDOW as usize)
                    .then(|| remote.last().map(|e| &e.path))
                    .flatten(),
            ]
            .into_iter()
            .flatten()
            .min()
            .cloned();
            let within = |path: &SyncPath| end.as_ref().is_none_or(|end| path <= end);
            let disk_count = disk.iter().take_while(|p| within(p)).count();
            let (disk, rest) = on_disk.split_at(disk_count);
            on_disk = rest;
            let mut views = Views {
                local: BTreeMap::new(),
                synced: synced.into_iter().filter(|(p, _)| within(p)).collect(),
                remote: remote
                    .into_iter()
                    .filter(|e| within(&e.path))
                    .map(|e| (e.path.clone(), e))
                    .collect(),
            };
            views.local = self.examine(disk, &views.synced, &mut uncertain).await?;
            self.decide_window(views, &uncertain, &mut subdirs, sizing)
                .await?;
            match end {
                Some(end) => after = end.as_str().to_owned(),
                None => break,
            }
        }

        // Folders that hold records further down but have none of their
        // own (nor are on disk) still need a visit.
        for name in self.state.folders_with_records(&prefix).await? {
            let Ok(path) = SyncPath::parse(format!("{prefix}{name}")) else {
                continue;
            };
            if !uncertain.contains(&path) && !self.rules.is_ignored_entry(path.as_str(), true) {
                subdirs.entry(path).or_insert((Presence::RecordsOnly, None));
            }
        }
        Ok(subdirs)
    }

    /// Lists `dir` on disk, its non-NFC names renamed. `None` when nothing
    /// inside it can be decided this time (it cannot be listed); an empty
    /// listing when it is no longer a directory (its records are decided as
    /// gone).
    async fn list(&mut self, dir: Option<&SyncPath>) -> Result<Option<DirListing>, CycleError> {
        let (root, rules, owned_dir) = (self.root.clone(), self.rules.clone(), dir.cloned());
        let listed =
            tokio::task::spawn_blocking(move || scan::list_dir(&root, owned_dir.as_ref(), &rules))
                .await
                .expect("listing does not panic");
        let mut listing = match (listed, dir) {
            (Ok(listing), _) => listing,
            (Err(source), None) => {
                return Err(CycleError::Fatal(EngineError::State(StateError::Io {
                    path: self.root.clone(),
                    source,
                })));
            }
            // Gone or replaced since its parent was listed.
            (Err(error), Some(_))
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                DirListing::default()
            }
            (Err(error), Some(dir)) => {
                tracing::warn!(path = %dir, %error, "cannot list the directory; will retry");
                self.defer(dir.clone());
                return Ok(None);
            }
        };
        // Rare: names that are not NFC are renamed unless synced as they are.
        let mut kept = HashSet::new();
        for path in listing.not_normalised() {
            if self.state.synced(path).await?.is_some() {
                kept.insert(path.clone());
            }
        }
        if listing.not_normalised().next().is_some() {
            let (root, rules) = (self.root.clone(), self.rules.clone());
            listing = tokio::task::spawn_blocking(move || {
                scan::normalise_names(
                    &root,
                    &mut listing,
                    &rules,
                    &|p| kept.contains(p),
                    Names::Normalise,
                );
                listing
            })
            .await
            .expect("renaming does not panic");
        }
        Ok(Some(listing))
    }

    /// Stat and, where needed, hash the entries `disk` of one window.
    /// Adds what cannot be known this time to `uncertain`.
    async fn examine(
        &mut self,
        disk: &[SyncPath],
        synced: &HashMap<SyncPath, SyncedFile>,
        uncertain: &mut HashSet<SyncPath>,
    ) -> Result<BTreeMap<SyncPath, LocalFile>, CycleError> {
        let root = self.root.clone();
        let work: Vec<(SyncPath, Option<SyncedFile>)> = disk
            .iter()
            .map(|p| (p.clone(), synced.get(p).cloned()))
            .collect();
        let examined = tokio::task::spawn_blocking(move || {
            work.into_iter()
                .map(|(path, known)| {
                    let found = scan::examine_entry(&root, &path, known.as_ref());
                    (path, found)
                })
                .collect::<Vec<_>>()
        })
        .await
        .expect("examining does not panic");
        let mut local = BTreeMap::new();
        for (path, found) in examined {
            match found {
                Ok(Some(file)) => {
                    local.insert(path, file);
                }
                // Vanished meanwhile: as good as deleted.
                Ok(None) => {}
                Err(ScanError::Skipped { reason, .. }) => {
                    if self.warned.insert(path.to_string()) {
                        tracing::warn!(%path, reason, "not synced");
                    }
                }
                Err(ScanError::Unreadable { source, .. }) => {
                    tracing::warn!(%path, error = %source, "cannot read; will retry");
                    self.defer(path.clone());
                    uncertain.insert(path);
                }
                Err(ScanError::Unstable(_) | ScanError::NotNormalised { .. }) => {
                    self.defer(path.clone());
                    uncertain.insert(path);
                }
            }
        }
        Ok(local)
    }

    /// Decides one window and acts on it; directory removals go to
    /// `subdirs` with the directories to visit.
    async fn decide_window(
        &mut self,
        views: Views,
        uncertain: &HashSet<SyncPath>,
        subdirs: &mut Subdirs,
        sizing: &mut Sizing,
    ) -> Result<(), CycleError> {
        let mut paths: Vec<&SyncPath> = views
            .local
            .keys()
            .chain(views.synced.keys())
            .chain(views.remote.keys())
            .filter(|p| !uncertain.contains(*p) && !self.new_copies.contains(*p))
            .filter(|p| !self.rules.is_ignored_entry(p.as_str(), views.is_dir(p)))
            .collect();
        paths.sort();
        paths.dedup();
        for path in &paths {
            // Entered as a directory, so ignored as one (`build/` rules).
            if descends(&views, path) && !self.rules.is_ignored_entry(path.as_str(), true) {
                let on_disk = views
                    .local
                    .get(*path)
                    .is_some_and(|l| l.kind == EntryKind::Dir);
                let presence = if on_disk {
                    Presence::OnDisk
                } else {
                    Presence::RecordsOnly
                };
                subdirs.insert((*path).clone(), (presence, None));
            }
        }
        // Refused hub entries are decided nothing, after the descent above.
        let refused = self.refused(&views).await?;
        paths.retain(|p| !refused.contains(*p));
        let decisions = decide_all(paths.into_iter().map(|p| views.of(p)), self.direction());
        let (now, later): (Vec<_>, Vec<_>) = decisions
            .into_iter()
            .partition(|(path, decision)| !(decision.is_removal() && views.is_dir(path)));
        for (path, decision) in later {
            let removal = Removal {
                local: views.local.get(&path).cloned(),
                synced: views.synced.get(&path).cloned(),
                path: path.clone(),
                decision,
            };
            let presence = if removal
                .local
                .as_ref()
                .is_some_and(|l| l.kind == EntryKind::Dir)
            {
                Presence::OnDisk
            } else {
                Presence::RecordsOnly
            };
            subdirs.entry(path).or_insert((presence, None)).1 = Some(removal);
        }
        self.size_window(&views, &now, sizing);
        self.act(now, &views).await
    }

    /// Keeps the progress display's totals in step with the window just
    /// decided, and starts a display once the scan turns out to be big.
    fn size_window(
        &mut self,
        views: &Views,
        decisions: &[(SyncPath, Decision)],
        sizing: &mut Sizing,
    ) {
        let (files, bytes) = views.transfers(decisions);
        if sizing.estimating {
            // The estimate counted every file on either side once.
            let local = views.local.values().filter(|l| l.kind == EntryKind::File);
            let remote = views.remote.values().filter(|e| is_live_file(e));
            let estimated_files = local.clone().count() + remote.clone().count();
            let estimated_bytes: u64 =
                local.map(|l| l.size).sum::<u64>() + remote.map(|e| e.size).sum::<u64>();
            if let Some(batch) = &self.batch {
                batch.adjust_total(
                    files as i64 - estimated_files as i64,
                    bytes as i64 - estimated_bytes as i64,
                );
            }
            return;
        }
        sizing.planned.0 += files;
        sizing.planned.1 += bytes;
        match &self.batch {
            Some(batch) => batch.adjust_total(files as i64, bytes as i64),
            None if progress::worth_showing(sizing.planned.0, sizing.planned.1) => {
                // Counts from here on: what moved before is done.
                self.batch = Some(Progress::start("sync", files, bytes));
            }
            None => {}
        }
    }
}

/// Whether the walk must look inside `path`: a directory on disk, synced
/// or live on the hub.
fn descends(views: &Views, path: &SyncPath) -> bool {
    views
        .local
        .get(path)
        .is_some_and(|l| l.kind == EntryKind::Dir)
        || views
            .synced
            .get(path)
            .is_some_and(|s| s.kind == EntryKind::Dir)
        || views
            .remote
            .get(path)
            .is_some_and(|e| e.kind == EntryKind::Dir && !e.deleted)
}

fn is_live_file(entry: &Entry) -> bool {
    entry.kind == EntryKind::File && !entry.deleted
}
