//! Whether the folders and the hub agree, and what differs when not.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use sf_protocol::Sha256Hex;
use sf_protocol::v1::{Entry, EntryKind};

use crate::files::file_sha256;
use crate::hub_queries::{get_changes, get_index, http_client};

/// A file as one side holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileState {
    sha256: Sha256Hex,
    size: Option<u64>,
    /// `None` where the side cannot say (the hub's feed lags its index).
    executable: Option<bool>,
}

impl FileState {
    fn same(&self, other: &FileState) -> bool {
        self.sha256 == other.sha256
            && self.executable.is_some()
            && self.executable == other.executable
    }

    fn describe(&self) -> String {
        let mut text = self.sha256.to_hex()[..12].to_owned();
        if let Some(size) = self.size {
            write!(text, " {size} B").unwrap();
        }
        match self.executable {
            Some(true) => text.push_str(" +x"),
            Some(false) => {}
            None => text.push_str(" x?"),
        }
        text
    }
}

/// What one side (a folder or the hub) holds.
#[derive(Debug, Default)]
struct View {
    label: String,
    files: BTreeMap<String, FileState>,
    dirs: BTreeSet<String>,
    error: Option<String>,
}

/// Polls until every folder in `dirs` (ignoring its `.sf/`) and the hub hold
/// the same files with the same sha256 and executable bit, and the same
/// directories (the hub's are its live directory entries). On timeout, says
/// per path what each side holds.
pub async fn wait_converged(
    dirs: &[&Path],
    hub_url: &str,
    timeout: Duration,
) -> Result<(), String> {
    wait_converged_except(dirs, hub_url, timeout, |_, _| false).await
}

