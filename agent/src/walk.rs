//! The walk over the whole folder: the disk, the last synced state and the
//! hub's entries, merged one directory at a time, so that what it holds
//! follows the size of a directory, not of the folder. It is the one walk:
//! the engine's full scan acts on it, `sf-agent status` reports what it
//! would do, and a first sync counts its size with it.
//!
//! The walk is depth first. At each directory it lists the disk (names
//! only), then goes through the names in windows of [`WINDOW`] paths,
//! merging three sorted sources: the listing, the synced records directly
//! inside the directory and the hub entries directly inside it (both read
//! from the state database by range). Each window is examined (stat;
//! reading only files whose stat data changed) and handed out as a
//! [`Window`]; [`Walk::plan`] decides it with [`crate::reconcile`].
//!
//! It descends into every subdirectory that is on disk, synced or on the
//! hub, and into any folder that holds records further down even without a
//! record of its own. A directory's removal (on the hub or to the trash)
//! is handed out as [`Item::Remove`] once its subtree is done, so children
//! always go first, as in [`crate::reconcile::decide_all`].
//!
//! What cannot be known this time is never taken as deleted: a directory
//! that cannot be listed is not descended into ([`Item::Unlistable`]; its
//! records are left as they are), and a file that cannot be read or changes
//! while it is read is not decided ([`Window::unsettled`]).
//!
//! The walk only reads the state database; renaming names to NFC
//! ([`Names::Normalise`]) is the only change it makes on disk.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::PathBuf;

use sf_protocol::SyncPath;
use sf_protocol::v1::EntryKind;

use crate::ignore::IgnoreRules;
use crate::model::{LocalFile, SyncedFile, Views};
use crate::reconcile::{Decision, Direction, decide_all};
use crate::scan::{self, DirListing, Kind, Names, ScanError, Stat, local_path};
use crate::state::{State, StateError, folder_prefix};

/// Paths decided together: bounds what a walk holds in a directory of any
/// size, and is big enough that the database round trips do not matter.
const WINDOW: u32 = 512;

#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error(
        "cannot list the synced folder {path}: {source}; check that it exists and that this \
         user may read it"
    )]
    FolderUnreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    State(#[from] StateError),
}

/// How a walk looks at the entries it lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Look {
    /// Stat, and read what the stat data say may have changed: to decide.
    Content,
    /// Stat only (digests left empty): to count.
    StatOnly,
}

/// What the walk hands out next.
#[derive(Debug)]
pub(crate) enum Item {
    /// Paths of one directory to decide ([`Walk::plan`]).
    Window(Window),
    /// A directory whose subtree is done, to remove as decided when it was
    /// seen.
    Remove { path: SyncPath, decision: Decision },
    /// A directory that cannot be listed this time: nothing inside it is
    /// decided.
    Unlistable { dir: SyncPath, error: io::Error },
}

/// Why a path is not decided this time; it is looked at again later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unsettled {
    /// Permission denied etc.
    Unreadable(String),
    /// It changed while it was read.
    Busy,
}

/// Up to [`WINDOW`] paths of one directory with their three views.
#[derive(Debug)]
pub(crate) struct Window {
    /// Whether this is the first window of its directory.
    pub(crate) first: bool,
    pub(crate) views: Views,
    /// The paths to decide, in order: in some view, not ignored, settled.
    pub(crate) paths: Vec<SyncPath>,
    /// What cannot be decided this time, and why.
    pub(crate) unsettled: Vec<(SyncPath, Unsettled)>,
    /// `(relative path, reason)` of names that are never synced: symlinks,
    /// special files, invalid names.
    pub(crate) skipped: Vec<(String, String)>,
}

enum Step {
    Visit(Option<SyncPath>, Presence),
    /// Boxed: a decision carries its views, a visit only a path.
    Remove(SyncPath, Box<Decision>),
}

/// Whether a directory to visit was a directory in its parent's listing.
/// Only then is it listed: a name known only from records is never looked
/// up on disk, where a case- or normalisation-insensitive file system could
/// answer for another name, or a symlink could lead outside the folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presence {
    OnDisk,
    RecordsOnly,
}

