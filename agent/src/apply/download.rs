//! Writing the hub's version of a file: built in `.sf/tmp` from chunks
//! already on disk or fetched from the hub, fsynced, checked against its
//! sha256, then swapped into place unless the user changed the file since
//! the decision.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use sf_protocol::chunking::ChunkRef;
use sf_protocol::v1::{Entry, EntryKind};
use sf_protocol::{Sha256Hex, SyncPath};
use sha2::{Digest, Sha256};

use super::confined::{self, Dir, Kind, Stat};
use super::download_many::chunk_bytes;
use super::trash::{TrashDirs, trash_from};
use super::{
    ApplyError, Folder, SWAP_EXTENSION, io, keep_in_trash, occupant, temp_name, unchanged_since,
};
use crate::hub_client::HubClient;
use crate::ignore::IgnoreRules;
use crate::model::{LocalFile, SyncedFile};
use crate::progress::Progress;
use crate::state::State;

/// Writes the hub's `entry` at its path. `expected` is what the decision saw
/// on disk (`None`: nothing there); if that changed meanwhile, nothing is
/// replaced. Returns the synced record for the written file.
pub(crate) async fn download(
    root: &Path,
    hub: &HubClient,
    state: &State,
    entry: &Entry,
    expected: Option<&LocalFile>,
    progress: Option<&Progress>,
) -> Result<(SyncedFile, Vec<ChunkRef>), ApplyError> {
    let path = &entry.path;
    let folder = Folder::open(root)?;
    if entry.kind == EntryKind::Dir {
        return make_dir(&folder, entry, expected);
    }
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
        place_file(&folder, &tmp, &temp, entry, expected, true)
    }
    .await;
    let found = match result {
        Ok(found) => found,
        Err(err) => {
            let _ = tmp.unlink(&temp);
            return Err(err);
        }
    };
    Ok((synced_file(entry, expected_sha, &found), chunks))
}

/// The record of the file `entry` written to disk as `found`.
pub(super) fn synced_file(entry: &Entry, sha256: Sha256Hex, found: &Stat) -> SyncedFile {
    SyncedFile {
        kind: EntryKind::File,
        sha256,
        size: found.size,
        mtime_ns: found.mtime_ns,
        inode: found.inode,
        executable: entry.executable,
        version: entry.version,
    }
}

/// Makes the folder `entry` where `expected` was (a file there goes to the
/// trash first); returns its record.
pub(super) fn make_dir(
    folder: &Folder,
    entry: &Entry,
    expected: Option<&LocalFile>,
) -> Result<(SyncedFile, Vec<ChunkRef>), ApplyError> {
    let path = &entry.path;
    let (parent, name) = folder.parent_of(path, true)?;
    let there = occupant(&parent, name, path)?;
    if there.is_none_or(|f| f.kind != Kind::Dir) {
        if !unchanged_since(&parent, name, expected) {
            return Err(ApplyError::ChangedMeanwhile { path: path.clone() });
        }
        // A file the hub turned into a folder: its bytes are on the hub
        // (it was unchanged), keep a copy in the trash all the same.
        if let Some(file) = expected.filter(|l| l.kind == EntryKind::File) {
            trash_from(
                folder,
                &parent,
                name,
                path,
                file,
                &IgnoreRules::defaults(),
                true,
                &mut TrashDirs::default(),
            )?;
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
    Ok((
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
    ))
}

/// Puts the finished, durable download `temp` (in `tmp`) at `entry`'s path
/// in place of `expected`, and returns what is there now. With
/// `sync_parent`, the rename is made durable here; a batch makes its
/// renames durable together instead. The caller removes `temp` on error.
pub(super) fn place_file(
    folder: &Folder,
    tmp: &Dir,
    temp: &str,
    entry: &Entry,
    expected: Option<&LocalFile>,
    sync_parent: bool,
) -> Result<Stat, ApplyError> {
    let path = &entry.path;
    // Walked again: the folder may have changed during the download.
    let (parent, name) = folder.parent_of(path, true)?;
    occupant(&parent, name, path)?;
    put_in_place(folder, tmp, temp, &parent, name, expected, path)?;
    if sync_parent {
        parent.sync().map_err(io(parent.path()))?;
    }
    occupant(&parent, name, path)?
        .filter(|f| f.kind == Kind::File)
        .ok_or_else(|| ApplyError::ChangedMeanwhile { path: path.clone() })
}

/// Moves the finished download `temp` (in `tmp`) to `name` in `parent`,
/// unless what is there is no longer `expected` (the user changed it since
/// the decision).
///
/// A check followed by a rename leaves a gap in which the user's save could
/// be overwritten. Where the OS allows, the switch itself is the check: an
/// exchange (then a look at what came out) or a rename that refuses to
/// replace anything. The caller removes `temp` on error.
pub(super) fn put_in_place(
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

/// Chunks fetched per request while building a large file: a round trip
/// per window of about 128 MiB, so a slow link never waits on one.
const FETCH_WINDOW: usize = 256;

/// Builds the content from chunks into `out`: each chunk is copied from a
/// synced local file that still holds it, or fetched from the hub, a window
/// of chunks per request.
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
    for window in chunks.chunks(FETCH_WINDOW) {
        let hashes: Vec<Sha256Hex> = window.iter().map(|c| c.hash).collect();
        let held = state.chunks_on_disk(&hashes).await?;
        let on_disk: Vec<bool> = window.iter().map(|c| held.contains(&c.hash)).collect();
        let fetch: Vec<ChunkRef> = window
            .iter()
            .zip(&on_disk)
            .filter(|(_, local)| !**local)
            .map(|(chunk, _)| *chunk)
            .collect();
        let mut pack = if fetch.is_empty() {
            None
        } else {
            Some(hub.fetch_pack(&fetch).await?)
        };
        for (chunk, local) in window.iter().zip(on_disk) {
            let bytes = chunk_bytes(folder, hub, state, chunk, local, pack.as_mut()).await?;
            whole.update(&bytes);
            out.write_all(&bytes).map_err(io(shown))?;
            if let Some(progress) = progress {
                progress.add_bytes(chunk.len);
            }
        }
    }
    Ok(whole.into())
}

/// A chunk read from a synced file that still matches its record.
pub(super) async fn local_chunk(
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
    let found = confined::stat_of_file(&file).ok()?;
    if !synced.stat_unchanged(found.size, found.mtime_ns, found.inode) {
        return None;
    }
    let mut bytes = vec![0u8; usize::try_from(chunk.len).ok()?];
    file.seek(SeekFrom::Start(offset)).ok()?;
    file.read_exact(&mut bytes).ok()?;
    (Sha256Hex::of(&bytes) == chunk.hash).then_some(bytes)
}

pub(super) fn set_file_metadata(
    file: &std::fs::File,
    shown: &Path,
    mtime_ns: i64,
    executable: bool,
) -> Result<(), ApplyError> {
    // 0: the hub does not know (a legacy upload); before 1970 is negative.
    if mtime_ns != 0 {
        file.set_modified(crate::scan::system_time(mtime_ns))
            .map_err(io(shown))?;
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
