//! The sync loop: gathers the three views of the paths that may have changed
//! (disk, last synced, hub), asks [`crate::reconcile`] what to do, and does
//! it. Triggers are hints — file events, WebSocket doorbells, the scan
//! timer — and every decision is made from stat, hashes and state, never
//! from the kind of event that led here.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sf_protocol::SyncPath;
use sf_protocol::v1::{Entry, EntryKind, Scope};
use std::sync::Arc;

use tokio::sync::{Notify, mpsc};

use crate::apply::{self, ApplyError};
use crate::credentials::TokenRefused;
use crate::hub_client::{CommitOutcome, DeleteOutcome, HubClient, HubError};
use crate::ignore::IgnoreRules;
use crate::model::{LocalFile, SyncedFile};
use crate::progress::{self, Progress};
use crate::reconcile::{Decision, Direction, decide_all};
use crate::scan::{self, ScanError, local_path};

mod full_scan;
mod trust;
use crate::state::{STATE_DIR, State, StateError};

/// Why the sync loop should run.
#[derive(Debug)]
pub enum Trigger {
    /// These paths may have changed on disk.
    Paths(Vec<SyncPath>),
    /// File events can no longer be trusted (overflow, watcher error): scan.
    FullScan,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "the folder marker {0} vanished while syncing (unmounted disk? deleted folder?); \
         stopped so nothing is deleted on the hub"
    )]
    MarkerVanished(PathBuf),
    #[error(transparent)]
    State(#[from] StateError),
    /// The hub refused the token: retrying cannot help.
    #[error(transparent)]
    Unauthorized(TokenRefused),
}

/// The three views of a batch of paths: on disk now, last synced, on the
/// hub now.
#[derive(Default)]
struct Views {
    local: BTreeMap<SyncPath, LocalFile>,
    synced: HashMap<SyncPath, SyncedFile>,
    remote: HashMap<SyncPath, Entry>,
}

impl Views {
    fn of<'a>(
        &'a self,
        path: &'a SyncPath,
    ) -> (
        &'a SyncPath,
        Option<&'a LocalFile>,
        Option<&'a SyncedFile>,
        Option<&'a Entry>,
    ) {
        (
            path,
            self.local.get(path),
            self.synced.get(path),
            self.remote.get(path),
        )
    }

    /// Whether `path` is a directory, for ignore rules: as on disk, else as
    /// on the hub, else as last synced.
    fn is_dir(&self, path: &SyncPath) -> bool {
        let kind = self
            .local
            .get(path)
            .map(|l| l.kind)
            .or_else(|| self.remote.get(path).map(|e| e.kind))
            .or_else(|| self.synced.get(path).map(|s| s.kind));
        kind == Some(EntryKind::Dir)
    }

    /// How many files `decisions` move and their bytes.
    fn transfers(&self, decisions: &[(SyncPath, Decision)]) -> (u64, u64) {
        decisions
            .iter()
            .filter_map(|(p, d)| transfer_size(d, self.local.get(p), self.remote.get(p)))
            .fold((0, 0), |(n, total), size| (n + 1, total + size))
    }
}

/// Paths an event cycle takes from the change feed at most: beyond, the
/// full scan looks at them, a window at a time, so a burst of remote
/// changes does not hold every path in memory at once.
const MAX_LOOKED_AT: usize = 10_000;

/// What a cycle's failure means for the loop.
enum CycleError {
    /// The hub is unreachable: keep the work and retry later.
    HubDown(HubError),
    Fatal(EngineError),
}

impl From<StateError> for CycleError {
    fn from(err: StateError) -> Self {
        CycleError::Fatal(EngineError::State(err))
    }
}

impl CycleError {
    /// A failed hub call: a refused token stops the agent, anything else
    /// is retried later.
    fn from_hub(err: HubError) -> Self {
        match err {
            HubError::Unauthorized(refused) => {
                CycleError::Fatal(EngineError::Unauthorized(refused))
            }
            other => CycleError::HubDown(other),
        }
    }
}

