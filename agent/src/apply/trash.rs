//! The trash: what the agent removes from the folder is moved to
//! `.sf/trash/<date>/<path>` and kept for [`TRASH_DAYS`] days.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sf_protocol::SyncPath;
use sf_protocol::v1::EntryKind;

use std::sync::atomic::Ordering;

use super::confined::{Dir, GROUP_SYNC, WalkError};
use super::{ApplyError, Folder, TEMP_COUNTER, io, unchanged_since};
use crate::ignore::IgnoreRules;
use crate::model::LocalFile;

/// Trash folders a batch keeps open at most.
const MAX_OPEN: usize = 32;

/// How long trashed files are kept.
pub(crate) const TRASH_DAYS: i64 = 30;

/// Moves `name` in `dir` into today's trash as `path`; returns where it went.
pub(super) fn keep_in_trash(
    folder: &Folder,
    dir: &Dir,
    name: &str,
    path: &SyncPath,
) -> Result<PathBuf, ApplyError> {
    TrashDirs::default().put(folder, dir, name, path)
}

/// Moves each file or empty folder of `items` into
/// `.sf/trash/<date>/<path>`, in order (a folder after what was inside it);
/// a folder that still has contents is left in place (`Ok(None)`). Returns
/// where each went. The renames are made durable
/// together by one flush of the file system (where the OS has one): a
/// folder of thousands of deleted files costs one flush, not one per file.
/// The outer error (the folder cannot be opened or flushed) fails them all.
///
/// A folder that goes to the trash together with everything inside it
/// (every name in it is an item of the batch, unchanged, or ignored) moves
/// in one rename, its contents with it (see [`trash_list`]).
///
/// Where each goes in the trash is opened once per batch (see
/// [`TrashDirs`]). Each path's own folder is still opened from the root
/// for it, links never followed, just before its rename: a folder the user
/// moves out of the synced folder meanwhile is never reached through a
/// handle opened before.
pub(crate) fn trash_many(
    root: &Path,
    items: &[(&SyncPath, &LocalFile)],
    rules: &IgnoreRules,
) -> Result<Vec<Result<Option<PathBuf>, ApplyError>>, ApplyError> {
    let folder = Folder::open(root)?;
    let mut batch = Batch {
        folder: &folder,
        items,
        rules,
        trash: TrashDirs::default(),
        results: items.iter().map(|_| Ok(None)).collect(),
    };
    let all: Vec<usize> = (0..items.len()).collect();
    batch.trash_list(&all);
    let results = batch.results;
    if GROUP_SYNC && results.iter().any(|r| matches!(r, Ok(Some(_)))) {
        folder.root.sync_filesystem().map_err(io(root))?;
    }
    Ok(results)
}

/// A batch of [`trash_many`] on its way.
struct Batch<'a> {
    folder: &'a Folder,
    items: &'a [(&'a SyncPath, &'a LocalFile)],
    rules: &'a IgnoreRules,
    trash: TrashDirs,
    results: Vec<Result<Option<PathBuf>, ApplyError>>,
}

