//! The synced-folder hub: the server that holds every file, its version
//! history and the audit log, and serves agents and the original clients.
//!
//! It owns the HTTP API ([`routes`]), the state-changing operations and their
//! broadcast ([`service`]), the database ([`db`]: SQLite or PostgreSQL), the
//! chunk store on disk ([`store`]) and the metrics listener ([`metrics`]).
//! [`launch`] runs it all on listeners the caller binds, so tests start the
//! real server on port 0.

pub mod config;
pub mod db;
pub mod error;
pub mod ingest;
pub mod metrics;
pub mod routes;
pub mod service;
pub mod store;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::Settings;

use crate::db::{Database, DbError};
use crate::metrics::Metrics;
use crate::service::Hub;
use crate::store::ChunkStore;

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot prepare the data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("cannot set up metrics: {0}")]
    Metrics(String),
    #[error("serving failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// Opens storage and the database, then serves the API on `api` and metrics
/// on `metrics` until `shutdown` completes; then stops accepting, closes
/// WebSockets and waits for requests in flight.
pub async fn launch(
    settings: Settings,
    api: TcpListener,
    metrics: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), LaunchError> {
    let data_dir = settings.data_dir();
    let data_dir_error = |source| LaunchError::DataDir {
        path: data_dir.clone(),
        source,
    };
    std::fs::create_dir_all(&data_dir).map_err(data_dir_error)?;
    let store = Arc::new(ChunkStore::open(&data_dir).map_err(data_dir_error)?);
    let db = Database::connect(&settings.database_url(), settings.database_timeout).await?;
    let meters = Arc::new(Metrics::new().map_err(|e| LaunchError::Metrics(e.to_string()))?);
    count_stored_chunks(Arc::clone(&store), Arc::clone(&meters));

    let (stop_tx, stop_rx) = watch::channel(false);
    let hub = Arc::new(Hub::new(
        db.clone(),
        store,
        Arc::clone(&meters),
        settings.max_file_size,
        stop_rx.clone(),
    ));
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stopping| *stopping).await;
    };

    let metrics_app = Router::new()
        .route("/metrics", get(metrics::serve_metrics))
        .with_state(Arc::clone(&meters));
    tracing::info!(
        api = %api.local_addr().map_err(LaunchError::Serve)?,
        metrics = %metrics.local_addr().map_err(LaunchError::Serve)?,
        data_dir = %data_dir.display(),
        database = db.backend().name(),
        "hub listening"
    );
    // Without TCP_NODELAY, small responses on a reused connection wait for
    // the peer's delayed ACK (~40 ms each): agents fetch many small chunks.
    let api = api.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "cannot set TCP_NODELAY");
        }
    });
    let api_server =
        axum::serve(api, routes::router(hub)).with_graceful_shutdown(stopped(stop_rx.clone()));
    let metrics_server = axum::serve(metrics, metrics_app).with_graceful_shutdown(stopped(stop_rx));
    let (api_result, metrics_result) =
        tokio::join!(async { api_server.await }, async { metrics_server.await });
    db.close().await;
    api_result.map_err(LaunchError::Serve)?;
    metrics_result.map_err(LaunchError::Serve)?;
    tracing::info!("hub stopped");
    Ok(())
}

/// Seeds the store gauges from disk in the background: a large store takes a
/// while to walk and must not delay start-up.
fn count_stored_chunks(store: Arc<ChunkStore>, metrics: Arc<Metrics>) {
    tokio::task::spawn_blocking(move || match store.census_blocking() {
        Ok((count, bytes)) => {
            metrics.chunks_stored.add(count as i64, &[]);
            metrics.chunk_bytes_stored.add(bytes as i64, &[]);
        }
        Err(err) => tracing::warn!(error = %err, "could not count stored chunks"),
    });
}