/// [`wait_converged`], leaving out of the folders' views the paths for which
/// `local_only(relative_path, is_dir)` is true (and everything below such a
/// directory): files that exist in one folder only by design, such as
/// ignored ones. The hub's view is never filtered.
pub async fn wait_converged_except(
    dirs: &[&Path],
    hub_url: &str,
    timeout: Duration,
    local_only: impl Fn(&str, bool) -> bool,
) -> Result<(), String> {
    let http = http_client();
    let mut feed = HubFeed::default();
    let started = Instant::now();
    let deadline = started + timeout;
    loop {
        let poll_started = Instant::now();
        let mut views: Vec<View> = dirs
            .iter()
            .map(|dir| tokio::task::block_in_place(|| folder_view(dir, &local_only)))
            .collect();
        views.push(hub_view(&http, hub_url, &mut feed).await);
        let Some(diff) = differences(&views) else {
            eprintln!(
                "converged after {:.1}s: {} files, {} dirs",
                started.elapsed().as_secs_f64(),
                views[0].files.len(),
                views[0].dirs.len()
            );
            return Ok(());
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "not converged after {timeout:?} (sides: {}):\n{diff}",
                views
                    .iter()
                    .map(|v| v.label.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        // Keep polling cheap next to the processes under test: at most a
        // third of one core, however large the folders.
        let pause = (poll_started.elapsed() * 2).max(Duration::from_millis(250));
        tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

/// `None` when all views agree, else one line per differing path.
fn differences(views: &[View]) -> Option<String> {
    const MAX_LINES: usize = 60;
    let mut lines = Vec::new();
    for view in views {
        if let Some(err) = &view.error {
            lines.push(format!("{}: cannot read: {err}", view.label));
        }
    }
    let all_files: BTreeSet<&String> = views.iter().flat_map(|v| v.files.keys()).collect();
    let mut file_lines = 0;
    for path in all_files {
        let states: Vec<Option<&FileState>> = views.iter().map(|v| v.files.get(path)).collect();
        let agree = match states[0] {
            Some(first) => states.iter().all(|s| s.is_some_and(|s| s.same(first))),
            None => false,
        };
        if agree {
            continue;
        }
        file_lines += 1;
        if lines.len() < MAX_LINES {
            let sides: Vec<String> = views
                .iter()
                .zip(&states)
                .map(|(v, s)| {
                    format!(
                        "{}={}",
                        v.label,
                        s.map_or("missing".to_owned(), |s| s.describe())
                    )
                })
                .collect();
            lines.push(format!("file {path:?}: {}", sides.join(" | ")));
        }
    }
    let all_dirs: BTreeSet<&String> = views.iter().flat_map(|v| v.dirs.iter()).collect();
    let mut dir_lines = 0;
    for path in all_dirs {
        let present: Vec<bool> = views.iter().map(|v| v.dirs.contains(path)).collect();
        if present.iter().all(|p| *p) {
            continue;
        }
        dir_lines += 1;
        if lines.len() < MAX_LINES {
            let sides: Vec<String> = views
                .iter()
                .zip(&present)
                .map(|(v, p)| format!("{}={}", v.label, if *p { "present" } else { "missing" }))
                .collect();
            lines.push(format!("dir {path:?}: {}", sides.join(" | ")));
        }
    }
    if lines.is_empty() {
        return None;
    }
    let mut text = format!(
        "{file_lines} file(s) and {dir_lines} dir(s) differ; counts: {}\n",
        views
            .iter()
            .map(|v| format!("{} {} files/{} dirs", v.label, v.files.len(), v.dirs.len()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let shown = lines.len();
    text.push_str(&lines.join("\n"));
    if file_lines + dir_lines > shown {
        write!(text, "\n… and {} more", file_lines + dir_lines - shown).unwrap();
    }
    Some(text)
}

fn label_of(dir: &Path) -> String {
    dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Digests by (path, size, mtime, ctime, inode), so polling a large folder
/// reads each file once.
type HashCache = HashMap<PathBuf, ((u64, i64, i64, i64, u64), Sha256Hex)>;

fn hash_cache() -> &'static Mutex<HashCache> {
    static CACHE: OnceLock<Mutex<HashCache>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn folder_view(dir: &Path, local_only: &dyn Fn(&str, bool) -> bool) -> View {
    let mut view = View {
        label: label_of(dir),
        ..View::default()
    };
    if !dir.is_dir() {
        view.error = Some(format!("{} is not a directory", dir.display()));
        return view;
    }
    let mut pending = vec![(dir.to_path_buf(), String::new())];
    while let Some((local, relative)) = pending.pop() {
        let entries = match fs::read_dir(&local) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => {
                view.error = Some(format!("cannot list {}: {err}", local.display()));
                continue;
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if relative.is_empty() && name == ".sf" {
                continue;
            }
            let rel = if relative.is_empty() {
                name
            } else {
                format!("{relative}/{name}")
            };
            let path = entry.path();
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                if local_only(&rel, true) {
                    continue;
                }
                view.dirs.insert(rel.clone());
                pending.push((path, rel));
            } else if meta.is_file() {
                if local_only(&rel, false) {
                    continue;
                }
                let Some(sha256) = cached_digest(&path, &meta) else {
                    continue;
                };
                view.files.insert(
                    rel,
                    FileState {
                        sha256,
                        size: Some(meta.len()),
                        executable: Some(meta.permissions().mode() & 0o111 != 0),
                    },
                );
            }
        }
    }
    view
}

fn cached_digest(path: &Path, meta: &fs::Metadata) -> Option<Sha256Hex> {
    let key = (
        meta.len(),
        meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
        meta.ino() as i64,
        meta.dev(),
    );
    if let Some((cached, sha)) = hash_cache().lock().unwrap().get(path)
        && *cached == key
    {
        return Some(*sha);
    }
    let sha = file_sha256(path).ok()?;
    hash_cache()
        .lock()
        .unwrap()
        .insert(path.to_path_buf(), (key, sha));
    Some(sha)
}

/// The hub's change feed, read incrementally: the latest entry per path.
#[derive(Default)]
struct HubFeed {
    since: u64,
    latest: HashMap<String, Entry>,
}

impl HubFeed {
    async fn refresh(&mut self, http: &reqwest::Client, hub_url: &str) -> Result<(), String> {
        loop {
            let url = format!("{hub_url}/v1/changes?since={}&limit=10000", self.since);
            let page = get_changes(http, &url).await?;
            let Some(last) = page.changes.last().map(|e| e.seq) else {
                return Ok(());
            };
            for entry in page.changes {
                self.latest.insert(entry.path.as_str().to_owned(), entry);
            }
            self.since = last;
            if last >= page.head {
                return Ok(());
            }
        }
    }
}

/// Files from `GET /index` (executable bits from the change feed), live
/// directories from the change feed.
async fn hub_view(http: &reqwest::Client, hub_url: &str, feed: &mut HubFeed) -> View {
    let mut view = View {
        label: "hub".to_owned(),
        ..View::default()
    };
    let index = match get_index(http, &format!("{hub_url}/index")).await {
        Ok(index) => index,
        Err(err) => {
            view.error = Some(err);
            return view;
        }
    };
    if let Err(err) = feed.refresh(http, hub_url).await {
        view.error = Some(err);
        return view;
    }
    for (path, entry) in index.index {
        let from_feed = feed
            .latest
            .get(&path)
            .filter(|e| !e.deleted && e.sha256 == Some(entry.sha));
        view.files.insert(
            path,
            FileState {
                sha256: entry.sha,
                size: from_feed.map(|e| e.size),
                executable: from_feed.map(|e| e.executable),
            },
        );
    }
    view.dirs = feed
        .latest
        .values()
        .filter(|e| e.kind == EntryKind::Dir && !e.deleted)
        .map(|e| e.path.as_str().to_owned())
        .collect();
    view
}

/// Polls `done()` every 50 ms until it holds or `timeout` passes.
pub async fn wait_until(
    timeout: Duration,
    what: &str,
    mut done: impl FnMut() -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if tokio::task::block_in_place(&mut done) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("`{what}` did not happen within {timeout:?}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every regular file under `dir` (not in its top-level `.sf`), relative
/// path → sha256.
pub fn folder_files(dir: &Path) -> BTreeMap<String, Sha256Hex> {
    tokio::task::block_in_place(|| folder_view(dir, &|_, _| false))
        .files
        .into_iter()
        .map(|(p, f)| (p, f.sha256))
        .collect()
}

/// Every directory under `dir` (not its top-level `.sf`), relative paths.
pub fn folder_dirs(dir: &Path) -> BTreeSet<String> {
    tokio::task::block_in_place(|| folder_view(dir, &|_, _| false)).dirs
}
