//! The synced-folder hub: the server that holds every file, its version
//! history and the audit log, and serves agents and the original clients.
//!
//! It owns the HTTP API (`routes`), who may use it (`auth`: tokens), the
//! listener loop with TLS and slow-client limits (`serve`), the
//! state-changing operations and their broadcast (`service`), the database
//! (`db`: SQLite or PostgreSQL), the chunk store on disk (`store`), getting
//! lost chunks back from agents (`repair`) and checking the store against
//! the database ([`check`]: `sf-hub check`), the metrics listener (`metrics`) and the `sf-hub token` commands
//! ([`token_cli`]). [`launch`] runs it all on listeners the caller binds, so
//! tests start the real server on port 0.
//!
//! The public surface is what the `sf-hub` binary and the tests need:
//! [`launch`] with its [`Settings`] (parsed by [`config::Cli`]) and
//! [`LaunchError`], the token commands, and the error types those name.
//! Everything else is private to the crate.

pub(crate) mod auth;
pub mod check;
pub mod config;
pub(crate) mod db;
pub(crate) mod error;
pub(crate) mod gc;
pub(crate) mod ingest;
pub(crate) mod metrics;
pub(crate) mod repair;
pub(crate) mod routes;
pub(crate) mod serve;
pub(crate) mod service;
pub(crate) mod store;
pub mod token_cli;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

pub use auth::provision::ProvisionError;
pub use config::Settings;
pub use db::{AddTokenError, DbError};
pub use serve::tls::TlsError;
pub use store::{BucketError, OpenError as StoreOpenError};

use crate::auth::Auth;
use crate::auth::provision;
use crate::db::Database;
use crate::metrics::Metrics;
use crate::service::{Access, Hub};
use crate::store::ChunkStore;

/// How long shutdown waits for requests in flight.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Why [`launch`] could not start the hub or stopped serving.
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
    #[error(transparent)]
    Store(#[from] store::OpenError),
    #[error("cannot set up metrics: {0}")]
    Metrics(String),
    #[error(
        "--no-auth lets anyone who can connect read and change every file, so it is only \
         accepted on a loopback address; {0} is not one: use --listen 127.0.0.1:PORT, or \
         drop --no-auth and give agents a token (sf-hub token create NAME)"
    )]
    NoAuthOnNetwork(std::net::SocketAddr),
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error(transparent)]
    Tls(#[from] serve::tls::TlsError),
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
    let api_addr = api.local_addr().map_err(LaunchError::Serve)?;
    if settings.no_auth && !api_addr.ip().is_loopback() {
        return Err(LaunchError::NoAuthOnNetwork(api_addr));
    }
    let tls = match (&settings.tls_cert, &settings.tls_key) {
        (Some(cert), Some(key)) => Some(serve::tls::acceptor(cert, key)?),
        _ => None,
    };
    std::fs::create_dir_all(&data_dir).map_err(data_dir_error)?;
    let database_url = settings.database_url();
    // SQLite is for one hub: held until this function returns, and taken
    // before the store is opened (which clears its temp files).
    let _serving = match db::Backend::from_url(&database_url)? {
        db::Backend::Sqlite => db::claim_serving(&database_url)?,
        db::Backend::Postgres => None,
    };
    let store = {
        let (location, data_dir) = (settings.store.clone(), data_dir.clone());
        let access = settings.bucket_access();
        tokio::task::spawn_blocking(move || ChunkStore::open_at(&location, &access, &data_dir))
            .await
            .map_err(|err| LaunchError::Serve(std::io::Error::other(err)))??
    };
    let store = Arc::new(store.with_capacity(settings.max_store_bytes));
    let db = Database::connect(&database_url, settings.database_timeout).await?;
    let hub_id = db.hub_id().await?;
    if settings.no_auth {
        tracing::warn!(
            "authentication is OFF (--no-auth): anyone who can connect to {api_addr} can read \
             and change every file"
        );
    } else {
        if let Some(token) = &settings.bootstrap_token {
            provision::bootstrap(&db, &token.0).await?;
        }
        if let Some(path) = provision::first_token(&db, &data_dir).await? {
            tracing::info!(
                file = %path.display(),
                "no token existed: made the token \"default\"; give agents --token-file {}",
                path.display()
            );
        }
    }
    let meters = Arc::new(Metrics::new().map_err(|e| LaunchError::Metrics(e.to_string()))?);
    let census = count_stored_chunks(Arc::clone(&store), Arc::clone(&meters));
    if settings.max_store_bytes.is_some() {
        // The limit needs the real size of the store before the first upload.
        let _ = census.await;
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let auth = Arc::new(Auth::new(
        db.clone(),
        !settings.no_auth,
        tls.is_some(),
        &hub_id,
    ));
    auth.start(stop_rx.clone()).await?;
    let access = Access {
        auth,
        hub_id,
        websockets: Arc::new(Semaphore::new(settings.max_websockets.max(1))),
        presence: Default::default(),
    };
    let hub = Arc::new(Hub::new(
        db.clone(),
        store,
        Arc::clone(&meters),
        settings.max_file_size,
        access,
        stop_rx.clone(),
    ));
    if db.backend() == db::Backend::Postgres {
        // Other hubs may share the database: hear their commits.
        service::follow::spawn(Arc::clone(&hub), settings.database_url()).await?;
    }
    gc::spawn(Arc::clone(&hub), settings.chunk_grace, settings.gc_interval);
    repair::spawn(Arc::clone(&hub));
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stopping| *stopping).await;
    };

    let store_described = hub.store.describe();
    let metrics_app = Router::new()
        .route("/metrics", get(metrics::serve_metrics))
        .with_state(Arc::clone(&meters));
    tracing::info!(
        api = %api_addr,
        tls = tls.is_some(),
        metrics = %metrics.local_addr().map_err(LaunchError::Serve)?,
        data_dir = %data_dir.display(),
        store = %store_described,
        database = db.backend().name(),
        "hub listening"
    );
    let limits = serve::Limits {
        header_timeout: settings.header_timeout,
        max_connections: settings.max_connections,
        max_connections_per_ip: settings.max_connections_per_ip,
        send_timeout: settings.send_timeout,
        shutdown_grace: SHUTDOWN_GRACE,
    };
    let app = routes::router(hub, settings.min_body_rate, settings.header_timeout);
    let api_server = serve::serve(api, tls, app, limits, stop_rx.clone());
    let metrics_server = axum::serve(metrics, metrics_app).with_graceful_shutdown(stopped(stop_rx));
    let (api_result, metrics_result) = tokio::join!(api_server, async { metrics_server.await });
    db.close().await;
    api_result.map_err(LaunchError::Serve)?;
    metrics_result.map_err(LaunchError::Serve)?;
    tracing::info!("hub stopped");
    Ok(())
}

/// Seeds the store gauges from disk in the background: a large store takes a
/// while to walk and must not delay start-up (unless --max-store-bytes needs
/// the total, then the caller waits for the returned task).
fn count_stored_chunks(
    store: Arc<ChunkStore>,
    metrics: Arc<Metrics>,
) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_blocking(move || match store.census_blocking() {
        Ok((count, bytes)) => {
            metrics.chunks_stored.add(count as i64, &[]);
            metrics.chunk_bytes_stored.add(bytes as i64, &[]);
        }
        Err(err) => tracing::warn!(error = %err, "could not count stored chunks"),
    })
}
