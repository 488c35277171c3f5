//! What is on disk now: the full scan of a folder and the stat of one path.
//!
//! Blocking code: the engine runs it in `spawn_blocking`.
//!
//! - Symlinks are never followed; they are reported in
//!   [`ScanResult::skipped`], as are special files (FIFOs, sockets, devices)
//!   and names that are not valid UTF-8 or not a valid [`SyncPath`].
//! - Ignored paths and the top-level `.sf` directory are neither listed nor
//!   descended into.
//! - A file whose size, mtime and inode equal the recorded [`SyncedFile`] is
//!   not read again: its digest is taken from the record.
//! - Otherwise the file is hashed as a stream and stat'ed again afterwards;
//!   if it changed during the read it is reported as unstable.
//! - Names are sent in Unicode NFC (the hub compares paths byte for byte;
//!   macOS hands out NFD names, Linux usually NFC). A full scan renames an
//!   entry whose name is not NFC to its NFC form, in the same directory,
//!   and lists it under that name, at every level (a directory is renamed
//!   before it is descended into). Two exceptions: a path already synced
//!   under its exact non-NFC name (e.g. downloaded from a hub entry that a
//!   legacy client created in NFD) is kept as it is, so old clients and
//!   agents do not rename it back and forth; and when the NFC name is
//!   already taken by another entry, neither is touched and the non-NFC one
//!   is reported in [`ScanResult::skipped`]. Ignored entries, symlinks and
//!   special files are never renamed. [`stat_entry`] renames nothing: for a non-NFC path that was
//!   never synced it answers [`ScanError::NotNormalised`].

