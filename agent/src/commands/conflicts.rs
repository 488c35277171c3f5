//! `sf-agent conflicts`: the conflict copies in the folder, each next to
//! the file it conflicts with; `--keep local|remote PATH` resolves one.
//!
//! - `--keep remote`: the file stays as it is (the hub's version); the
//!   conflict copy moves to the agent's trash, and the running agent
//!   deletes it on the hub, whose history keeps its bytes.
//! - `--keep local`: the copy's content (the version this side had) takes
//!   the file's place, the file's previous content moves to the agent's
//!   trash (and stays in the hub's history), and the copy's name is gone;
//!   the running agent uploads the file and deletes the copy on the hub.
//!
//! Both are renames in the folder ([`crate::apply`]), so the agent's own
//! checks apply: a file changed meanwhile on either side becomes a conflict
//! again, never a loss.

use std::path::Path;

use serde_json::json;
use sf_protocol::SyncPath;
use sf_protocol::conflict::{ConflictCopy, parse_conflict_copy};

use super::args::{FolderArgs, Keep};
use super::render::{Table, human_size, local_time, ms_of_ns};
use super::{CommandError, Report, agent_note, folder_change, sync_path, synced_folder};
use crate::apply;
use crate::scan::Stat;
use crate::state::STATE_DIR;

/// One conflict copy found in the folder.
struct Found {
    copy: SyncPath,
    parsed: ConflictCopy,
    copy_stat: Stat,
    /// The file it conflicts with, if it is there.
    original_stat: Option<Stat>,
}

/// `sf-agent conflicts [--keep local|remote PATH]`.
pub fn conflicts(
    at: &FolderArgs,
    keep: Option<Keep>,
    given: Option<&Path>,
) -> Result<Report, CommandError> {
    let root = synced_folder(at.dir.as_deref())?;
    let only = given.map(|g| sync_path(&root, g)).transpose()?;
    match (keep, only) {
        (Some(keep), Some(path)) => resolve(&root, keep, &path),
        (_, only) => list(&root, only.as_ref()),
    }
}

fn stat(path: &Path) -> Option<Stat> {
    std::fs::symlink_metadata(path).ok().map(|m| Stat::of(&m))
}

