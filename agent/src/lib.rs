//! The synced-folder agent: keeps one local folder in sync with a hub.
//!
//! Decisions are a pure function (`reconcile`) of three views of each path
//! (`model`): disk now (`scan`), last synced (`state`), hub now (the
//! change feed via `hub_client`). `engine` runs the loop, `apply`
//! changes the folder safely, `watch` turns file events into hints, and a
//! WebSocket task turns hub pushes into hints.
//!
//! `--hub` may name several hubs on one database: `hub_client` talks to
//! one at a time and moves on to the next when it stops answering; the
//! engine's retry and the WebSocket's reconnect then go there, and the
//! feed is read on from the last applied seq as after any reconnect.
//!
//! `config_file` reads `agent.toml` under the flags; `commands` are the
//! other subcommands (history, restore, conflicts, trash,
//! install-service); `desktop` sends notifications.
//!
//! `credentials` holds the token and extra CAs. A refused token stops the
//! agent ([`AgentError::Unauthorized`]) wherever it shows, in the sync loop
//! or on the WebSocket; a read-only one makes it receive-only.

pub(crate) mod apply;
pub mod commands;
pub mod config;
pub mod config_file;
pub(crate) mod credentials;
pub mod desktop;
pub(crate) mod engine;
pub(crate) mod hub_client;
pub(crate) mod ignore;
pub(crate) mod model;
pub mod progress;
pub(crate) mod reconcile;
pub(crate) mod repair;
pub(crate) mod scan;
pub(crate) mod state;
pub mod status;
pub(crate) mod walk;
pub(crate) mod watch;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sf_protocol::v1::WsFrame;
use tokio::sync::{Notify, mpsc, watch as signal};

pub use config::Settings;

