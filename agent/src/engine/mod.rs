//! The sync loop: gathers the three views of the paths that may have changed
//! (disk, last synced, hub), asks [`crate::reconcile`] what to do, and does
//! it. Triggers are hints — file events, WebSocket doorbells, the scan
//! timer — and every decision is made from stat, hashes and state, never
//! from the kind of event that led here.
//!
//! Layout:
//! - this file: the loop ([`Engine::run`]), one cycle, and what both kinds
//!   of cycle share — what is ignored, what a path that cannot be read
//!   now means, when a path is looked at again;
//! - `feed`: reading the hub's change feed into the state database, a
//!   window of changed paths per cycle;
//! - `event_cycle`: the paths events and the feed named, one by one;
//! - `full_scan`: the whole folder through [`crate::walk`], and the
//!   progress display of a big batch;
//! - `act`: carrying decisions out, and sorting failures;
//! - `batch`: gathering small files, folders and deletions into batches,
//!   and downloading a batch (a deleted folder after its contents);
//!   `send`: sending one to the hub;
//! - `echoes`: the file events of the engine's own changes;
//! - `errors`: what stops the agent, and what a failed cycle means;
//! - `trust`: what the agent does not take from the hub as it comes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sf_protocol::SyncPath;
use sf_protocol::v1::Scope;
use tokio::sync::{Notify, mpsc};

use crate::hub_client::HubClient;
use crate::ignore::IgnoreRules;
use crate::progress::Progress;
use crate::reconcile::Direction;
use crate::state::{MetaKey, ProblemKind, STATE_DIR, State, StateError};
use crate::walk::Unsettled;

mod act;
mod backoff;
mod batch;
mod echoes;
mod errors;
mod event_cycle;
mod feed;
mod full_scan;
mod send;
mod trust;

pub use backoff::Backoff;
pub use errors::EngineError;
use errors::{CycleError, worse};

/// Why the sync loop should run.
#[derive(Debug)]
pub enum Trigger {
    /// These paths may have changed on disk.
    Paths(Vec<SyncPath>),
    /// File events can no longer be trusted (overflow, watcher error): scan.
    FullScan,
}

