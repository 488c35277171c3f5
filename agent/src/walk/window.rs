//! One window of a directory: the next [`WINDOW`] paths of the three
//! sorted sources (the listing, the synced records and the hub entries
//! directly inside it), examined on disk.

use std::collections::BTreeMap;

use sf_protocol::SyncPath;
use sf_protocol::v1::EntryKind;

use super::{Cursor, Look, Unsettled, WINDOW, Walk, WalkError, Window, blocking, presence_of};
use crate::model::{LocalFile, SyncedFile, Views};
use crate::scan::{self, Kind, ScanError, Stat, local_path};
use crate::state::State;

impl Walk {
    /// The next window of the directory at `cursor`.
    pub(super) async fn window(
        &self,
        cursor: &mut Cursor,
        state: &State,
    ) -> Result<Window, WalkError> {
        let synced = state
            .synced_children(&cursor.prefix, &cursor.after, WINDOW)
            .await?;
        let remote = state
            .remote_children(&cursor.prefix, &cursor.after, WINDOW)
            .await?;
        let on_disk = &cursor.listing.entries[cursor.taken..];
        let disk = &on_disk[..on_disk.len().min(WINDOW as usize)];
        // The window ends at the last path of any source that may have
        // more; paths above it wait for the next window.
        let full = |len: usize| len == WINDOW as usize;
        let end = [
            full(disk.len()).then(|| disk.last()).flatten(),
            full(synced.len())
                .then(|| synced.last().map(|(p, _)| p))
                .flatten(),
            full(remote.len())
                .then(|| remote.last().map(|e| &e.path))
                .flatten(),
        ]
        .into_iter()
        .flatten()
        .min()
        .cloned();
        let within = |path: &SyncPath| end.as_ref().is_none_or(|end| path <= end);
        let disk: Vec<(SyncPath, SyncPath)> = disk
            .iter()
            .take_while(|p| within(p))
            .map(|p| (p.clone(), cursor.listing.on_disk(p).clone()))
            .collect();
        cursor.taken += disk.len();
        let mut window = Window {
            first: cursor.first,
            views: Views {
                local: BTreeMap::new(),
                synced: synced.into_iter().filter(|(p, _)| within(p)).collect(),
                remote: remote
                    .into_iter()
                    .filter(|e| within(&e.path))
                    .map(|e| (e.path.clone(), e))
                    .collect(),
            },
            paths: Vec::new(),
            unsettled: Vec::new(),
            skipped: Vec::new(),
        };
        if cursor.first {
            let listing = &mut cursor.listing;
            window.skipped.append(&mut listing.skipped);
            window.unsettled.extend(
                listing
                    .unreadable
                    .drain(..)
                    .map(|(path, reason)| (path, Unsettled::Unreadable(reason))),
            );
            cursor.first = false;
        }
        let work = disk
            .into_iter()
            .map(|(path, on_disk)| {
                let known = window.views.synced.get(&path).cloned();
                (path, on_disk, known)
            })
            .collect();
        window.views.local = self.examine(work, &mut window).await;
        cursor
            .unsettled
            .extend(window.unsettled.iter().map(|(p, _)| p.clone()));

        let views = &window.views;
        let mut paths: Vec<&SyncPath> = views
            .local
            .keys()
            .chain(views.synced.keys())
            .chain(views.remote.keys())
            .filter(|p| !cursor.unsettled.contains(*p))
            // The walk never enters an ignored directory, so the entry's own
            // rule is the whole of `is_ignored` here, at a fraction of the cost.
            .filter(|p| !self.rules.is_ignored_entry(p.as_str(), views.is_dir(p)))
            .collect();
        paths.sort();
        paths.dedup();
        for path in &paths {
            // Entered as a directory, so ignored as one (`build/` rules).
            if views.descends(path) && !self.rules.is_ignored_entry(path.as_str(), true) {
                let presence = presence_of(views, path);
                cursor.subdirs.insert((*path).clone(), (presence, None));
            }
        }
        window.paths = paths.into_iter().cloned().collect();
        match end {
            Some(end) => cursor.after = end.as_str().to_owned(),
            None => cursor.done = true,
        }
        Ok(window)
    }

    /// Looks at the entries of one window (listed path, path on disk,
    /// record); what cannot be looked at lands in `window`'s lists.
    async fn examine(
        &self,
        work: Vec<(SyncPath, SyncPath, Option<SyncedFile>)>,
        window: &mut Window,
    ) -> BTreeMap<SyncPath, LocalFile> {
        let (root, look) = (self.root.clone(), self.look);
        let examined = blocking(move || {
            work.into_iter()
                .map(|(path, on_disk, known)| {
                    let local = local_path(&root, &on_disk);
                    let found = match look {
                        Look::Content => scan::examine_at(&local, &path, known.as_ref()),
                        Look::StatOnly => stat_only(&local),
                    };
                    (path, found)
                })
                .collect::<Vec<_>>()
        })
        .await;
        let mut local = BTreeMap::new();
        for (path, found) in examined {
            match found {
                Ok(Some(file)) => {
                    local.insert(path, file);
                }
                // Vanished meanwhile: as good as deleted.
                Ok(None) => {}
                Err(ScanError::Skipped { reason, .. }) => {
                    window.skipped.push((path.to_string(), reason));
                }
                Err(ScanError::Unreadable { source, .. }) => {
                    window
                        .unsettled
                        .push((path, Unsettled::Unreadable(source.to_string())));
                }
                Err(ScanError::Unstable(_) | ScanError::NotNormalised { .. }) => {
                    window.unsettled.push((path, Unsettled::Busy));
                }
            }
        }
        local
    }
}

/// [`Look::StatOnly`]: a file or directory as its stat data show it.
fn stat_only(local: &std::path::Path) -> Result<Option<LocalFile>, ScanError> {
    let Ok(metadata) = std::fs::symlink_metadata(local) else {
        return Ok(None);
    };
    let stat = Stat::of(&metadata);
    let kind = match stat.kind {
        Kind::File => EntryKind::File,
        Kind::Dir => EntryKind::Dir,
        Kind::Symlink | Kind::Special => return Ok(None),
    };
    Ok(Some(LocalFile {
        kind,
        sha256: sf_protocol::Sha256Hex::empty(),
        size: stat.size,
        mtime_ns: stat.mtime_ns,
        inode: stat.inode,
        executable: stat.executable,
    }))
}
