//! The synced-folder agent: keeps one local folder in sync with a hub.
//!
//! Decisions are a pure function ([`reconcile`]) of three views of each path
//! ([`model`]): disk now ([`scan`]), last synced ([`state`]), hub now (the
//! change feed via [`hub_client`]). [`engine`] runs the loop, [`apply`]
//! changes the folder safely, [`watch`] turns file events into hints, and a
//! WebSocket task turns hub pushes into hints.

pub mod apply;
pub mod config;
pub mod engine;
pub mod hub_client;
pub mod ignore;
pub mod model;
pub mod progress;
pub mod reconcile;
pub mod scan;
pub mod state;
pub mod status;
pub mod watch;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sf_protocol::v1::WsFrame;
use tokio::sync::{Notify, mpsc, watch as signal};

pub use config::Settings;

use crate::engine::{Backoff, Engine, EngineError};
use crate::hub_client::{HubClient, HubError};
use crate::state::{State, StateError};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("no folder given: pass --dir or set SYNC_DIR")]
    NoFolder,
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Syncs the folder until `shutdown` completes; state stays consistent at
/// any stop, and a restart resumes where this one ended.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    let dir = settings.dir.clone().ok_or(AgentError::NoFolder)?;
    let state = State::open(&dir, &settings.state_home()).await?;
    let root = dir.canonicalize().map_err(|source| StateError::Io {
        path: dir.clone(),
        source,
    })?;
    apply::clear_temp(&root).map_err(|source| StateError::Io {
        path: root.clone(),
        source,
    })?;
    if let Err(err) = apply::purge_trash(&root) {
        tracing::warn!(error = %err, "could not purge old trash");
    }
    let hub = HubClient::new(&settings.hub)?;
    state.set_meta("hub", hub.base_url()).await?;
    let origin = settings.name();

    let (stop_tx, stop_rx) = signal::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let (triggers_tx, triggers_rx) = mpsc::unbounded_channel();
    let watcher = if settings.poll {
        None
    } else {
        watch::watch(
            &root,
            Duration::from_millis(settings.debounce_ms),
            triggers_tx.clone(),
        )
    };
    let interval = settings.scan_interval(watcher.is_some());
    tracing::info!(
        dir = %root.display(),
        hub = hub.base_url(),
        name = %origin,
        mode = if watcher.is_some() { "events" } else { "polling" },
        scan_every = ?interval,
        "agent started"
    );
    drop(triggers_tx);
    let doorbell = Arc::new(Notify::new());
    let pushes = tokio::spawn(follow_hub(hub.clone(), doorbell.clone(), stop_rx.clone()));
    let engine = Engine::new(root, origin, hub, state.clone(), stop_rx);
    let result = engine.run(triggers_rx, doorbell, interval).await;
    pushes.abort();
    drop(watcher);
    state.close().await;
    tracing::info!("agent stopped");
    Ok(result?)
}

/// Holds a WebSocket to the hub and rings the engine's doorbell on every
/// change; on any disconnect, reconnects with backoff and rings once more so
/// the engine catches up through the change feed. Rings while the engine is
/// busy add up to one: it reads the whole feed each time, so a long cycle
/// during a burst of commits does not queue one message per commit.
async fn follow_hub(hub: HubClient, doorbell: Arc<Notify>, mut stop: signal::Receiver<bool>) {
    let mut backoff = Backoff::default();
    loop {
        let session = async {
            let mut socket = hub.connect_ws().await?;
            while let Some(frame) = HubClient::next_frame(&mut socket).await {
                match frame? {
                    WsFrame::Hello { .. } | WsFrame::Change(_) => doorbell.notify_one(),
                }
            }
            Ok::<(), HubError>(())
        };
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            result = session => {
                match result {
                    // A certificate problem does not go away by retrying:
                    // say so where the user looks.
                    Err(err @ HubError::Tls(_)) => {
                        tracing::warn!(error = %err, "cannot open the hub's push connection");
                    }
                    Err(err) => tracing::debug!(error = %err, "hub push connection lost"),
                    Ok(()) => backoff.reset(),
                }
            }
        }
        doorbell.notify_one();
        let wait = backoff.next_delay();
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
