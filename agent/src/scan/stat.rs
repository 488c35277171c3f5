//! Stat data, decoded one way for every caller: the scan that decides, the
//! apply step that checks nothing changed before it replaces a file, and
//! the confined directory walk (from a raw `statat` on unix). Two decodings
//! that disagree on a single field make a file look changed forever.

use std::fs::Metadata;
use std::time::UNIX_EPOCH;

/// What a name in a directory is, links not followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    /// FIFO, socket or device.
    Special,
}

impl Kind {
    /// For messages: "d is a symbolic link".
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Kind::File => "a file, not a directory",
            Kind::Dir => "a directory",
            Kind::Symlink => "a symbolic link",
            Kind::Special => "a FIFO, socket or device, not a directory",
        }
    }
}

/// The stat data sync compares, taken without following links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    pub(crate) kind: Kind,
    /// 0 for directories: their size on disk is not content.
    pub(crate) size: u64,
    /// Nanoseconds since the Unix epoch, negative before it, 0 where the
    /// platform has none.
    pub(crate) mtime_ns: i64,
    /// 0 where the platform has none.
    pub(crate) inode: u64,
    /// A regular file with an execute bit (always false off unix).
    pub(crate) executable: bool,
}

impl Stat {
    pub(crate) fn of(metadata: &Metadata) -> Stat {
        let file_type = metadata.file_type();
        let kind = if file_type.is_symlink() {
            Kind::Symlink
        } else if file_type.is_dir() {
            Kind::Dir
        } else if file_type.is_file() {
            Kind::File
        } else {
            Kind::Special
        };
        Stat {
            kind,
            size: if kind == Kind::Dir { 0 } else { metadata.len() },
            mtime_ns: mtime_ns(metadata),
            inode: inode(metadata),
            executable: kind == Kind::File && is_executable(metadata),
        }
    }

    /// The same from a raw `stat` (the confined walk's `statat`).
    #[cfg(unix)]
    #[allow(clippy::unnecessary_cast)] // field types differ between targets
    pub(crate) fn of_raw(stat: &rustix::fs::Stat) -> Stat {
        use rustix::fs::FileType;
        let kind = match FileType::from_raw_mode(stat.st_mode as _) {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            _ => Kind::Special,
        };
        // Seconds may be negative; nanoseconds count forward from them, as
        // `SystemTime` does.
        let mtime_ns = (stat.st_mtime as i64)
            .saturating_mul(1_000_000_000)
            .saturating_add(stat.st_mtime_nsec as i64);
        Stat {
            kind,
            size: if kind == Kind::Dir {
                0
            } else {
                stat.st_size as u64
            },
            mtime_ns,
            inode: stat.st_ino as u64,
            executable: kind == Kind::File && stat.st_mode as u32 & 0o111 != 0,
        }
    }
}

fn mtime_ns(metadata: &Metadata) -> i64 {
    let Ok(modified) = metadata.modified() else {
        return 0;
    };
    let clamp = |nanos: u128| i64::try_from(nanos).unwrap_or(i64::MAX);
    match modified.duration_since(UNIX_EPOCH) {
        Ok(after) => clamp(after.as_nanos()),
        Err(before) => -clamp(before.duration().as_nanos()),
    }
}

#[cfg(unix)]
fn inode(metadata: &Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(metadata)
}

#[cfg(not(unix))]
fn inode(_metadata: &Metadata) -> u64 {
    0
}

#[cfg(unix)]
fn is_executable(metadata: &Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_metadata: &Metadata) -> bool {
    false
}

/// The time `mtime_ns` stands for (see [`Stat::mtime_ns`]), before the
/// epoch too.
pub(crate) fn system_time(mtime_ns: i64) -> std::time::SystemTime {
    let magnitude = std::time::Duration::from_nanos(mtime_ns.unsigned_abs());
    if mtime_ns >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A file last modified before 1970 decodes to the same stat from its
    /// metadata and from a raw `statat`, so the apply step's check that
    /// nothing changed agrees with the scan and hub updates reach it.
    #[test]
    fn both_decodings_agree_before_and_after_the_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.txt");
        std::fs::write(&path, b"from the sixties").unwrap();
        for mtime_ns in [
            -86_400_000_000_000 * 365 * 5 + 250_000_000,
            -1,
            0,
            1_700_000_000_123_456_789,
        ] {
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(system_time(mtime_ns)).unwrap();
            drop(file);
            let from_metadata = Stat::of(&std::fs::symlink_metadata(&path).unwrap());
            let dir_fd = rustix::fs::open(
                dir.path(),
                rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::RDONLY,
                rustix::fs::Mode::empty(),
            )
            .unwrap();
            let raw = rustix::fs::statat(&dir_fd, "old.txt", rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                .unwrap();
            assert_eq!(from_metadata, Stat::of_raw(&raw), "mtime {mtime_ns}");
            assert_eq!(from_metadata.mtime_ns, mtime_ns);
            assert_eq!(from_metadata.kind, Kind::File);
        }
    }
}
