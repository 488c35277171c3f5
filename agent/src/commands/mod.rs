//! The agent's commands besides syncing: `history` and `restore` (a file's
//! versions on the hub), `conflicts` (listing and resolving conflict
//! copies), `trash` (what the agent moved aside, and putting it back) and
//! `install-service` (a systemd user unit).
//!
//! Each works on one synced folder (`--dir`, or the config file's `dir`)
//! and changes it only the way a user would: a restore is made on the hub
//! and arrives in the folder through the agent like any other change; a
//! resolved conflict or a restored trash item is a rename in the folder,
//! which the running agent (or its next run) syncs. Nothing is deleted:
//! whatever a command takes out of the folder goes to the agent's trash,
//! and the hub keeps every version.
//!
//! Each command returns a report that prints as text for a person
//! ([`Report::text`]) or as JSON for scripts ([`Report::json`]; the fields
//! are documented in the README).
//!
//! Layout: `args` the command line, `render` tables, sizes and times,
//! `history` history and restore, `conflicts`, `trash`, `service`.

pub mod args;
mod conflicts;
mod history;
pub mod render;
mod service;
mod trash;

use std::path::{Component, Path, PathBuf};

use sf_protocol::SyncPath;
use unicode_normalization::UnicodeNormalization;

pub use conflicts::conflicts;
pub use history::{history, restore};
pub use service::{EXIT_CONFIG, ServiceError, install_service, unit_name, unit_text};
pub use trash::trash;

use crate::apply::ApplyError;
use crate::credentials::CredentialsError;
use crate::hub_client::HubError;
use crate::state::{STATE_DIR, StateError};

/// Why a command did not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("no folder given: pass --dir, set SYNC_DIR, or set `dir` in the config file")]
    NoFolder,
    #[error(
        "{dir} is not a folder an agent syncs (it has no {STATE_DIR}/state.db): pass the --dir \
         of a synced folder"
    )]
    NotSynced { dir: PathBuf },
    #[error(
        "{path} is outside the synced folder {root}: give a path inside it, or one relative to it"
    )]
    OutsideFolder { path: PathBuf, root: PathBuf },
    #[error("{path}: {why}")]
    BadPath { path: PathBuf, why: String },
    #[error(
        "no hub is known for {dir}: pass --hub URL (its agent has not synced yet, and the config \
         file names none)"
    )]
    NoHub { dir: PathBuf },
    /// What was asked cannot be done; the message says why and what to do.
    #[error("{0}")]
    Refused(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error(transparent)]
    Apply(FolderChangeFailed),
}

/// A change to the folder that was not made (see `crate::apply`): it says
/// what was in the way.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct FolderChangeFailed(ApplyError);

impl CommandError {
    /// Whether this is a setting to fix (no folder or hub, the token
    /// unreadable or refused) rather than something that may pass: the
    /// binary exits with [`EXIT_CONFIG`] for it.
    pub fn is_setting(&self) -> bool {
        matches!(
            self,
            CommandError::NoFolder
                | CommandError::NoHub { .. }
                | CommandError::Credentials(_)
                | CommandError::Hub(HubError::Unauthorized(_))
        )
    }
}

/// A failed folder change as a [`CommandError`] (not a `From`: that
/// would make `ApplyError` part of the public interface).
pub(crate) fn folder_change(err: ApplyError) -> CommandError {
    CommandError::Apply(FolderChangeFailed(err))
}

/// What a command did or found, for a person or a script.
pub struct Report {
    text: String,
    json: serde_json::Value,
}

impl Report {
    pub(crate) fn new(text: String, json: serde_json::Value) -> Self {
        Report { text, json }
    }

    /// For a terminal.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// For scripts: one JSON document.
    pub fn json(&self) -> String {
        self.json.to_string()
    }
}

/// The synced folder: `dir` resolved, with its `.sf` state present.
pub(crate) fn synced_folder(dir: Option<&Path>) -> Result<PathBuf, CommandError> {
    let dir = dir.ok_or(CommandError::NoFolder)?;
    let root = dir.canonicalize().map_err(|source| CommandError::Io {
        path: dir.to_owned(),
        source,
    })?;
    if !root.join(STATE_DIR).join("state.db").is_file() {
        return Err(CommandError::NotSynced { dir: root });
    }
    Ok(root)
}

