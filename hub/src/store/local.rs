//! The chunk store in the hub's data directory: `<data-dir>/chunks/ab/<sha256>`
//! (see `layout`), the embedded default.
//!
//! Each chunk is written to a temp file under `<data-dir>/tmp`, made
//! durable and linked into place, so a chunk file either holds exactly the
//! bytes its name promises or does not exist. One chunk is fsynced on its
//! own; a group (a pack) is made durable together: on Linux with `syncfs`
//! on the store's file system, twice per group, which beats one fsync per
//! file and per directory (chunks spread over 256 directories) by about
//! five times for 500 small chunks, at the price of also flushing whatever
//! else is dirty on that file system. A group of a few chunks, and other
//! systems, fsync each file and each distinct directory instead.
//!
//! A chunk's mtime is its age for garbage collection: refreshed whenever it
//! is stored again or reported present. Damaged chunks go to
//! `<data-dir>/damaged/`.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sf_protocol::Sha256Hex;

use super::Stored;
use super::layout;
use super::objects::{CopyTag, GroupOutcome, ObjectMeta, Objects, ReadChunk, Staged, TempFile};

/// Fewer new chunks than this in a group are flushed one by one: cheaper
/// than flushing the whole file system, and immune to other writers' dirty
/// data.
const SYNCFS_FROM: usize = 4;

pub struct LocalDir {
    chunks_dir: PathBuf,
    tmp_dir: PathBuf,
    /// Where damaged chunks are moved (see `integrity`).
    damaged_dir: PathBuf,
    next_tmp: AtomicU64,
}

impl LocalDir {
    /// Opens (creating if needed) the store under `data_dir`, clearing temp
    /// files a crash or a cut-off upload may have left behind.
    pub fn open(data_dir: &Path) -> io::Result<Self> {
        let chunks_dir = data_dir.join("chunks");
        let tmp_dir = data_dir.join("tmp");
        let moved = layout::prepare(data_dir, &chunks_dir)?;
        if moved > 0 {
            tracing::info!(
                moved,
                "moved the chunks of an older store layout up one level"
            );
        }
        if tmp_dir.exists() {
            std::fs::remove_dir_all(&tmp_dir)?;
        }
        std::fs::create_dir_all(&tmp_dir)?;
        Ok(Self::at(data_dir))
    }

    /// The store under `data_dir` as it is: nothing is created, moved or
    /// cleared (a hub may be using it). A store in an older layout must be
    /// opened by the hub once first.
    pub fn inspect(data_dir: &Path) -> io::Result<Self> {
        if data_dir.join("chunks").exists() && !layout::is_current(data_dir)? {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the store in {} is in an older layout; start the hub once so it moves the \
                     chunks, then check again",
                    data_dir.display()
                ),
            ));
        }
        Ok(Self::at(data_dir))
    }

    fn at(data_dir: &Path) -> Self {
        Self {
            chunks_dir: data_dir.join("chunks"),
            tmp_dir: data_dir.join("tmp"),
            damaged_dir: data_dir.join("damaged"),
            next_tmp: AtomicU64::new(0),
        }
    }

    pub fn chunk_path(&self, hash: &Sha256Hex) -> PathBuf {
        layout::chunk_path(&self.chunks_dir, hash)
    }

    fn temp_path(&self) -> PathBuf {
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        self.tmp_dir
            .join(format!("{}-{n}.part", std::process::id()))
    }

    /// Writes `data` to a new temp file (not flushed).
    fn write_temp(&self, data: &[u8]) -> io::Result<TempFile> {
        let temp = TempFile::new(self.temp_path());
        std::fs::File::create(&temp.path)?.write_all(data)?;
        Ok(temp)
    }
}

/// The copy a file is: its device and inode.
pub(super) fn copy_tag(meta: &std::fs::Metadata) -> CopyTag {
    CopyTag(format!("{}:{}", meta.dev(), meta.ino()))
}

fn not_found_is_none<T>(result: io::Result<T>) -> io::Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

impl Objects for LocalDir {
    fn describe(&self) -> String {
        self.chunks_dir.display().to_string()
    }

    fn stat(&self, hash: &Sha256Hex) -> io::Result<Option<ObjectMeta>> {
        let Some(meta) = not_found_is_none(std::fs::metadata(self.chunk_path(hash)))? else {
            return Ok(None);
        };
        Ok(Some(ObjectMeta {
            len: meta.len(),
            modified: meta.modified()?,
        }))
    }

    fn read(&self, hash: &Sha256Hex, limit: u64) -> ReadChunk {
        let Some(file) = not_found_is_none(std::fs::File::open(self.chunk_path(hash)))? else {
            return Ok(None);
        };
        let meta = file.metadata()?;
        let mut data = Vec::with_capacity(meta.len().min(limit) as usize);
        file.take(limit).read_to_end(&mut data)?;
        Ok(Some((data, copy_tag(&meta))))
    }

