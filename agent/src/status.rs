//! `sf-agent status`: what is synced, what the engine would do next, what
//! is in conflict, and the last error, from the folder and its state
//! database alone.
//!
//! It goes through the engine's own walk (`crate::walk`) and decision
//! (`crate::reconcile`), grouping paths by what the engine would do with
//! them, so it never reports something the engine would not do (a file the
//! hub deleted is "to move to the trash", not "to download"). Like the
//! engine's full scan it holds one directory window at a time, and each
//! list keeps only its first entries and a count, so its memory does not
//! grow with the folder. It changes nothing: names not in Unicode NFC are
//! reported under their NFC path and left as they are.
//!
//! A receive-only agent (read-only token) never sends local changes: they
//! are listed as "local changes not sent (read-only token)" instead of
//! "pending upload".

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;

use crate::ignore::IgnoreRules;
use crate::reconcile::{Action, Direction, decide};
use crate::scan::Names;
use crate::state::{MetaKey, ProblemKind, State, StateError};
use crate::walk::{Item, Look, Unsettled, Walk, WalkError};

/// Entries each list shows; the rest are counted.
const SHOWN: usize = 20;

/// Why there is no report.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Walk(#[from] WalkError),
}

/// A titled list that shows its first [`SHOWN`] entries and counts all.
struct List {
    title: &'static str,
    count: u64,
    shown: Vec<String>,
}

impl List {
    fn new(title: &'static str) -> Self {
        List {
            title,
            count: 0,
            shown: Vec::new(),
        }
    }

    fn push(&mut self, item: impl FnOnce() -> String) {
        self.count += 1;
        if self.shown.len() < SHOWN {
            self.shown.push(item());
        }
    }

    fn write(&mut self, out: &mut String) {
        self.shown.sort();
        let _ = writeln!(out, "{}: {}", self.title, self.count);
        for item in &self.shown {
            let _ = writeln!(out, "  {item}");
        }
        if self.count > self.shown.len() as u64 {
            let _ = writeln!(out, "  … and {} more", self.count - self.shown.len() as u64);
        }
    }
}

/// What the walk found, by what the engine would do.
struct Pending {
    /// Uploads and deletions on the hub (or, receive-only, the local
    /// changes that are not sent).
    send: List,
    download: List,
    trash: List,
    conflict: List,
    unsettled: List,
    skipped: List,
}

impl Pending {
    fn new(direction: Direction) -> Self {
        let send = match direction {
            Direction::SendReceive => "pending upload",
            Direction::ReceiveOnly => "local changes not sent (read-only token)",
        };
        Pending {
            send: List::new(send),
            download: List::new("pending download"),
            trash: List::new("pending move to the trash (deleted on the hub)"),
            conflict: List::new(
                "pending conflicts (changed on both sides: the local version will be kept as a copy)",
            ),
            unsettled: List::new("not readable or changing now (looked at again shortly)"),
            skipped: List::new("not synced"),
        }
    }

    fn note(&mut self, path: &sf_protocol::SyncPath, action: Action) {
        match action {
            Action::Upload { .. } => self.send.push(|| path.to_string()),
            Action::DeleteRemote { .. } => self.send.push(|| format!("{path} (deleted)")),
            Action::Download => self.download.push(|| path.to_string()),
            Action::TrashLocal => self.trash.push(|| path.to_string()),
            Action::ConflictCopyThenDownload | Action::SetAsideThenDownload => {
                self.conflict.push(|| path.to_string());
            }
            Action::Nothing | Action::Record | Action::Forget => {}
        }
    }
}

/// The report, as text.
pub async fn report(dir: &Path) -> Result<String, StatusError> {
    let state = State::open_existing(dir).await?;
    let read_only = state.meta(MetaKey::Scope).await?.as_deref() == Some("read");
    let direction = if read_only {
        Direction::ReceiveOnly
    } else {
        Direction::SendReceive
    };
    let problems = state.problems().await?;
    // Hub entries the engine refused (invalid, a name this system cannot
    // hold, a path through a symlink): reported on their own, never pending.
    let refused: HashSet<&str> = problems
        .iter()
        .filter(|p| p.kind == ProblemKind::Refused)
        .map(|p| p.path.as_str())
        .collect();

    let rules = IgnoreRules::load(dir).unwrap_or_else(|_| IgnoreRules::defaults());
    let mut pending = Pending::new(direction);
    let mut walk = Walk::new(dir.to_owned(), rules, Names::AsTheyAre, Look::Content);
    while let Some(item) = walk.next(&state).await? {
        match item {
            Item::Window(window) => {
                for (path, why) in &window.unsettled {
                    pending.unsettled.push(|| match why {
                        Unsettled::Unreadable(reason) => format!("{path}: {reason}"),
                        Unsettled::Busy => format!("{path}: changing"),
                    });
                }
                for (path, reason) in &window.skipped {
                    pending.skipped.push(|| format!("{path}: {reason}"));
                }
                let excluded = |p: &sf_protocol::SyncPath| refused.contains(p.as_str());
                if direction == Direction::ReceiveOnly {
                    // What a token that may write would send: kept here.
                    for path in window.paths.iter().filter(|p| !excluded(p)) {
                        let (_, local, synced, remote) = window.views.of(path);
                        let action = decide(local, synced, remote).action();
                        if action.writes_to_hub() {
                            pending.note(path, action);
                        }
                    }
                }
                for (path, decision) in walk.plan(&window, direction, &excluded) {
                    pending.note(&path, decision.action());
                }
            }
            Item::Remove { path, decision } => pending.note(&path, decision.action()),
            Item::Unlistable { dir, error } => {
                pending
                    .unsettled
                    .push(|| format!("{dir}: cannot list the directory: {error}"));
            }
        }
    }

    let (files, folders) = state.synced_counts().await?;
    let mut out = String::new();
    let hub = state
        .meta(MetaKey::Hub)
        .await?
        .unwrap_or_else(|| "(never connected)".into());
    let _ = writeln!(out, "folder:   {}", dir.display());
    let _ = writeln!(out, "hub:      {hub}");
    let _ = match State::running_agent(dir) {
        Some(pid) => writeln!(out, "agent:    running (pid {pid})"),
        None => writeln!(out, "agent:    not running"),
    };
    let _ = writeln!(
        out,
        "synced:   {files} files, {folders} folders (hub seq {})",
        state.last_seq().await?
    );
    if read_only {
        let _ = writeln!(
            out,
            "access:   read-only token (receive-only: the hub's changes are applied, local ones are kept here)"
        );
    }
    pending.send.write(&mut out);
    pending.download.write(&mut out);
    pending.trash.write(&mut out);
    pending.conflict.write(&mut out);
    let mut lists = [
        (ProblemKind::Refused, List::new("hub changes not applied")),
        (ProblemKind::Conflict, List::new("conflict copies")),
        (ProblemKind::Error, List::new("errors")),
    ];
    for (kind, list) in &mut lists {
        for problem in problems.iter().filter(|p| p.kind == *kind) {
            list.push(|| match kind {
                ProblemKind::Conflict => format!("{} — {}", problem.path, problem.detail),
                _ => format!("{}: {}", problem.path, problem.detail),
            });
        }
        list.write(&mut out);
    }
    pending.unsettled.write(&mut out);
    pending.skipped.write(&mut out);
    match state.meta(MetaKey::LastError).await? {
        Some(err) => {
            let _ = writeln!(out, "last error: {err}");
        }
        None => {
            let _ = writeln!(out, "last error: none");
        }
    }
    state.close().await;
    Ok(out)
}

#[cfg(test)]
mod tests;