/// `given` (relative to the folder `root`, or absolute) as a path relative
/// to `root`, '/'-separated, in Unicode NFC; the path need not exist.
/// `root` must be canonical.
pub(crate) fn relative_path(root: &Path, given: &Path) -> Result<String, CommandError> {
    let bad = |why: &str| CommandError::BadPath {
        path: given.to_owned(),
        why: why.to_owned(),
    };
    let joined = if given.is_absolute() {
        given.to_owned()
    } else {
        root.join(given)
    };
    let mut lexical = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                lexical.pop();
            }
            other => lexical.push(other),
        }
    }
    // The folders that exist are resolved (links, `..`), so a path through
    // a link to elsewhere is outside; the last name is taken as it is.
    let name = lexical.file_name().map(ToOwned::to_owned);
    let mut existing = lexical.parent().map(Path::to_path_buf);
    let mut missing = Vec::new();
    while let Some(dir) = existing.take() {
        match dir.canonicalize() {
            Ok(real) => {
                existing = Some(real);
                break;
            }
            Err(_) => {
                missing.extend(dir.file_name().map(ToOwned::to_owned));
                existing = dir.parent().map(Path::to_path_buf);
            }
        }
    }
    let mut full = existing.unwrap_or_default();
    full.extend(missing.iter().rev());
    full.extend(name);
    let relative = full
        .strip_prefix(root)
        .map_err(|_| CommandError::OutsideFolder {
            path: given.to_owned(),
            root: root.to_owned(),
        })?;
    if relative.as_os_str().is_empty() {
        return Err(bad("is the synced folder itself; name a file in it"));
    }
    let mut parts = Vec::new();
    for part in relative.components() {
        let part = part
            .as_os_str()
            .to_str()
            .ok_or_else(|| bad("is not valid UTF-8, so it cannot be a synced path"))?;
        parts.push(part.nfc().collect::<String>());
    }
    Ok(parts.join("/"))
}

/// `given` as the synced path it names (see [`relative_path`]).
pub(crate) fn sync_path(root: &Path, given: &Path) -> Result<SyncPath, CommandError> {
    let relative = relative_path(root, given)?;
    SyncPath::parse(relative).map_err(|err| CommandError::BadPath {
        path: given.to_owned(),
        why: err.to_string(),
    })
}

/// Whether an agent syncs the folder at `root` now, and a sentence saying
/// that it `does` (e.g. "uploads it") now or at its next run.
pub(crate) fn agent_note(root: &Path, does: &str) -> (bool, String) {
    match crate::state::State::running_agent(root) {
        Some(pid) => (
            true,
            format!("the agent syncing this folder (pid {pid}) {does} now"),
        ),
        None => (
            false,
            format!("no agent syncs this folder now: `sf-agent` {does} when it next runs on it"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_taken_relative_to_the_folder_or_absolute_inside_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("docs")).unwrap();
        let rel = |p: &str| relative_path(&root, Path::new(p));
        assert_eq!(rel("docs/a.txt").unwrap(), "docs/a.txt");
        assert_eq!(rel("./docs/../docs/./a.txt").unwrap(), "docs/a.txt");
        assert_eq!(rel("new/deeper/b.txt").unwrap(), "new/deeper/b.txt");
        let absolute = root.join("docs/a.txt");
        assert_eq!(rel(absolute.to_str().unwrap()).unwrap(), "docs/a.txt");
        // NFD in, NFC out.
        assert_eq!(rel("cafe\u{301}.txt").unwrap(), "caf\u{e9}.txt");

        for outside in ["../elsewhere.txt", "/etc/passwd", "docs/../../x"] {
            let err = rel(outside).unwrap_err();
            assert!(
                matches!(err, CommandError::OutsideFolder { .. }),
                "{outside}: {err}"
            );
            assert!(
                err.to_string().contains("outside the synced folder"),
                "{err}"
            );
        }
        assert!(matches!(rel("."), Err(CommandError::BadPath { .. })));
        let err = sync_path(&root, Path::new(".sf/state.db")).unwrap_err();
        assert!(err.to_string().contains("reserved"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_link_out_of_the_folder_is_outside() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::os::unix::fs::symlink(other.path(), root.join("out")).unwrap();
        let err = relative_path(&root, Path::new("out/x.txt")).unwrap_err();
        assert!(matches!(err, CommandError::OutsideFolder { .. }), "{err}");
    }
}
