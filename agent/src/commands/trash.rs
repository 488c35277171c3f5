//! `sf-agent trash`: what the agent moved aside into `.sf/trash` (files
//! deleted on the hub, the losing side of a resolved conflict, a file an
//! interrupted download may have held), and `--restore PATH [--to PATH]`
//! to put one back.
//!
//! The trash is `.sf/trash/<YYYY-MM-DD>/<path>`; a name trashed twice in a
//! day goes to `.sf/trash/<YYYY-MM-DD>/<ms>-<n>/<path>`. Days older than
//! 30 are purged when the agent starts. A restore is a rename back into
//! the folder that never replaces anything there; the running agent then
//! uploads it as a new file.

use std::path::{Path, PathBuf};

use serde_json::json;
use sf_protocol::SyncPath;

use super::args::FolderArgs;
use super::render::{Table, human_size, local_time, ms_of_ns};
use super::{
    CommandError, Report, agent_note, folder_change, relative_path, sync_path, synced_folder,
};
use crate::apply::{self, ApplyError};
use crate::scan::Stat;
use crate::state::STATE_DIR;

/// One file in the trash.
struct Item {
    /// Where it was in the folder.
    path: String,
    /// Where it is, relative to `.sf/trash`.
    trashed: String,
    /// The day it was trashed (its folder's name), and the slot's time for
    /// a name trashed twice that day.
    day: String,
    slot_ms: i64,
    stat: Stat,
}

/// `<ms>-<n>`: the place of its own of a name trashed twice in a day.
fn slot_ms(name: &str) -> Option<i64> {
    let (ms, n) = name.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(ms) && digits(n) && ms.len() >= 12)
        .then(|| ms.parse().ok())
        .flatten()
}

fn is_day(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit())
}

fn names(dir: &Path) -> Vec<(String, std::fs::FileType)> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.file_type().ok()?)))
        .collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    names
}

/// The places of a day's trash: the day itself, and its slots.
fn places(trash: &Path) -> Vec<(String, i64, PathBuf, String)> {
    let mut places = Vec::new();
    for (day, kind) in names(trash) {
        if !kind.is_dir() || !is_day(&day) {
            continue;
        }
        places.push((day.clone(), 0, trash.join(&day), day.clone()));
        for (slot, kind) in names(&trash.join(&day)) {
            if let (true, Some(ms)) = (kind.is_dir(), slot_ms(&slot)) {
                let at = trash.join(&day).join(&slot);
                places.push((day.clone(), ms, at, format!("{day}/{slot}")));
            }
        }
    }
    places
}

/// Every file under `dir`, whose path in the folder starts with `prefix`.
fn files(dir: &Path, prefix: &str, top: bool, out: &mut Vec<(String, Stat)>) {
    for (name, kind) in names(dir) {
        if top && slot_ms(&name).is_some() && kind.is_dir() {
            continue;
        }
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        if kind.is_dir() {
            files(&dir.join(&name), &path, false, out);
        } else if kind.is_file()
            && let Ok(meta) = std::fs::symlink_metadata(dir.join(&name))
        {
            out.push((path, Stat::of(&meta)));
        }
    }
}

fn items(root: &Path) -> Vec<Item> {
    let trash = root.join(STATE_DIR).join("trash");
    let mut items = Vec::new();
    for (day, slot_ms, at, place) in places(&trash) {
        let mut found = Vec::new();
        files(&at, "", slot_ms == 0, &mut found);
        items.extend(found.into_iter().map(|(path, stat)| Item {
            trashed: format!("{place}/{path}"),
            path,
            day: day.clone(),
            slot_ms,
            stat,
        }));
    }
    // Newest first within each path.
    items.sort_by(|a, b| {
        (&a.path, &b.day, b.slot_ms, b.stat.mtime_ns).cmp(&(
            &b.path,
            &a.day,
            a.slot_ms,
            a.stat.mtime_ns,
        ))
    });
    items
}

/// `sf-agent trash [--restore PATH [--to PATH]]`.
pub fn trash(
    at: &FolderArgs,
    restore: Option<&Path>,
    to: Option<&Path>,
) -> Result<Report, CommandError> {
    let root = synced_folder(at.dir.as_deref())?;
    match restore {
        Some(given) => put_back(&root, given, to),
        None => Ok(list(&root)),
    }
}

fn list(root: &Path) -> Report {
    let items = items(root);
    let mut table = Table::new(&[
        ("PATH", false),
        ("TRASHED", false),
        ("SIZE", true),
        ("MODIFIED", false),
        ("IN .sf/trash", false),
    ]);
    for item in &items {
        table.row(vec![
            item.path.clone(),
            item.day.clone(),
            human_size(item.stat.size),
            local_time(ms_of_ns(item.stat.mtime_ns)),
            item.trashed.clone(),
        ]);
    }
    let text = if items.is_empty() {
        format!("the trash of {} is empty\n", root.display())
    } else {
        format!(
            "{} file{} in the trash of {} (kept 30 days)\n{}\nPut one back with `sf-agent trash \
             --restore PATH` (its newest copy, or a path in .sf/trash); nothing existing is \
             overwritten.\n",
            items.len(),
            if items.len() == 1 { "" } else { "s" },
            root.display(),
            table.render()
        )
    };
    let json_items: Vec<_> = items
        .iter()
        .map(|i| {
            json!({
                "path": i.path,
                "trash_path": format!("{STATE_DIR}/trash/{}", i.trashed),
                "trashed_on": i.day,
                "size": i.stat.size,
                "mtime_ms": ms_of_ns(i.stat.mtime_ns),
            })
        })
        .collect();
    let json = json!({ "folder": root.display().to_string(), "items": json_items });
    Report::new(text, json)
}

