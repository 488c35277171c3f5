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

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sf_protocol::chunking::ChunkRef;
use sf_protocol::v1::{Entry, EntryKind};
use sf_protocol::{Sha256Hex, SyncPath};
use sha2::{Digest, Sha256};

pub use confined::Kind;
use confined::{Dir, WalkError};

use crate::hub_client::{HubClient, HubError};
use crate::ignore::IgnoreRules;
use crate::model::{LocalFile, SyncedFile};
use crate::progress::Progress;
use crate::state::{STATE_DIR, State, StateError};

/// How long trashed files are kept.
pub const TRASH_DAYS: i64 = 30;

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
fn occupant(dir: &Dir, name: &str, path: &SyncPath) -> Result<Option<confined::Found>, ApplyError> {
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

pub fn stat_triplet(meta: &std::fs::Metadata) -> (u64, i64, u64) {
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64);
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    let inode = 0;
    (if meta.is_dir() { 0 } else { meta.len() }, mtime_ns, inode)
}

/// Writes the hub's `entry` at its path. `expected` is what the decision saw
/// on disk (`None`: nothing there); if that changed meanwhile, nothing is
/// replaced. Returns the synced record for the written file.
pub async fn download(
    root: &Path,
    hub: &HubClient,
    state: &State,
    entry: &Entry,
    expected: Option<&LocalFile>,
    progress: Option<&Progress>,
) -> Result<(SyncedFile, Vec<ChunkRef>), ApplyError> {
    let path = &entry.path;
    let folder = Folder::open(root)?;
    let (parent, name) = folder.parent_of(path, true)?;
    let there = occupant(&parent, name, path)?;
    if entry.kind == EntryKind::Dir {
        if there.is_none_or(|f| f.kind != Kind::Dir) {
            if !unchanged_since(&parent, name, expected) {
                return Err(ApplyError::ChangedMeanwhile { path: path.clone() });
            }
            // A file the hub turned into a folder: its bytes are on the hub
            // (it was unchanged), keep a copy in the trash all the same.
            if let Some(file) = expected.filter(|l| l.kind == EntryKind::File) {
                trash_from(&folder, &parent, name, path, file, &IgnoreRules::defaults())?;
            }
            match parent.mkdir(name) {
                Err(err) if err.kind() != std::io::ErrorKind::AlreadyExists => {
                    return Err(io(parent.path().join(name))(err));
                }
                _ => {}
            }
        }
        let Some(found) = occupant(&parent, name, path)?.filter(|f| f.kind == Kind::Dir) else {
            return Err(ApplyError::ChangedMeanwhile { path: path.clone() });
        };
        return Ok((
            SyncedFile {
                kind: EntryKind::Dir,
                sha256: Sha256Hex::empty(),
                size: 0,
                mtime_ns: found.mtime_ns,
                inode: found.inode,
                executable: false,
                version: entry.version,
            },
            vec![],
        ));
    }
    drop(parent);

    let expected_sha = entry
        .sha256
        .ok_or_else(|| ApplyError::NoDigest { path: path.clone() })?;
    let chunks = entry.chunks.clone().unwrap_or_default();
    let tmp = folder.state_dir(&["tmp"])?;
    let temp = temp_name();
    let temp_shown = tmp.path().join(&temp);
    let mut out = tmp.create_new(&temp).map_err(io(&temp_shown))?;
    let result = async {
        let actual = assemble(
            &folder,
            hub,
            state,
            &mut out,
            &temp_shown,
            &chunks,
            progress,
        )
        .await?;
        if actual != expected_sha {
            return Err(ApplyError::Corrupt {
                path: path.clone(),
                expected: expected_sha,
                actual,
            });
        }
        set_file_metadata(&out, &temp_shown, entry.mtime_ns, entry.executable)?;
        out.sync_all().map_err(io(&temp_shown))?;
        drop(out);
        // Walked again: the folder may have changed during the download.
        let (parent, name) = folder.parent_of(path, true)?;
        occupant(&parent, name, path)?;
        put_in_place(&folder, &tmp, &temp, &parent, name, expected, path)?;
        parent.sync().map_err(io(parent.path()))?;
        occupant(&parent, name, path)?
            .filter(|f| f.kind == Kind::File)
            .ok_or_else(|| ApplyError::ChangedMeanwhile { path: path.clone() })
    }
    .await;
    let found = match result {
        Ok(found) => found,
        Err(err) => {
            let _ = tmp.unlink(&temp);
            return Err(err);
        }
    };
    Ok((
        SyncedFile {
            kind: EntryKind::File,
            sha256: expected_sha,
            size: found.size,
            mtime_ns: found.mtime_ns,
            inode: found.inode,
            executable: entry.executable,
            version: entry.version,
        },
        chunks,
    ))
}

