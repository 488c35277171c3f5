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
use crate::model::Views;
use crate::reconcile::{Decision, Direction, decide_all};
use crate::scan::{self, DirListing, Names};
use crate::state::{State, StateError, folder_prefix};

/// Paths decided together: bounds what a walk holds in a directory of any
/// size, and is big enough that the database round trips do not matter.
const WINDOW: u32 = 512;

mod window;

/// The folder itself cannot be listed: nothing in it can be decided.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot list the synced folder {path}: {source}; check that it exists and that this user \
     may read it"
)]
pub struct FolderUnreadable {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error(transparent)]
    FolderUnreadable(#[from] FolderUnreadable),
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
                let path = self.root.clone();
                return Err(FolderUnreadable { path, source }.into());
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

/// Runs blocking file-system work off the async threads; a panic in it
/// goes on unwinding here.
pub(crate) async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}