use crate::credentials::{CredentialsError, TokenRefused};
use crate::engine::{Backoff, Engine, EngineError};
use crate::hub_client::{HubClient, HubError};
use crate::state::{MetaKey, State, StateError};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("no folder given: pass --dir or set SYNC_DIR")]
    NoFolder,
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The hub refused the token: the message names it and says what to do.
    #[error(transparent)]
    Unauthorized(TokenRefused),
    #[error(transparent)]
    State(#[from] StateError),
    /// The synced folder itself cannot be resolved (its state opened fine).
    #[error("cannot read the synced folder {path}: {source}")]
    FolderUnreadable {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// What an interrupted run left in `.sf/tmp` cannot be cleared away.
    #[error("cannot clear the agent's temporary files in {path}: {source}")]
    TempNotCleared {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error(transparent)]
    Engine(EngineError),
}

impl From<EngineError> for AgentError {
    fn from(err: EngineError) -> Self {
        match err {
            EngineError::Unauthorized(refused) => AgentError::Unauthorized(refused),
            other => AgentError::Engine(other),
        }
    }
}

/// Syncs the folder until `shutdown` completes; state stays consistent at
/// any stop, and a restart resumes where this one ended.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    let dir = settings.dir.clone().ok_or(AgentError::NoFolder)?;
    // Before anything else: a bad token file is a mistake to fix first.
    let access = settings.access()?;
    let state = State::open(&dir, &settings.state_home()).await?;
    let root = dir
        .canonicalize()
        .map_err(|source| AgentError::FolderUnreadable {
            path: dir.clone(),
            source,
        })?;
    apply::clear_temp(&root).map_err(|source| AgentError::TempNotCleared {
        path: root.join(state::STATE_DIR).join("tmp"),
        source,
    })?;
    if let Err(err) = apply::purge_trash(&root) {
        tracing::warn!(error = %err, "could not purge old trash");
    }
    let hub = HubClient::with_access(&settings.hub, &access)?.named(&settings.name());
    let tls = |base: &String| base.starts_with("https://");
    if !access.extra_roots.is_empty() && !hub.hub_urls().iter().any(tls) {
        tracing::warn!("--ca-cert is used only with an https:// hub");
    }
    if access.token.is_none() {
        tracing::info!(
            "no token given (--token-file): only a hub run with --no-auth lets this agent in"
        );
    }
    state.set_meta(MetaKey::Hub, hub.base_url()).await?;
    let origin = settings.name();

    let (stop_tx, stop_rx) = signal::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let on_shutdown = Arc::clone(&stop_tx);
    tokio::spawn(async move {
        shutdown.await;
        let _ = on_shutdown.send(true);
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
        hubs = %hub.hub_urls().join(","),
        name = %origin,
        mode = if watcher.is_some() { "events" } else { "polling" },
        scan_every = ?interval,
        "agent started"
    );
    drop(triggers_tx);
    let doorbell = Arc::new(Notify::new());
    let (wanted_tx, wanted_rx) = signal::channel(Vec::new());
    tokio::spawn(repair::give_back(
        hub.clone(),
        root.clone(),
        wanted_rx,
        stop_rx.clone(),
    ));
    let pushes = tokio::spawn(follow_hub(
        hub.clone(),
        doorbell.clone(),
        wanted_tx,
        stop_rx.clone(),
        Arc::clone(&stop_tx),
    ));
    let engine = Engine::new(root, origin, hub, state.clone(), stop_rx)
        .with_notifier(desktop::Notifier::new(settings.notify()));
    let result = engine.run(triggers_rx, doorbell, interval).await;
    // The WebSocket task ends at the stop signal; it may also be what
    // stopped the engine, when the hub refused the token.
    let _ = stop_tx.send(true);
    let refused = pushes.await.ok().flatten();
    drop(watcher);
    let outcome = match (result, refused) {
        (Err(err), _) => Err(AgentError::from(err)),
        (Ok(()), Some(refused)) => Err(AgentError::Unauthorized(refused)),
        (Ok(()), None) => Ok(()),
    };
    if let Err(err @ AgentError::Unauthorized(_)) = &outcome {
        // For `sf-agent status`, which the user may run next.
        let _ = state.set_meta(MetaKey::LastError, &err.to_string()).await;
    }
    state.close().await;
    tracing::info!("agent stopped");
    outcome
}

/// Holds a WebSocket to the hub and rings the engine's doorbell on every
/// change; on any disconnect, reconnects with backoff (to the next hub
/// given, once the one in use fails to connect) and rings once more so
/// the engine catches up through the change feed. Rings while the engine is
/// busy add up to one: it reads the feed on from where it stopped each
/// time (cycle after cycle while more is waiting), so a long cycle during
/// a burst of commits does not queue one message per commit. Chunks the hub
/// asks back go to `wanted` (see [`repair`]).
///
/// When the hub refuses the token (a 401 on the upgrade, or the socket
/// closed because the token was revoked), stops the agent through
/// `stop_all` and returns the refusal.
async fn follow_hub(
    hub: HubClient,
    doorbell: Arc<Notify>,
    wanted: signal::Sender<Vec<sf_protocol::v1::WantedChunk>>,
    mut stop: signal::Receiver<bool>,
    stop_all: Arc<signal::Sender<bool>>,
) -> Option<TokenRefused> {
    let mut backoff = Backoff::default();
    loop {
        let session = async {
            let mut socket = hub.connect_ws().await?;
            // Connected: the next loss starts the delays from the shortest
            // again. (Sessions end in an error when the hub is killed or the
            // network cut, so resetting only on a clean end let the delay
            // grow for the life of the process.)
            backoff.reset();
            while let Some(frame) = hub.next_frame(&mut socket).await {
                match frame? {
                    WsFrame::Hello { .. } | WsFrame::Change(_) => doorbell.notify_one(),
                    WsFrame::Wanted { chunks } => {
                        wanted.send_replace(chunks);
                    }
                    // From a newer hub: nothing this agent knows to do.
                    WsFrame::Unknown => {}
                }
            }
            Ok::<(), HubError>(())
        };
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return None,
            result = session => {
                match result {
                    Err(HubError::Unauthorized(refused)) => {
                        tracing::error!("{refused}");
                        let _ = stop_all.send(true);
                        return Some(refused);
                    }
                    // A certificate problem does not go away by retrying:
                    // say so where the user looks.
                    Err(err @ HubError::Tls(_)) => {
                        tracing::warn!(error = %err, "cannot open the hub's push connection");
                    }
                    Err(err) => tracing::debug!(error = %err, "hub push connection lost"),
                    Ok(()) => {}
                }
            }
        }
        doorbell.notify_one();
        let wait = backoff.next_delay();
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return None,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::Parser;

    use super::*;
    use crate::config::{Cli, EnvToken};
    use crate::credentials::TokenSource;
    use crate::hub_client::tests::auth::{Upgrade, empty_hub, refuse_everything, spawn_stand_in};

    /// A hang guard, not a speed check.
    const DEADLINE: Duration = Duration::from_secs(60);

    fn settings(hub: &str, dir: &Path, home: &Path, token_file: &Path) -> Settings {
        let args = [
            "sf-agent".as_ref(),
            "--hub".as_ref(),
            hub.as_ref(),
            "--dir".as_ref(),
            dir.as_os_str(),
            "--state-home".as_ref(),
            home.as_os_str(),
            "--token-file".as_ref(),
            token_file.as_os_str(),
            "--poll".as_ref(),
        ];
        let mut settings = Cli::try_parse_from::<_, &std::ffi::OsStr>(args)
            .unwrap()
            .run;
        settings.token_env = EnvToken::new(None);
        settings
    }

    /// Runs an agent with a token file against the stand-in hub at `port`
    /// until it stops by itself; returns its error and its status report.
    async fn run_until_refused(port: u16) -> (AgentError, String, std::path::PathBuf) {
        let sandbox = tempfile::tempdir().unwrap();
        let dir = sandbox.path().join("folder");
        std::fs::create_dir(&dir).unwrap();
        let token_file = sandbox.path().join("token");
        std::fs::write(&token_file, "sft_test\n").unwrap();
        let settings = settings(
            &format!("http://127.0.0.1:{port}"),
            &dir,
            &sandbox.path().join("home"),
            &token_file,
        );
        let outcome = tokio::time::timeout(DEADLINE, run(settings, std::future::pending()))
            .await
            .expect("the agent stops by itself");
        let err = outcome.expect_err("a refused token is an error");
        let status = status::report(&dir).await.unwrap();
        (err, status, token_file)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_token_stops_the_agent_with_its_message() {
        let (port, _) = spawn_stand_in(None, 100, Upgrade::Refuse, refuse_everything);
        let (err, status, token_file) = run_until_refused(port).await;
        let AgentError::Unauthorized(refused) = &err else {
            panic!("expected a refused token, got {err:?}");
        };
        assert_eq!(refused.token, TokenSource::File(token_file.clone()));
        let message = err.to_string();
        assert!(
            message.contains(&token_file.display().to_string()),
            "{message}"
        );
        assert!(message.contains("sf-hub token list"), "{message}");
        assert!(
            status.contains("last error: the hub refused the token in"),
            "{status}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_websocket_closed_for_revocation_stops_the_agent() {
        let (port, _) = spawn_stand_in(
            None,
            100,
            Upgrade::Accept(Some((4001, "token revoked"))),
            empty_hub,
        );
        let (err, status, _) = run_until_refused(port).await;
        let AgentError::Unauthorized(refused) = &err else {
            panic!("expected a refused token, got {err:?}");
        };
        assert!(refused.detail.contains("token revoked"), "{refused:?}");
        assert!(status.contains("token revoked"), "{status}");
    }
}