/// Which trashed item `given` names: a path in `.sf/trash`, or a path as
/// it was in the folder (its newest copy, file or folder). Returns the
/// item's place in `.sf/trash` and its path in the folder.
fn pick(root: &Path, given: &Path) -> Result<(String, String), CommandError> {
    let relative = relative_path(root, given)?;
    let trash_prefix = format!("{STATE_DIR}/trash/");
    if let Some(inside) = relative.strip_prefix(&trash_prefix) {
        let mut parts = inside.splitn(3, '/');
        let (Some(day), Some(next)) = (parts.next(), parts.next()) else {
            return Err(CommandError::Refused(format!(
                "{} is not an item of the trash: see `sf-agent trash`",
                given.display()
            )));
        };
        let path = match (slot_ms(next), parts.next()) {
            (Some(_), Some(rest)) => rest.to_owned(),
            (Some(_), None) => String::new(),
            (None, rest) => rest.map_or(next.to_owned(), |r| format!("{next}/{r}")),
        };
        if !is_day(day) || path.is_empty() || !root.join(&relative).exists() {
            return Err(CommandError::Refused(format!(
                "{} is not an item of the trash: see `sf-agent trash`",
                given.display()
            )));
        }
        return Ok((inside.to_owned(), path));
    }
    let trash = root.join(STATE_DIR).join("trash");
    let newest = places(&trash)
        .into_iter()
        .filter(|(_, _, at, _)| std::fs::symlink_metadata(at.join(&relative)).is_ok())
        .max_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    match newest {
        Some((_, _, _, place)) => Ok((format!("{place}/{relative}"), relative)),
        None => Err(CommandError::Refused(format!(
            "nothing of {relative} is in the trash of {}: see `sf-agent trash`",
            root.display()
        ))),
    }
}

fn put_back(root: &Path, given: &Path, to: Option<&Path>) -> Result<Report, CommandError> {
    let (trashed, was) = pick(root, given)?;
    let dest = match to {
        Some(to) => sync_path(root, to)?,
        None => SyncPath::parse(was.clone()).map_err(|err| CommandError::BadPath {
            path: given.to_owned(),
            why: err.to_string(),
        })?,
    };
    match apply::restore_from_trash(root, &trashed, &dest) {
        Ok(()) => {}
        Err(ApplyError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::AlreadyExists =>
        {
            return Err(CommandError::Refused(format!(
                "{dest} exists in the folder, and a restore never overwrites: move it away \
                 first, or restore under another name with --to PATH"
            )));
        }
        Err(err) => return Err(folder_change(err)),
    }
    let (running, note) = agent_note(root, "uploads it");
    let text = format!("restored {dest} from {STATE_DIR}/trash/{trashed}; {note}\n");
    let json = json!({
        "restored": dest.as_str(),
        "from": format!("{STATE_DIR}/trash/{trashed}"),
        "agent_running": running,
    });
    Ok(Report::new(text, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trash_is_listed_by_path_newest_first_and_put_back_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let trash = root.join(".sf/trash");
        let put = |rel: &str, bytes: &str| {
            let path = trash.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        };
        put("2026-11-23/docs/a.txt", "old");
        put("2026-11-24/docs/a.txt", "newer");
        put("2026-11-24/1795486717131-3/docs/a.txt", "newest");
        put("2026-11-24/b.txt", "b");
        std::fs::write(trash.join("stray"), "not a day").unwrap();
        std::fs::create_dir_all(root.join(".sf")).unwrap();

        let found: Vec<(String, String)> = items(&root)
            .into_iter()
            .map(|i| (i.path, i.trashed))
            .collect();
        assert_eq!(
            found,
            [
                ("b.txt".into(), "2026-11-24/b.txt".into()),
                (
                    "docs/a.txt".into(),
                    "2026-11-24/1795486717131-3/docs/a.txt".into()
                ),
                ("docs/a.txt".into(), "2026-11-24/docs/a.txt".into()),
                ("docs/a.txt".into(), "2026-11-23/docs/a.txt".into()),
            ]
        );

        let (trashed, was) = pick(&root, Path::new("docs/a.txt")).unwrap();
        assert_eq!(trashed, "2026-11-24/1795486717131-3/docs/a.txt");
        assert_eq!(was, "docs/a.txt");
        let (trashed, was) = pick(&root, Path::new(".sf/trash/2026-11-23/docs/a.txt")).unwrap();
        assert_eq!(
            (trashed.as_str(), was.as_str()),
            ("2026-11-23/docs/a.txt", "docs/a.txt")
        );
        // A whole folder, by its path.
        let (trashed, _) = pick(&root, Path::new("docs")).unwrap();
        assert_eq!(trashed, "2026-11-24/1795486717131-3/docs");
        assert!(pick(&root, Path::new("nothing.txt")).is_err());
        assert!(pick(&root, Path::new(".sf/trash/stray")).is_err());
    }
}
