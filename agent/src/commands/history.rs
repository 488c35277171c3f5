//! `sf-agent history PATH` lists a file's versions on the hub;
//! `sf-agent restore PATH [--version N]` makes one current again through
//! `POST /v1/restore`, so it reaches the folder (and every other agent's)
//! as an ordinary change. A local edit not yet sent meets the restored
//! version as any concurrent change does: it is kept as a conflict copy.

use serde_json::json;
use sf_protocol::SyncPath;
use sf_protocol::v1::{Entry, EntryKind};

use super::args::HubArgs;
use super::render::{Table, human_size, local_time};
use super::{CommandError, Report, agent_note, sync_path, synced_folder};
use crate::config::read_access;
use crate::hub_client::HubClient;
use crate::state::{MetaKey, State};

/// The folder, the path asked about and a client for its hub.
struct Target {
    root: std::path::PathBuf,
    path: SyncPath,
    hub: HubClient,
}

async fn target(at: &HubArgs, given: &std::path::Path) -> Result<Target, CommandError> {
    let root = synced_folder(at.dir.as_deref())?;
    let path = sync_path(&root, given)?;
    let access = read_access(
        at.token_file.as_deref(),
        &at.token_env,
        at.ca_cert.as_deref(),
    )?;
    let hubs = if at.hub.is_empty() {
        let state = State::open_existing(&root).await?;
        let last = state.meta(MetaKey::Hub).await?;
        state.close().await;
        match last {
            Some(url) => vec![url],
            None if !at.file_hub.is_empty() => at.file_hub.clone(),
            None => return Err(CommandError::NoHub { dir: root }),
        }
    } else {
        at.hub.clone()
    };
    let hub = HubClient::with_access(&hubs, &access)?;
    Ok(Target { root, path, hub })
}

/// The versions of `path`, or an error that says the hub never had it.
async fn versions(target: &Target) -> Result<Vec<Entry>, CommandError> {
    match target.hub.history(&target.path).await? {
        Some(versions) if !versions.is_empty() => Ok(versions),
        _ => Err(CommandError::Refused(format!(
            "the hub {} has no version of {}: check the path (relative to {})",
            target.hub.base_url(),
            target.path,
            target.root.display()
        ))),
    }
}

/// What a version is, in a word.
fn what(entry: &Entry) -> &'static str {
    match (entry.deleted, entry.kind) {
        (true, _) => "deleted",
        (false, EntryKind::Dir) => "folder",
        (false, EntryKind::File) => "file",
    }
}

fn entry_json(entry: &Entry, current: bool) -> serde_json::Value {
    json!({
        "version": entry.version,
        "current": current,
        "deleted": entry.deleted,
        "kind": entry.kind.as_str(),
        "size": entry.size,
        "sha256": entry.sha256.map(|s| s.to_string()),
        "origin": entry.origin,
        "committed_ms": entry.committed_ms,
    })
}

/// `sf-agent history PATH`.
pub async fn history(at: &HubArgs, given: &std::path::Path) -> Result<Report, CommandError> {
    let target = target(at, given).await?;
    let versions = versions(&target).await?;
    let newest = versions.last().map(|e| e.version);
    let mut table = Table::new(&[
        ("VERSION", true),
        ("COMMITTED", false),
        ("SIZE", true),
        ("BY", false),
        ("WHAT", false),
        ("SHA256", false),
    ]);
    for entry in &versions {
        let current = Some(entry.version) == newest;
        let content = !entry.deleted && entry.kind == EntryKind::File;
        table.row(vec![
            entry.version.to_string(),
            local_time(entry.committed_ms),
            if content {
                human_size(entry.size)
            } else {
                "-".into()
            },
            entry.origin.clone(),
            format!("{}{}", what(entry), if current { " (current)" } else { "" }),
            match entry.sha256 {
                Some(sha) if content => sha.to_string()[..12].to_owned(),
                _ => "-".into(),
            },
        ]);
    }
    let text = format!(
        "{} on {}: {} version{}\n{}",
        target.path,
        target.hub.base_url(),
        versions.len(),
        if versions.len() == 1 { "" } else { "s" },
        table.render()
    );
    let json = json!({
        "path": target.path.as_str(),
        "hub": target.hub.base_url(),
        "versions": versions
            .iter()
            .map(|e| entry_json(e, Some(e.version) == newest))
            .collect::<Vec<_>>(),
    });
    Ok(Report::new(text, json))
}