/// Paths an event cycle looks at at most, with the contents of the synced
/// folders among them: beyond, the full scan looks at them, a window at a
/// time, so a burst of events does not hold every path in memory at once.
/// (The change feed comes in smaller windows of its own: see `feed`.)
const MAX_LOOKED_AT: usize = 10_000;

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
    /// What the engine itself just left on disk, so the events of its own
    /// downloads and trashes cost a stat, not a look.
    echoes: echoes::Echoes,
    /// Batches on their way to the hub while the engine decides the next
    /// (see `send`), oldest first.
    sending: std::collections::VecDeque<send::Sending>,
    /// The hub's answers to our own commits, recorded already: their feed
    /// entries are passed over (see `feed`).
    answered: feed::Answered,
    /// The hub URL last recorded for `sf-agent status` (the client moves
    /// to another hub given when the one in use stops answering).
    hub_shown: String,
    /// Desktop notifications (a conflict copy was made).
    notifier: crate::desktop::Notifier,
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
        let hub_shown = hub.base_url().to_owned();
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
            echoes: echoes::Echoes::default(),
            sending: Default::default(),
            notifier: crate::desktop::Notifier::off(),
            answered: feed::Answered::default(),
            hub_shown,
        }
    }

    /// Notifies the desktop through `notifier` when a conflict copy is made.
    pub fn with_notifier(mut self, notifier: crate::desktop::Notifier) -> Self {
        self.notifier = notifier;
        self
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
        self.state.set_meta(MetaKey::Scope, scope.as_str()).await?;
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
        // `sf-agent status` shows the last error until a cycle succeeds
        // (one from an earlier run too): then the hub is reachable again.
        let mut error_shown = true;
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            // Events that came during the last cycle, and paths put off
            // until now, before the next one: a catch-up is cycle after
            // cycle without a wait, and its own downloads' events, left
            // queued, grew with every file (about 400 bytes each, 40 MiB
            // over a first sync of 100,000 files).
            while let Ok(trigger) = triggers.try_recv() {
                self.note(trigger);
            }
            self.take_due_deferred();
            if self.has_work() && retry_at.is_none() {
                match self.cycle().await {
                    Ok(()) => {
                        backoff.reset();
                        self.show_hub().await;
                        // Not worth stopping for: shown again next time.
                        if error_shown && self.state.clear_meta(MetaKey::LastError).await.is_ok() {
                            error_shown = false;
                        }
                    }
                    Err(CycleError::HubDown(err)) => {
                        error_shown = true;
                        let wait = backoff.next_delay();
                        tracing::warn!(error = %err, retry_in = ?wait, "hub unreachable; local changes are kept and pushed when it returns");
                        let _ = self
                            .state
                            .set_meta(MetaKey::LastError, &err.to_string())
                            .await;
                        self.full_scan = true;
                        self.remote_news = true;
                        retry_at = Some(tokio::time::Instant::now() + wait);
                    }
                    Err(CycleError::DiskFull(err)) => {
                        error_shown = true;
                        let wait = backoff.next_delay();
                        tracing::warn!(error = %err, retry_in = ?wait, "the disk of the folder is full; nothing is lost, and syncing resumes once there is room");
                        // May fail for the same reason; the log says it.
                        let _ = self
                            .state
                            .set_meta(MetaKey::LastError, &format!("the disk is full: {err}"))
                            .await;
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
                () = deferred => self.take_due_deferred(),
            }
        }
    }

    /// Records the hub this cycle synced with for `sf-agent status`, when
    /// it is another than the last one recorded.
    async fn show_hub(&mut self) {
        let hub = self.hub.base_url();
        if hub != self.hub_shown && self.state.set_meta(MetaKey::Hub, hub).await.is_ok() {
            self.hub_shown = hub.to_owned();
        }
    }

    /// The paths put off until now become dirty: looked at next cycle.
    fn take_due_deferred(&mut self) {
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
        let result = self.cycle_steps().await;
        // A batch still on its way (the cycle stopped or failed between
        // two batches) is recorded before the cycle ends, whatever it did.
        let landed = self.land_sending().await;
        worse(result, landed)
    }

    async fn cycle_steps(&mut self) -> Result<(), CycleError> {
        self.check_marker().map_err(CycleError::Fatal)?;
        if self.scope.is_none() {
            self.learn_scope().await?;
        }
        let remote_changed = if self.remote_news {
            let caught = self.catch_up().await?;
            // More of the feed waiting: the next cycle follows at once.
            self.remote_news = caught.more;
            caught.changed
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
            .set_meta(MetaKey::LastCycleMs, &crate::state::now_ms().to_string())
            .await;
        Ok(())
    }

    /// Looks at `path` again later; the wait doubles with each attempt in a
    /// row, so a file that is always busy or always failing does not spin.
    fn defer(&mut self, path: SyncPath) {
        // Its retry comes back as a dirty path: always looked at.
        self.echoes.forget(&path);
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

    /// Whether `path` is ignored: `.sfignore`, the built-in rules, or an
    /// ignored folder above it.
    fn ignores(&self, path: &SyncPath, is_dir: bool) -> bool {
        self.rules.is_ignored(path.as_str(), is_dir)
    }

    /// A name that is never synced (symlink, special file, invalid name):
    /// logged once.
    fn skipped(&mut self, path: &str, reason: &str) {
        if self.warned.insert(format!("skipped: {path}")) {
            tracing::warn!(path, reason, "not synced");
        }
    }

    /// `path` cannot be decided this time: it is looked at again later. One
    /// that cannot be read is logged once and reported by `sf-agent status`
    /// until it syncs (a record clears it), however it was found.
    async fn unsettled(&mut self, path: &SyncPath, why: &Unsettled) -> Result<(), StateError> {
        match why {
            Unsettled::Unreadable(reason) => {
                if self.warned.insert(format!("unreadable: {path}")) {
                    tracing::warn!(%path, reason, "cannot read; will retry");
                }
                let detail = format!("cannot read {path}: {reason}");
                self.state
                    .set_problem(path.as_str(), ProblemKind::Error, &detail)
                    .await?;
            }
            Unsettled::Busy => tracing::debug!(%path, "changing; looking at it again shortly"),
        }
        self.defer(path.clone());
        Ok(())
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

fn load_rules(root: &Path) -> IgnoreRules {
    IgnoreRules::load(root).unwrap_or_else(|err| {
        tracing::warn!(error = %err, "cannot use .sfignore; only the built-in ignore rules apply");
        IgnoreRules::defaults()
    })
}
