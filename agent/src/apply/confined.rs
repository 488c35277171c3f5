//! Directories inside the synced folder, reached one name at a time from the
//! folder's root without following symbolic links, and the changes made
//! relative to them.
//!
//! A hub names paths; the disk decides what they lead to. `d/x.txt` where
//! the local `d` is a symlink to `/tmp/elsewhere` must not write
//! `/tmp/elsewhere/x.txt`. On unix each ancestor is opened with
//! `openat(parent, name, O_NOFOLLOW | O_DIRECTORY)` and every create,
//! rename, unlink and mkdir is made relative to the last directory's fd, so
//! nothing can be swapped for a symlink between a check and its use.
//! Elsewhere each ancestor is checked with `symlink_metadata` before the
//! operation by path: a narrow window, but never a link followed as found.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Why a directory cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    /// `at` (relative to where the walk started) is not a real directory.
    #[error("{at} is {}", what.describe())]
    Blocked { at: String, what: Kind },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

pub(crate) use crate::scan::{Kind, Stat};

/// An open directory inside the folder (or the folder itself).
#[derive(Debug)]
pub struct Dir {
    #[cfg(unix)]
    fd: rustix::fd::OwnedFd,
    /// Where it is on disk: for messages, and off unix for the operations.
    path: PathBuf,
    /// Where it is relative to the folder's root ("" for the root).
    relative: String,
}

fn io_at(path: PathBuf) -> impl FnOnce(io::Error) -> WalkError {
    move |source| WalkError::Io { path, source }
}