/// The directory being gone through.
struct Cursor {
    prefix: String,
    listing: DirListing,
    /// How many of the listing's entries are in windows already.
    taken: usize,
    /// The last path of the windows so far (`""` before the first).
    after: String,
    first: bool,
    done: bool,
    unsettled: HashSet<SyncPath>,
    /// The subdirectories to visit after this directory, and the removal
    /// of each that is to be removed.
    subdirs: BTreeMap<SyncPath, (Presence, Option<Decision>)>,
}

enum Listed {
    Yes(DirListing),
    /// Gone or replaced since its parent was listed: its records are
    /// decided as gone.
    Gone,
    Unlistable(SyncPath, io::Error),
}

/// A walk over the whole folder (see the module doc).
pub(crate) struct Walk {
    root: PathBuf,
    rules: IgnoreRules,
    names: Names,
    look: Look,
    steps: Vec<Step>,
    cursor: Option<Cursor>,
    visited: u64,
}

impl Walk {
    pub(crate) fn new(root: PathBuf, rules: IgnoreRules, names: Names, look: Look) -> Walk {
        Walk {
            root,
            rules,
            names,
            look,
            steps: vec![Step::Visit(None, Presence::OnDisk)],
            cursor: None,
            visited: 0,
        }
    }

    /// Directories gone through so far.
    pub(crate) fn visited(&self) -> u64 {
        self.visited
    }

    /// The next window or removal; `None` when the walk is done. Fails
    /// only when the folder itself cannot be listed or the state database
    /// fails.
    pub(crate) async fn next(&mut self, state: &State) -> Result<Option<Item>, WalkError> {
        loop {
            if let Some(mut cursor) = self.cursor.take() {
                if cursor.done {
                    self.finish(cursor, state).await?;
                    continue;
                }
                let window = self.window(&mut cursor, state).await?;
                self.cursor = Some(cursor);
                return Ok(Some(Item::Window(window)));
            }
            let (dir, presence) = match self.steps.pop() {
                None => return Ok(None),
                Some(Step::Remove(path, decision)) => {
                    return Ok(Some(Item::Remove {
                        path,
                        decision: *decision,
                    }));
                }
                Some(Step::Visit(dir, presence)) => (dir, presence),
            };
            let listing = match presence {
                Presence::RecordsOnly => DirListing::default(),
                Presence::OnDisk => match self.list(dir.as_ref(), state).await? {
                    Listed::Yes(listing) => listing,
                    Listed::Gone => DirListing::default(),
                    Listed::Unlistable(dir, error) => {
                        return Ok(Some(Item::Unlistable { dir, error }));
                    }
                },
            };
            self.cursor = Some(Cursor {
                prefix: folder_prefix(dir.as_ref()),
                listing,
                taken: 0,
                after: String::new(),
                first: true,
                done: false,
                unsettled: HashSet::new(),
                subdirs: BTreeMap::new(),
            });
        }
    }

    /// Decides `window`'s paths but those `excluded` says to leave alone;
    /// returns what to do now, in order. A directory's removal waits for
    /// its subtree: the walk hands it out later as [`Item::Remove`].
    pub(crate) fn plan(
        &mut self,
        window: &Window,
        direction: Direction,
        excluded: &dyn Fn(&SyncPath) -> bool,
    ) -> Vec<(SyncPath, Decision)> {
        let views = &window.views;
        let decisions = decide_all(
            window
                .paths
                .iter()
                .filter(|p| !excluded(p))
                .map(|p| views.of(p)),
            direction,
        );
        let Some(cursor) = self.cursor.as_mut() else {
            return decisions;
        };
        let (now, later): (Vec<_>, Vec<_>) = decisions
            .into_iter()
            .partition(|(path, decision)| !(decision.action().is_removal() && views.is_dir(path)));
        for (path, decision) in later {
            let presence = presence_of(views, &path);
            cursor.subdirs.entry(path).or_insert((presence, None)).1 = Some(decision);
        }
        now
    }