/// The version `sf-agent restore` brings back without `--version`: for a
/// deleted path, the last version with content; otherwise the newest
/// earlier version whose content differs from the current one.
pub(crate) fn default_version(versions: &[Entry]) -> Result<&Entry, String> {
    let Some((current, earlier)) = versions.split_last() else {
        return Err("the hub has no version of it".into());
    };
    let found = if current.deleted {
        earlier.iter().rev().find(|e| !e.deleted)
    } else {
        earlier
            .iter()
            .rev()
            .find(|e| !e.deleted && !e.same_content(current))
    };
    found.ok_or_else(|| {
        if current.deleted {
            "no version of it ever had content".into()
        } else {
            format!(
                "no earlier version has other content than the current one (version {})",
                current.version
            )
        }
    })
}

/// `sf-agent restore PATH [--version N]`.
pub async fn restore(
    at: &HubArgs,
    given: &std::path::Path,
    version: Option<u64>,
) -> Result<Report, CommandError> {
    let target = target(at, given).await?;
    let versions = versions(&target).await?;
    let current = versions.last().expect("versions() is never empty");
    let chosen = match version {
        Some(n) => versions.iter().find(|e| e.version == n).ok_or_else(|| {
            CommandError::Refused(format!(
                "{} has no version {n} (it has 1 to {}): see `sf-agent history {}`",
                target.path, current.version, target.path
            ))
        })?,
        None => default_version(&versions).map_err(|why| {
            CommandError::Refused(format!(
                "nothing to restore for {}: {why}; see `sf-agent history {}`",
                target.path, target.path
            ))
        })?,
    };
    if chosen.deleted {
        return Err(CommandError::Refused(format!(
            "version {} of {} is its deletion, which has no content; pick a version that has \
             content (see `sf-agent history {}`)",
            chosen.version, target.path, target.path
        )));
    }
    let origin = at.name.clone().unwrap_or_else(crate::config::host_name);
    let entry = target
        .hub
        .restore(&target.path, chosen.version, &origin)
        .await?;
    let changed = entry.version > current.version;
    let (running, note) = agent_note(&target.root, "brings it into the folder");
    let size = if entry.kind == EntryKind::File {
        human_size(entry.size)
    } else {
        "a folder".into()
    };
    let text = if changed {
        format!(
            "restored {} to the content of version {} ({size}, committed {} by {}): it is now \
             version {} on {}, and {note}\n",
            target.path,
            chosen.version,
            local_time(chosen.committed_ms),
            chosen.origin,
            entry.version,
            target.hub.base_url(),
        )
    } else {
        format!(
            "{} already holds the content of version {} (current version {}); nothing changed\n",
            target.path, chosen.version, entry.version
        )
    };
    let json = json!({
        "path": target.path.as_str(),
        "hub": target.hub.base_url(),
        "restored_version": chosen.version,
        "new_version": entry.version,
        "changed": changed,
        "kind": entry.kind.as_str(),
        "size": entry.size,
        "sha256": entry.sha256.map(|s| s.to_string()),
        "agent_running": running,
    });
    Ok(Report::new(text, json))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sf_protocol::Sha256Hex;

    fn version(n: u64, content: Option<&str>) -> Entry {
        Entry {
            path: SyncPath::parse("a.txt").unwrap(),
            kind: EntryKind::File,
            version: n,
            seq: n,
            sha256: content.map(|c| Sha256Hex::of(c.as_bytes())),
            size: content.map_or(0, |c| c.len() as u64),
            mtime_ns: 0,
            executable: false,
            deleted: content.is_none(),
            origin: "x".into(),
            committed_ms: 0,
            chunks: None,
        }
    }

    #[test]
    fn without_a_version_the_newest_other_content_or_the_last_before_a_deletion() {
        let pick = |versions: &[Entry]| default_version(versions).map(|e| e.version);
        // Undo: the version before the current one.
        assert_eq!(pick(&[version(1, Some("a")), version(2, Some("b"))]), Ok(1));
        // An earlier restore of the same content is passed over.
        let toggled = [
            version(1, Some("a")),
            version(2, Some("b")),
            version(3, Some("a")),
        ];
        assert_eq!(pick(&toggled), Ok(2));
        // A deletion in between is passed over.
        let recreated = [
            version(1, Some("a")),
            version(2, None),
            version(3, Some("b")),
        ];
        assert_eq!(pick(&recreated), Ok(1));
        // Deleted: the last version with content.
        let deleted = [
            version(1, Some("a")),
            version(2, Some("b")),
            version(3, None),
        ];
        assert_eq!(pick(&deleted), Ok(2));
        // Nothing to go back to.
        assert!(pick(&[version(1, Some("a"))]).is_err());
        assert!(pick(&[version(1, Some("a")), version(2, Some("a"))]).is_err());
        assert!(pick(&[]).is_err());
    }
}
