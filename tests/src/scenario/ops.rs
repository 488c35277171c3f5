//! User operations carried out in an agent's folder, and the ledger of
//! every content they wrote: which ones exist at all (for the torn-file
//! sampler) and which ones must survive (for "nothing lost").
//!
//! A content must survive when it stayed on disk long enough for its agent
//! to send it ([`must_last`]: 2 s, plus 1 s per 4 MiB) while that agent,
//! its link and the hub were all up. A content overwritten sooner, or while
//! its agent could not reach the hub, may never have left the machine, as
//! with any sync tool; it still counts as written.

use std::collections::{HashMap, HashSet};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sf_protocol::Sha256Hex;
use sf_test_support::random_bytes;

use super::plan::Op;

/// How long a content must stay in place, on a healthy agent, before it
/// must be found at the end.
pub fn must_last(size: u64) -> Duration {
    Duration::from_secs(2) + Duration::from_millis(size / (4 << 10))
}

/// One agent's folder as the user sees it. The lock is held for every
/// operation and every sampled read, so the sampler never reads a file
/// the user is half-way through writing (that is the user's own state, not
/// the agent's doing).
pub struct Folder {
    pub dir: PathBuf,
    pub lock: Mutex<()>,
}

impl Folder {
    pub fn path(&self, relative: &str) -> PathBuf {
        let mut path = self.dir.clone();
        path.extend(relative.split('/').filter(|s| !s.is_empty()));
        path
    }
}

/// A content that must be found at the end, and where it was written.
#[derive(Debug, Clone)]
pub struct Required {
    pub sha256: Sha256Hex,
    pub what: String,
}

#[derive(Debug, Clone, Copy)]
struct Live {
    sha256: Sha256Hex,
    since: Instant,
    size: u64,
}

/// What the operations wrote, and when each agent could not have sent it.
#[derive(Default)]
pub struct Ledger {
    pub written: HashSet<Sha256Hex>,
    pub required: Vec<Required>,
    live: HashMap<(usize, String), Live>,
    /// Per agent (and, at index `usize::MAX`, the hub): intervals during
    /// which it was down or cut off; an open one has no end yet.
    impaired: HashMap<usize, Vec<(Instant, Option<Instant>)>>,
}

/// The key of the hub in [`Ledger::impaired`].
pub const HUB: usize = usize::MAX;
/// The key of the hub's database in [`Ledger::impaired`].
pub const DATABASE: usize = usize::MAX - 1;

impl Ledger {
    pub fn impair(&mut self, who: usize) {
        self.impaired
            .entry(who)
            .or_default()
            .push((Instant::now(), None));
    }

    pub fn recover(&mut self, who: usize) {
        if let Some(last) = self.impaired.get_mut(&who).and_then(|v| v.last_mut())
            && last.1.is_none()
        {
            last.1 = Some(Instant::now());
        }
    }

    fn healthy(&self, agent: usize, from: Instant, to: Instant) -> bool {
        [agent, HUB, DATABASE].iter().all(|who| {
            self.impaired.get(who).is_none_or(|intervals| {
                intervals
                    .iter()
                    .all(|(start, end)| end.is_some_and(|end| end <= from) || *start >= to)
            })
        })
    }

    fn wrote(&mut self, agent: usize, path: &str, sha256: Sha256Hex, size: u64) {
        self.written.insert(sha256);
        self.end(agent, path);
        self.live.insert(
            (agent, path.to_owned()),
            Live {
                sha256,
                since: Instant::now(),
                size,
            },
        );
    }

    /// The content at `path` on `agent` is gone (overwritten, deleted):
    /// required if it lasted.
    fn end(&mut self, agent: usize, path: &str) {
        if let Some(live) = self.live.remove(&(agent, path.to_owned())) {
            self.settle(agent, path, live, Instant::now());
        }
    }

    fn settle(&mut self, agent: usize, path: &str, live: Live, until: Instant) {
        let needed = live.since + must_last(live.size);
        if until >= needed && live.size > 0 && self.healthy(agent, live.since, needed) {
            self.required.push(Required {
                sha256: live.sha256,
                what: format!("{path} as written on agent {agent}"),
            });
        }
    }

    fn moved(&mut self, agent: usize, from: &str, to: &str) {
        self.end(agent, to);
        let prefix = format!("{from}/");
        let keys: Vec<(usize, String)> = self
            .live
            .keys()
            .filter(|(a, p)| *a == agent && (p == from || p.starts_with(&prefix)))
            .cloned()
            .collect();
        for key in keys {
            let live = self.live.remove(&key).expect("listed");
            let new = format!("{to}{}", &key.1[from.len()..]);
            self.live.insert((agent, new), live);
        }
    }

    fn removed_tree(&mut self, agent: usize, dir: &str) {
        let prefix = format!("{dir}/");
        let keys: Vec<String> = self
            .live
            .keys()
            .filter(|(a, p)| *a == agent && p.starts_with(&prefix))
            .map(|(_, p)| p.clone())
            .collect();
        for path in keys {
            self.end(agent, &path);
        }
    }

    /// At the end: what is still in place and lasted is required too.
    pub fn close(&mut self) {
        let now = Instant::now();
        let live: Vec<((usize, String), Live)> = self.live.drain().collect();
        for ((agent, path), live) in live {
            self.settle(agent, &path, live, now);
        }
    }
}