/// Every conflict copy under `dir` (the folder `prefix` of `root`),
/// links not followed, `.sf` passed over.
fn find(root: &Path, dir: &Path, prefix: &str, found: &mut Vec<Found>) -> Result<(), CommandError> {
    let io = |source| CommandError::Io {
        path: dir.to_owned(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if prefix.is_empty() && name == STATE_DIR {
            continue;
        }
        let relative = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() {
            find(root, &entry.path(), &relative, found)?;
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let Ok(copy) = SyncPath::parse(relative) else {
            continue;
        };
        let (Some(parsed), Some(copy_stat)) = (parse_conflict_copy(&copy), stat(&entry.path()))
        else {
            continue;
        };
        let original_stat = stat(&root.join(parsed.original.as_str()));
        found.push(Found {
            copy,
            parsed,
            copy_stat,
            original_stat,
        });
    }
    Ok(())
}

fn list(root: &Path, only: Option<&SyncPath>) -> Result<Report, CommandError> {
    let mut found = Vec::new();
    find(root, root, "", &mut found)?;
    if let Some(only) = only {
        found.retain(|f| f.copy == *only || f.parsed.original == *only);
    }
    found.sort_by(|a, b| (&a.parsed.original, &a.copy).cmp(&(&b.parsed.original, &b.copy)));
    let mut table = Table::new(&[
        ("FILE", false),
        ("SIZE", true),
        ("MODIFIED", false),
        ("CONFLICT COPY", false),
        ("SIZE", true),
        ("MODIFIED", false),
    ]);
    let size_and_time = |stat: Option<&Stat>| match stat {
        Some(s) => (human_size(s.size), local_time(ms_of_ns(s.mtime_ns))),
        None => ("-".into(), "(missing)".into()),
    };
    for f in &found {
        let (size, modified) = size_and_time(f.original_stat.as_ref());
        let (copy_size, copy_modified) = size_and_time(Some(&f.copy_stat));
        table.row(vec![
            f.parsed.original.to_string(),
            size,
            modified,
            f.copy.file_name().to_owned(),
            copy_size,
            copy_modified,
        ]);
    }
    let text = if found.is_empty() {
        format!("no conflict copies in {}\n", root.display())
    } else {
        format!(
            "{} conflict cop{} in {}\n{}\nResolve one with `sf-agent conflicts --keep local|remote PATH`: \
             local puts the copy's content in the file's place, remote keeps the file; either way \
             the bytes set aside go to the agent's trash and stay in the hub's history.\n",
            found.len(),
            if found.len() == 1 { "y" } else { "ies" },
            root.display(),
            table.render()
        )
    };
    let items: Vec<_> = found
        .iter()
        .map(|f| {
            json!({
                "copy": f.copy.as_str(),
                "original": f.parsed.original.as_str(),
                "origin": f.parsed.origin,
                "conflict_ms": (f.parsed.at.unix_timestamp_nanos() / 1_000_000) as i64,
                "copy_size": f.copy_stat.size,
                "copy_mtime_ms": ms_of_ns(f.copy_stat.mtime_ns),
                "original_size": f.original_stat.map(|s| s.size),
                "original_mtime_ms": f.original_stat.map(|s| ms_of_ns(s.mtime_ns)),
            })
        })
        .collect();
    let json = json!({ "folder": root.display().to_string(), "conflicts": items });
    Ok(Report::new(text, json))
}

/// The copy and the original `path` names: a copy itself, or a file with
/// exactly one copy.
fn pair(root: &Path, path: &SyncPath) -> Result<(SyncPath, SyncPath), CommandError> {
    if let Some(parsed) = parse_conflict_copy(path) {
        return Ok((path.clone(), parsed.original));
    }
    let dir = match path.parent() {
        Some(parent) => root.join(parent),
        None => root.to_owned(),
    };
    let mut copies: Vec<SyncPath> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| path.with_file_name(n).ok())
        })
        .filter(|c| parse_conflict_copy(c).is_some_and(|p| p.original == *path))
        .collect();
    copies.sort();
    match copies.len() {
        1 => Ok((copies.remove(0), path.clone())),
        0 => Err(CommandError::Refused(format!(
            "{path} is not a conflict copy and has none: see `sf-agent conflicts`"
        ))),
        _ => Err(CommandError::Refused(format!(
            "{path} has {} conflict copies; name the one to resolve:\n  {}",
            copies.len(),
            copies
                .iter()
                .map(SyncPath::as_str)
                .collect::<Vec<_>>()
                .join("\n  ")
        ))),
    }
}

fn resolve(root: &Path, keep: Keep, path: &SyncPath) -> Result<Report, CommandError> {
    let (copy, original) = pair(root, path)?;
    let (running, note) = agent_note(root, "syncs the change");
    let shown = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
    let (text, trashed) = match keep {
        Keep::Remote => {
            let kept = apply::move_to_trash(root, &copy).map_err(folder_change)?;
            let text = format!(
                "kept {original} as it is; moved the conflict copy {copy} to the agent's trash \
                 ({}), from where `sf-agent trash --restore` puts it back. The copy is deleted on \
                 the hub, whose history keeps it: {note}.\n",
                shown(&kept)
            );
            (text, Some(kept))
        }
        Keep::Local => {
            let kept = apply::take_copy_in_place(root, &copy, &original).map_err(folder_change)?;
            let before = match &kept {
                Some(kept) => format!(
                    "; its previous content is in the agent's trash ({}) and in the hub's history",
                    shown(kept)
                ),
                None => String::new(),
            };
            let text = format!(
                "{original} now holds the content of the conflict copy {copy}{before}. It is \
                 uploaded and the copy deleted on the hub: {note}.\n"
            );
            (text, kept)
        }
    };
    let json = json!({
        "kept": match keep { Keep::Local => "local", Keep::Remote => "remote" },
        "original": original.as_str(),
        "copy": copy.as_str(),
        "trashed": trashed.as_deref().map(shown),
        "agent_running": running,
    });
    Ok(Report::new(text, json))
}