/// Moves the finished download `temp` (in `tmp`) to `name` in `parent`,
/// unless what is there is no longer `expected` (the user changed it since
/// the decision).
///
/// A check followed by a rename leaves a gap in which the user's save could
/// be overwritten. Where the OS allows, the switch itself is the check: an
/// exchange (then a look at what came out) or a rename that refuses to
/// replace anything. The caller removes `temp` on error.
fn put_in_place(
    folder: &Folder,
    tmp: &Dir,
    temp: &str,
    parent: &Dir,
    name: &str,
    expected: Option<&LocalFile>,
    path: &SyncPath,
) -> Result<(), ApplyError> {
    let changed = || ApplyError::ChangedMeanwhile { path: path.clone() };
    let target = parent.path().join(name);
    if !unchanged_since(parent, name, expected) {
        return Err(changed());
    }
    match expected {
        Some(local) if local.kind == EntryKind::File => {
            // What an exchange brings out may be the user's: it lands under
            // a `.swap` name, which is never deleted unexamined, not even by
            // the clean-up after a crash.
            let swap = format!("{}.{SWAP_EXTENSION}", temp.trim_end_matches(".part"));
            tmp.rename(temp, tmp, &swap)
                .map_err(io(tmp.path().join(&swap)))?;
            let ours = inode_of(tmp, &swap);
            match tmp.exchange(&swap, parent, name) {
                Ok(true) if unchanged_since(tmp, &swap, expected) => {
                    // The old version: its bytes are on the hub.
                    let _ = tmp.unlink(&swap);
                    Ok(())
                }
                Ok(true) => {
                    // Written at the last moment: give it back, untouched.
                    let back = tmp.exchange(&swap, parent, name);
                    if back.is_ok_and(|done| done) && inode_of(tmp, &swap) == ours {
                        let _ = tmp.unlink(&swap);
                    } else {
                        // Saved yet again meanwhile, or the exchange back
                        // failed: what is at `swap` now is the user's.
                        let kept = keep_in_trash(folder, tmp, &swap, path)?;
                        tracing::warn!(%path, kept = %kept.display(), "the file was saved while a download replaced it; one of the versions was moved to the trash");
                    }
                    Err(changed())
                }
                Ok(false) => tmp.rename(&swap, parent, name).map_err(io(target)),
                Err(source) => {
                    let _ = tmp.unlink(&swap);
                    Err(ApplyError::Io {
                        path: target,
                        source,
                    })
                }
            }
        }
        _ => {
            // A folder the hub turned into a file: only an empty one gives
            // way; one with contents waits until they are synced away.
            if parent.stat(name).ok().flatten().map(|f| f.kind) == Some(Kind::Dir) {
                parent.rmdir(name).map_err(io(&target))?;
            }
            match tmp.rename_no_replace(temp, parent, name) {
                Ok(true) => Ok(()),
                Ok(false) => tmp.rename(temp, parent, name).map_err(io(target)),
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Err(changed()),
                Err(source) => Err(ApplyError::Io {
                    path: target,
                    source,
                }),
            }
        }
    }
}

fn inode_of(dir: &Dir, name: &str) -> Option<u64> {
    dir.stat(name).ok().flatten().map(|found| found.inode)
}

/// Moves `name` in `dir` into today's trash as `path`; returns where it went.
fn keep_in_trash(
    folder: &Folder,
    dir: &Dir,
    name: &str,
    path: &SyncPath,
) -> Result<PathBuf, ApplyError> {
    let (dest, shown) = trash_destination(folder, path)?;
    dir.rename(name, &dest, path.file_name())
        .map_err(io(dir.path().join(name)))?;
    Ok(shown)
}

/// Builds the content from chunks into `out`: each chunk is copied from a
/// synced local file that still holds it, or fetched from the hub.
async fn assemble(
    folder: &Folder,
    hub: &HubClient,
    state: &State,
    out: &mut std::fs::File,
    shown: &Path,
    chunks: &[ChunkRef],
    progress: Option<&Progress>,
) -> Result<Sha256Hex, ApplyError> {
    let mut whole = Sha256::new();
    for chunk in chunks {
        let bytes = match local_chunk(folder, state, chunk).await? {
            Some(bytes) => bytes,
            None => hub.fetch_chunk(&chunk.hash).await?.to_vec(),
        };
        whole.update(&bytes);
        out.write_all(&bytes).map_err(io(shown))?;
        if let Some(progress) = progress {
            progress.add_bytes(chunk.len);
        }
    }
    Ok(whole.into())
}