pub struct Engine {
    root: PathBuf,
    origin: String,
    hub: HubClient,
    state: State,
    rules: IgnoreRules,
    /// Paths to look at in the next cycle.
    dirty: BTreeSet<SyncPath>,
    /// Paths to look at again later (they were busy or failed), with when.
    deferred: BTreeMap<SyncPath, tokio::time::Instant>,
    /// How many times in a row each deferred path was put off: the wait
    /// grows with it.
    attempts: HashMap<SyncPath, u32>,
    /// The next cycle scans the whole folder.
    full_scan: bool,
    /// The change feed may have news.
    remote_news: bool,
    warned: HashSet<String>,
    /// Fires on shutdown: a long cycle stops between two operations.
    stop: tokio::sync::watch::Receiver<bool>,
    /// The progress display of a big batch; per-file lines drop to debug
    /// while there is one.
    batch: Option<Progress>,
    /// Conflict copies made since the full scan listed the directory it is
    /// at: absent from its listing, but not deleted.
    new_copies: HashSet<SyncPath>,
    /// Whose file-name rules hub paths must meet here.
    platform: sf_protocol::platform::Platform,
    /// The folder's file system ignores letter case (probed at start).
    case_insensitive: bool,
    /// What the token may do, from `/v1/whoami`; `None` until the hub
    /// first answers, and no cycle acts before it does.
    scope: Option<Scope>,
}

impl Engine {
    pub fn new(
        root: PathBuf,
        origin: String,
        hub: HubClient,
        state: State,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        let rules = load_rules(&root);
        let case_insensitive = trust::case_insensitive(&root);
        Self {
            root,
            origin,
            hub,
            state,
            rules,
            dirty: BTreeSet::new(),
            deferred: BTreeMap::new(),
            attempts: HashMap::new(),
            full_scan: true,
            remote_news: true,
            warned: HashSet::new(),
            stop,
            batch: None,
            new_copies: HashSet::new(),
            platform: sf_protocol::platform::Platform::current(),
            case_insensitive,
            scope: None,
        }
    }

    /// Receive-only with a read-only token.
    fn direction(&self) -> Direction {
        match self.scope {
            Some(Scope::Read) => Direction::ReceiveOnly,
            Some(Scope::Write) | None => Direction::SendReceive,
        }
    }

    /// Asks the hub what the token may do.
    async fn learn_scope(&mut self) -> Result<(), CycleError> {
        let scope = match self.hub.whoami().await.map_err(CycleError::from_hub)? {
            Some(me) => {
                tracing::info!(
                    token = me
                        .token
                        .as_deref()
                        .unwrap_or("none (the hub runs without authentication)"),
                    scope = me.scope.as_str(),
                    "access to the hub"
                );
                me.scope
            }
            // A hub older than the route lets everyone write.
            None => Scope::Write,
        };
        self.set_scope(scope).await?;
        Ok(())
    }

    /// Records `scope` (for `sf-agent status`); a change of direction has
    /// every path decided again.
    async fn set_scope(&mut self, scope: Scope) -> Result<(), StateError> {
        let before = self.direction();
        let first = self.scope.is_none();
        self.scope = Some(scope);
        self.state.set_meta("scope", scope.as_str()).await?;
        if self.direction() == Direction::ReceiveOnly && before != Direction::ReceiveOnly {
            tracing::warn!(
                "the token is read-only: receive-only; the hub's changes are applied, local \
                 changes are kept on disk but not sent (see `sf-agent status`)"
            );
        }
        if !first && before != self.direction() {
            self.full_scan = true;
        }
        Ok(())
    }