    /// The next window of the directory at `cursor`.
    async fn window(&self, cursor: &mut Cursor, state: &State) -> Result<Window, WalkError> {
        let synced = state
            .synced_children(&cursor.prefix, &cursor.after, WINDOW)
            .await?;
        let remote = state
            .remote_children(&cursor.prefix, &cursor.after, WINDOW)
            .await?;
        let on_disk = &cursor.listing.entries[cursor.taken..];
        let disk = &on_disk[..on_disk.len().min(WINDOW as usize)];
        // The window ends at the last path of any source that may have
        // more; paths above it wait for the next window.
        let full = |len: usize| len == WINDOW as usize;
        let end = [
            full(disk.len()).then(|| disk.last()).flatten(),
            full(synced.len())
                .then(|| synced.last().map(|(p, _)| p))
                .flatten(),
            full(remote.len())
                .then(|| remote.last().map(|e| &e.path))
                .flatten(),
        ]
        .into_iter()
        .flatten()
        .min()
        .cloned();
        let within = |path: &SyncPath| end.as_ref().is_none_or(|end| path <= end);
        let disk: Vec<(SyncPath, SyncPath)> = disk
            .iter()
            .take_while(|p| within(p))
            .map(|p| (p.clone(), cursor.listing.on_disk(p).clone()))
            .collect();
        cursor.taken += disk.len();
        let mut window = Window {
            first: cursor.first,
            views: Views {
                local: BTreeMap::new(),
                synced: synced.into_iter().filter(|(p, _)| within(p)).collect(),
                remote: remote
                    .into_iter()
                    .filter(|e| within(&e.path))
                    .map(|e| (e.path.clone(), e))
                    .collect(),
            },
            paths: Vec::new(),
            unsettled: Vec::new(),
            skipped: Vec::new(),
        };
        if cursor.first {
            let listing = &mut cursor.listing;
            window.skipped.append(&mut listing.skipped);
            window.unsettled.extend(
                listing
                    .unreadable
                    .drain(..)
                    .map(|(path, reason)| (path, Unsettled::Unreadable(reason))),
            );
            cursor.first = false;
        }
        let work = disk
            .into_iter()
            .map(|(path, on_disk)| {
                let known = window.views.synced.get(&path).cloned();
                (path, on_disk, known)
            })
            .collect();
        window.views.local = self.examine(work, &mut window).await;
        cursor
            .unsettled
            .extend(window.unsettled.iter().map(|(p, _)| p.clone()));

        let views = &window.views;
        let mut paths: Vec<&SyncPath> = views
            .local
            .keys()
            .chain(views.synced.keys())
            .chain(views.remote.keys())
            .filter(|p| !cursor.unsettled.contains(*p))
            // The walk never enters an ignored directory, so the entry's own
            // rule is the whole of `is_ignored` here, at a fraction of the cost.
            .filter(|p| !self.rules.is_ignored_entry(p.as_str(), views.is_dir(p)))
            .collect();
        paths.sort();
        paths.dedup();
        for path in &paths {
            // Entered as a directory, so ignored as one (`build/` rules).
            if views.descends(path) && !self.rules.is_ignored_entry(path.as_str(), true) {
                let presence = presence_of(views, path);
                cursor.subdirs.insert((*path).clone(), (presence, None));
            }
        }
        window.paths = paths.into_iter().cloned().collect();
        match end {
            Some(end) => cursor.after = end.as_str().to_owned(),
            None => cursor.done = true,
        }
        Ok(window)
    }

    /// Looks at the entries of one window (listed path, path on disk,
    /// record); what cannot be looked at lands in `window`'s lists.
    async fn examine(
        &self,
        work: Vec<(SyncPath, SyncPath, Option<SyncedFile>)>,
        window: &mut Window,
    ) -> BTreeMap<SyncPath, LocalFile> {
        let (root, look) = (self.root.clone(), self.look);
        let examined = blocking(move || {
            work.into_iter()
                .map(|(path, on_disk, known)| {
                    let local = local_path(&root, &on_disk);
                    let found = match look {
                        Look::Content => scan::examine_at(&local, &path, known.as_ref()),
                        Look::StatOnly => stat_only(&local),
                    };
                    (path, found)
                })
                .collect::<Vec<_>>()
        })
        .await;
        let mut local = BTreeMap::new();
        for (path, found) in examined {
            match found {
                Ok(Some(file)) => {
                    local.insert(path, file);
                }
                // Vanished meanwhile: as good as deleted.
                Ok(None) => {}
                Err(ScanError::Skipped { reason, .. }) => {
                    window.skipped.push((path.to_string(), reason));
                }
                Err(ScanError::Unreadable { source, .. }) => {
                    window
                        .unsettled
                        .push((path, Unsettled::Unreadable(source.to_string())));
                }
                Err(ScanError::Unstable(_) | ScanError::NotNormalised { .. }) => {
                    window.unsettled.push((path, Unsettled::Busy));
                }
            }
        }
        local
    }

