//! The change feed of several hubs sharing one PostgreSQL database: every
//! hub tells its WebSocket clients about every commit, its own and the
//! other hubs', in seq order with no gap.
//!
//! A commit announces its new head with `NOTIFY` in its own transaction
//! (`crate::db`), so every listening hub hears it once it is visible, in
//! commit order. The notification only says how far the feed goes: the
//! entries are read from the database, so a lost notification loses
//! nothing. This hub's own commits are handed over in memory (no round
//! trip), and entries are passed on strictly in seq order, from memory
//! when this hub made them, else from the database.
//!
//! The notification connection is watched: while it is down the feed's
//! head is read every [`POLL_WHILE_DEAF`], and once it is back, once at
//! once (notifications sent meanwhile are gone). Even while it is up the
//! head is read every [`POLL_WHILE_LISTENING`], in case a notification
//! was dropped on the way. The same connection hears token revocations
//! (`sf-hub token revoke` on any machine), which make the credential cache
//! re-read the tokens at once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sf_protocol::v1::Entry;
use sqlx::postgres::PgListener;
use tokio::sync::{Notify, mpsc, watch};

use super::Hub;
use crate::db::{FEED_CHANNEL, TOKENS_CHANNEL};

/// How often the head is read while the notification connection is down.
pub const POLL_WHILE_DEAF: Duration = Duration::from_millis(250);
/// How often it is read while notifications arrive (a safety net).
pub const POLL_WHILE_LISTENING: Duration = Duration::from_secs(5);
/// Feed entries read from the database per query.
const PAGE: u32 = 1000;
/// The `application_name` of the notification connection, so an operator
/// (or a test) can find it in `pg_stat_activity`.
pub const LISTENER_NAME: &str = "sf-hub-feed";

/// This hub's commits, waiting to be passed on in seq order.
#[derive(Default)]
pub(super) struct OwnCommits {
    entries: Mutex<BTreeMap<u64, Entry>>,
    wake: Notify,
}

impl OwnCommits {
    /// Hands over an entry this hub committed (with its chunk list).
    pub(super) fn committed(&self, entry: &Entry) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(entry.seq, entry.clone());
        self.wake.notify_one();
    }

    fn take(&self, seq: u64) -> Option<Entry> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&seq)
    }

    fn newest(&self) -> u64 {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_key_value()
            .map_or(0, |(seq, _)| *seq)
    }

    /// Drops entries already passed on (read from the database first).
    fn forget_before(&self, seq: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        *entries = entries.split_off(&seq);
    }
}

/// What the notification connection heard.
#[derive(Debug)]
enum Heard {
    Connected,
    Head(u64),
    Tokens,
    Lost(String),
}

/// Starts following the feed of the database at `url` (PostgreSQL) from
/// its current head: a task that listens, and one that passes entries on.
pub async fn spawn(hub: Arc<Hub>, url: String) -> Result<(), crate::db::DbError> {
    let start = hub.db.head().await?;
    let (heard_tx, heard_rx) = mpsc::channel(64);
    let listener = tokio::spawn(listen(url, heard_tx, hub.shutdown_signal()));
    tokio::spawn(async move {
        follow(&hub, start, heard_rx).await;
        listener.abort();
    });
    Ok(())
}

