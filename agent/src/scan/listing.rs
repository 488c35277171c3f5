//! One directory's names: listed without reading any file, ignored and
//! invalid names filtered, names not in Unicode NFC renamed to it (see the
//! module doc of [`super`]).

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::{self, Metadata};
use std::io::{self, ErrorKind};
use std::path::Path;

use sf_protocol::SyncPath;
use sf_protocol::path::RESERVED_TOP_LEVEL;
use unicode_normalization::{UnicodeNormalization, is_nfc};

use super::local_path;
use crate::ignore::IgnoreRules;

/// Whether a walk renames names that are not in Unicode NFC.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Names {
    /// Rename them to NFC (the agent's own scans).
    Normalise,
    /// Leave the disk alone and list them under their NFC path (reports).
    AsTheyAre,
}

/// One directory's entries, listed but not examined yet (see [`list_dir`]).
#[derive(Debug, Default)]
pub(crate) struct DirListing {
    /// The entries to examine, in path order: regular files, directories,
    /// and symlinks or special files (which [`examine_entry`] reports as
    /// skipped). Not ignored, valid paths, never the folder marker.
    pub(crate) entries: Vec<SyncPath>,
    /// Entries whose name is not in Unicode NFC (indexes into `entries`):
    /// [`normalise_names`] deals with them.
    not_nfc: Vec<usize>,
    /// `(listed path, path on disk)` of entries listed under their NFC
    /// path but left under another name ([`Names::AsTheyAre`]).
    aliases: Vec<(SyncPath, SyncPath)>,
    /// Entries whose type could not be read: retry later.
    pub(crate) unreadable: Vec<(SyncPath, String)>,
    /// `(relative path, reason)` of names that are never synced (see
    /// [`ScanResult::skipped`]).
    pub(crate) skipped: Vec<(String, String)>,
}

impl DirListing {
    /// Entries whose name is not in Unicode NFC: [`normalise_names`] renames
    /// them unless they are synced under that exact name.
    pub(crate) fn not_normalised(&self) -> impl Iterator<Item = &SyncPath> {
        self.not_nfc.iter().map(|&index| &self.entries[index])
    }

    /// Where the entry listed as `path` is on disk: `path` itself, or the
    /// name an entry listed under its NFC form was left under
    /// ([`Names::AsTheyAre`]).
    pub(crate) fn on_disk<'a>(&'a self, path: &'a SyncPath) -> &'a SyncPath {
        self.aliases
            .iter()
            .find(|(listed, _)| listed == path)
            .map_or(path, |(_, on_disk)| on_disk)
    }
}

/// Lists the directory `dir` (`None`: the folder itself) without reading
/// any file: one step of a walk that goes a directory at a time, so that
/// what it holds is one directory's names, not the whole tree. Fails when
/// the directory cannot be listed (vanished, permission denied, not a
/// directory or a symlink: `NotFound` / `NotADirectory`); a problem with
/// one entry lands in the listing's lists.
pub(crate) fn list_dir(
    root: &Path,
    dir: Option<&SyncPath>,
    rules: &IgnoreRules,
) -> io::Result<DirListing> {
    let dir_relative = dir.map(SyncPath::as_str).unwrap_or_default();
    let dir_local = dir.map_or_else(|| root.to_path_buf(), |d| local_path(root, d));
    // Never through a symlink: the folder's own root may be one, nothing
    // inside it is followed.
    if dir.is_some() && !fs::symlink_metadata(&dir_local)?.is_dir() {
        return Err(io::Error::from(ErrorKind::NotADirectory));
    }
    let mut listing = DirListing::default();
    for entry in fs::read_dir(&dir_local)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            let lossy = join(dir_relative, &name.to_string_lossy());
            if !rules.is_ignored_entry(&lossy, is_dir_entry(&entry)) {
                listing
                    .skipped
                    .push((lossy, "the name is not valid UTF-8".to_owned()));
            }
            continue;
        };
        if dir.is_none() && name == RESERVED_TOP_LEVEL {
            continue;
        }
        let relative = join(dir_relative, name);
        // The type from the listing itself (no extra system call where the
        // platform provides it); symlinks are not followed.
        let file_type = match entry.file_type() {
            Ok(file_type) => file_type,
            Err(error) if error.kind() == ErrorKind::NotFound => continue,
            Err(error) => {
                if !rules.is_ignored_entry(&relative, false) {
                    match SyncPath::parse(relative.as_str()) {
                        Ok(path) => listing.unreadable.push((path, error.to_string())),
                        Err(reason) => listing.skipped.push((relative, reason.to_string())),
                    }
                }
                continue;
            }
        };
        if rules.is_ignored_entry(&relative, file_type.is_dir()) {
            continue;
        }
        let path = match SyncPath::parse(relative.as_str()) {
            Ok(path) => path,
            Err(reason) => {
                listing.skipped.push((relative, reason.to_string()));
                continue;
            }
        };
        // Symlinks and special files are not synced: not renamed either.
        if !is_nfc(name) && (file_type.is_dir() || file_type.is_file()) {
            listing.not_nfc.push(listing.entries.len());
        }
        listing.entries.push(path);
    }
    if listing.not_nfc.is_empty() {
        listing.entries.sort();
    }
    Ok(listing)
}