    /// The directory at `cursor` is done: queue its subdirectories (and
    /// their removals), and folders that hold records further down but
    /// have none of their own.
    async fn finish(&mut self, mut cursor: Cursor, state: &State) -> Result<(), WalkError> {
        self.visited += 1;
        for name in state.folders_with_records(&cursor.prefix).await? {
            let Ok(path) = SyncPath::parse(format!("{}{name}", cursor.prefix)) else {
                continue;
            };
            if !cursor.unsettled.contains(&path)
                && !self.rules.is_ignored_entry(path.as_str(), true)
            {
                cursor
                    .subdirs
                    .entry(path)
                    .or_insert((Presence::RecordsOnly, None));
            }
        }
        // Popped in path order, each subtree before its removal.
        for (path, (presence, removal)) in cursor.subdirs.into_iter().rev() {
            if let Some(decision) = removal {
                self.steps
                    .push(Step::Remove(path.clone(), Box::new(decision)));
            }
            self.steps.push(Step::Visit(Some(path), presence));
        }
        Ok(())
    }

    /// Lists `dir` on disk, its non-NFC names renamed (or aliased, as
    /// `names` says) unless synced under that exact name.
    async fn list(&self, dir: Option<&SyncPath>, state: &State) -> Result<Listed, WalkError> {
        let (root, rules, owned_dir) = (self.root.clone(), self.rules.clone(), dir.cloned());
        let listed = blocking(move || scan::list_dir(&root, owned_dir.as_ref(), &rules)).await;
        let mut listing = match (listed, dir) {
            (Ok(listing), _) => listing,
            (Err(source), None) => {
                return Err(WalkError::FolderUnreadable {
                    path: self.root.clone(),
                    source,
                });
            }
            (Err(error), Some(_))
                if matches!(
                    error.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(Listed::Gone);
            }
            (Err(error), Some(dir)) => return Ok(Listed::Unlistable(dir.clone(), error)),
        };
        // Rare: names that are not NFC.
        if listing.not_normalised().next().is_some() {
            let mut kept = HashSet::new();
            for path in listing.not_normalised() {
                if state.synced(path).await?.is_some() {
                    kept.insert(path.clone());
                }
            }
            let (root, rules, names) = (self.root.clone(), self.rules.clone(), self.names);
            listing = blocking(move || {
                scan::normalise_names(&root, &mut listing, &rules, &|p| kept.contains(p), names);
                listing
            })
            .await;
        }
        Ok(Listed::Yes(listing))
    }
}

/// The regular files of the folder and their bytes, from stat data alone
/// (nothing is read or renamed): the size of a first sync, for its
/// progress display.
pub(crate) async fn count_files(
    root: PathBuf,
    rules: IgnoreRules,
    state: &State,
) -> Result<(u64, u64), WalkError> {
    let mut walk = Walk::new(root, rules, Names::AsTheyAre, Look::StatOnly);
    let (mut files, mut bytes) = (0, 0);
    while let Some(item) = walk.next(state).await? {
        if let Item::Window(window) = item {
            for local in window.views.local.values() {
                if local.kind == EntryKind::File {
                    files += 1;
                    bytes += local.size;
                }
            }
        }
    }
    Ok((files, bytes))
}

fn presence_of(views: &Views, path: &SyncPath) -> Presence {
    if views
        .local
        .get(path)
        .is_some_and(|l| l.kind == EntryKind::Dir)
    {
        Presence::OnDisk
    } else {
        Presence::RecordsOnly
    }
}

/// [`Look::StatOnly`]: a file or directory as its stat data show it.
fn stat_only(local: &std::path::Path) -> Result<Option<LocalFile>, ScanError> {
    let Ok(metadata) = std::fs::symlink_metadata(local) else {
        return Ok(None);
    };
    let stat = Stat::of(&metadata);
    let kind = match stat.kind {
        Kind::File => EntryKind::File,
        Kind::Dir => EntryKind::Dir,
        Kind::Symlink | Kind::Special => return Ok(None),
    };
    Ok(Some(LocalFile {
        kind,
        sha256: sf_protocol::Sha256Hex::empty(),
        size: stat.size,
        mtime_ns: stat.mtime_ns,
        inode: stat.inode,
        executable: stat.executable,
    }))
}

/// Runs blocking file-system work off the async threads; a panic in it
/// goes on unwinding here.
pub(crate) async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}
