//! `sf-agent status`: what is synced, pending, in conflict, and the last
//! error, from the folder and its state database alone.
//!
//! A receive-only agent (read-only token) never sends local changes: they
//! are listed as "local changes not sent (read-only token)" instead of
//! "pending upload".

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use sf_protocol::SyncPath;
use sf_protocol::v1::EntryKind;

use crate::ignore::IgnoreRules;
use crate::model::SyncedFile;
use crate::state::{State, StateError};

/// The report, as text.
pub async fn report(dir: &Path) -> Result<String, StateError> {
    let state = State::open_existing(dir).await?;
    let synced: HashMap<SyncPath, SyncedFile> = state.all_synced().await?.into_iter().collect();
    let remote = state.all_remote().await?;
    let rules = IgnoreRules::load(dir).unwrap_or_else(|_| IgnoreRules::defaults());
    let known = synced.clone();
    let root = dir.to_owned();
    let scan = tokio::task::spawn_blocking(move || {
        crate::scan::scan_without_renaming(&root, &rules, &|p| known.get(p).cloned())
    })
    .await
    .expect("scan does not panic")
    .map_err(|source| StateError::Io {
        path: dir.to_owned(),
        source,
    })?;

    let files = synced
        .values()
        .filter(|s| s.kind == EntryKind::File)
        .count();
    let folders = synced.len() - files;
    let mut to_upload: Vec<String> = scan
        .files
        .iter()
        .filter(|(path, local)| synced.get(*path).is_none_or(|s| !s.matches(local)))
        .map(|(path, _)| path.to_string())
        .collect();
    to_upload.extend(
        synced
            .keys()
            .filter(|p| !scan.files.contains_key(*p) && !scan.is_uncertain(p))
            .map(|p| format!("{p} (deleted)")),
    );
    to_upload.sort();
    let problems = state.problems().await?;
    // Hub entries the agent skips (invalid, a name this system cannot hold,
    // a path through a symlink): reported on their own, not as pending.
    let skipped: Vec<&crate::state::Problem> = problems
        .iter()
        .filter(|p| p.kind == "error" && is_skipped_entry(&p.detail))
        .collect();
    let skipped_entries: Vec<String> = skipped
        .iter()
        .map(|p| format!("{}: {}", p.path, p.detail))
        .collect();
    let skipped_paths: std::collections::HashSet<&str> =
        skipped.iter().map(|p| p.path.as_str()).collect();
    let to_download: Vec<String> = remote
        .iter()
        .filter(|e| !skipped_paths.contains(e.path.as_str()))
        .filter(|e| match synced.get(&e.path) {
            Some(s) => s.version != e.version,
            None => !e.deleted,
        })
        .map(|e| e.path.to_string())
        .collect();

    let mut out = String::new();
    let hub = state
        .meta("hub")
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
    // The scope the agent last learnt from the hub.
    let read_only = state.meta("scope").await?.as_deref() == Some("read");
    if read_only {
        let _ = writeln!(
            out,
            "access:   read-only token (receive-only: the hub's changes are applied, local ones are kept here)"
        );
        list(
            &mut out,
            "local changes not sent (read-only token)",
            &to_upload,
        );
    } else {
        list(&mut out, "pending upload", &to_upload);
    }
    list(&mut out, "pending download", &to_download);
    list(&mut out, "hub changes not applied", &skipped_entries);
    let conflicts: Vec<String> = problems
        .iter()
        .filter(|p| p.kind == "conflict")
        .map(|p| format!("{} — {}", p.path, p.detail))
        .collect();
    list(&mut out, "conflict copies", &conflicts);
    let errors: Vec<String> = problems
        .iter()
        .filter(|p| p.kind == "error" && !is_skipped_entry(&p.detail))
        .map(|p| format!("{}: {}", p.path, p.detail))
        .collect();
    list(&mut out, "errors", &errors);
    let skipped: Vec<String> = scan
        .skipped
        .iter()
        .map(|(p, why)| format!("{p}: {why}"))
        .collect();
    list(&mut out, "not synced", &skipped);
    match state.meta("last_error").await? {
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

fn list(out: &mut String, title: &str, items: &[String]) {
    let _ = writeln!(out, "{title}: {}", items.len());
    for item in items.iter().take(20) {
        let _ = writeln!(out, "  {item}");
    }
    if items.len() > 20 {
        let _ = writeln!(out, "  … and {} more", items.len() - 20);
    }
}

/// Whether a problem's detail is a hub entry the agent skips (see
/// `engine/trust.rs`): those start "not applied:" or "refused:".
fn is_skipped_entry(detail: &str) -> bool {
    detail.starts_with("not applied:") || detail.starts_with("refused:")
}
