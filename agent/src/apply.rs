//! Changes to the local folder, each safe on its own: downloads are built in
//! `.sf/tmp`, fsynced, checked against their sha256 and renamed into place;
//! removals are moves into `.sf/trash/<date>/`; conflicts are renames. A file
//! the user changed since it was last looked at is never replaced.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sf_protocol::chunking::ChunkRef;
use sf_protocol::v1::{Entry, EntryKind};
use sf_protocol::{Sha256Hex, SyncPath};
use sha2::{Digest, Sha256};

use crate::hub_client::{HubClient, HubError};
use crate::model::{LocalFile, SyncedFile};
use crate::progress::Progress;
use crate::scan::local_path;
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

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ApplyError + '_ {
    move |source| ApplyError::Io {
        path: path.to_owned(),
        source,
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_path(root: &Path) -> PathBuf {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    root.join(STATE_DIR)
        .join("tmp")
        .join(format!("{}-{n}.part", std::process::id()))
}

/// Removes the partial downloads a crash left behind. A `.swap` file may
/// hold a version the user saved at the moment of the crash: it goes to the
/// trash instead.
pub fn clear_temp(root: &Path) -> std::io::Result<()> {
    let tmp = root.join(STATE_DIR).join("tmp");
    std::fs::create_dir_all(&tmp)?;
    for entry in std::fs::read_dir(&tmp)? {
        let entry = entry?;
        let file = entry.path();
        if file.extension().is_some_and(|e| e == SWAP_EXTENSION) {
            let name = format!("rescued-{}", entry.file_name().to_string_lossy());
            let path = SyncPath::parse(name).map_err(std::io::Error::other)?;
            match keep_in_trash(root, &file, &path) {
                Ok(kept) => {
                    tracing::warn!(kept = %kept.display(), "a file from an interrupted download may be a version saved at that moment; moved to the trash")
                }
                Err(err) => return Err(std::io::Error::other(err)),
            }
        } else if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(&file)?;
        } else {
            std::fs::remove_file(&file)?;
        }
    }
    Ok(())
}

