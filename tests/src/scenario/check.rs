//! The invariants a scenario ends on, and the sampler that watches for torn
//! files while it runs.
//!
//! - Nothing lost: every required content (see `ops`) is in some agent's
//!   folder (conflict copies included), an agent's trash, or the hub's
//!   history.
//! - No torn files: every content the sampler read from an agent's folder
//!   is one a user operation wrote.
//! - No panic in any log, and `sf-agent status` lists nothing pending and
//!   no error once everything settled.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sf_protocol::Sha256Hex;

use super::ops::{Folder, Ledger, lock};

/// What the sampler saw.
#[derive(Debug, Default)]
pub struct Sampled {
    pub reads: u64,
    /// Files whose content no user operation wrote: path and sha256.
    pub torn: Vec<String>,
}

/// Reads every file of every folder over and over until `stop`, checking
/// each content against the ledger.
pub fn spawn_sampler(
    folders: Arc<Vec<Folder>>,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Sampled> {
    std::thread::spawn(move || {
        let mut sampled = Sampled::default();
        let empty = Sha256Hex::empty();
        while !stop.load(Ordering::Relaxed) {
            for (agent, folder) in folders.iter().enumerate() {
                for file in files_under(&folder.dir, false) {
                    let read = {
                        let _user = folder.lock.lock().unwrap_or_else(|e| e.into_inner());
                        std::fs::read(&file)
                    };
                    // Gone or replaced meanwhile: nothing was observed.
                    let Ok(bytes) = read else { continue };
                    sampled.reads += 1;
                    let sha = Sha256Hex::of(&bytes);
                    if sha != empty && !lock(&ledger).written.contains(&sha) {
                        sampled.torn.push(format!(
                            "agent {agent}: {} held {} bytes of sha256 {sha}, which no user \
                             operation wrote",
                            file.display(),
                            bytes.len()
                        ));
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        sampled
    })
}

/// Regular files under `dir`, the agent's `.sf` left out unless `with_state`
/// (then its trash is included, never its temp files or database).
pub fn files_under(dir: &Path, with_state: bool) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if current == dir && entry.file_name() == ".sf" {
                if with_state {
                    pending.push(path.join("trash"));
                }
                continue;
            }
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                found.push(path);
            }
        }
    }
    found
}

/// Every required content that is nowhere to be found.
pub fn lost(ledger: &Ledger, folders: &[Folder], hub: &HashSet<Sha256Hex>) -> Vec<String> {
    let mut present: HashSet<Sha256Hex> = hub.clone();
    for folder in folders {
        for file in files_under(&folder.dir, true) {
            if let Ok(bytes) = std::fs::read(&file) {
                present.insert(Sha256Hex::of(&bytes));
            }
        }
    }
    ledger
        .required
        .iter()
        .filter(|required| !present.contains(&required.sha256))
        .map(|required| format!("{} ({})", required.what, required.sha256))
        .collect()
}

/// What `sf-agent status` reports that is not settled: a pending list with
/// entries, or an error. Conflict copies and names not synced are outcomes,
/// not problems.
pub fn unsettled(status: &str) -> Vec<String> {
    const OUTCOMES: &[&str] = &["conflict copies", "not synced"];
    status
        .lines()
        .filter(|line| !line.starts_with(' '))
        .filter_map(|line| {
            let (title, value) = line.split_once(": ")?;
            let count: u64 = value.trim().parse().ok()?;
            (count > 0 && !OUTCOMES.contains(&title)).then(|| line.to_owned())
        })
        .chain(
            status
                .lines()
                .filter(|line| line.starts_with("last error:") && line.trim() != "last error: none")
                .map(str::to_owned),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_that_are_not_settled() {
        let status = "folder:   /x\nsynced:   3 files, 1 folders (hub seq 9)\n\
                      pending upload: 2\n  a.txt\n  b.txt\nconflict copies: 1\n  c — d\n\
                      errors: 0\nlast error: none\n";
        assert_eq!(unsettled(status), vec!["pending upload: 2".to_owned()]);
        let failed = "errors: 1\n  x: boom\nlast error: hub unreachable\n";
        assert_eq!(
            unsettled(failed),
            vec![
                "errors: 1".to_owned(),
                "last error: hub unreachable".to_owned()
            ]
        );
    }
}