/// Renames the listing's entries whose name is not in Unicode NFC to their
/// NFC form (see the module doc), with `names_mode` deciding whether the
/// rename happens on disk, and sorts the listing again. `synced` says
/// whether a path is synced under its exact name: such a name is kept.
pub(crate) fn normalise_names(
    root: &Path,
    listing: &mut DirListing,
    rules: &IgnoreRules,
    synced: &dyn Fn(&SyncPath) -> bool,
    names_mode: Names,
) {
    if listing.not_nfc.is_empty() {
        return;
    }
    let mut names: HashSet<OsString> = listing
        .entries
        .iter()
        .map(|p| OsString::from(p.file_name()))
        .collect();
    let mut dropped = Vec::new();
    for &index in &listing.not_nfc {
        let path = listing.entries[index].clone();
        if synced(&path) {
            continue;
        }
        let relative = path.as_str().to_owned();
        let local = local_path(root, &path);
        let metadata = match fs::symlink_metadata(&local) {
            Ok(metadata) => metadata,
            Err(_) => {
                // Vanished or unreadable: examine_entry reports it.
                continue;
            }
        };
        let is_dir = metadata.is_dir();
        let dir_relative = relative
            .rsplit_once('/')
            .map(|(dir, _)| dir)
            .unwrap_or_default();
        let nfc_name: String = path.file_name().nfc().collect();
        let nfc_relative = join(dir_relative, &nfc_name);
        if rules.is_ignored_entry(&nfc_relative, is_dir) {
            dropped.push(index);
            continue;
        }
        let nfc_path = match SyncPath::parse(nfc_relative.as_str()) {
            Ok(nfc_path) => nfc_path,
            Err(reason) => {
                listing.skipped.push((relative, reason.to_string()));
                dropped.push(index);
                continue;
            }
        };
        let renamed = match names_mode {
            Names::Normalise => {
                let dir_local = local.parent().expect("an entry has a parent").to_path_buf();
                rename_to_nfc(&local, &metadata, &dir_local, &nfc_name, &names)
            }
            Names::AsTheyAre => Renamed::Done,
        };
        match renamed {
            Renamed::Done => {
                if names_mode == Names::Normalise {
                    tracing::info!(
                        from = ?relative,
                        to = ?nfc_relative,
                        "renamed to the Unicode NFC form of its name: agents send NFC \
                         names so that the same name from every system is one hub path"
                    );
                    names.insert(OsString::from(&nfc_name));
                }
                if names_mode == Names::AsTheyAre {
                    listing.aliases.push((nfc_path.clone(), path));
                }
                listing.entries[index] = nfc_path;
            }
            Renamed::Taken => {
                let reason = format!(
                    "{nfc_name:?} in the same folder differs from this name only in \
                     Unicode normalisation (NFC and NFD forms of the same text); only \
                     {nfc_name:?} is synced: rename one of the two"
                );
                listing.skipped.push((relative, reason));
                dropped.push(index);
            }
            Renamed::Vanished => dropped.push(index),
            Renamed::Failed(error) => {
                let reason = format!(
                    "the name is not in Unicode NFC form and renaming it to \
                     {nfc_name:?} failed: {error}"
                );
                listing.skipped.push((relative, reason));
                dropped.push(index);
            }
        }
    }
    listing.not_nfc.clear();
    dropped.sort_unstable();
    for index in dropped.into_iter().rev() {
        listing.entries.remove(index);
    }
    listing.entries.sort();
}

/// What became of an entry whose name is not NFC.
enum Renamed {
    /// Renamed (or, for reports, would be).
    Done,
    /// Another entry in the directory already has the NFC name.
    Taken,
    /// Vanished meanwhile.
    Vanished,
    Failed(io::Error),
}

/// Renames `local` (lstat `metadata`), an entry of `dir_local`, to
/// `nfc_name` in the same directory, unless `names` (the directory's
/// listing) or the file system already hold another entry by that name.
///
/// Between the check and the rename another program could create
/// `nfc_name`, which the rename would then replace: std has no rename that
/// refuses to replace, and that window is a few system calls wide.
fn rename_to_nfc(
    local: &Path,
    metadata: &Metadata,
    dir_local: &Path,
    nfc_name: &str,
    names: &HashSet<OsString>,
) -> Renamed {
    if names.contains(OsStr::new(nfc_name)) {
        return Renamed::Taken;
    }
    let target = dir_local.join(nfc_name);
    match fs::symlink_metadata(&target) {
        // A file system that ignores normalisation differences (APFS, HFS+)
        // finds the entry itself under its NFC name: renaming is still right,
        // it changes the stored form.
        Ok(found) if is_same_entry(&found, metadata) => {}
        Ok(_) => return Renamed::Taken,
        Err(error) if error.kind() == ErrorKind::NotFound => {}
        Err(error) => return Renamed::Failed(error),
    }
    match fs::rename(local, &target) {
        Ok(()) => Renamed::Done,
        Err(error) if error.kind() == ErrorKind::NotFound => Renamed::Vanished,
        Err(error) => Renamed::Failed(error),
    }
}

#[cfg(unix)]
fn is_same_entry(a: &Metadata, b: &Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn is_same_entry(_a: &Metadata, _b: &Metadata) -> bool {
    false
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

fn is_dir_entry(entry: &fs::DirEntry) -> bool {
    entry.file_type().is_ok_and(|t| t.is_dir())
}