/// Whether the file at `path` is still what the decision was made on: absent
/// when `expected` is `None`, else same size, mtime and inode.
fn unchanged_since(disk: &Path, expected: Option<&LocalFile>) -> bool {
    match (std::fs::symlink_metadata(disk), expected) {
        (Err(err), None) => err.kind() == std::io::ErrorKind::NotFound,
        (Ok(meta), Some(local)) => {
            let (size, mtime_ns, inode) = stat_triplet(&meta);
            local.size == size && local.mtime_ns == mtime_ns && local.inode == inode
                || local.kind == EntryKind::Dir && meta.is_dir()
        }
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
    let target = local_path(root, &entry.path);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    if entry.kind == EntryKind::Dir {
        if !target.is_dir() {
            if !unchanged_since(&target, expected) {
                return Err(ApplyError::ChangedMeanwhile {
                    path: entry.path.clone(),
                });
            }
            // A file the hub turned into a folder: its bytes are on the hub
            // (it was unchanged), keep a copy in the trash all the same.
            if let Some(file) = expected.filter(|l| l.kind == EntryKind::File) {
                move_to_trash(
                    root,
                    &entry.path,
                    file,
                    &crate::ignore::IgnoreRules::defaults(),
                )?;
            }
            std::fs::create_dir_all(&target).map_err(io(&target))?;
        }
        let meta = std::fs::metadata(&target).map_err(io(&target))?;
        let (_, mtime_ns, inode) = stat_triplet(&meta);
        return Ok((
            SyncedFile {
                kind: EntryKind::Dir,
                sha256: Sha256Hex::empty(),
                size: 0,
                mtime_ns,
                inode,
                executable: false,
                version: entry.version,
            },
            vec![],
        ));
    }

    let expected_sha = entry.sha256.expect("live file entries have content");
    let chunks = entry.chunks.clone().unwrap_or_default();
    let temp = temp_path(root);
    let result = assemble(root, hub, state, &temp, &chunks, progress).await;
    let actual = match result {
        Ok(actual) => actual,
        Err(err) => {
            let _ = std::fs::remove_file(&temp);
            return Err(err);
        }
    };
    if actual != expected_sha {
        let _ = std::fs::remove_file(&temp);
        return Err(ApplyError::Corrupt {
            path: entry.path.clone(),
            expected: expected_sha,
            actual,
        });
    }
    set_file_metadata(&temp, entry.mtime_ns, entry.executable)?;
    if let Err(err) = put_in_place(root, &temp, &target, expected, &entry.path) {
        let _ = std::fs::remove_file(&temp);
        return Err(err);
    }
    sync_parent(&target)?;
    let meta = std::fs::metadata(&target).map_err(io(&target))?;
    let (size, mtime_ns, inode) = stat_triplet(&meta);
    Ok((
        SyncedFile {
            kind: EntryKind::File,
            sha256: expected_sha,
            size,
            mtime_ns,
            inode,
            executable: entry.executable,
            version: entry.version,
        },
        chunks,
    ))
}

/// Moves the finished download `temp` to `target`, unless what is at
/// `target` is no longer `expected` (the user changed it since the decision).
///
/// A check followed by a rename leaves a gap in which the user's save could
/// be overwritten. Where the OS allows, the switch itself is the check: an
/// exchange (then a look at what came out) or a rename that refuses to
/// replace anything. The caller removes `temp` on error.
fn put_in_place(
    root: &Path,
    temp: &Path,
    target: &Path,
    expected: Option<&LocalFile>,
    path: &SyncPath,
) -> Result<(), ApplyError> {
    let changed = || ApplyError::ChangedMeanwhile { path: path.clone() };
    if !unchanged_since(target, expected) {
        return Err(changed());
    }
    match expected {
        Some(local) if local.kind == EntryKind::File => {
            // What an exchange brings out may be the user's: it lands under
            // a `.swap` name, which is never deleted unexamined, not even by
            // the clean-up after a crash.
            let swap = temp.with_extension(SWAP_EXTENSION);
            std::fs::rename(temp, &swap).map_err(io(&swap))?;
            let ours = inode_of(&swap);
            match atomic::exchange(&swap, target) {
                Ok(true) if unchanged_since(&swap, expected) => {
                    // The old version: its bytes are on the hub.
                    let _ = std::fs::remove_file(&swap);
                    Ok(())
                }
                Ok(true) => {
                    // Written at the last moment: give it back, untouched.
                    let back = atomic::exchange(&swap, target);
                    if back.is_ok_and(|done| done) && inode_of(&swap) == ours {
                        let _ = std::fs::remove_file(&swap);
                    } else {
                        // Saved yet again meanwhile, or the exchange back
                        // failed: what is at `swap` now is the user's.
                        let kept = keep_in_trash(root, &swap, path)?;
                        tracing::warn!(%path, kept = %kept.display(), "the file was saved while a download replaced it; one of the versions was moved to the trash");
                    }
                    Err(changed())
                }
                Ok(false) => std::fs::rename(&swap, target).map_err(io(target)),
                Err(source) => {
                    let _ = std::fs::remove_file(&swap);
                    Err(ApplyError::Io {
                        path: target.to_owned(),
                        source,
                    })
                }
            }
        }
        _ => {
            // A folder the hub turned into a file: only an empty one gives
            // way; one with contents waits until they are synced away.
            if target.is_dir() {
                std::fs::remove_dir(target).map_err(io(target))?;
            }
            match atomic::rename_no_replace(temp, target) {
                Ok(true) => Ok(()),
                Ok(false) => std::fs::rename(temp, target).map_err(io(target)),
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Err(changed()),
                Err(source) => Err(ApplyError::Io {
                    path: target.to_owned(),
                    source,
                }),
            }
        }
    }
}

/// Files in `.sf/tmp` that may hold the user's bytes (see [`put_in_place`]).
const SWAP_EXTENSION: &str = "swap";

fn inode_of(path: &Path) -> Option<u64> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|meta| stat_triplet(&meta).2)
}