impl Batch<'_> {
    /// Trashes the items at `list` (indices into the batch, in its order).
    /// A folder among them takes the items inside it along: they move with
    /// it in one rename when nothing else is in it, and otherwise one by
    /// one (the same way, so a subfolder may still move whole) before it.
    fn trash_list(&mut self, list: &[usize]) {
        let items = self.items;
        let folders: HashMap<&str, usize> = list
            .iter()
            .map(|&i| (items[i].0.as_str(), i))
            .filter(|&(_, i)| items[i].1.kind == EntryKind::Dir)
            .collect();
        // The outermost folder of the list each item is inside, if any
        // (ancestors come outermost first).
        let outermost = |i: usize| items[i].0.ancestors().find_map(|a| folders.get(a).copied());
        let mut tops = Vec::new();
        let mut inside_of: HashMap<usize, Vec<usize>> = HashMap::new();
        for &i in list {
            match outermost(i) {
                Some(top) => inside_of.entry(top).or_default().push(i),
                None => tops.push(i),
            }
        }
        for i in tops {
            let inside = inside_of.remove(&i).unwrap_or_default();
            if !inside.is_empty() && self.move_whole(i, &inside) {
                continue;
            }
            self.trash_list(&inside);
            self.results[i] = self.trash_one(i);
        }
    }

    /// Moves the folder at item `at` to the trash in one rename if the
    /// items `inside` it are all it holds (ignored names aside), each
    /// unchanged; records where each went. False when it did not move.
    fn move_whole(&mut self, at: usize, inside: &[usize]) -> bool {
        let (path, expected) = self.items[at];
        let Ok((parent, name)) = self.folder.parent_of(path, false) else {
            return false;
        };
        if !unchanged_since(&parent, name, Some(expected)) {
            return false;
        }
        let Ok(dir) = parent.walk([name], false) else {
            return false;
        };
        let inside: HashMap<&str, usize> = inside
            .iter()
            .map(|&i| (self.items[i].0.as_str(), i))
            .collect();
        if !self.holds_only(&dir, path.as_str(), &inside) {
            return false;
        }
        // Where something of its name was trashed today already (its first
        // files, by an earlier deletion or batch), it goes to a place of its
        // own next to that, as any name trashed twice in a day does.
        let Ok(dest) = self.trash.put(self.folder, &parent, name, path) else {
            return false;
        };
        if !GROUP_SYNC && parent.sync().is_err() {
            return false;
        }
        for (&inner, &i) in &inside {
            let relative = &inner[path.as_str().len() + 1..];
            self.results[i] = Ok(Some(dest.join(relative)));
        }
        self.results[at] = Ok(Some(dest));
        true
    }

    /// Whether every name in `dir` (the folder `path`) is an item of
    /// `inside` that is unchanged (a folder holding only such items in
    /// turn) or is ignored.
    fn holds_only(&self, dir: &Dir, path: &str, inside: &HashMap<&str, usize>) -> bool {
        let Ok(names) = dir.names() else {
            return false;
        };
        names.into_iter().all(|(name, is_dir)| {
            let Some(name) = name.to_str() else {
                return false;
            };
            let relative = format!("{path}/{name}");
            match inside.get(relative.as_str()).map(|&i| self.items[i].1) {
                Some(local) if local.kind == EntryKind::Dir => {
                    is_dir
                        && dir
                            .walk([name], false)
                            .is_ok_and(|sub| self.holds_only(&sub, &relative, inside))
                }
                Some(local) => !is_dir && unchanged_since(dir, name, Some(local)),
                None => self.rules.is_ignored(&relative, is_dir),
            }
        })
    }

    /// Trashes the item at `at` on its own.
    fn trash_one(&mut self, at: usize) -> Result<Option<PathBuf>, ApplyError> {
        let (path, expected) = self.items[at];
        let (parent, name) = self.folder.parent_of(path, false)?;
        trash_from(
            self.folder,
            &parent,
            name,
            path,
            expected,
            self.rules,
            !GROUP_SYNC,
            &mut self.trash,
        )
    }
}

/// Trashes `name` in `parent`, the place of `path` (see [`trash_many`]). The rename
/// is made durable here only when `sync` (a batch makes its renames
/// durable together).
#[allow(clippy::too_many_arguments)]
pub(super) fn trash_from(
    folder: &Folder,
    parent: &Dir,
    name: &str,
    path: &SyncPath,
    expected: &LocalFile,
    rules: &IgnoreRules,
    sync: bool,
    trash: &mut TrashDirs,
) -> Result<Option<PathBuf>, ApplyError> {
    if !unchanged_since(parent, name, Some(expected)) {
        return Err(ApplyError::ChangedMeanwhile { path: path.clone() });
    }
    if expected.kind == EntryKind::Dir {
        // A folder left with only ignored files (.DS_Store, *.swp) counts as
        // empty: it goes to the trash whole, ignored files included.
        let dir = parent
            .walk([name], false)
            .map_err(|_| ApplyError::ChangedMeanwhile { path: path.clone() })?;
        for (child, is_dir) in dir.names().map_err(io(dir.path()))? {
            let relative = format!("{path}/{}", child.to_string_lossy());
            if !rules.is_ignored(&relative, is_dir) {
                return Ok(None);
            }
        }
    }
    let shown = trash.put(folder, parent, name, path)?;
    if sync {
        parent.sync().map_err(io(parent.path()))?;
    }
    Ok(Some(shown))
}