/// Carries out `op` in `folder` (agent `agent`), recording what it wrote.
/// An operation whose subject is not there (renaming a file another agent
/// deleted) does nothing: users act on what they see.
pub fn apply(folder: &Folder, agent: usize, op: &Op, ledger: &Mutex<Ledger>) {
    let _user = folder.lock.lock().unwrap_or_else(|e| e.into_inner());
    let record = |path: &str| {
        if let Ok(bytes) = std::fs::read(folder.path(path)) {
            let sha = Sha256Hex::of(&bytes);
            lock(ledger).wrote(agent, path, sha, bytes.len() as u64);
        }
    };
    match op {
        // Whatever a write left on disk is what the user wrote: a write
        // that failed half-way (a full disk) included.
        Op::Write { path, size, seed } => {
            let _ = write_whole(
                &folder.path(path),
                &random_bytes(*seed, size.bytes() as usize),
            );
            record(path);
        }
        Op::EditorSave { path, size, seed } => {
            let target = folder.path(path);
            let temp = target.with_file_name(format!(
                ".{}.swp",
                target.file_name().and_then(|n| n.to_str()).unwrap_or("x")
            ));
            let bytes = random_bytes(*seed, size.bytes() as usize);
            // The temp file is in the folder too, and may be seen.
            lock(ledger).written.insert(Sha256Hex::of(&bytes));
            if write_whole(&temp, &bytes) && std::fs::rename(&temp, &target).is_ok() {
                record(path);
            } else {
                if let Ok(partial) = std::fs::read(&temp) {
                    lock(ledger).written.insert(Sha256Hex::of(&partial));
                }
                let _ = std::fs::remove_file(&temp);
            }
        }
        Op::Append { path, len, seed } => {
            let file = std::fs::OpenOptions::new()
                .append(true)
                .open(folder.path(path));
            if let Ok(mut file) = file {
                let _ = file.write_all(&random_bytes(*seed, *len as usize));
                drop(file);
                record(path);
            }
        }
        Op::Truncate { path, permille } => {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(folder.path(path));
            if let Ok(file) = file
                && let Ok(meta) = file.metadata()
                && meta.is_file()
            {
                let _ = file.set_len(meta.len() * permille / 1000);
                drop(file);
                record(path);
            }
        }
        Op::Patch {
            path,
            permille,
            len,
            seed,
        } => {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(folder.path(path));
            if let Ok(mut file) = file
                && let Ok(meta) = file.metadata()
                && meta.is_file()
                && file
                    .seek(SeekFrom::Start(meta.len() * permille / 1000))
                    .is_ok()
            {
                let _ = file.write_all(&random_bytes(*seed, *len as usize));
                drop(file);
                record(path);
            }
        }
        Op::Rename { from, to } => {
            let inside = to == from || to.starts_with(&format!("{from}/"));
            if !from.is_empty() && !to.is_empty() && !inside {
                let (source, target) = (folder.path(from), folder.path(to));
                let source_is_dir = source.is_dir();
                // A folder is never renamed over something; a file may
                // replace a file (as `mv` does), never a folder.
                let fits = match std::fs::symlink_metadata(&target) {
                    Ok(meta) => !source_is_dir && meta.is_file(),
                    Err(_) => true,
                };
                if source.exists() && fits {
                    if let Some(parent) = target.parent() {
                        let _ = std::fs::create_dir_all(parent);
                    }
                    if std::fs::rename(&source, &target).is_ok() {
                        lock(ledger).moved(agent, from, to);
                    }
                }
            }
        }
        Op::CaseRename { path } => {
            let twin = match path.rsplit_once('/') {
                Some((dir, "Notes.md")) => format!("{dir}/notes.md"),
                Some((dir, "notes.md")) => format!("{dir}/Notes.md"),
                None if path == "Notes.md" => "notes.md".to_owned(),
                None if path == "notes.md" => "Notes.md".to_owned(),
                _ => return,
            };
            rename_no_replace(folder, agent, path, &twin, ledger);
        }
        Op::NfdRename { path } => {
            if path.contains('é') {
                let nfd = path.replace('é', "e\u{301}");
                rename_no_replace(folder, agent, path, &nfd, ledger);
            }
        }
        Op::Delete { path } => {
            if std::fs::remove_file(folder.path(path)).is_ok() {
                lock(ledger).end(agent, path);
            }
        }
        Op::DeleteTree { dir } => {
            let target = folder.path(dir);
            if !dir.is_empty() && target.is_dir() && std::fs::remove_dir_all(&target).is_ok() {
                lock(ledger).removed_tree(agent, dir);
            }
        }
        Op::Mkdir { dir } => {
            let _ = std::fs::create_dir_all(folder.path(dir));
        }
        Op::Rmdir { dir } => {
            if !dir.is_empty() {
                let _ = std::fs::remove_dir(folder.path(dir));
            }
        }
        Op::SetExecutable { path, on } => {
            let target = folder.path(path);
            if target.is_file() {
                let mode = if *on { 0o755 } else { 0o644 };
                let _ = std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode));
            }
        }
    }
}

fn rename_no_replace(folder: &Folder, agent: usize, from: &str, to: &str, ledger: &Mutex<Ledger>) {
    let (source, target) = (folder.path(from), folder.path(to));
    if source.is_file()
        && std::fs::symlink_metadata(&target).is_err()
        && std::fs::rename(&source, &target).is_ok()
    {
        lock(ledger).moved(agent, from, to);
    }
}

/// Creates or overwrites `path` the way most programs save: truncate, then
/// write. Makes missing parent folders (the user would). `false` when
/// something on the way is not a folder.
fn write_whole(path: &Path, bytes: &[u8]) -> bool {
    if path.is_dir() {
        return false;
    }
    if let Some(parent) = path.parent()
        && std::fs::create_dir_all(parent).is_err()
    {
        return false;
    }
    std::fs::write(path, bytes).is_ok()
}

pub fn lock(ledger: &Mutex<Ledger>) -> std::sync::MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(|e| e.into_inner())
}