/// Moves `file` into today's trash as `path`; returns where it went.
fn keep_in_trash(root: &Path, file: &Path, path: &SyncPath) -> Result<PathBuf, ApplyError> {
    let dest = trash_destination(root, path)?;
    std::fs::rename(file, &dest).map_err(io(file))?;
    Ok(dest)
}

/// Renames that check and switch in one step. Each returns `Ok(false)` when
/// the OS or file system cannot do it, and the caller falls back to a plain
/// rename after its own check.
mod atomic {
    use std::io;
    use std::path::Path;

    #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
    fn rename_with(from: &Path, to: &Path, flags: rustix::fs::RenameFlags) -> io::Result<bool> {
        use rustix::io::Errno;
        match rustix::fs::renameat_with(rustix::fs::CWD, from, rustix::fs::CWD, to, flags) {
            Ok(()) => Ok(true),
            // Not supported by this OS or file system (FUSE, NFS, SMB,
            // exFAT; macOS says ENOTSUP, which differs from EOPNOTSUPP
            // there).
            Err(errno)
                if [Errno::INVAL, Errno::NOSYS, Errno::OPNOTSUPP, Errno::NOTSUP]
                    .contains(&errno) =>
            {
                Ok(false)
            }
            Err(errno) => Err(errno.into()),
        }
    }

    /// Swaps the two paths' entries.
    pub fn exchange(a: &Path, b: &Path) -> io::Result<bool> {
        #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
        return rename_with(a, b, rustix::fs::RenameFlags::EXCHANGE);
        #[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
        {
            let _ = (a, b);
            Ok(false)
        }
    }

    /// Renames `from` to `to`; `AlreadyExists` if `to` exists.
    pub fn rename_no_replace(from: &Path, to: &Path) -> io::Result<bool> {
        #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
        return rename_with(from, to, rustix::fs::RenameFlags::NOREPLACE);
        #[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
        {
            let _ = (from, to);
            Ok(false)
        }
    }
}

/// Builds the content from chunks into `temp`: each chunk is copied from a
/// synced local file that still holds it, or fetched from the hub.
async fn assemble(
    root: &Path,
    hub: &HubClient,
    state: &State,
    temp: &Path,
    chunks: &[ChunkRef],
    progress: Option<&Progress>,
) -> Result<Sha256Hex, ApplyError> {
    let mut out = std::fs::File::create(temp).map_err(io(temp))?;
    let mut whole = Sha256::new();
    for chunk in chunks {
        let bytes = match local_chunk(root, state, chunk).await? {
            Some(bytes) => bytes,
            None => hub.fetch_chunk(&chunk.hash).await?.to_vec(),
        };
        whole.update(&bytes);
        out.write_all(&bytes).map_err(io(temp))?;
        if let Some(progress) = progress {
            progress.add_bytes(chunk.len);
        }
    }
    out.sync_all().map_err(io(temp))?;
    Ok(whole.into())
}

/// A chunk read from a synced file that still matches its record.
async fn local_chunk(
    root: &Path,
    state: &State,
    chunk: &ChunkRef,
) -> Result<Option<Vec<u8>>, ApplyError> {
    for (path, synced, offset) in state.find_local_chunk(&chunk.hash).await? {
        if let Some(bytes) = read_chunk_at(&local_path(root, &path), &synced, offset, chunk) {
            return Ok(Some(bytes));
        }
    }
    Ok(None)
}

/// The chunk at `offset` in `disk`, if the file is still as recorded and the
/// bytes there still hash to the chunk's name.
fn read_chunk_at(
    disk: &Path,
    synced: &SyncedFile,
    offset: u64,
    chunk: &ChunkRef,
) -> Option<Vec<u8>> {
    let mut file = std::fs::File::open(disk).ok()?;
    let (size, mtime_ns, inode) = stat_triplet(&file.metadata().ok()?);
    if !synced.stat_unchanged(size, mtime_ns, inode) {
        return None;
    }
    let mut bytes = vec![0u8; chunk.len as usize];
    file.seek(SeekFrom::Start(offset)).ok()?;
    file.read_exact(&mut bytes).ok()?;
    (Sha256Hex::of(&bytes) == chunk.hash).then_some(bytes)
}