/// A chunk read from a synced file that still matches its record.
async fn local_chunk(
    folder: &Folder,
    state: &State,
    chunk: &ChunkRef,
) -> Result<Option<Vec<u8>>, ApplyError> {
    for (path, synced, offset) in state.find_local_chunk(&chunk.hash).await? {
        if let Some(bytes) = read_chunk_at(folder, &path, &synced, offset, chunk) {
            return Ok(Some(bytes));
        }
    }
    Ok(None)
}

/// The chunk at `offset` in the file at `path`, if the file is still as
/// recorded and the bytes there still hash to the chunk's name.
fn read_chunk_at(
    folder: &Folder,
    path: &SyncPath,
    synced: &SyncedFile,
    offset: u64,
    chunk: &ChunkRef,
) -> Option<Vec<u8>> {
    let (parent, name) = folder.parent_of(path, false).ok()?;
    let mut file = parent.open_file(name).ok()?;
    let found = confined::found_of_file(&file).ok()?;
    if !synced.stat_unchanged(found.size, found.mtime_ns, found.inode) {
        return None;
    }
    let mut bytes = vec![0u8; usize::try_from(chunk.len).ok()?];
    file.seek(SeekFrom::Start(offset)).ok()?;
    file.read_exact(&mut bytes).ok()?;
    (Sha256Hex::of(&bytes) == chunk.hash).then_some(bytes)
}

fn set_file_metadata(
    file: &std::fs::File,
    shown: &Path,
    mtime_ns: i64,
    executable: bool,
) -> Result<(), ApplyError> {
    if mtime_ns > 0 {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(mtime_ns as u64);
        file.set_modified(at).map_err(io(shown))?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut perms = file.metadata().map_err(io(shown))?.permissions();
        let mode = perms.mode();
        perms.set_mode(if executable {
            mode | ((mode & 0o444) >> 2)
        } else {
            mode & !0o111
        });
        file.set_permissions(perms).map_err(io(shown))?;
    }
    #[cfg(not(unix))]
    let _ = executable;
    Ok(())
}

/// Moves the file or empty folder at `path` into `.sf/trash/<date>/<path>`.
/// A folder that still has contents is left in place. Returns where it went.
pub fn move_to_trash(
    root: &Path,
    path: &SyncPath,
    expected: &LocalFile,
    rules: &IgnoreRules,
) -> Result<Option<PathBuf>, ApplyError> {
    let folder = Folder::open(root)?;
    let (parent, name) = folder.parent_of(path, false)?;
    trash_from(&folder, &parent, name, path, expected, rules)
}

/// [`move_to_trash`] of `name` in `parent`, the place of `path`.
fn trash_from(
    folder: &Folder,
    parent: &Dir,
    name: &str,
    path: &SyncPath,
    expected: &LocalFile,
    rules: &IgnoreRules,
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
    let (dest, shown) = trash_destination(folder, path)?;
    parent
        .rename(name, &dest, path.file_name())
        .map_err(io(parent.path().join(name)))?;
    parent.sync().map_err(io(parent.path()))?;
    Ok(Some(shown))
}

/// A free place for `path` in today's trash, `.sf/trash/<date>/<path>`,
/// with its parent folders made: the directory, and the whole path for
/// messages.
fn trash_destination(folder: &Folder, path: &SyncPath) -> Result<(Dir, PathBuf), ApplyError> {
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let day = folder.state_dir(&["trash", &today])?;
    let parents = || path.parent().into_iter().flat_map(|p| p.split('/'));
    let name = path.file_name();
    if let Ok(dir) = day.walk(parents(), true)
        && matches!(dir.stat(name), Ok(None))
    {
        let shown = dir.path().join(name);
        return Ok((dir, shown));
    }
    // Something of that name (or a file where a folder of it would go) was
    // trashed today already: keep both.
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let unique = format!("{}-{n}", crate::state::now_ms());
    let dir = day
        .walk(std::iter::once(unique.as_str()).chain(parents()), true)
        .map_err(|err| match err {
            WalkError::Blocked { at, what } => ApplyError::StateDirBlocked { at, what },
            WalkError::Io { path, source } => ApplyError::Io { path, source },
        })?;
    let shown = dir.path().join(name);
    Ok((dir, shown))
}

/// Deletes trash folders older than [`TRASH_DAYS`].
pub fn purge_trash(root: &Path) -> std::io::Result<usize> {
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