    fn touch(&self, hash: &Sha256Hex) -> io::Result<bool> {
        refresh(&self.chunk_path(hash))
    }

    fn staging_file(&self) -> Option<TempFile> {
        Some(TempFile::new(self.temp_path()))
    }

    fn stage(&self, data: Vec<u8>) -> io::Result<Staged> {
        Ok(Staged::File(self.write_temp(&data)?))
    }

    fn publish(&self, hash: &Sha256Hex, staged: Staged) -> io::Result<Stored> {
        let temp = match staged {
            Staged::File(temp) => temp,
            Staged::Memory(data) => self.write_temp(&data)?,
        };
        std::fs::File::open(&temp.path)?.sync_all()?;
        let final_path = self.chunk_path(hash);
        let stored = link(&temp.path, &final_path)?;
        // The name is durable only once the directory entry is on disk; a
        // copy found there may be a concurrent pack's, not flushed yet.
        std::fs::File::open(chunk_dir(&final_path))?.sync_all()?;
        Ok(stored)
    }

    /// Makes the temp files durable, moves them into place, and makes the
    /// new names durable, in that order, so no chunk is visible before its
    /// bytes are on disk.
    fn publish_group(&self, group: Vec<(Sha256Hex, Staged)>) -> GroupOutcome {
        let count = group.len();
        let mut stored = Vec::with_capacity(count);
        let together = use_syncfs(count);
        let mut temps = Vec::with_capacity(group.len());
        let mut error = None;
        for (hash, staged) in group {
            match staged {
                Staged::File(temp) => temps.push((hash, temp)),
                Staged::Memory(data) => match self.write_temp(&data) {
                    Ok(temp) => temps.push((hash, temp)),
                    Err(err) => {
                        error.get_or_insert(err);
                    }
                },
            }
        }
        let flushed = if error.is_some() {
            Ok(())
        } else if together {
            sync_file_system(&self.tmp_dir)
        } else {
            temps
                .iter()
                .try_for_each(|(_, temp)| std::fs::File::open(&temp.path)?.sync_all())
        };
        if let Err(err) = flushed {
            error = Some(err);
        }
        if error.is_some() {
            return GroupOutcome {
                stored: vec![None; count],
                error,
            };
        }
        let mut new_dirs = HashSet::new();
        for (hash, temp) in &temps {
            if error.is_some() {
                stored.push(None);
                continue;
            }
            let final_path = self.chunk_path(hash);
            match move_into_place(&temp.path, &final_path) {
                Ok(how) => {
                    // A copy found there may be a concurrent writer's, not
                    // flushed yet: its directory is flushed too.
                    if !together {
                        new_dirs.insert(chunk_dir(&final_path).to_path_buf());
                    }
                    stored.push(Some(how));
                }
                Err(err) => {
                    stored.push(None);
                    error = Some(err);
                }
            }
        }
        let names_flushed = if together {
            sync_file_system(&self.tmp_dir)
        } else {
            new_dirs
                .iter()
                .try_for_each(|dir| std::fs::File::open(dir)?.sync_all())
        };
        if let Err(err) = names_flushed {
            // The bytes are in place but their names may not survive a
            // crash: nothing of this group counts as stored.
            stored.iter_mut().for_each(|how| *how = None);
            error.get_or_insert(err);
        }
        GroupOutcome { stored, error }
    }

    fn remove(&self, hash: &Sha256Hex, older_than: Option<SystemTime>) -> io::Result<Option<u64>> {
        let path = self.chunk_path(hash);
        let Some(meta) = not_found_is_none(std::fs::metadata(&path))? else {
            return Ok(None);
        };
        if older_than.is_some_and(|cutoff| meta.modified().is_ok_and(|m| m >= cutoff)) {
            return Ok(None);
        }
        Ok(not_found_is_none(std::fs::remove_file(&path))?.map(|()| meta.len()))
    }

    fn list(&self, prefix: u8) -> io::Result<Vec<(Sha256Hex, ObjectMeta)>> {
        let mut listed = Vec::new();
        // Anything that is not a chunk's name is not the store's.
        for (hash, entry) in layout::chunks_with_prefix(&self.chunks_dir, prefix)? {
            // Removed since listed (garbage collection): skipped.
            if let Some(meta) = not_found_is_none(entry.metadata())? {
                listed.push((
                    hash,
                    ObjectMeta {
                        len: meta.len(),
                        modified: meta.modified()?,
                    },
                ));
            }
        }
        listed.sort_by_key(|(hash, _)| *hash);
        Ok(listed)
    }