/// Passes entries on as they come, until the hub shuts down.
async fn follow(hub: &Hub, start: u64, mut heard: mpsc::Receiver<Heard>) {
    let Some(own) = hub.own_commits.as_ref() else {
        return;
    };
    let mut shutdown = hub.shutdown_signal();
    let mut next = start + 1;
    let mut target = start;
    let mut listening = false;
    // The listener ended (it only does at shutdown): stop asking it.
    let mut deaf_for_good = false;
    loop {
        let poll = if listening {
            POLL_WHILE_LISTENING
        } else {
            POLL_WHILE_DEAF
        };
        let mut read_head = false;
        let mut reread_tokens = false;
        tokio::select! {
            () = own.wake.notified() => {}
            message = heard.recv(), if !deaf_for_good => match message {
                Some(Heard::Head(head)) => target = target.max(head),
                Some(Heard::Connected) => {
                    if !listening {
                        tracing::info!("listening for other hubs' commits");
                    }
                    listening = true;
                    read_head = true;
                    reread_tokens = true;
                }
                Some(Heard::Tokens) => reread_tokens = true,
                Some(Heard::Lost(why)) => {
                    if listening {
                        tracing::warn!(
                            error = %why,
                            poll = ?POLL_WHILE_DEAF,
                            "lost the connection that hears other hubs' commits; reading the \
                             feed from the database until it is back"
                        );
                    }
                    listening = false;
                }
                None => {
                    listening = false;
                    deaf_for_good = true;
                }
            },
            () = tokio::time::sleep(poll) => read_head = true,
            _ = shutdown.wait_for(|stopping| *stopping) => return,
        }
        if reread_tokens {
            hub.access.auth.refresh_now().await;
        }
        if read_head {
            match hub.db.head().await {
                Ok(head) => target = target.max(head),
                Err(_) if *shutdown.borrow() => return,
                Err(err) => tracing::warn!(error = %err, "cannot read the feed's head"),
            }
        }
        target = target.max(own.newest());
        hub.note_head(target);
        next = pass_on(hub, own, next, target).await;
    }
}

/// Passes on entries `next..=target` in order; returns the next seq still
/// to pass on (where it stopped if the database could not be read).
async fn pass_on(hub: &Hub, own: &OwnCommits, mut next: u64, target: u64) -> u64 {
    while next <= target {
        if let Some(entry) = own.take(next) {
            hub.publish(entry);
            next += 1;
            continue;
        }
        let page = match hub.db.changes(next - 1, PAGE, true).await {
            Ok(page) => page,
            Err(err) => {
                tracing::warn!(error = %err, seq = next, "cannot read the feed; trying again");
                return next;
            }
        };
        let mut advanced = false;
        for entry in page {
            if entry.seq != next {
                // A seq committed but not yet visible to this read: later.
                break;
            }
            own.take(next);
            hub.publish(entry);
            next += 1;
            advanced = true;
        }
        if !advanced {
            if hub.db.head().await.is_ok_and(|head| head >= next) {
                // Committed and visible by the head, yet not readable: a
                // commit in flight, or a hole someone made by hand.
                tracing::debug!(seq = next, "the feed's next entry is not readable yet");
            }
            return next;
        }
    }
    own.forget_before(next);
    next
}

/// Keeps a notification connection open (reconnecting with backoff) and
/// reports what it hears, until the hub shuts down.
async fn listen(url: String, heard: mpsc::Sender<Heard>, mut shutdown: watch::Receiver<bool>) {
    let url = with_application_name(&url);
    let mut delay = Duration::from_millis(100);
    loop {
        match connect(&url).await {
            Ok(mut listener) => {
                delay = Duration::from_millis(100);
                if heard.send(Heard::Connected).await.is_err() {
                    return;
                }
                loop {
                    let message = match listener.try_recv().await {
                        Ok(Some(notification)) if notification.channel() == TOKENS_CHANNEL => {
                            Heard::Tokens
                        }
                        Ok(Some(notification)) => match notification.payload().parse() {
                            Ok(head) => Heard::Head(head),
                            Err(_) => continue,
                        },
                        Ok(None) => Heard::Lost("the connection closed".into()),
                        Err(err) => Heard::Lost(err.to_string()),
                    };
                    let lost = matches!(message, Heard::Lost(_));
                    if heard.send(message).await.is_err() {
                        return;
                    }
                    if lost {
                        break;
                    }
                }
            }
            Err(err) => {
                if heard.send(Heard::Lost(err.to_string())).await.is_err() {
                    return;
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = shutdown.wait_for(|stopping| *stopping) => return,
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

async fn connect(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    // Reconnecting is this module's job (with backoff, and a head read).
    listener.eager_reconnect(false);
    listener.listen_all([FEED_CHANNEL, TOKENS_CHANNEL]).await?;
    Ok(listener)
}

/// `url` with `application_name` set to [`LISTENER_NAME`].
fn with_application_name(url: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}application_name={LISTENER_NAME}")
}