fn set_file_metadata(path: &Path, mtime_ns: i64, executable: bool) -> Result<(), ApplyError> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io(path))?;
    if mtime_ns > 0 {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(mtime_ns as u64);
        file.set_modified(at).map_err(io(path))?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut perms = file.metadata().map_err(io(path))?.permissions();
        let mode = perms.mode();
        perms.set_mode(if executable {
            mode | ((mode & 0o444) >> 2)
        } else {
            mode & !0o111
        });
        file.set_permissions(perms).map_err(io(path))?;
    }
    #[cfg(not(unix))]
    let _ = executable;
    Ok(())
}

fn sync_parent(path: &Path) -> Result<(), ApplyError> {
    #[cfg(unix)]
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io(parent))?;
    }
    Ok(())
}

/// Moves the file or empty folder at `path` into `.sf/trash/<date>/<path>`.
/// A folder that still has contents is left in place. Returns where it went.
pub fn move_to_trash(
    root: &Path,
    path: &SyncPath,
    expected: &LocalFile,
    rules: &crate::ignore::IgnoreRules,
) -> Result<Option<PathBuf>, ApplyError> {
    let disk = local_path(root, path);
    if !unchanged_since(&disk, Some(expected)) {
        return Err(ApplyError::ChangedMeanwhile { path: path.clone() });
    }
    if expected.kind == EntryKind::Dir {
        // A folder left with only ignored files (.DS_Store, *.swp) counts as
        // empty: it goes to the trash whole, ignored files included.
        for entry in std::fs::read_dir(&disk).map_err(io(&disk))? {
            let entry = entry.map_err(io(&disk))?;
            let name = entry.file_name();
            let relative = format!("{path}/{}", name.to_string_lossy());
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if !rules.is_ignored(&relative, is_dir) {
                return Ok(None);
            }
        }
    }
    let dest = trash_destination(root, path)?;
    std::fs::rename(&disk, &dest).map_err(io(&disk))?;
    sync_parent(&disk)?;
    Ok(Some(dest))
}

/// A free place for `path` in today's trash, `.sf/trash/<date>/<path>`,
/// with its parent folders made.
fn trash_destination(root: &Path, path: &SyncPath) -> Result<PathBuf, ApplyError> {
    let day = root
        .join(STATE_DIR)
        .join("trash")
        .join(time::OffsetDateTime::now_utc().date().to_string());
    let mut dest = day.join(path.as_str());
    if occupied(&day, &dest) {
        // Something of that name was trashed today already: keep both.
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        dest = day
            .join(format!("{}-{n}", crate::state::now_ms()))
            .join(path.as_str());
    }
    let parent = dest.parent().expect("trash paths have a parent");
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    Ok(dest)
}

/// Whether `dest` (under `day`) or one of its parents is already taken by
/// something that would block a rename to it.
fn occupied(day: &Path, dest: &Path) -> bool {
    if dest.symlink_metadata().is_ok() {
        return true;
    }
    dest.ancestors()
        .skip(1)
        .take_while(|a| a.starts_with(day) && *a != day)
        .any(|a| a.symlink_metadata().is_ok_and(|m| !m.is_dir()))
}

