//! Changes to the local folder, each safe on its own: downloads are built in
//! `.sf/tmp`, fsynced, checked against their sha256 and renamed into place;
//! removals are moves into `.sf/trash/<date>/`; conflicts are renames. A file
//! the user changed since it was last looked at is never replaced.
//!
//! Every change goes through [`confined`]: relative to directories opened
//! from the folder's root one name at a time, links never followed. A path
//! that leads through a symlink, a file or a FIFO is refused
//! ([`ApplyError::Blocked`]), so nothing a hub names is written, renamed or
//! removed outside the folder.

mod confined;
mod download;
mod download_many;
mod resolve;
mod trash;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sf_protocol::v1::EntryKind;
use sf_protocol::{Sha256Hex, SyncPath};

use confined::{Dir, WalkError};
pub(crate) use confined::{Kind, Stat};

use crate::hub_client::HubError;
use crate::model::LocalFile;
use crate::state::{STATE_DIR, StateError};

pub(crate) use download::download;
pub(crate) use download_many::{Wanted, download_many};
pub(crate) use resolve::{move_to_trash, restore_from_trash, take_copy_in_place};
use trash::keep_in_trash;
pub(crate) use trash::{purge_trash, trash_many};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{path} changed on disk while the agent worked on it; it will be looked at again")]
    ChangedMeanwhile { path: SyncPath },
    #[error("the downloaded bytes of {path} hash to {actual}, not {expected}")]
    Corrupt {
        path: SyncPath,
        expected: Sha256Hex,
        actual: Sha256Hex,
    },
    /// `path` leads through (or is) `at`, which is not a real directory
    /// (or file) of the folder; nothing was done.
    #[error("not applied: {at} is {}", what.describe())]
    Blocked {
        path: SyncPath,
        at: String,
        what: Kind,
    },
    /// `.sf`, `.sf/tmp` or `.sf/trash` is not a real directory.
    #[error(
        "{at} is {}: the agent keeps its temporary files and its trash only in real \
         directories inside the folder; replace it with a directory", what.describe()
    )]
    StateDirBlocked { at: String, what: Kind },
    #[error("the hub's entry for {path} is a live file without a sha256")]
    NoDigest { path: SyncPath },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error(transparent)]
    State(#[from] StateError),
}

fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ApplyError {
    let path = path.into();
    move |source| ApplyError::Io { path, source }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh name for a download in `.sf/tmp`.
fn temp_name() -> String {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{n}.part", std::process::id())
}

/// Files in `.sf/tmp` that may hold the user's bytes (see [`put_in_place`]).
const SWAP_EXTENSION: &str = "swap";

/// The folder's root, opened once per operation: every directory below is
/// reached from it.
struct Folder {
    root: Dir,
}

impl Folder {
    fn open(root: &Path) -> Result<Self, ApplyError> {
        Ok(Folder {
            root: Dir::open_root(root).map_err(io(root))?,
        })
    }

    /// `.sf/<names…>`, made if missing; refused if any of it is a link.
    fn state_dir(&self, names: &[&str]) -> Result<Dir, ApplyError> {
        let all = std::iter::once(STATE_DIR).chain(names.iter().copied());
        self.root.walk(all, true).map_err(|err| match err {
            WalkError::Blocked { at, what } => ApplyError::StateDirBlocked { at, what },
            WalkError::Io { path, source } => ApplyError::Io { path, source },
        })
    }

    /// The directory that holds `path`, and `path`'s name in it. Missing
    /// folders are made when `create`; otherwise a missing one means the
    /// path changed since it was looked at.
    fn parent_of<'p>(
        &self,
        path: &'p SyncPath,
        create: bool,
    ) -> Result<(Dir, &'p str), ApplyError> {
        let parents = path.parent().into_iter().flat_map(|p| p.split('/'));
        match self.root.walk(parents, create) {
            Ok(dir) => Ok((dir, path.file_name())),
            Err(WalkError::Blocked { at, what }) => Err(ApplyError::Blocked {
                path: path.clone(),
                at,
                what,
            }),
            Err(WalkError::Io { source, .. })
                if !create && source.kind() == std::io::ErrorKind::NotFound =>
            {
                Err(ApplyError::ChangedMeanwhile { path: path.clone() })
            }
            Err(WalkError::Io { path, source }) => Err(ApplyError::Io { path, source }),
        }
    }
}

