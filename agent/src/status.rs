//! `sf-agent status`: what is synced, pending, in conflict, and the last
//! error, from the folder and its state database alone.

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
    let to_download: Vec<String> = remote
        .iter()
        .filter(|e| match synced.get(&e.path) {
            Some(s) => s.version != e.version,
            None => !e.deleted,
        })
        .map(|e| e.path.to_string())
        .collect();
    let problems = state.problems().await?;

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
    list(&mut out, "pending upload", &to_upload);
    list(&mut out, "pending download", &to_download);
    let conflicts: Vec<String> = problems
        .iter()
        .filter(|p| p.kind == "conflict")
        .map(|p| format!("{} — {}", p.path, p.detail))
        .collect();
    list(&mut out, "conflict copies", &conflicts);
    let errors: Vec<String> = problems
        .iter()
        .filter(|p| p.kind == "error")
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