/// Deletes trash folders older than [`TRASH_DAYS`].
pub fn purge_trash(root: &Path) -> std::io::Result<usize> {
    let trash = root.join(STATE_DIR).join("trash");
    let cutoff = time::OffsetDateTime::now_utc().date() - time::Duration::days(TRASH_DAYS);
    let mut purged = 0;
    for day in std::fs::read_dir(&trash)? {
        let day = day?;
        let name = day.file_name();
        let Some(date) = name.to_str().and_then(parse_date) else {
            continue;
        };
        if date < cutoff {
            std::fs::remove_dir_all(day.path())?;
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
    let disk = local_path(root, path);
    if !unchanged_since(&disk, Some(expected)) {
        return Err(ApplyError::ChangedMeanwhile { path: path.clone() });
    }
    let copy = sf_protocol::conflict::conflict_copy_path(
        path,
        origin,
        time::OffsetDateTime::now_utc(),
        |c| taken(c) || local_path(root, c).exists(),
    )
    .map_err(|e| ApplyError::Io {
        path: disk.clone(),
        source: std::io::Error::other(e),
    })?;
    let dest = local_path(root, &copy);
    std::fs::rename(&disk, &dest).map_err(io(&disk))?;
    sync_parent(&dest)?;
    Ok(copy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(path: &Path) -> LocalFile {
        let meta = std::fs::metadata(path).unwrap();
        let (size, mtime_ns, inode) = stat_triplet(&meta);
        LocalFile {
            kind: EntryKind::File,
            sha256: Sha256Hex::empty(),
            size,
            mtime_ns,
            inode,
            executable: false,
        }
    }

    fn folder() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        std::fs::create_dir_all(root.join(STATE_DIR).join("tmp")).unwrap();
        (dir, root)
    }

    fn trash_files(root: &Path) -> Vec<Vec<u8>> {
        let mut found = Vec::new();
        let mut pending = vec![root.join(STATE_DIR).join("trash")];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if entry.file_type().unwrap().is_dir() {
                    pending.push(entry.path());
                } else {
                    found.push(std::fs::read(entry.path()).unwrap());
                }
            }
        }
        found
    }

    #[test]
    fn a_download_replaces_only_the_version_it_was_decided_on() {
        let (_dir, root) = folder();
        let path = SyncPath::parse("doc.txt").unwrap();
        let target = root.join("doc.txt");
        std::fs::write(&target, "synced version").unwrap();
        let decided_on = seen(&target);

        // Unchanged: replaced, and nothing is left in .sf/tmp.
        let temp = temp_path(&root);
        std::fs::write(&temp, "hub version").unwrap();
        put_in_place(&root, &temp, &target, Some(&decided_on), &path).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"hub version");
        assert_eq!(
            std::fs::read_dir(root.join(STATE_DIR).join("tmp"))
                .unwrap()
                .count(),
            0
        );

        // Saved by the user since the decision: left alone.
        let decided_on = seen(&target);
        std::fs::write(&target, "the user's newer save").unwrap();
        let temp = temp_path(&root);
        std::fs::write(&temp, "hub version 2").unwrap();
        let err = put_in_place(&root, &temp, &target, Some(&decided_on), &path).unwrap_err();
        assert!(matches!(err, ApplyError::ChangedMeanwhile { .. }), "{err}");
        assert_eq!(std::fs::read(&target).unwrap(), b"the user's newer save");
        assert!(trash_files(&root).is_empty());
    }

    #[test]
    fn a_new_file_never_replaces_one_that_appeared_meanwhile() {
        let (_dir, root) = folder();
        let path = SyncPath::parse("new.txt").unwrap();
        let target = root.join("new.txt");
        let temp = temp_path(&root);
        std::fs::write(&temp, "hub version").unwrap();
        // Decided on "nothing there", but the user created it since.
        std::fs::write(&target, "created by the user").unwrap();
        let err = put_in_place(&root, &temp, &target, None, &path).unwrap_err();
        assert!(matches!(err, ApplyError::ChangedMeanwhile { .. }), "{err}");
        assert_eq!(std::fs::read(&target).unwrap(), b"created by the user");
    }

    #[test]
    fn after_a_crash_partial_downloads_go_and_swapped_out_files_are_kept() {
        let (_dir, root) = folder();
        let tmp = root.join(STATE_DIR).join("tmp");
        std::fs::write(tmp.join("1-0.part"), "half a download").unwrap();
        std::fs::write(tmp.join("1-1.swap"), "maybe the user's save").unwrap();
        clear_temp(&root).unwrap();
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
        assert_eq!(trash_files(&root), [b"maybe the user's save".to_vec()]);
    }
}