    /// Runs until the stop signal fires or the folder marker vanishes.
    /// `triggers` carries file events (it may close: polling has none);
    /// `doorbell` rings when the hub has news.
    pub async fn run(
        mut self,
        mut triggers: mpsc::UnboundedReceiver<Trigger>,
        doorbell: Arc<Notify>,
        scan_interval: Duration,
    ) -> Result<(), EngineError> {
        let mut events_open = true;
        let mut shutdown = self.stop.clone();
        let mut scan_timer = tokio::time::interval(scan_interval);
        scan_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        scan_timer.tick().await;
        let mut backoff = Backoff::default();
        let mut retry_at: Option<tokio::time::Instant> = None;
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            if self.has_work() && retry_at.is_none() {
                match self.cycle().await {
                    Ok(()) => backoff.reset(),
                    Err(CycleError::HubDown(err)) => {
                        let wait = backoff.next_delay();
                        tracing::warn!(error = %err, retry_in = ?wait, "hub unreachable; local changes are kept and pushed when it returns");
                        let _ = self.state.set_meta("last_error", &err.to_string()).await;
                        self.full_scan = true;
                        self.remote_news = true;
                        retry_at = Some(tokio::time::Instant::now() + wait);
                    }
                    Err(CycleError::Fatal(err)) => return Err(err),
                }
                continue;
            }
            let retry = sleep_until(retry_at);
            let deferred = sleep_until(self.deferred.values().min().copied());
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
                trigger = triggers.recv(), if events_open => match trigger {
                    Some(trigger) => {
                        self.note(trigger);
                        // Take whatever else is queued: one cycle for a burst.
                        while let Ok(more) = triggers.try_recv() {
                            self.note(more);
                        }
                    }
                    None => events_open = false,
                },
                () = doorbell.notified() => self.remote_news = true,
                // The periodic scan reads the feed too: a missed ring of the
                // push connection never costs more than one interval.
                _ = scan_timer.tick() => {
                    self.full_scan = true;
                    self.remote_news = true;
                }
                () = retry => retry_at = None,
                () = deferred => {
                    let now = tokio::time::Instant::now();
                    let due: Vec<SyncPath> = self
                        .deferred
                        .iter()
                        .filter(|(_, at)| **at <= now)
                        .map(|(path, _)| path.clone())
                        .collect();
                    for path in due {
                        self.deferred.remove(&path);
                        self.dirty.insert(path);
                    }
                }
            }
        }
    }

    fn has_work(&self) -> bool {
        self.full_scan || self.remote_news || !self.dirty.is_empty()
    }

    fn note(&mut self, trigger: Trigger) {
        match trigger {
            Trigger::Paths(paths) => {
                for path in paths {
                    if path.as_str() == ".sfignore" {
                        self.rules = load_rules(&self.root);
                        self.full_scan = true;
                    }
                    self.dirty.insert(path);
                }
            }
            Trigger::FullScan => self.full_scan = true,
        }
    }

    /// One pass: read the feed, look at the changed paths (or the whole
    /// folder), act.
    async fn cycle(&mut self) -> Result<(), CycleError> {
        self.check_marker().map_err(CycleError::Fatal)?;
        if self.scope.is_none() {
            self.learn_scope().await?;
        }
        let remote_changed = if self.remote_news {
            let changed = self.catch_up().await?;
            self.remote_news = false;
            changed
        } else {
            BTreeSet::new()
        };
        if !self.full_scan {
            self.look_at(remote_changed).await?;
        }
        // Looking at paths can find that only a full scan will do.
        if self.full_scan {
            self.scan_everything().await?;
        }
        // Attempts count only while a path is still put off.
        let deferred = &self.deferred;
        self.attempts.retain(|path, _| deferred.contains_key(path));
        let _ = self
            .state
            .set_meta("last_cycle_ms", &crate::state::now_ms().to_string())
            .await;
        Ok(())
    }

    /// An event cycle: the dirty paths and those the feed changed. It reads
    /// only the records of the paths it looks at, so its cost follows the
    /// change, not the size of the folder.
    async fn look_at(&mut self, remote_changed: BTreeSet<SyncPath>) -> Result<(), CycleError> {
        let mut paths: BTreeSet<SyncPath> = std::mem::take(&mut self.dirty);
        paths.extend(remote_changed);
        let synced = self.state.synced_of(&paths).await?;
        // A vanished folder: events may name only the folder, not what was
        // inside, so this cycle looks at everything.
        // Replaced by a new folder of the same name counts too (`rm -rf a;
        // mkdir a` within one debounce window).
        let folder_gone = paths.iter().any(|p| {
            synced
                .get(p)
                .is_some_and(|s| s.kind == EntryKind::Dir && !same_folder(&self.root, p, s))
        });
        if folder_gone {
            self.full_scan = true;
            return Ok(());
        }
        let remote = self.state.remote_of(&paths).await?;
        let (local, uncertain) = self.stat_paths(&paths, &synced).await?;
        paths.retain(|p| !uncertain.contains(p));
        let views = Views {
            local,
            synced,
            remote,
        };
        let refused = self.refused(&views).await?;
        paths.retain(|p| !refused.contains(p));
        let rules = &self.rules;
        let decisions = decide_all(
            paths
                .iter()
                .filter(|p| !rules.is_ignored(p.as_str(), views.is_dir(p)))
                .map(|p| views.of(p)),
            self.direction(),
        );
        let (files, bytes) = views.transfers(&decisions);
        self.batch =
            progress::worth_showing(files, bytes).then(|| Progress::start("sync", files, bytes));
        self.act(decisions, &views).await?;
        if let Some(batch) = self.batch.take() {
            batch.finish();
        }
        Ok(())
    }

    /// Carries out `decisions` (in their order) on the paths whose three
    /// views are in `views`. Returns early, with everything done so far
    /// recorded, when the stop signal fires.
    async fn act(
        &mut self,
        decisions: Vec<(SyncPath, Decision)>,
        views: &Views,
    ) -> Result<(), CycleError> {
        for (path, decision) in decisions {
            if *self.stop.borrow() {
                // Each operation leaves state consistent on its own; what
                // is left is found again by the next start's scan.
                return Ok(());
            }
            if decision.writes_to_hub() && self.direction() == Direction::ReceiveOnly {
                // Decided before a 403 turned this agent receive-only; the
                // scan it asked for decides the path again.
                continue;
            }
            let (local, synced, remote) = (
                views.local.get(&path),
                views.synced.get(&path),
                views.remote.get(&path),
            );
            let moves_content = transfer_size(&decision, local, remote).is_some();
            let result = self.execute(&path, decision, local, synced, remote).await;
            match result {
                Ok(()) => {
                    self.attempts.remove(&path);
                    // Its bytes were counted as they moved.
                    if let (Some(batch), true) = (&self.batch, moves_content) {
                        batch.file_done(0);
                    }
                }
                Err(ActError::Hub(HubError::Unauthorized(refused))) => {
                    return Err(CycleError::Fatal(EngineError::Unauthorized(refused)));
                }
                Err(ActError::Hub(err)) if err.is_forbidden() && decision.writes_to_hub() => {
                    // The token lost its write scope (or the hub keeps it
                    // read-only): stop sending rather than retry.
                    tracing::warn!(%path, error = %err, "the hub refused a change");
                    // A change of direction has every path decided again.
                    self.set_scope(Scope::Read).await?;
                    self.defer(path);
                }
                Err(ActError::Hub(err)) if err.is_retryable() => {
                    return Err(CycleError::HubDown(err));
                }
                Err(ActError::State(err)) => return Err(err.into()),
                Err(ActError::Marker(err)) => return Err(CycleError::Fatal(err)),
                Err(ActError::Apply(
                    err @ (ApplyError::Blocked { .. } | ApplyError::StateDirBlocked { .. }),
                )) => {
                    // Not retried: the next scan or hub change looks again.
                    self.refuse(&path, &err.to_string()).await?;
                }
                Err(ActError::Retry(reason)) => {
                    tracing::debug!(%path, reason, "looking at it again shortly");
                    self.defer(path);
                }
                Err(err) => {
                    tracing::warn!(%path, error = %err, "could not sync; will retry");
                    self.state
                        .set_problem(path.as_str(), "error", &err.to_string())
                        .await?;
                    self.defer(path);
                }
            }
        }
        Ok(())
    }

    /// One line per file moved, unless a progress display covers them.
    fn log_file(&self, path: &SyncPath, what: &'static str, version: u64) {
        if self.batch.is_some() {
            tracing::debug!(%path, version, "{what}");
        } else {
            tracing::info!(%path, version, "{what}");
        }
    }

    /// Looks at `path` again later; the wait doubles with each attempt in a
    /// row, so a file that is always busy or always failing does not spin.
    fn defer(&mut self, path: SyncPath) {
        let attempts = self.attempts.entry(path.clone()).or_insert(0);
        let wait = retry_delay(*attempts);
        *attempts += 1;
        self.deferred
            .entry(path)
            .or_insert_with(|| tokio::time::Instant::now() + wait);
    }

    /// Fails when the folder marker is gone: checked before every cycle and
    /// again before anything is deleted, so an unmounted disk never reads
    /// as a folder whose files were all deleted.
    fn check_marker(&self) -> Result<(), EngineError> {
        let marker = self.root.join(STATE_DIR);
        if marker.is_dir() {
            Ok(())
        } else {
            Err(EngineError::MarkerVanished(marker))
        }
    }

    /// Reads the change feed from the last applied seq; returns the paths
    /// it touched.
    async fn catch_up(&mut self) -> Result<BTreeSet<SyncPath>, CycleError> {
        let mut changed = BTreeSet::new();
        let mut since = self.state.last_seq().await?;
        loop {
            let page = self
                .hub
                .changes(since, 1000)
                .await
                .map_err(CycleError::from_hub)?;
            if self.hub_changed(&page.hub_id).await? {
                changed.clear();
                since = 0;
                continue;
            }
            if page.head < since {
                // The hub's feed is behind what we applied: it was reset or
                // restored from a backup. Forget its old entries and re-read.
                tracing::warn!(
                    head = page.head,
                    applied = since,
                    "the hub's history is older than ours; re-reading it"
                );
                self.state.reset_remote().await?;
                self.full_scan = true;
                since = 0;
                continue;
            }
            let Some(last) = page.changes.last().map(|e| e.seq) else {
                break;
            };
            if !self.full_scan {
                // Our own commits coming back hold nothing new.
                let agreed = self.state.synced_as(&page.changes).await?;
                changed.extend(
                    page.changes
                        .iter()
                        .filter(|e| !agreed.contains(&e.path))
                        .map(|e| e.path.clone()),
                );
                if changed.len() > MAX_LOOKED_AT {
                    // A big burst from elsewhere: a full scan takes it in
                    // windows instead of one batch of every path.
                    self.full_scan = true;
                    changed.clear();
                }
            }
            self.state.apply_changes(&page.changes, last).await?;
            since = last;
            if last >= page.head {
                break;
            }
        }
        Ok(changed)
    }

    async fn stat_paths(
        &mut self,
        paths: &BTreeSet<SyncPath>,
        synced: &HashMap<SyncPath, SyncedFile>,
    ) -> Result<(BTreeMap<SyncPath, LocalFile>, BTreeSet<SyncPath>), CycleError> {
        let mut local = BTreeMap::new();
        let mut uncertain = BTreeSet::new();
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
                    let ignored = self.rules.is_ignored(path.as_str(), false)
                        || self.rules.is_ignored(path.as_str(), true);
                    if !ignored && self.warned.insert(format!("not NFC: {path}")) {
                        self.full_scan = true;
                    }
                    uncertain.insert(path.clone());
                }
                Err(ScanError::Skipped { reason, .. }) => {
                    if self.warned.insert(path.to_string()) {
                        tracing::warn!(%path, reason, "not synced");
                    }
                    uncertain.insert(path.clone());
                }
                Err(err) => {
                    if matches!(err, ScanError::Unreadable { .. })
                        && self.warned.insert(path.to_string())
                    {
                        tracing::warn!(%path, error = %err, "cannot read; will retry");
                        self.state
                            .set_problem(path.as_str(), "error", &err.to_string())
                            .await?;
                    }
                    tracing::debug!(%path, error = %err, "not settled yet");
                    self.defer(path.clone());
                    uncertain.insert(path.clone());
                }
            }
        }
        Ok((local, uncertain))
    }

    async fn execute(
        &mut self,
        path: &SyncPath,
        decision: Decision,
        local: Option<&LocalFile>,
        synced: Option<&SyncedFile>,
        remote: Option<&Entry>,
    ) -> Result<(), ActError> {
        tracing::debug!(%path, ?decision, "deciding");
        match decision {
            Decision::Nothing => Ok(()),
            Decision::Upload { base_version } => {
                let local = local.expect("uploads have local content");
                self.upload(path, local, base_version).await
            }
            Decision::Download => {
                let entry = remote.expect("downloads have a hub entry");
                let (file, chunks) = apply::download(
                    &self.root,
                    &self.hub,
                    &self.state,
                    entry,
                    local,
                    self.batch.as_ref(),
                )
                .await?;
                self.state.record(path, &file, &chunks).await?;
                self.log_file(path, "downloaded", entry.version);
                Ok(())
            }
            Decision::ConflictCopyThenDownload | Decision::SetAsideThenDownload => {
                let local = local.expect("conflicts have local content");
                let entry = remote.expect("conflicts have a hub entry");
                let taken = self
                    .state
                    .live_remote_with_prefix(&sf_protocol::conflict::conflict_copy_prefix(path))
                    .await?;
                let copy =
                    apply::rename_to_conflict_copy(&self.root, path, &self.origin, local, |c| {
                        taken.contains(c)
                    })?;
                self.new_copies.insert(copy.clone());
                if decision == Decision::SetAsideThenDownload {
                    tracing::warn!(%path, copy = %copy, "the hub changed a file changed here; kept the local version as a copy, not sent (read-only token)");
                    self.state
                        .set_problem(
                            copy.as_str(),
                            "conflict",
                            &format!("local version of {path}, changed here and on the hub; not sent (read-only token)"),
                        )
                        .await?;
                } else {
                    tracing::warn!(%path, copy = %copy, "conflict: both sides changed; kept the local version as a copy");
                    self.state
                        .set_problem(
                            copy.as_str(),
                            "conflict",
                            &format!("local version of {path}, edited on both sides"),
                        )
                        .await?;
                    self.upload(&copy, local, 0).await?;
                }
                let (file, chunks) = apply::download(
                    &self.root,
                    &self.hub,
                    &self.state,
                    entry,
                    None,
                    self.batch.as_ref(),
                )
                .await?;
                self.state.record(path, &file, &chunks).await?;
                Ok(())
            }
            Decision::DeleteRemote { base_version } => {
                self.check_marker()?;
                match self.hub.delete(path, base_version, &self.origin).await? {
                    DeleteOutcome::Deleted(entry) => {
                        self.state.note_remote(&entry).await?;
                        self.state.forget(path).await?;
                        tracing::info!(%path, "deleted on the hub");
                        Ok(())
                    }
                    DeleteOutcome::Conflict(current) => self.conflicted(current).await,
                    DeleteOutcome::NotFound => Ok(self.state.forget(path).await?),
                }
            }
            Decision::TrashLocal => {
                let local = local.expect("trash needs a local file");
                self.check_marker()?;
                match apply::move_to_trash(&self.root, path, local, &self.rules)? {
                    Some(dest) => {
                        tracing::info!(%path, trash = %dest.display(), "deleted on the hub; moved to trash");
                        Ok(self.state.forget(path).await?)
                    }
                    // Synced files still inside: their deletions are on the
                    // way; keep the folder's record until they are gone.
                    None if self.state.has_synced_under(path).await? => {
                        Err(ActError::Retry("folder not empty yet"))
                    }
                    // Only new files inside: the folder stays and is
                    // uploaded again with them.
                    None => Ok(self.state.forget(path).await?),
                }
            }
            Decision::Record => {
                let local = local.expect("records have local content");
                let entry = remote.expect("records have a hub entry");
                let _ = synced;
                let file = synced_from(local, entry.version);
                Ok(self
                    .state
                    .record(path, &file, entry.chunks.as_deref().unwrap_or_default())
                    .await?)
            }
            Decision::Forget => Ok(self.state.forget(path).await?),
        }
    }

    async fn upload(
        &mut self,
        path: &SyncPath,
        local: &LocalFile,
        base_version: u64,
    ) -> Result<(), ActError> {
        let outcome = match local.kind {
            EntryKind::Dir => {
                self.hub
                    .commit_dir(path, base_version, local.mtime_ns, &self.origin)
                    .await?
            }
            EntryKind::File => {
                self.hub
                    .upload_file(
                        &local_path(&self.root, path),
                        path,
                        base_version,
                        local.sha256,
                        local.mtime_ns,
                        local.executable,
                        &self.origin,
                        self.batch.as_ref(),
                    )
                    .await?
            }
        };
        match outcome {
            CommitOutcome::Committed(entry) => {
                self.state.note_remote(&entry).await?;
                let file = synced_from(local, entry.version);
                self.state
                    .record(path, &file, entry.chunks.as_deref().unwrap_or_default())
                    .await?;
                self.log_file(path, "uploaded", entry.version);
                Ok(())
            }
            CommitOutcome::Conflict(current) => self.conflicted(current).await,
            CommitOutcome::FileChanged => Err(ActError::Retry("changed while uploading")),
        }
    }

    /// The hub moved on meanwhile: note its entry and decide again.
    async fn conflicted(&mut self, current: Option<Entry>) -> Result<(), ActError> {
        if let Some(current) = current {
            self.state.note_remote(&current).await?;
        }
        self.remote_news = true;
        Err(ActError::Retry("the hub changed meanwhile"))
    }
}