/// Today's trash, `.sf/trash/<date>/`, and the folders made in it, kept
/// open while they serve a batch: walking each destination from the root
/// was a fifth of the receiving agent's work when a tree of thousands of
/// files went to the trash. At most [`MAX_OPEN`] are kept (a batch's paths
/// come sorted, so a folder's files are next to each other).
#[derive(Default)]
pub(super) struct TrashDirs {
    day: Option<Dir>,
    /// By the trashed path's parent ("" for the top).
    parents: HashMap<String, Dir>,
}

impl TrashDirs {
    /// Renames `name` in `from` (the place of `path`) to a free place for
    /// `path` in today's trash, with its parent folders made; returns the
    /// new place's whole path, for messages.
    fn put(
        &mut self,
        folder: &Folder,
        from: &Dir,
        name: &str,
        path: &SyncPath,
    ) -> Result<PathBuf, ApplyError> {
        if let Some(kept) = self.put_if_free(folder, from, name, path)? {
            return Ok(kept);
        }
        // Something of that name (or a file where a folder of it would go)
        // was trashed today already: keep both.
        let day = self.day(folder)?;
        let parents = path.parent().into_iter().flat_map(|p| p.split('/'));
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let unique = format!("{}-{n}", crate::state::now_ms());
        let dir = day
            .walk(std::iter::once(unique.as_str()).chain(parents), true)
            .map_err(|err| match err {
                WalkError::Blocked { at, what } => ApplyError::StateDirBlocked { at, what },
                WalkError::Io { path, source } => ApplyError::Io { path, source },
            })?;
        from.rename(name, &dir, path.file_name())
            .map_err(io(from.path().join(name)))?;
        Ok(dir.path().join(path.file_name()))
    }

    /// [`TrashDirs::put`] into `path`'s own place in today's trash
    /// (`.sf/trash/<date>/<path>`) only: `None`, and nothing moved, when
    /// something is there already.
    fn put_if_free(
        &mut self,
        folder: &Folder,
        from: &Dir,
        name: &str,
        path: &SyncPath,
    ) -> Result<Option<PathBuf>, ApplyError> {
        let key = path.parent().unwrap_or_default();
        if self.parents.len() >= MAX_OPEN && !self.parents.contains_key(key) {
            self.parents.clear();
        }
        if !self.parents.contains_key(key) {
            let parents = path.parent().into_iter().flat_map(|p| p.split('/'));
            match self.day(folder)?.walk(parents, true) {
                Ok(dir) => {
                    self.parents.insert(key.to_owned(), dir);
                }
                Err(_) => return Ok(None),
            }
        }
        let dir = &self.parents[key];
        if !matches!(dir.stat(name), Ok(None)) {
            return Ok(None);
        }
        from.rename(name, dir, path.file_name())
            .map_err(io(from.path().join(name)))?;
        Ok(Some(dir.path().join(path.file_name())))
    }

    /// Today's trash folder, opened (and made) once per batch.
    fn day(&mut self, folder: &Folder) -> Result<&Dir, ApplyError> {
        match &mut self.day {
            Some(day) => Ok(day),
            none => {
                let today = time::OffsetDateTime::now_utc().date().to_string();
                Ok(none.insert(folder.state_dir(&["trash", &today])?))
            }
        }
    }
}

/// Deletes trash folders older than [`TRASH_DAYS`].
pub(crate) fn purge_trash(root: &Path) -> std::io::Result<usize> {
    let trash = Folder::open(root)
        .and_then(|folder| folder.state_dir(&["trash"]))
        .map_err(std::io::Error::other)?;
    let cutoff = time::OffsetDateTime::now_utc().date() - time::Duration::days(TRASH_DAYS);
    let mut purged = 0;
    for (name, _) in trash.names()? {
        let Some(name) = name.to_str() else { continue };
        let Some(date) = parse_date(name) else {
            continue;
        };
        if date < cutoff {
            trash.remove_tree(name)?;
            purged += 1;
        }
    }
    Ok(purged)
}

fn parse_date(raw: &str) -> Option<time::Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(raw, format).ok()
}