    fn quarantine(&self, hash: &Sha256Hex, tag: &CopyTag) -> io::Result<Option<String>> {
        let path = self.chunk_path(hash);
        std::fs::create_dir_all(&self.damaged_dir)?;
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let moved_to = self.damaged_dir.join(format!("{hash}.{stamp}"));
        // Moved first and looked at after, so a good copy stored since the
        // read is never the one that stays moved: it goes back (linking
        // never replaces a copy stored meanwhile).
        if not_found_is_none(std::fs::rename(&path, &moved_to))?.is_none() {
            return Ok(None);
        }
        if copy_tag(&std::fs::metadata(&moved_to)?) != *tag {
            match std::fs::hard_link(&moved_to, &path) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                Err(err) => return Err(err),
            }
            std::fs::remove_file(&moved_to)?;
            return Ok(None);
        }
        Ok(Some(moved_to.display().to_string()))
    }

    fn probe(&self) -> io::Result<()> {
        let temp = self.temp_path();
        std::fs::write(&temp, b"ready")?;
        std::fs::remove_file(&temp)
    }

    fn old_temp_files(&self, cutoff: SystemTime) -> io::Result<Vec<PathBuf>> {
        let Some(entries) = not_found_is_none(std::fs::read_dir(&self.tmp_dir))? else {
            return Ok(Vec::new());
        };
        let mut old = Vec::new();
        for entry in entries {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_file() && meta.modified()? < cutoff {
                old.push(entry.path());
            }
        }
        old.sort();
        Ok(old)
    }
}

/// Gives a stored chunk a fresh mtime; `false` when it is not stored.
fn refresh(path: &Path) -> io::Result<bool> {
    match not_found_is_none(std::fs::File::open(path))? {
        Some(file) => {
            file.set_modified(SystemTime::now())?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Links a complete temp file into place, without making the new name
/// durable (the caller does, for one chunk or for many at once). Linking
/// (unlike renaming) never replaces a chunk a concurrent put stored first,
/// so each chunk is counted once. The temp file's bytes must be durable
/// already: a chunk is never visible under its name before they are.
fn link(temp: &Path, final_path: &Path) -> io::Result<Stored> {
    let linked = match std::fs::hard_link(temp, final_path) {
        // Its directory was removed by hand since the store opened.
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir_all(chunk_dir(final_path))?;
            std::fs::hard_link(temp, final_path)
        }
        other => other,
    };
    match linked {
        Ok(()) => Ok(Stored::New),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(Stored::AlreadyPresent),
        // A file system without hard links: the identical bytes may replace
        // a concurrent put's, which is harmless.
        Err(_) => {
            std::fs::rename(temp, final_path)?;
            Ok(Stored::New)
        }
    }
}

/// The directory a chunk file lives in (`chunks/ab`).
fn chunk_dir(chunk_path: &Path) -> &Path {
    chunk_path.parent().unwrap_or(chunk_path)
}

/// Moves a durable temp file to its chunk name unless a chunk is there
/// already. On Linux one `renameat2(RENAME_NOREPLACE)` does it (no link to
/// remove afterwards), with the chunk's directory made only when missing;
/// elsewhere, or on a file system that cannot refuse to replace, a link.
#[cfg(target_os = "linux")]
fn move_into_place(temp: &Path, final_path: &Path) -> io::Result<Stored> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    use rustix::io::Errno;
    let rename = || renameat_with(CWD, temp, CWD, final_path, RenameFlags::NOREPLACE);
    let renamed = match rename() {
        Err(Errno::NOENT) => {
            std::fs::create_dir_all(chunk_dir(final_path))?;
            rename()
        }
        other => other,
    };
    match renamed {
        Ok(()) => Ok(Stored::New),
        Err(Errno::EXIST) => Ok(Stored::AlreadyPresent),
        Err(Errno::INVAL | Errno::NOSYS) => link(temp, final_path),
        Err(err) => Err(err.into()),
    }
}

#[cfg(not(target_os = "linux"))]
fn move_into_place(temp: &Path, final_path: &Path) -> io::Result<Stored> {
    link(temp, final_path)
}

/// Whether a group of `new_chunks` is flushed with one `syncfs` rather
/// than file by file.
pub(super) fn use_syncfs(new_chunks: usize) -> bool {
    cfg!(target_os = "linux") && new_chunks >= SYNCFS_FROM
}

/// Flushes every dirty page and inode of the file system holding `dir`.
#[cfg(target_os = "linux")]
fn sync_file_system(dir: &Path) -> io::Result<()> {
    let handle = std::fs::File::open(dir)?;
    rustix::fs::syncfs(&handle)?;
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn sync_file_system(_dir: &Path) -> io::Result<()> {
    // Never called: `use_syncfs` is false off Linux.
    Err(io::Error::other("syncfs is Linux only"))
}