/// Whether the folder recorded as `synced` is still at `path` (a folder, and
/// the same one where inodes exist).
fn same_folder(root: &Path, path: &SyncPath, synced: &SyncedFile) -> bool {
    match std::fs::symlink_metadata(local_path(root, path)) {
        Ok(meta) if meta.is_dir() => {
            let inode = apply::stat_triplet(&meta).2;
            inode == 0 || synced.inode == 0 || inode == synced.inode
        }
        _ => false,
    }
}

/// The bytes a decision moves, for the progress display; `None` when it
/// moves no file content.
fn transfer_size(
    decision: &Decision,
    local: Option<&LocalFile>,
    remote: Option<&Entry>,
) -> Option<u64> {
    let file = |kind: EntryKind, size: u64| (kind == EntryKind::File).then_some(size);
    match decision {
        Decision::Upload { .. } => local.and_then(|l| file(l.kind, l.size)),
        Decision::Download => remote.and_then(|r| file(r.kind, r.size)),
        // The local version is uploaded as a copy, the hub's downloaded.
        Decision::ConflictCopyThenDownload => remote
            .and_then(|r| file(r.kind, r.size))
            .map(|down| down + local.and_then(|l| file(l.kind, l.size)).unwrap_or(0)),
        // The copy stays local.
        Decision::SetAsideThenDownload => remote.and_then(|r| file(r.kind, r.size)),
        _ => None,
    }
}

