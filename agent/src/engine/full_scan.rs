//! The full scan: the engine acting on [`crate::walk`], window by window —
//! every path of the folder, on disk, in the last synced state and on the
//! hub, decided and carried out a directory at a time — and the progress
//! display of a big batch, which event cycles share.

use sf_protocol::SyncPath;
use sf_protocol::v1::EntryKind;

use super::batch::{Flush, Pending};
use super::{CycleError, Engine};
use crate::model::Views;
use crate::progress::{self, Progress};
use crate::reconcile::{Decision, transfers};
use crate::scan::Names;
use crate::walk::{self, Item, Look, Walk, WalkError};

/// The size of a batch's transfers, learnt as it goes.
#[derive(Default)]
pub(super) struct Sizing {
    /// A first sync starts its display from an estimate (every file on
    /// disk and on the hub) and corrects it window by window.
    estimating: bool,
    /// Transfers planned so far, for a batch that starts without a display.
    planned: (u64, u64),
}

impl From<WalkError> for CycleError {
    fn from(err: WalkError) -> Self {
        match err {
            WalkError::State(err) => err.into(),
            WalkError::FolderUnreadable(err) => CycleError::Fatal(err.into()),
        }
    }
}

impl Engine {
    /// Scans the whole folder and acts on what it finds.
    pub(super) async fn scan_everything(&mut self) -> Result<(), CycleError> {
        self.full_scan = false;
        self.dirty.clear();
        // A display left over from a scan the hub interrupted.
        self.batch = None;
        let mut sizing = Sizing::default();
        if !self.state.has_synced().await? {
            let (local_files, local_bytes) =
                walk::count_files(self.root.clone(), self.rules.clone(), &self.state).await?;
            let (hub_files, hub_bytes) = self.state.live_remote_files().await?;
            let (files, bytes) = (local_files + hub_files, local_bytes + hub_bytes);
            if progress::worth_showing(files, bytes) {
                self.batch = Some(Progress::start("first sync", files, bytes));
                sizing.estimating = true;
            }
        }
        let started = std::time::Instant::now();
        let mut walk = Walk::new(
            self.root.clone(),
            self.rules.clone(),
            Names::Normalise,
            Look::Content,
        );
        let mut pending = Pending::default();
        while let Some(item) = walk.next(&self.state).await? {
            if *self.stop.borrow() {
                // Logs where the batch stopped.
                self.batch = None;
                return Ok(());
            }
            match item {
                Item::Window(window) => {
                    if window.first {
                        // Copies made while going through the directory
                        // before are in its listing no more.
                        self.new_copies.clear();
                    }
                    for (path, why) in &window.unsettled {
                        self.unsettled(path, why).await?;
                    }
                    for (path, reason) in &window.skipped {
                        self.skipped(path, reason);
                    }
                    // Refused hub entries are decided nothing; the walk
                    // still goes into a refused folder that is on disk.
                    let refused = self.refused(&window.views).await?;
                    let new_copies = &self.new_copies;
                    let decisions = walk.plan(&window, self.direction(), &|p| {
                        refused.contains(p) || new_copies.contains(p)
                    });
                    self.size_window(&window.views, &decisions, &mut sizing);
                    self.gather(&mut pending, decisions).await?;
                }
                Item::Remove { path, decision } => {
                    self.gather(&mut pending, vec![(path, decision)]).await?;
                }
                Item::Unlistable { dir, error } => {
                    tracing::warn!(path = %dir, %error, "cannot list the directory; will retry");
                    self.defer(dir);
                }
            }
        }
        self.flush(&mut pending, Flush::All).await?;
        if let Some(batch) = self.batch.take() {
            batch.finish();
        }
        tracing::debug!(
            directories = walk.visited(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "full scan done"
        );
        Ok(())
    }

    /// Keeps the progress display's totals in step with the window just
    /// decided.
    fn size_window(
        &mut self,
        views: &Views,
        decisions: &[(SyncPath, Decision)],
        sizing: &mut Sizing,
    ) {
        let (files, bytes) = transfers(decisions.iter().map(|(_, d)| d));
        if !sizing.estimating {
            self.plan_progress(files, bytes, sizing);
            return;
        }
        // The estimate counted every file on either side once.
        let local = views.local.values().filter(|l| l.kind == EntryKind::File);
        let remote = views
            .remote
            .values()
            .filter(|e| e.kind == EntryKind::File && !e.deleted);
        let estimated_files = local.clone().count() + remote.clone().count();
        let estimated_bytes: u64 =
            local.map(|l| l.size).sum::<u64>() + remote.map(|e| e.size).sum::<u64>();
        if let Some(batch) = &self.batch {
            batch.adjust_total(
                files as i64 - estimated_files as i64,
                bytes as i64 - estimated_bytes as i64,
            );
        }
    }

    /// Adds `files` and `bytes` about to move to the batch's display, and
    /// starts one once the batch turns out to be big: the same rule for an
    /// event cycle and for each window of a full scan.
    pub(super) fn plan_progress(&mut self, files: u64, bytes: u64, sizing: &mut Sizing) {
        sizing.planned.0 += files;
        sizing.planned.1 += bytes;
        match &self.batch {
            Some(batch) => batch.adjust_total(files as i64, bytes as i64),
            None if progress::worth_showing(sizing.planned.0, sizing.planned.1) => {
                // Counts from here on: what moved before is done.
                self.batch = Some(Progress::start("sync", files, bytes));
            }
            None => {}
        }
    }
}
