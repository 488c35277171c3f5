//! One entry on disk: its stat and, when that differs from the record, its
//! digest, read as a stream and checked for changes during the read.

use std::fs::{self, Metadata};
use std::io::{self, ErrorKind, Read};
use std::path::Path;

use sf_protocol::v1::EntryKind;
use sf_protocol::{Sha256Hex, SyncPath};
use sha2::{Digest, Sha256};
use unicode_normalization::is_nfc;

use super::stat::{Kind, Stat};
use super::{ScanError, is_absent, local_path};
use crate::model::{LocalFile, SyncedFile};

/// Read buffer of [`hash_file`].
pub(super) const HASH_BUFFER: usize = 1 << 20;

/// The SHA-256 of a file's content and the number of bytes read, streaming
/// through a buffer of at most 1 MiB.
pub(crate) fn hash_file(path: &Path) -> io::Result<(Sha256Hex, u64)> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    // Sized to the file: zeroing a 1 MiB buffer per small file was a
    // measurable share of a burst of small files.
    let len = file.metadata()?.len();
    let mut buffer = vec![
        0u8;
        (len as usize)
            .saturating_add(1)
            .clamp(8 * 1024, HASH_BUFFER)
    ];
    let mut total = 0u64;
    loop {
        let read = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        hasher.update(&buffer[..read]);
        total += read as u64;
    }
    Ok((Sha256Hex::from(hasher), total))
}

/// [`examine_entry`] for one path named by an event (not by a listing), e.g. after a file event. `Ok(None)` when nothing
/// is there, including when a parent is missing, not a directory or a
/// symlink (a scan would not list the path either). Ignore rules are the
/// caller's business. `known` is the record of `path`; when there is none
/// and `path` is not in Unicode NFC form, something found there is
/// [`ScanError::NotNormalised`] (nothing found is still `Ok(None)`, e.g. the
/// old name after a scan renamed an entry to NFC).
pub(crate) fn stat_entry(
    root: &Path,
    path: &SyncPath,
    known: Option<&SyncedFile>,
) -> Result<Option<LocalFile>, ScanError> {
    let unreadable = |source: io::Error| ScanError::Unreadable {
        path: path.clone(),
        source,
    };
    for ancestor in path.ancestors() {
        let local = local_path(
            root,
            &SyncPath::parse(ancestor).expect("an ancestor of a SyncPath is one"),
        );
        match fs::symlink_metadata(&local) {
            Ok(metadata) if metadata.is_dir() => {}
            Ok(_) => return Ok(None),
            Err(error) if is_absent(&error) => return Ok(None),
            Err(error) => return Err(unreadable(error)),
        }
    }
    // Only the name itself: a folder kept under a non-NFC name (synced that
    // way) must not send every new file inside it to a full scan.
    if known.is_none() && !is_nfc(path.file_name()) {
        return match fs::symlink_metadata(local_path(root, path)) {
            Ok(_) => Err(ScanError::NotNormalised { path: path.clone() }),
            Err(error) if is_absent(&error) => Ok(None),
            Err(error) => Err(unreadable(error)),
        };
    }
    examine_entry(root, path, known)
}

/// Looks at `path`, an entry of a directory just listed: stat, and the
/// digest (from `known`, its record, when stat data match it; read
/// otherwise). `Ok(None)` when it vanished meanwhile. Never
/// [`ScanError::NotNormalised`]: names are the listing's business.
pub(crate) fn examine_entry(
    root: &Path,
    path: &SyncPath,
    known: Option<&SyncedFile>,
) -> Result<Option<LocalFile>, ScanError> {
    examine_at(&local_path(root, path), path, known)
}

/// [`examine_entry`] of `path`, found on disk at `local`.
pub(crate) fn examine_at(
    local: &Path,
    path: &SyncPath,
    known: Option<&SyncedFile>,
) -> Result<Option<LocalFile>, ScanError> {
    let metadata = match fs::symlink_metadata(local) {
        Ok(metadata) => metadata,
        Err(error) if is_absent(&error) => return Ok(None),
        Err(source) => {
            return Err(ScanError::Unreadable {
                path: path.clone(),
                source,
            });
        }
    };
    match examine(local, &metadata, known) {
        Outcome::Found(file) => Ok(Some(file)),
        Outcome::Absent => Ok(None),
        Outcome::Skipped(reason) => Err(ScanError::Skipped {
            path: path.clone(),
            reason,
        }),
        Outcome::Unstable => Err(ScanError::Unstable(path.clone())),
        Outcome::Unreadable(source) => Err(ScanError::Unreadable {
            path: path.clone(),
            source,
        }),
    }
}
/// What one directory entry turned out to be.
enum Outcome {
    Found(LocalFile),
    /// Vanished meanwhile.
    Absent,
    Skipped(String),
    Unstable,
    Unreadable(io::Error),
}

/// Looks at one entry whose lstat is `metadata`.
fn examine(local: &Path, metadata: &Metadata, known: Option<&SyncedFile>) -> Outcome {
    let before = Stat::of(metadata);
    let found = |kind: EntryKind, sha256: Sha256Hex| LocalFile {
        kind,
        sha256,
        size: before.size,
        mtime_ns: before.mtime_ns,
        inode: before.inode,
        executable: before.executable,
    };
    match before.kind {
        Kind::Symlink => return Outcome::Skipped("symbolic link (not followed)".to_owned()),
        Kind::Special => {
            return Outcome::Skipped("not a regular file, directory or symlink".to_owned());
        }
        Kind::Dir => return Outcome::Found(found(EntryKind::Dir, Sha256Hex::empty())),
        Kind::File => {}
    }
    if let Some(record) = known
        && record.kind == EntryKind::File
        && record.stat_unchanged(before.size, before.mtime_ns, before.inode)
    {
        return Outcome::Found(found(EntryKind::File, record.sha256));
    }
    let (sha256, read) = match hash_file(local) {
        Ok(hashed) => hashed,
        Err(error) if is_absent(&error) => return Outcome::Absent,
        Err(error) => return Outcome::Unreadable(error),
    };
    let after = match fs::symlink_metadata(local) {
        Ok(metadata) => Stat::of(&metadata),
        Err(error) if is_absent(&error) => return Outcome::Absent,
        Err(error) => return Outcome::Unreadable(error),
    };
    if after != before || read != before.size {
        return Outcome::Unstable;
    }
    Outcome::Found(found(EntryKind::File, sha256))
}
