//! An event cycle: the paths file events named and those the change feed
//! changed, looked at one by one. It reads only the records of those paths,
//! so its cost follows the change, not the size of the folder.
//!
//! A synced folder among them is looked at through its synced contents too:
//! events may name only the folder (`rm -rf d` reports `d`), and `rm -rf d;
//! mkdir d` can hand the new `d` the old one's inode, so nothing about the
//! folder itself tells that what was inside is gone.
//!
//! A local folder the hub now holds as a file is looked at through what is
//! on disk in it too: something new in it must be planned with the folder,
//! which then becomes a conflict copy (see `reconcile::decide_all`); planned
//! apart, the upload inside a file and the download over a folder that is
//! not empty were each retried for ever.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sf_protocol::SyncPath;
use sf_protocol::v1::EntryKind;

use super::full_scan::Sizing;
use super::{CycleError, Engine, MAX_LOOKED_AT};
use crate::model::{LocalFile, SyncedFile, Views};
use crate::reconcile::{decide_all, transfers};
use crate::scan::{self, ScanError};
use crate::state::folder_prefix;
use crate::walk::Unsettled;

impl Engine {
    pub(super) async fn look_at(
        &mut self,
        remote_changed: BTreeSet<SyncPath>,
    ) -> Result<(), CycleError> {
        let mut paths: BTreeSet<SyncPath> = std::mem::take(&mut self.dirty);
        self.echoes.drop_from(&self.root, &mut paths);
        paths.extend(remote_changed);
        let mut synced = self.state.synced_of(&paths).await?;
        if !self.add_folder_contents(&mut paths, &mut synced).await? {
            // More than an event cycle takes: the full scan goes through
            // them a window at a time.
            self.full_scan = true;
            return Ok(());
        }
        if !self.add_swapped_folder_contents(&mut paths).await? {
            self.full_scan = true;
            return Ok(());
        }
        let remote = self.state.remote_of(&paths).await?;
        let (local, unsettled) = self.stat_paths(&paths, &synced).await?;
        paths.retain(|p| !unsettled.contains(p));
        let views = Views {
            local,
            synced,
            remote,
        };
        let refused = self.refused(&views).await?;
        paths.retain(|p| !refused.contains(p));
        let decisions = decide_all(
            paths
                .iter()
                .filter(|p| !self.ignores(p, views.is_dir(p)))
                .map(|p| views.of(p)),
            self.direction(),
        );
        let (files, bytes) = transfers(decisions.iter().map(|(_, d)| d));
        self.batch = None;
        self.plan_progress(files, bytes, &mut Sizing::default());
        self.act(decisions).await?;
        if let Some(batch) = self.batch.take() {
            batch.finish();
        }
        Ok(())
    }

    /// Adds what is on disk inside each local folder among `paths` that the
    /// hub now holds as a file. False when that is more than
    /// [`MAX_LOOKED_AT`] paths.
    async fn add_swapped_folder_contents(
        &mut self,
        paths: &mut BTreeSet<SyncPath>,
    ) -> Result<bool, CycleError> {
        let remote = self.state.remote_of(&*paths).await?;
        let swapped: Vec<SyncPath> = paths
            .iter()
            .filter(|p| {
                remote
                    .get(*p)
                    .is_some_and(|r| !r.deleted && r.kind == EntryKind::File)
            })
            .filter(|p| {
                std::fs::symlink_metadata(scan::local_path(&self.root, p)).is_ok_and(|m| m.is_dir())
            })
            .cloned()
            .collect();
        for folder in swapped {
            let mut pending = vec![folder];
            while let Some(dir) = pending.pop() {
                let Ok(entries) = std::fs::read_dir(scan::local_path(&self.root, &dir)) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                        continue;
                    };
                    // Names the scan cannot take are its business.
                    let Ok(child) = SyncPath::parse(format!("{dir}/{name}")) else {
                        continue;
                    };
                    if entry.file_type().is_ok_and(|t| t.is_dir()) {
                        pending.push(child.clone());
                    }
                    paths.insert(child);
                    if paths.len() > MAX_LOOKED_AT {
                        return Ok(false);
                    }
                }
            }
        }
        Ok(true)
    }

    /// Adds everything synced inside the synced folders among `paths` to
    /// `paths` (and their records to `synced`). False when that is more
    /// than [`MAX_LOOKED_AT`] paths.
    async fn add_folder_contents(
        &mut self,
        paths: &mut BTreeSet<SyncPath>,
        synced: &mut HashMap<SyncPath, SyncedFile>,
    ) -> Result<bool, CycleError> {
        let mut folders: Vec<SyncPath> = synced
            .iter()
            .filter(|(_, s)| s.kind == EntryKind::Dir)
            .map(|(p, _)| p.clone())
            .collect();
        while let Some(folder) = folders.pop() {
            let prefix = folder_prefix(Some(&folder));
            let mut after = String::new();
            loop {
                let page = self.state.synced_children(&prefix, &after, 512).await?;
                let Some((last, _)) = page.last() else {
                    break;
                };
                after = last.as_str().to_owned();
                for (path, record) in page {
                    if record.kind == EntryKind::Dir && !synced.contains_key(&path) {
                        folders.push(path.clone());
                    }
                    paths.insert(path.clone());
                    synced.insert(path, record);
                }
                if paths.len() > MAX_LOOKED_AT {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Stat (and, where needed, hash) each of `paths`; returns what is on
    /// disk and the paths that cannot be decided this time.
    async fn stat_paths(
        &mut self,
        paths: &BTreeSet<SyncPath>,
        synced: &HashMap<SyncPath, SyncedFile>,
    ) -> Result<(BTreeMap<SyncPath, LocalFile>, BTreeSet<SyncPath>), CycleError> {
        let mut local = BTreeMap::new();
        let mut unsettled = BTreeSet::new();
        for path in paths {
            match scan::stat_entry(&self.root, path, synced.get(path)) {
                Ok(Some(file)) => {
                    // A new folder's contents may predate its watch: scan it all.
                    if file.kind == EntryKind::Dir && !synced.contains_key(path) {
                        self.full_scan = true;
                    }
                    local.insert(path.clone(), file);
                }
                Ok(None) => {}
                // A new name not in NFC: the full scan renames it. Once per
                // path: one the scan cannot rename must not scan again and
                // again; ignored names need no scan at all.
                Err(ScanError::NotNormalised { .. }) => {
                    let ignored = self.ignores(path, false) || self.ignores(path, true);
                    if !ignored && self.warned.insert(format!("not NFC: {path}")) {
                        self.full_scan = true;
                    }
                    unsettled.insert(path.clone());
                }
                Err(ScanError::Skipped { reason, .. }) => {
                    self.skipped(path.as_str(), &reason);
                    unsettled.insert(path.clone());
                }
                Err(ScanError::Unreadable { source, .. }) => {
                    self.unsettled(path, &Unsettled::Unreadable(source.to_string()))
                        .await?;
                    unsettled.insert(path.clone());
                }
                Err(ScanError::Unstable(_)) => {
                    self.unsettled(path, &Unsettled::Busy).await?;
                    unsettled.insert(path.clone());
                }
            }
        }
        Ok((local, unsettled))
    }
}