/// How long a busy or failed path waits before its next look, after
/// `attempts` earlier tries in a row: 1 s, doubling, at most 5 min.
fn retry_delay(attempts: u32) -> Duration {
    (Duration::from_secs(1) * 2u32.saturating_pow(attempts.min(9))).min(Duration::from_secs(300))
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn synced_from(local: &LocalFile, version: u64) -> SyncedFile {
    SyncedFile {
        kind: local.kind,
        sha256: local.sha256,
        size: local.size,
        mtime_ns: local.mtime_ns,
        inode: local.inode,
        executable: local.executable,
        version,
    }
}

fn load_rules(root: &Path) -> IgnoreRules {
    IgnoreRules::load(root).unwrap_or_else(|err| {
        tracing::warn!(error = %err, "cannot use .sfignore; only the built-in ignore rules apply");
        IgnoreRules::defaults()
    })
}

#[derive(Debug, thiserror::Error)]
enum ActError {
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error(transparent)]
    Apply(ApplyError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Marker(#[from] EngineError),
    #[error("{0}")]
    Retry(&'static str),
}

impl From<ApplyError> for ActError {
    fn from(err: ApplyError) -> Self {
        match err {
            ApplyError::Hub(hub) => ActError::Hub(hub),
            ApplyError::State(state) => ActError::State(state),
            ApplyError::ChangedMeanwhile { .. } => ActError::Retry("changed on disk meanwhile"),
            other => ActError::Apply(other),
        }
    }
}

/// Exponential backoff with jitter, capped at about 30 s.
#[derive(Default)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    pub fn next_delay(&mut self) -> Duration {
        let base = Duration::from_millis(250) * 2u32.saturating_pow(self.attempt.min(7));
        self.attempt += 1;
        let capped = base.min(Duration::from_secs(30));
        let jitter = rand::random_range(0.5..1.0);
        capped.mul_f64(jitter)
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}