use std::collections::{BTreeMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::{self, Metadata};
use std::io::{self, ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use sf_protocol::path::RESERVED_TOP_LEVEL;
use sf_protocol::v1::EntryKind;
use sf_protocol::{Sha256Hex, SyncPath};
use sha2::{Digest, Sha256};
use unicode_normalization::{UnicodeNormalization, is_nfc};

use crate::ignore::IgnoreRules;
use crate::model::{LocalFile, SyncedFile};

/// Read buffer of [`hash_file`].
const HASH_BUFFER: usize = 1 << 20;

/// What a full scan found.
#[derive(Debug, Default)]
pub struct ScanResult {
    /// Every regular file and every directory (kind `Dir`, empty digest,
    /// size 0), except ignored ones.
    pub files: BTreeMap<SyncPath, LocalFile>,
    /// Files that changed while being read: retry later. Not in `files`.
    pub unstable: Vec<SyncPath>,
    /// Paths that could not be read (permission denied etc.): retry later
    /// with a warning. A file here is not in `files`. A directory here is in
    /// `files` but could not be listed, so its contents are unknown: they
    /// are absent from `files` and must not be taken as deleted.
    pub unreadable: Vec<(SyncPath, String)>,
    /// `(relative path, reason)` for what is never synced: symlinks, special
    /// files, names that are not valid UTF-8 or not a valid [`SyncPath`],
    /// non-NFC names whose NFC form is taken by another entry or that could
    /// not be renamed to it. Nothing below a skipped directory is listed.
    pub skipped: Vec<(String, String)>,
}

impl ScanResult {
    /// Whether `path` is in, or below a directory in, `unreadable` or
    /// `unstable`: its absence from `files` says nothing about deletion.
    pub fn is_uncertain(&self, path: &SyncPath) -> bool {
        let hit = |other: &SyncPath| {
            other == path
                || path
                    .as_str()
                    .strip_prefix(other.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        self.unstable.iter().any(hit) || self.unreadable.iter().any(|(other, _)| hit(other))
    }
}

/// Why [`stat_entry`] has no answer for a path.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
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
pub fn local_path(root: &Path, path: &SyncPath) -> PathBuf {
    let mut local = root.to_path_buf();
    local.extend(path.as_str().split('/'));
    local
}

/// The SHA-256 of a file's content and the number of bytes read, streaming
/// through a 1 MiB buffer.
pub fn hash_file(path: &Path) -> io::Result<(Sha256Hex, u64)> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; HASH_BUFFER];
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

/// Walks the whole folder. Fails only when the root itself cannot be listed;
/// every other problem lands in one of the result's lists.
pub fn scan(
    root: &Path,
    rules: &IgnoreRules,
    known: &dyn Fn(&SyncPath) -> Option<SyncedFile>,
) -> io::Result<ScanResult> {
    scan_with(root, rules, known, Names::Normalise)
}

/// [`scan`] that changes nothing on disk, for reports next to a running
/// agent: a name that a scan would rename to NFC is listed under its NFC
/// path but left as it is.
pub fn scan_without_renaming(
    root: &Path,
    rules: &IgnoreRules,
    known: &dyn Fn(&SyncPath) -> Option<SyncedFile>,
) -> io::Result<ScanResult> {
    scan_with(root, rules, known, Names::AsTheyAre)
}

/// Whether a walk renames names that are not in Unicode NFC.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Names {
    /// Rename them to NFC (the agent's own scans).
    Normalise,
    /// Leave the disk alone and list them under their NFC path (reports).
    AsTheyAre,
}

fn scan_with(
    root: &Path,
    rules: &IgnoreRules,
    known: &dyn Fn(&SyncPath) -> Option<SyncedFile>,
    names_mode: Names,
) -> io::Result<ScanResult> {
    let mut result = ScanResult::default();
    let mut pending: Vec<Option<SyncPath>> = vec![None];
    while let Some(dir) = pending.pop() {
        let mut listing = match list_dir(root, dir.as_ref(), rules) {
            Ok(listing) => listing,
            Err(error) => match &dir {
                None => return Err(error),
                Some(dir) => {
                    report_dir_error(&mut result, dir, error);
                    continue;
                }
            },
        };
        normalise_names(
            root,
            &mut listing,
            rules,
            &|p| known(p).is_some(),
            names_mode,
        );
        result.skipped.append(&mut listing.skipped);
        result.unreadable.append(&mut listing.unreadable);
        for path in listing.entries {
            let on_disk = listing
                .aliases
                .iter()
                .find(|(listed, _)| *listed == path)
                .map_or(&path, |(_, on_disk)| on_disk);
            let found = examine_at(&local_path(root, on_disk), &path, known(&path).as_ref());
            match found {
                Ok(Some(file)) => {
                    if file.kind == EntryKind::Dir {
                        pending.push(Some(path.clone()));
                    }
                    result.files.insert(path, file);
                }
                Ok(None) => {}
                Err(ScanError::Skipped { path, reason }) => {
                    result.skipped.push((path.to_string(), reason));
                }
                Err(ScanError::Unstable(path)) => result.unstable.push(path),
                Err(ScanError::Unreadable { path, source }) => {
                    result.unreadable.push((path, source.to_string()));
                }
                Err(ScanError::NotNormalised { .. }) => unreachable!("examine_entry never says"),
            }
        }
    }
    result.unstable.sort();
    result.unreadable.sort_by(|a, b| a.0.cmp(&b.0));
    result.skipped.sort();
    Ok(result)
}

/// One directory's entries, listed but not examined yet (see [`list_dir`]).
#[derive(Debug, Default)]
pub struct DirListing {
    /// The entries to examine, in path order: regular files, directories,
    /// and symlinks or special files (which [`examine_entry`] reports as
    /// skipped). Not ignored, valid paths, never the folder marker.
    pub entries: Vec<SyncPath>,
    /// Entries whose name is not in Unicode NFC (indexes into `entries`):
    /// [`normalise_names`] deals with them.
    not_nfc: Vec<usize>,
    /// `(listed path, path on disk)` of entries listed under their NFC
    /// path but left under another name ([`Names::AsTheyAre`]).
    aliases: Vec<(SyncPath, SyncPath)>,
    /// Entries whose type could not be read: retry later.
    pub unreadable: Vec<(SyncPath, String)>,
    /// `(relative path, reason)` of names that are never synced (see
    /// [`ScanResult::skipped`]).
    pub skipped: Vec<(String, String)>,
}

impl DirListing {
    /// Entries whose name is not in Unicode NFC: [`normalise_names`] renames
    /// them unless they are synced under that exact name.
    pub fn not_normalised(&self) -> impl Iterator<Item = &SyncPath> {
        self.not_nfc.iter().map(|&index| &self.entries[index])
    }
}

/// Lists the directory `dir` (`None`: the folder itself) without reading
/// any file: one step of a walk that goes a directory at a time, so that
/// what it holds is one directory's names, not the whole tree. Fails when
/// the directory cannot be listed (vanished, permission denied, not a
/// directory or a symlink: `NotFound` / `NotADirectory`); a problem with
/// one entry lands in the listing's lists.
pub fn list_dir(
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
pub fn normalise_names(
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

/// Counts the regular files in the folder and their bytes, from stat data
/// alone (nothing is read or renamed): the size of a first sync, for its
/// progress display. Ignored entries and what cannot be listed are left
/// out.
pub fn count_files(root: &Path, rules: &IgnoreRules) -> (u64, u64) {
    let (mut files, mut bytes) = (0, 0);
    let mut pending: Vec<Option<SyncPath>> = vec![None];
    while let Some(dir) = pending.pop() {
        let Ok(listing) = list_dir(root, dir.as_ref(), rules) else {
            continue;
        };
        for path in listing.entries {
            match fs::symlink_metadata(local_path(root, &path)) {
                Ok(metadata) if metadata.is_dir() => pending.push(Some(path)),
                Ok(metadata) if metadata.is_file() => {
                    files += 1;
                    bytes += metadata.len();
                }
                _ => {}
            }
        }
    }
    (files, bytes)
}

/// [`scan`] for one path, e.g. after a file event. `Ok(None)` when nothing
/// is there, including when a parent is missing, not a directory or a
/// symlink (a scan would not list the path either). Ignore rules are the
/// caller's business. `known` is the record of `path`; when there is none
/// and `path` is not in Unicode NFC form, something found there is
/// [`ScanError::NotNormalised`] (nothing found is still `Ok(None)`, e.g. the
/// old name after a scan renamed an entry to NFC).
pub fn stat_entry(
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
pub fn examine_entry(
    root: &Path,
    path: &SyncPath,
    known: Option<&SyncedFile>,
) -> Result<Option<LocalFile>, ScanError> {
    examine_at(&local_path(root, path), path, known)
}

/// [`examine_entry`] of `path`, found on disk at `local`.
fn examine_at(
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
    match examine(local, metadata, known) {
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

/// Stat data that tells whether a file may have changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    size: u64,
    mtime_ns: i64,
    inode: u64,
    is_file: bool,
}

impl Stat {
    fn of(metadata: &Metadata) -> Stat {
        Stat {
            size: metadata.len(),
            mtime_ns: mtime_ns(metadata),
            inode: inode(metadata),
            is_file: metadata.is_file(),
        }
    }
}

/// Looks at one entry whose lstat is `metadata`.
fn examine(local: &Path, metadata: Metadata, known: Option<&SyncedFile>) -> Outcome {
    let file_type = metadata.file_type();
    if file_type.is_symlink() {
        return Outcome::Skipped("symbolic link (not followed)".to_owned());
    }
    if file_type.is_dir() {
        return Outcome::Found(LocalFile {
            kind: EntryKind::Dir,
            sha256: Sha256Hex::empty(),
            size: 0,
            mtime_ns: mtime_ns(&metadata),
            inode: inode(&metadata),
            executable: false,
        });
    }
    if !file_type.is_file() {
        return Outcome::Skipped("not a regular file, directory or symlink".to_owned());
    }
    let before = Stat::of(&metadata);
    let executable = is_executable(&metadata);
    if let Some(record) = known
        && record.kind == EntryKind::File
        && record.stat_unchanged(before.size, before.mtime_ns, before.inode)
    {
        return Outcome::Found(LocalFile {
            kind: EntryKind::File,
            sha256: record.sha256,
            size: before.size,
            mtime_ns: before.mtime_ns,
            inode: before.inode,
            executable,
        });
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
    Outcome::Found(LocalFile {
        kind: EntryKind::File,
        sha256,
        size: before.size,
        mtime_ns: before.mtime_ns,
        inode: before.inode,
        executable,
    })
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

fn report_dir_error(result: &mut ScanResult, dir: &SyncPath, error: io::Error) {
    if is_absent(&error) {
        // The directory vanished after it was listed: so did its contents.
        result.files.remove(dir);
        return;
    }
    result
        .unreadable
        .push((dir.clone(), format!("cannot list the directory: {error}")));
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

fn is_absent(error: &io::Error) -> bool {
    matches!(error.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory)
}

/// Modification time in nanoseconds since the Unix epoch (negative before it,
/// 0 where the platform has none).
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
    metadata.is_file() && metadata.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_metadata: &Metadata) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn p(raw: &str) -> SyncPath {
        SyncPath::parse(raw).unwrap()
    }

    fn write(root: &Path, relative: &str, content: &[u8]) {
        let mut local = root.to_path_buf();
        local.extend(relative.split('/'));
        fs::create_dir_all(local.parent().unwrap()).unwrap();
        fs::write(local, content).unwrap();
    }

    fn scan_all(root: &Path) -> ScanResult {
        let rules = IgnoreRules::load(root).unwrap();
        scan(root, &rules, &|_| None).unwrap()
    }

    fn record_for(file: &LocalFile, sha256: Sha256Hex) -> SyncedFile {
        SyncedFile {
            kind: file.kind,
            sha256,
            size: file.size,
            mtime_ns: file.mtime_ns,
            inode: file.inode,
            executable: file.executable,
            version: 7,
        }
    }

    #[test]
    fn lists_nested_dirs_files_empty_dirs_and_empty_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "top.txt", b"hello");
        write(root, "a/b/c/deep.txt", b"deep");
        write(root, "a/empty-file", b"");
        fs::create_dir_all(root.join("empty-dir")).unwrap();

        let result = scan_all(root);
        let names: Vec<&str> = result.files.keys().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "a",
                "a/b",
                "a/b/c",
                "a/b/c/deep.txt",
                "a/empty-file",
                "empty-dir",
                "top.txt"
            ]
        );
        let top = &result.files[&p("top.txt")];
        assert_eq!(top.kind, EntryKind::File);
        assert_eq!(top.sha256, Sha256Hex::of(b"hello"));
        assert_eq!(top.size, 5);
        assert!(top.mtime_ns > 0);
        #[cfg(unix)]
        assert_ne!(top.inode, 0);
        let empty = &result.files[&p("a/empty-file")];
        assert_eq!((empty.sha256, empty.size), (Sha256Hex::empty(), 0));
        let dir_entry = &result.files[&p("empty-dir")];
        assert_eq!(dir_entry.kind, EntryKind::Dir);
        assert_eq!((dir_entry.sha256, dir_entry.size), (Sha256Hex::empty(), 0));
        assert!(!dir_entry.executable);
        assert!(result.unstable.is_empty());
        assert!(result.unreadable.is_empty());
        assert!(result.skipped.is_empty());
    }

    #[test]
    fn sf_dir_and_ignored_paths_are_not_listed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, ".sfignore", b"build/\n*.log\n");
        write(root, ".sf/state.db", b"state");
        write(root, "build/out.bin", b"bin");
        write(root, "src/build/nested.bin", b"bin");
        write(root, "src/app.log", b"log");
        write(root, "src/main.rs", b"fn main() {}");
        write(root, "src/.DS_Store", b"junk");
        write(root, "notes.txt.swp", b"swap");
        write(root, "sub/.sf/kept", b"only the top-level .sf is reserved");

        let result = scan_all(root);
        let names: Vec<&str> = result.files.keys().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            vec![
                ".sfignore",
                "src",
                "src/main.rs",
                "sub",
                "sub/.sf",
                "sub/.sf/kept"
            ]
        );
        assert!(result.skipped.is_empty(), "{:?}", result.skipped);
    }

    #[cfg(unix)]
    #[test]
    fn executable_bit_is_reported() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "run.sh", b"#!/bin/sh\n");
        write(root, "plain.txt", b"text");
        fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o744)).unwrap();
        fs::set_permissions(root.join("plain.txt"), fs::Permissions::from_mode(0o644)).unwrap();

        let result = scan_all(root);
        assert!(result.files[&p("run.sh")].executable);
        assert!(!result.files[&p("plain.txt")].executable);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_skipped_and_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "secret.txt", b"outside");
        write(root, "real.txt", b"real");
        std::os::unix::fs::symlink("real.txt", root.join("link.txt")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("linked-dir")).unwrap();
        std::os::unix::fs::symlink("missing", root.join("dangling")).unwrap();

        let result = scan_all(root);
        let names: Vec<&str> = result.files.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["real.txt"]);
        let skipped: Vec<&str> = result
            .skipped
            .iter()
            .map(|(path, _)| path.as_str())
            .collect();
        assert_eq!(skipped, vec!["dangling", "link.txt", "linked-dir"]);
        assert!(
            result
                .skipped
                .iter()
                .all(|(_, reason)| reason.contains("symbolic link"))
        );

        // The single-path stat agrees.
        assert!(matches!(
            stat_entry(root, &p("link.txt"), None),
            Err(ScanError::Skipped { .. })
        ));
        assert_eq!(
            stat_entry(root, &p("linked-dir/secret.txt"), None).unwrap(),
            None
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn bad_names_are_skipped_with_a_reason() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join(std::ffi::OsStr::from_bytes(b"bad\xffname")), b"x").unwrap();
        fs::write(root.join("back\\slash"), b"x").unwrap();
        fs::create_dir(root.join("ctrl\u{1}dir")).unwrap();
        fs::write(root.join("ctrl\u{1}dir/inner.txt"), b"x").unwrap();
        write(root, "fine.txt", b"x");

        let result = scan_all(root);
        let names: Vec<&str> = result.files.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["fine.txt"]);
        assert_eq!(result.skipped.len(), 3, "{:?}", result.skipped);
        let reason_for = |name: &str| {
            result
                .skipped
                .iter()
                .find(|(path, _)| path == name)
                .map(|(_, reason)| reason.clone())
                .unwrap_or_else(|| panic!("{name} not skipped: {:?}", result.skipped))
        };
        assert!(reason_for("bad\u{fffd}name").contains("UTF-8"));
        assert!(reason_for("back\\slash").contains("backslash"));
        assert!(reason_for("ctrl\u{1}dir").contains("control character"));
    }

    /// Unicode normalisation of names. Linux file systems keep NFC and NFD
    /// names apart, so these tests can hold both forms side by side.
    #[cfg(target_os = "linux")]
    mod unicode_names {
        use super::*;

        /// The names in `dir` exactly as the file system holds them, sorted.
        fn disk_names(dir: &Path) -> Vec<String> {
            let mut names: Vec<String> = fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            names
        }

        fn listed(result: &ScanResult) -> Vec<&str> {
            result.files.keys().map(|k| k.as_str()).collect()
        }

        const CAFE_NFD: &str = "cafe\u{301}.txt";
        const CAFE_NFC: &str = "caf\u{e9}.txt";
        const MUNICH_NFD: &str = "Mu\u{308}nchen";
        const MUNICH_NFC: &str = "M\u{fc}nchen";

        fn file_record(content: &[u8]) -> SyncedFile {
            SyncedFile {
                kind: EntryKind::File,
                sha256: Sha256Hex::of(content),
                size: content.len() as u64,
                mtime_ns: 0,
                inode: 0,
                executable: false,
                version: 3,
            }
        }

        #[test]
        fn new_nfd_file_is_renamed_to_nfc_and_listed_so() {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            write(root, CAFE_NFD, b"latte");
            write(root, "plain.txt", b"ascii");

            let result = scan_all(root);
            assert_eq!(listed(&result), vec![CAFE_NFC, "plain.txt"]);
            assert_eq!(result.files[&p(CAFE_NFC)].sha256, Sha256Hex::of(b"latte"));
            assert!(result.skipped.is_empty(), "{:?}", result.skipped);
            assert_eq!(disk_names(root), vec![CAFE_NFC, "plain.txt"]);
            assert_eq!(fs::read(root.join(CAFE_NFC)).unwrap(), b"latte");

            // Stable: the next scan finds the same and renames nothing.
            let again = scan_all(root);
            assert_eq!(again.files, result.files);
            assert_eq!(
                stat_entry(root, &p(CAFE_NFC), None).unwrap().as_ref(),
                Some(&result.files[&p(CAFE_NFC)])
            );
        }

        #[test]
        fn known_nfd_names_are_kept() {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            write(root, CAFE_NFD, b"from a legacy client");
            write(root, &format!("{MUNICH_NFD}/plan.txt"), b"plan");
            // New in a kept folder: only the new name is normalised.
            write(root, &format!("{MUNICH_NFD}/Gru\u{308}sse.txt"), b"hi");
            let dir_record = SyncedFile {
                kind: EntryKind::Dir,
                sha256: Sha256Hex::empty(),
                size: 0,
                ..file_record(b"")
            };
            let file = file_record(b"from a legacy client");
            let known = |path: &SyncPath| match path.as_str() {
                CAFE_NFD => Some(file.clone()),
                MUNICH_NFD => Some(dir_record.clone()),
                _ => None,
            };
            let rules = IgnoreRules::load(root).unwrap();
            let result = scan(root, &rules, &known).unwrap();

            let plan = format!("{MUNICH_NFD}/plan.txt");
            let greeting = format!("{MUNICH_NFD}/Gr\u{fc}sse.txt");
            assert_eq!(
                listed(&result),
                vec![MUNICH_NFD, &greeting, &plan, CAFE_NFD]
            );
            assert!(result.skipped.is_empty(), "{:?}", result.skipped);
            assert_eq!(disk_names(root), vec![MUNICH_NFD, CAFE_NFD]);
            assert_eq!(
                disk_names(&root.join(MUNICH_NFD)),
                vec!["Gr\u{fc}sse.txt", "plan.txt"]
            );
            assert_eq!(
                result.files[&p(CAFE_NFD)].sha256,
                Sha256Hex::of(b"from a legacy client")
            );

            // The single-path stat: a known non-NFC path is looked at, an
            // unknown one sends the caller to a full scan, unless nothing is
            // there (e.g. the old name of an entry a scan renamed).
            assert_eq!(
                stat_entry(root, &p(CAFE_NFD), Some(&file))
                    .unwrap()
                    .unwrap()
                    .sha256,
                Sha256Hex::of(b"from a legacy client")
            );
            let err = stat_entry(root, &p(CAFE_NFD), None).unwrap_err();
            assert!(
                matches!(&err, ScanError::NotNormalised { path } if path.as_str() == CAFE_NFD),
                "{err:?}"
            );
            assert!(err.to_string().contains("NFC"), "{err}");
            // A new NFC-named file inside a folder kept under its NFD name
            // is looked at like any other.
            assert!(stat_entry(root, &p(&plan), None).unwrap().is_some());
            assert_eq!(stat_entry(root, &p("gone\u{301}.txt"), None).unwrap(), None);
            assert_eq!(
                stat_entry(root, &p(&format!("{MUNICH_NFC}/plan.txt")), None).unwrap(),
                None
            );
        }

        #[test]
        fn nfd_name_whose_nfc_twin_exists_is_skipped_and_both_untouched() {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            write(root, CAFE_NFC, b"nfc");
            write(root, CAFE_NFD, b"nfd");
            write(root, &format!("{MUNICH_NFC}/a.txt"), b"a");
            write(root, &format!("{MUNICH_NFD}/b.txt"), b"b");

            let result = scan_all(root);
            let a = format!("{MUNICH_NFC}/a.txt");
            assert_eq!(listed(&result), vec![MUNICH_NFC, &a, CAFE_NFC]);
            assert_eq!(result.files[&p(CAFE_NFC)].sha256, Sha256Hex::of(b"nfc"));
            let skipped: Vec<&str> = result
                .skipped
                .iter()
                .map(|(path, _)| path.as_str())
                .collect();
            assert_eq!(skipped, vec![MUNICH_NFD, CAFE_NFD]);
            for (_, reason) in &result.skipped {
                assert!(
                    reason.contains("Unicode normalisation") && reason.contains("rename one"),
                    "{reason}"
                );
            }
            assert_eq!(
                disk_names(root),
                vec![MUNICH_NFD, MUNICH_NFC, CAFE_NFD, CAFE_NFC]
            );
            assert_eq!(fs::read(root.join(CAFE_NFC)).unwrap(), b"nfc");
            assert_eq!(fs::read(root.join(CAFE_NFD)).unwrap(), b"nfd");
            assert_eq!(disk_names(&root.join(MUNICH_NFD)), vec!["b.txt"]);
            assert_eq!(disk_names(&root.join(MUNICH_NFC)), vec!["a.txt"]);
        }

        #[test]
        fn two_non_nfc_names_with_one_nfc_form_keep_one_and_skip_the_other() {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            // Both are "e" with a dot below and an acute; only the first is in
            // canonical order (NFD), neither is NFC.
            write(root, "e\u{323}\u{301}", b"one");
            write(root, "e\u{301}\u{323}", b"two");
            let nfc = "\u{1eb9}\u{301}";

            let result = scan_all(root);
            assert_eq!(listed(&result), vec![nfc]);
            assert_eq!(result.skipped.len(), 1, "{:?}", result.skipped);
            let names = disk_names(root);
            assert_eq!(names.len(), 2, "{names:?}");
            assert!(names.iter().any(|n| n == nfc), "{names:?}");
            assert!(names.contains(&result.skipped[0].0), "{names:?}");
        }

        #[test]
        fn nfd_directory_is_renamed_then_descended() {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            write(root, &format!("{MUNICH_NFD}/plan.txt"), b"plan");
            write(
                root,
                &format!("{MUNICH_NFD}/Gru\u{308}sse/{CAFE_NFD}"),
                b"deep",
            );
            fs::create_dir(root.join(format!("{MUNICH_NFD}/leer-\u{212b}"))).unwrap();

            let result = scan_all(root);
            let expected = [
                MUNICH_NFC.to_owned(),
                format!("{MUNICH_NFC}/Gr\u{fc}sse"),
                format!("{MUNICH_NFC}/Gr\u{fc}sse/{CAFE_NFC}"),
                // U+212B ANGSTROM SIGN is a singleton: NFC makes it U+00C5.
                format!("{MUNICH_NFC}/leer-\u{c5}"),
                format!("{MUNICH_NFC}/plan.txt"),
            ];
            assert_eq!(
                listed(&result),
                expected.iter().map(String::as_str).collect::<Vec<_>>()
            );
            assert!(result.skipped.is_empty(), "{:?}", result.skipped);
            assert_eq!(disk_names(root), vec![MUNICH_NFC]);
            assert_eq!(
                fs::read(root.join(format!("{MUNICH_NFC}/Gr\u{fc}sse/{CAFE_NFC}"))).unwrap(),
                b"deep"
            );
            assert_eq!(
                result.files[&p(&format!("{MUNICH_NFC}/plan.txt"))].sha256,
                Sha256Hex::of(b"plan")
            );
            // Stable (directory mtimes moved with the renames inside them).
            let again = scan_all(root);
            assert_eq!(listed(&again), listed(&result));
            assert_eq!(disk_names(root), vec![MUNICH_NFC]);
        }

        #[test]
        fn nfd_symlinks_are_skipped_not_renamed() {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            write(root, "target.txt", b"x");
            std::os::unix::fs::symlink("target.txt", root.join(CAFE_NFD)).unwrap();

            let result = scan_all(root);
            assert_eq!(listed(&result), vec!["target.txt"]);
            assert_eq!(result.skipped.len(), 1, "{:?}", result.skipped);
            assert_eq!(result.skipped[0].0, CAFE_NFD);
            assert!(result.skipped[0].1.contains("symbolic link"));
            assert_eq!(disk_names(root), vec![CAFE_NFD, "target.txt"]);
        }

        #[test]
        fn ignored_nfd_names_are_not_renamed() {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            // The second rule matches the NFC form only.
            write(root, ".sfignore", "*.tmp\ncaf\u{e9}.log\n".as_bytes());
            write(root, "cafe\u{301}.tmp", b"x");
            write(root, "cafe\u{301}.log", b"x");

            let result = scan_all(root);
            assert_eq!(listed(&result), vec![".sfignore"]);
            assert!(result.skipped.is_empty(), "{:?}", result.skipped);
            assert_eq!(
                disk_names(root),
                vec![".sfignore", "cafe\u{301}.log", "cafe\u{301}.tmp"]
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn special_files_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let _socket = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
        let result = scan_all(root);
        assert!(result.files.is_empty());
        assert_eq!(result.skipped.len(), 1);
        assert_eq!(result.skipped[0].0, "sock");
        assert!(result.skipped[0].1.contains("not a regular file"));
    }

    #[test]
    fn not_rehashed_when_stat_matches_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "same.txt", b"content");
        let first = scan_all(root);
        let on_disk = first.files[&p("same.txt")].clone();
        assert_eq!(on_disk.sha256, Sha256Hex::of(b"content"));

        // A record with identical stat but a different digest: if the scan
        // read the file it would report the real digest.
        let recorded = Sha256Hex::of(b"what the state database says");
        let record = record_for(&on_disk, recorded);
        let known = |path: &SyncPath| (path.as_str() == "same.txt").then(|| record.clone());
        let rules = IgnoreRules::load(root).unwrap();
        let second = scan(root, &rules, &known).unwrap();
        assert_eq!(second.files[&p("same.txt")].sha256, recorded);

        assert_eq!(
            stat_entry(root, &p("same.txt"), Some(&record))
                .unwrap()
                .unwrap()
                .sha256,
            recorded
        );
    }

    #[test]
    fn rehashed_when_mtime_differs_from_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "changed.txt", b"content");
        let on_disk = scan_all(root).files[&p("changed.txt")].clone();

        let mut record = record_for(&on_disk, Sha256Hex::of(b"stale"));
        record.mtime_ns -= 1_000_000_000;
        let known = |_: &SyncPath| Some(record.clone());
        let rules = IgnoreRules::load(root).unwrap();
        let result = scan(root, &rules, &known).unwrap();
        assert_eq!(
            result.files[&p("changed.txt")].sha256,
            Sha256Hex::of(b"content")
        );

        // Same for a size or an inode difference.
        let mut record = record_for(&on_disk, Sha256Hex::of(b"stale"));
        record.size += 1;
        let local = stat_entry(root, &p("changed.txt"), Some(&record))
            .unwrap()
            .unwrap();
        assert_eq!(local.sha256, Sha256Hex::of(b"content"));
        let mut record = record_for(&on_disk, Sha256Hex::of(b"stale"));
        record.inode = record.inode.wrapping_add(1);
        let local = stat_entry(root, &p("changed.txt"), Some(&record))
            .unwrap()
            .unwrap();
        assert_eq!(local.sha256, Sha256Hex::of(b"content"));
    }

    #[test]
    fn rehashed_after_a_change_that_keeps_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "f.txt", b"aaaa");
        let before = scan_all(root).files[&p("f.txt")].clone();
        let record = record_for(&before, before.sha256);
        fs::write(root.join("f.txt"), b"bbbb").unwrap();
        let file = fs::File::options()
            .write(true)
            .open(root.join("f.txt"))
            .unwrap();
        file.set_modified(SystemTime::now() + Duration::from_secs(5))
            .unwrap();
        drop(file);
        let after = stat_entry(root, &p("f.txt"), Some(&record))
            .unwrap()
            .unwrap();
        assert_eq!(after.sha256, Sha256Hex::of(b"bbbb"));
    }

    #[test]
    fn stat_entry_for_files_dirs_and_absent_paths() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "a/b.txt", b"bee");
        let file = stat_entry(root, &p("a/b.txt"), None).unwrap().unwrap();
        assert_eq!(file.kind, EntryKind::File);
        assert_eq!(file.sha256, Sha256Hex::of(b"bee"));
        assert_eq!(file.size, 3);
        let scanned = scan_all(root);
        assert_eq!(scanned.files[&p("a/b.txt")], file);

        let folder = stat_entry(root, &p("a"), None).unwrap().unwrap();
        assert_eq!(folder.kind, EntryKind::Dir);
        assert_eq!(folder.sha256, Sha256Hex::empty());

        assert_eq!(stat_entry(root, &p("nope"), None).unwrap(), None);
        assert_eq!(stat_entry(root, &p("nope/deeper"), None).unwrap(), None);
        // A parent that is a file.
        assert_eq!(stat_entry(root, &p("a/b.txt/x"), None).unwrap(), None);
    }

    #[test]
    fn hash_file_streams_large_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.bin");
        let content: Vec<u8> = (0..(3 * HASH_BUFFER + 12345))
            .map(|i| (i % 251) as u8)
            .collect();
        fs::write(&path, &content).unwrap();
        let (sha256, size) = hash_file(&path).unwrap();
        assert_eq!(size, content.len() as u64);
        assert_eq!(sha256, Sha256Hex::of(&content));
    }

    #[test]
    fn local_path_uses_platform_separators() {
        let root = Path::new("root");
        assert_eq!(
            local_path(root, &p("a/b/c.txt")),
            Path::new("root").join("a").join("b").join("c.txt")
        );
    }

    #[test]
    fn missing_root_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone");
        assert!(scan(&missing, &IgnoreRules::defaults(), &|_| None).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn unreadable_directory_is_reported() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "locked/inner.txt", b"x");
        write(root, "locked-file.txt", b"x");
        fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
        fs::set_permissions(
            root.join("locked-file.txt"),
            fs::Permissions::from_mode(0o000),
        )
        .unwrap();
        let blocked = fs::read_dir(root.join("locked")).is_err();
        let result = scan_all(root);
        fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o755)).unwrap();
        if !blocked {
            // Running as root: permissions do not stop reads; nothing to test.
            return;
        }
        assert!(result.files.contains_key(&p("locked")));
        assert!(!result.files.contains_key(&p("locked/inner.txt")));
        assert!(!result.files.contains_key(&p("locked-file.txt")));
        let unreadable: Vec<&str> = result
            .unreadable
            .iter()
            .map(|(path, _)| path.as_str())
            .collect();
        assert_eq!(unreadable, vec!["locked", "locked-file.txt"]);
        assert!(result.is_uncertain(&p("locked/inner.txt")));
        assert!(!result.is_uncertain(&p("lockedx")));
    }

    #[test]
    fn uncertain_covers_paths_below_unreadable_dirs() {
        let result = ScanResult {
            unreadable: vec![(p("dir"), "denied".to_owned())],
            unstable: vec![p("busy.txt")],
            ..ScanResult::default()
        };
        assert!(result.is_uncertain(&p("dir")));
        assert!(result.is_uncertain(&p("dir/a/b")));
        assert!(result.is_uncertain(&p("busy.txt")));
        assert!(!result.is_uncertain(&p("dir2")));
        assert!(!result.is_uncertain(&p("other")));
    }
}