impl Dir {
    /// The folder's root. Its own path may go through links: the user chose
    /// it; nothing below it is followed.
    pub fn open_root(root: &Path) -> io::Result<Dir> {
        #[cfg(unix)]
        {
            use rustix::fs::{Mode, OFlags};
            let fd = rustix::fs::open(
                root,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            Ok(Dir {
                fd,
                path: root.to_owned(),
                relative: String::new(),
            })
        }
        #[cfg(not(unix))]
        {
            if !std::fs::metadata(root)?.is_dir() {
                return Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    "not a directory",
                ));
            }
            Ok(Dir {
                path: root.to_owned(),
                relative: String::new(),
            })
        }
    }

    /// Where this directory is on disk.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory reached through `names`, one at a time, links never
    /// followed; missing ones are made when `create`.
    pub fn walk<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
        create: bool,
    ) -> Result<Dir, WalkError> {
        let mut names = names.into_iter();
        let Some(first) = names.next() else {
            return self.step(".", false);
        };
        let mut dir = self.step(first, create)?;
        for name in names {
            dir = dir.step(name, create)?;
        }
        Ok(dir)
    }

    /// The directory `name` directly inside this one.
    fn step(&self, name: &str, create: bool) -> Result<Dir, WalkError> {
        let (path, relative) = self.child(name);
        // Twice at most: made between the two tries, or gone again.
        for attempt in 0..2 {
            match self.open_dir_raw(name) {
                Ok(dir) => return Ok(dir),
                Err(err) if err.kind() == io::ErrorKind::NotFound && create && attempt == 0 => {
                    match self.mkdir(name) {
                        Ok(()) => {}
                        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                        Err(err) => return Err(io_at(path)(err)),
                    }
                }
                Err(err) => {
                    // ELOOP, ENOTDIR (or EMLINK on some BSDs): say what is there.
                    return match self.stat(name) {
                        Ok(Some(found)) if found.kind != Kind::Dir => Err(WalkError::Blocked {
                            at: relative,
                            what: found.kind,
                        }),
                        _ => Err(io_at(path)(err)),
                    };
                }
            }
        }
        Err(io_at(path)(io::Error::from(io::ErrorKind::NotFound)))
    }

    fn child(&self, name: &str) -> (PathBuf, String) {
        let relative = match (self.relative.as_str(), name) {
            (_, ".") => self.relative.clone(),
            ("", _) => name.to_owned(),
            (parent, _) => format!("{parent}/{name}"),
        };
        (self.path.join(name), relative)
    }

    #[cfg(unix)]
    fn open_dir_raw(&self, name: &str) -> io::Result<Dir> {
        use rustix::fs::{Mode, OFlags};
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let (path, relative) = self.child(name);
        Ok(Dir { fd, path, relative })
    }

    #[cfg(not(unix))]
    fn open_dir_raw(&self, name: &str) -> io::Result<Dir> {
        let (path, relative) = self.child(name);
        let meta = std::fs::symlink_metadata(&path)?;
        if !meta.is_dir() || meta.file_type().is_symlink() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            ));
        }
        Ok(Dir { path, relative })
    }

    /// What `name` is, links not followed; `None` when nothing is there.
    pub fn stat(&self, name: &str) -> io::Result<Option<Stat>> {
        #[cfg(unix)]
        let result = rustix::fs::statat(&self.fd, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .map(|stat| Stat::of_raw(&stat))
            .map_err(io::Error::from);
        #[cfg(not(unix))]
        let result = std::fs::symlink_metadata(self.path.join(name)).map(|m| Stat::of(&m));
        match result {
            Ok(found) => Ok(Some(found)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// A new file `name`, for writing; fails if anything is there already.
    pub fn create_new(&self, name: &str) -> io::Result<File> {
        #[cfg(unix)]
        {
            use rustix::fs::{Mode, OFlags};
            let fd = rustix::fs::openat(
                &self.fd,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o666),
            )?;
            Ok(File::from(fd))
        }
        #[cfg(not(unix))]
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.path.join(name))
    }

    /// The regular file `name`, for reading; an error for anything else
    /// (a symlink is not followed, a FIFO does not block).
    pub fn open_file(&self, name: &str) -> io::Result<File> {
        #[cfg(unix)]
        let file = {
            use rustix::fs::{Mode, OFlags};
            let fd = rustix::fs::openat(
                &self.fd,
                name,
                OFlags::RDONLY
                    | OFlags::NOFOLLOW
                    | OFlags::NONBLOCK
                    | OFlags::NOCTTY
                    | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            File::from(fd)
        };
        #[cfg(not(unix))]
        let file = {
            let path = self.path.join(name);
            if std::fs::symlink_metadata(&path)?.file_type().is_symlink() {
                return Err(io::Error::other("a symbolic link"));
            }
            File::open(path)?
        };
        if !file.metadata()?.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        Ok(file)
    }

    pub fn mkdir(&self, name: &str) -> io::Result<()> {
        #[cfg(unix)]
        return Ok(rustix::fs::mkdirat(
            &self.fd,
            name,
            rustix::fs::Mode::from_raw_mode(0o777),
        )?);
        #[cfg(not(unix))]
        std::fs::create_dir(self.path.join(name))
    }

    /// Renames `name` here to `to_name` in `to`, replacing a file there.
    pub fn rename(&self, name: &str, to: &Dir, to_name: &str) -> io::Result<()> {
        #[cfg(unix)]
        return Ok(rustix::fs::renameat(&self.fd, name, &to.fd, to_name)?);
        #[cfg(not(unix))]
        std::fs::rename(self.path.join(name), to.path.join(to_name))
    }

    /// Renames `name` here to `to_name` in `to` only if nothing is there
    /// (`AlreadyExists` otherwise). `Ok(false)`: the OS or file system
    /// cannot check in the same step; nothing was done.
    pub fn rename_no_replace(&self, name: &str, to: &Dir, to_name: &str) -> io::Result<bool> {
        #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
        return self.rename_with(name, to, to_name, rustix::fs::RenameFlags::NOREPLACE);
        #[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
        {
            let _ = (name, to, to_name);
            Ok(false)
        }
    }

    /// Swaps `name` here and `to_name` in `to`. `Ok(false)`: not possible on
    /// this OS or file system; nothing was done.
    pub fn exchange(&self, name: &str, to: &Dir, to_name: &str) -> io::Result<bool> {
        #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
        return self.rename_with(name, to, to_name, rustix::fs::RenameFlags::EXCHANGE);
        #[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
        {
            let _ = (name, to, to_name);
            Ok(false)
        }
    }

    #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
    fn rename_with(
        &self,
        name: &str,
        to: &Dir,
        to_name: &str,
        flags: rustix::fs::RenameFlags,
    ) -> io::Result<bool> {
        use rustix::io::Errno;
        match rustix::fs::renameat_with(&self.fd, name, &to.fd, to_name, flags) {
            Ok(()) => Ok(true),
            // Not supported by this OS or file system (FUSE, NFS, SMB,
            // exFAT; macOS says ENOTSUP, which differs from EOPNOTSUPP there).
            Err(errno)
                if [Errno::INVAL, Errno::NOSYS, Errno::OPNOTSUPP, Errno::NOTSUP]
                    .contains(&errno) =>
            {
                Ok(false)
            }
            Err(errno) => Err(errno.into()),
        }
    }

    /// Removes the file (or symlink) `name`.
    pub fn unlink(&self, name: &str) -> io::Result<()> {
        #[cfg(unix)]
        return Ok(rustix::fs::unlinkat(
            &self.fd,
            name,
            rustix::fs::AtFlags::empty(),
        )?);
        #[cfg(not(unix))]
        std::fs::remove_file(self.path.join(name))
    }

    /// Removes the empty directory `name`.
    pub fn rmdir(&self, name: &str) -> io::Result<()> {
        #[cfg(unix)]
        return Ok(rustix::fs::unlinkat(
            &self.fd,
            name,
            rustix::fs::AtFlags::REMOVEDIR,
        )?);
        #[cfg(not(unix))]
        std::fs::remove_dir(self.path.join(name))
    }

    /// Removes `name` and, for a directory, everything inside it; links
    /// are removed, never followed.
    pub fn remove_tree(&self, name: &str) -> io::Result<()> {
        match self.open_dir_raw(name) {
            Ok(dir) => {
                for (child, _) in dir.names()? {
                    let child = child.to_str().ok_or_else(|| {
                        io::Error::other(format!(
                            "{} holds a name that is not UTF-8",
                            dir.path.display()
                        ))
                    })?;
                    dir.remove_tree(child)?;
                }
                self.rmdir(name)
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            // Not a directory (or a link to one): remove the entry itself.
            Err(_) => self.unlink(name),
        }
    }

    /// The names in this directory, each with whether it is a directory
    /// (links not followed).
    pub fn names(&self) -> io::Result<Vec<(OsString, bool)>> {
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt;
            let mut names = Vec::new();
            for entry in rustix::fs::Dir::read_from(&self.fd)? {
                let entry = entry?;
                let name = entry.file_name().to_bytes();
                if name == b"." || name == b".." {
                    continue;
                }
                let name = OsString::from_vec(name.to_vec());
                let is_dir = match entry.file_type() {
                    rustix::fs::FileType::Directory => true,
                    rustix::fs::FileType::Unknown => name
                        .to_str()
                        .and_then(|n| self.stat(n).ok().flatten())
                        .is_some_and(|f| f.kind == Kind::Dir),
                    _ => false,
                };
                names.push((name, is_dir));
            }
            Ok(names)
        }
        #[cfg(not(unix))]
        std::fs::read_dir(&self.path)?
            .map(|entry| {
                let entry = entry?;
                let is_dir = entry.file_type()?.is_dir();
                Ok((entry.file_name(), is_dir))
            })
            .collect()
    }

    /// Makes the directory's entries durable (a rename or create in it).
    pub fn sync(&self) -> io::Result<()> {
        #[cfg(unix)]
        return Ok(rustix::fs::fsync(&self.fd)?);
        #[cfg(not(unix))]
        Ok(())
    }

    /// Makes everything written to the file system that holds this
    /// directory durable, with one `syncfs`: a batch of downloads costs one
    /// flush, not one per file and per directory. False where the OS has no
    /// such call ([`GROUP_SYNC`]): the caller syncs each file and directory.
    pub fn sync_filesystem(&self) -> io::Result<bool> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            rustix::fs::syncfs(&self.fd)?;
            Ok(true)
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        Ok(false)
    }
}

/// Whether [`Dir::sync_filesystem`] flushes a whole file system here.
pub const GROUP_SYNC: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// The stat data of an open file.
pub fn stat_of_file(file: &File) -> io::Result<Stat> {
    Ok(Stat::of(&file.metadata()?))
}