/// What is at `name` in `dir` (the place of `path`): refused when it is a
/// symlink or a special file, which the agent never replaces.
fn occupant(dir: &Dir, name: &str, path: &SyncPath) -> Result<Option<Stat>, ApplyError> {
    let found = dir.stat(name).map_err(io(dir.path().join(name)))?;
    match found {
        Some(f) if matches!(f.kind, Kind::Symlink | Kind::Special) => Err(ApplyError::Blocked {
            path: path.clone(),
            at: path.to_string(),
            what: f.kind,
        }),
        found => Ok(found),
    }
}

/// Removes the partial downloads a crash left behind. A `.swap` file may
/// hold a version the user saved at the moment of the crash: it goes to the
/// trash instead. Fails when `.sf`, `.sf/tmp` or `.sf/trash` is a link.
pub fn clear_temp(root: &Path) -> std::io::Result<()> {
    let clear = || -> Result<(), ApplyError> {
        let folder = Folder::open(root)?;
        let tmp = folder.state_dir(&["tmp"])?;
        // Checked at start, not at the first delete.
        folder.state_dir(&["trash"])?;
        for (name, _) in tmp.names().map_err(io(tmp.path()))? {
            let Some(name) = name.to_str() else {
                tracing::warn!(dir = %tmp.path().display(), ?name, "a name the agent never makes; left alone");
                continue;
            };
            if name.ends_with(&format!(".{SWAP_EXTENSION}")) {
                let rescued = SyncPath::parse(format!("rescued-{name}"))
                    .map_err(|e| io(tmp.path().join(name))(std::io::Error::other(e)))?;
                let kept = keep_in_trash(&folder, &tmp, name, &rescued)?;
                tracing::warn!(kept = %kept.display(), "a file from an interrupted download may be a version saved at that moment; moved to the trash");
            } else {
                tmp.remove_tree(name).map_err(io(tmp.path().join(name)))?;
            }
        }
        Ok(())
    };
    clear().map_err(std::io::Error::other)
}

/// The regular file at `path` in the folder, for reading, reached without
/// following links (as every change is).
pub(crate) fn open_in_folder(root: &Path, path: &SyncPath) -> std::io::Result<std::fs::File> {
    let open = || -> Result<std::fs::File, ApplyError> {
        let folder = Folder::open(root)?;
        let (parent, name) = folder.parent_of(path, false)?;
        parent.open_file(name).map_err(io(parent.path().join(name)))
    };
    open().map_err(std::io::Error::other)
}

/// Whether `name` in `dir` is still what the decision was made on: absent
/// when `expected` is `None`, else the same kind and, for a file, the same
/// size, mtime and inode.
fn unchanged_since(dir: &Dir, name: &str, expected: Option<&LocalFile>) -> bool {
    match (dir.stat(name), expected) {
        (Ok(None), None) => true,
        (Ok(Some(found)), Some(local)) => match (local.kind, found.kind) {
            (EntryKind::Dir, Kind::Dir) => true,
            (EntryKind::File, Kind::File) => {
                local.size == found.size
                    && local.mtime_ns == found.mtime_ns
                    && local.inode == found.inode
            }
            _ => false,
        },
        _ => false,
    }
}

/// Renames the local file at `path` to a conflict copy named for `origin`;
/// `taken` says which names are used on either side. Returns the new path.
pub fn rename_to_conflict_copy(
    root: &Path,
    path: &SyncPath,
    origin: &str,
    expected: &LocalFile,
    taken: impl Fn(&SyncPath) -> bool,
) -> Result<SyncPath, ApplyError> {
    let folder = Folder::open(root)?;
    let (parent, name) = folder.parent_of(path, false)?;
    if !unchanged_since(&parent, name, Some(expected)) {
        return Err(ApplyError::ChangedMeanwhile { path: path.clone() });
    }
    // A copy's name differs from the original's only in its last segment.
    let copy = sf_protocol::conflict::conflict_copy_path(
        path,
        origin,
        time::OffsetDateTime::now_utc(),
        |c| taken(c) || !matches!(parent.stat(c.file_name()), Ok(None)),
    )
    .map_err(|e| io(parent.path().join(name))(std::io::Error::other(e)))?;
    let copy_name = copy.file_name();
    let shown = parent.path().join(name);
    match parent.rename_no_replace(name, &parent, copy_name) {
        Ok(true) => {}
        Ok(false) => parent
            .rename(name, &parent, copy_name)
            .map_err(io(&shown))?,
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(ApplyError::ChangedMeanwhile { path: path.clone() });
        }
        Err(source) => {
            return Err(ApplyError::Io {
                path: shown,
                source,
            });
        }
    }
    parent.sync().map_err(io(parent.path()))?;
    Ok(copy)
}

#[cfg(all(test, unix))]
mod tests;
