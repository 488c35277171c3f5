//! What is on disk now: one directory's names, one path's stat and digest.
//!
//! Blocking code: the engine runs it in `spawn_blocking`.
//!
//! - Symlinks are never followed; they are reported as skipped
//!   ([`DirListing::skipped`], [`ScanError::Skipped`]), as are special files
//!   (FIFOs, sockets, devices) and names that are not valid UTF-8 or not a
//!   valid [`SyncPath`].
//! - Ignored paths and the top-level `.sf` directory are neither listed nor
//!   descended into.
//! - A file whose size, mtime and inode equal the recorded `SyncedFile` is
//!   not read again: its digest is taken from the record.
//! - Otherwise the file is hashed as a stream and stat'ed again afterwards;
//!   if it changed during the read it is reported as unstable.
//! - Names are sent in Unicode NFC (the hub compares paths byte for byte;
//!   macOS hands out NFD names, Linux usually NFC). A walk renames an
//!   entry whose name is not NFC to its NFC form, in the same directory,
//!   and lists it under that name, at every level (a directory is renamed
//!   before it is descended into). Two exceptions: a path already synced
//!   under its exact non-NFC name (e.g. downloaded from a hub entry that a
//!   legacy client created in NFD) is kept as it is, so old clients and
//!   agents do not rename it back and forth; and when the NFC name is
//!   already taken by another entry, neither is touched and the non-NFC one
//!   is reported as skipped. Ignored entries, symlinks and special files
//!   are never renamed. [`stat_entry`] renames nothing: for a non-NFC path
//!   that was never synced it answers [`ScanError::NotNormalised`].
//!
//! Layout: [`listing`] lists one directory at a time and normalises its
//! names; [`examine`] looks at one entry (stat, and the digest when the
//! stat data differ from the record); [`stat`] decodes stat data, the one
//! decoding every part of the agent compares. The walk over the whole
//! folder, merged with the state database, is the engine's
//! ([`crate::engine`]'s `walk`): the engine, `sf-agent status` and the
//! first-sync count all go through it.

use std::io;
use std::path::{Path, PathBuf};

use sf_protocol::SyncPath;

mod examine;
mod listing;
mod stat;

pub(crate) use examine::{examine_at, stat_entry};
pub(crate) use listing::{DirListing, Names, list_dir, normalise_names};
pub(crate) use stat::{Kind, Stat, system_time};

/// Why [`stat_entry`] has no answer for a path.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ScanError {
    /// Never synced (symlink, special file): treat as absent, log once.
    #[error("{path} is skipped: {reason}")]
    Skipped { path: SyncPath, reason: String },
    /// Changed while being read: retry later.
    #[error("{0} changed while it was being read")]
    Unstable(SyncPath),
    /// Permission denied etc.: retry later with a warning.
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: SyncPath,
        #[source]
        source: io::Error,
    },
    /// Something is on disk at `path`, its name is not in Unicode NFC and it
    /// was never synced under that exact name. Names are normalised (renamed
    /// to NFC, or reported when the NFC name is taken) only by [`scan`]: do
    /// a full scan instead of syncing this path.
    #[error("{path} is not in Unicode NFC form: a full scan normalises it")]
    NotNormalised { path: SyncPath },
}

/// Where `path` lives under `root`, with the platform's separators.
pub(crate) fn local_path(root: &Path, path: &SyncPath) -> PathBuf {
    let mut local = root.to_path_buf();
    local.extend(path.as_str().split('/'));
    local
}

/// Whether an error means nothing is there (any more).
fn is_absent(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

#[cfg(test)]
mod tests;
