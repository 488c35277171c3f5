//! Test harness: starts the real hub in-process on port 0 against real SQLite
//! (a temp dir) or real PostgreSQL (a fresh database per test, from
//! `SF_TEST_DATABASE_URL`, made by `sf-test-support`), with chunks in its
//! data directory or, on PostgreSQL, in a bucket of a real S3 protocol
//! server (`moto_server`, a bucket per test), and talks to it over real
//! HTTP and WebSocket.
#![allow(dead_code)]

pub mod client;
mod stored;

use std::path::PathBuf;
use std::time::Duration;

use sf_hub::{LaunchError, Settings};
use sf_test_support::PgDatabase;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    /// PostgreSQL with chunks in an S3 bucket: how several hubs run.
    PostgresS3,
}

impl Backend {
    /// The database `/readyz` names.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres | Backend::PostgresS3 => "postgres",
        }
    }

    /// The store `/readyz` names.
    pub fn store(self) -> &'static str {
        match self {
            Backend::Sqlite | Backend::Postgres => "local",
            Backend::PostgresS3 => "s3",
        }
    }
}

/// Runs each listed `async fn name(hub: TestHub)` on SQLite, on PostgreSQL,
/// and on PostgreSQL with an S3 store, as `sqlite::name`, `postgres::name`
/// and `postgres_s3::name`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(hub) = $crate::common::TestHub::start($crate::common::Backend::Sqlite).await {
                        super::$name(hub).await;
                    }
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(hub) = $crate::common::TestHub::start($crate::common::Backend::Postgres).await {
                        super::$name(hub).await;
                    }
                }
            )*
        }
        mod postgres_s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(hub) = $crate::common::TestHub::start($crate::common::Backend::PostgresS3).await {
                        super::$name(hub).await;
                    }
                }
            )*
        }
    };
}

/// Runs each listed `async fn name(hub: TestHub)` on SQLite and on
/// PostgreSQL with chunks in the data directory only: for tests of what
/// only a local store has (temp files, chunk files' ages).
#[macro_export]
macro_rules! on_local_store_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite_local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(hub) = $crate::common::TestHub::start($crate::common::Backend::Sqlite).await {
                        super::$name(hub).await;
                    }
                }
            )*
        }
        mod postgres_local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(hub) = $crate::common::TestHub::start($crate::common::Backend::Postgres).await {
                        super::$name(hub).await;
                    }
                }
            )*
        }
    };
}

/// A PostgreSQL database made for one test and dropped after it
/// ([`PgDatabase`]: a loud `skipped` line without `SF_TEST_DATABASE_URL`, a
/// failure in CI), with its name and URL as fields for the suites.
pub struct PgTestDatabase {
    pub name: String,
    pub url: String,
    _db: PgDatabase,
}

impl PgTestDatabase {
    pub async fn create() -> Option<Self> {
        let db = PgDatabase::create(&sf_test_support::skip::current_test()).await?;
        Some(Self {
            name: db.name().to_owned(),
            url: db.url().to_owned(),
            _db: db,
        })
    }
}

/// Where a hub keeps its state, so it can be stopped and started again.
pub struct HubStorage {
    pub backend: Backend,
    pub data_dir: tempfile::TempDir,
    pub pg: Option<PgTestDatabase>,
    pub bucket: Option<sf_test_support::s3::TestBucket>,
    /// The database of another hub's storage this one shares (see
    /// [`HubStorage::sibling`]); `pg` owns it.
    pub shared_database: Option<String>,
}

impl HubStorage {
    pub async fn new(backend: Backend) -> Option<Self> {
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres | Backend::PostgresS3 => Some(PgTestDatabase::create().await?),
        };
        let bucket = match backend {
            Backend::PostgresS3 => Some(
                sf_test_support::s3::TestBucket::create(&sf_test_support::skip::current_test())
                    .await?,
            ),
            Backend::Sqlite | Backend::Postgres => None,
        };
        Some(Self {
            backend,
            data_dir: tempfile::tempdir().expect("temp dir"),
            pg,
            bucket,
            shared_database: None,
        })
    }

    /// Storage for another hub of the same deployment: the same database
    /// and bucket, a data directory of its own. Only on PostgreSQL.
    pub fn sibling(&self) -> Self {
        let url = self
            .pg
            .as_ref()
            .map(|pg| pg.url.clone())
            .or_else(|| self.shared_database.clone())
            .expect("several hubs share a PostgreSQL database");
        Self {
            backend: self.backend,
            data_dir: tempfile::tempdir().expect("temp dir"),
            pg: None,
            bucket: self.bucket.clone(),
            shared_database: Some(url),
        }
    }

    pub fn settings(&self) -> Settings {
        let mut settings = Settings::with_data_dir(self.data_dir.path());
        settings.database_url = self
            .pg
            .as_ref()
            .map(|pg| pg.url.clone())
            .or_else(|| self.shared_database.clone());
        if let Some(bucket) = &self.bucket {
            use sf_test_support::s3;
            settings.store = bucket.store().parse().expect("a valid --store");
            settings.s3_endpoint = Some(bucket.endpoint.clone());
            settings.s3_region = Some(s3::REGION.into());
            settings.s3_access_key_id = Some(s3::ACCESS_KEY_ID.into());
            settings.s3_secret_access_key = Some(s3::SECRET_ACCESS_KEY.to_owned().into());
        }
        settings
    }

    pub fn data_path(&self) -> PathBuf {
        self.data_dir.path().to_owned()
    }
}

/// A hub running in this process.
pub struct TestHub {
    pub base: String,
    pub metrics_url: String,
    /// Sends the hub's first-start write token (`<data-dir>/agent-token`) on
    /// every request.
    pub http: reqwest::Client,
    /// Sends no token.
    pub anon: reqwest::Client,
    /// The write token `http` sends (empty under `--no-auth`).
    pub token: String,
    pub storage: HubStorage,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), LaunchError>>>,
}

impl TestHub {
    pub async fn start(backend: Backend) -> Option<Self> {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> Option<Self> {
        let storage = HubStorage::new(backend).await?;
        Some(Self::start_on(storage, adjust).await)
    }

    /// Starts a hub on existing storage (a restart).
    pub async fn start_on(storage: HubStorage, adjust: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = storage.settings();
        adjust(&mut settings);
        let api = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", api.local_addr().unwrap());
        let metrics_url = format!("http://{}/metrics", metrics.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(sf_hub::launch(settings, api, metrics, async {
            let _ = stopped.await;
        }));
        let mut hub = Self {
            base,
            metrics_url,
            http: reqwest::Client::new(),
            anon: reqwest::Client::new(),
            token: String::new(),
            storage,
            stop: Some(stop),
            task: Some(task),
        };
        hub.wait_ready().await;
        // Made before the hub serves, on its first start; kept across restarts.
        if let Ok(token) = std::fs::read_to_string(hub.storage.data_dir.path().join("agent-token"))
        {
            hub.token = token.trim().to_owned();
            hub.http = sf_test_support::bearer_client(&hub.token);
        }
        hub
    }

    /// Waits for `/readyz` and checks the hub runs on the back end asked for,
    /// so a PostgreSQL test can never silently run on SQLite.
    async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(resp) = self.anon.get(self.url("/readyz")).send().await
                && resp.status().is_success()
            {
                let body: serde_json::Value = resp.json().await.unwrap();
                assert_eq!(
                    body["database"],
                    self.storage.backend.name(),
                    "hub runs on the wrong back end"
                );
                assert_eq!(
                    body["store"],
                    self.storage.backend.store(),
                    "hub keeps chunks in the wrong store"
                );
                eprintln!(
                    "backend: {} ({})",
                    self.storage.backend.name(),
                    self.storage
                        .pg
                        .as_ref()
                        .map_or("temp file".to_owned(), |pg| format!("database {}", pg.name))
                );
                return;
            }
            if let Some(task) = &self.task
                && task.is_finished()
            {
                panic!("hub stopped during start-up");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "hub not ready after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn ws_url(&self) -> String {
        format!("{}/v1/ws", self.base.replace("http://", "ws://"))
    }

    /// A `/v1/ws` handshake request carrying the write token.
    pub fn ws_request(&self) -> tokio_tungstenite::tungstenite::handshake::client::Request {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = self.ws_url().into_client_request().unwrap();
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {}", self.token).parse().unwrap(),
        );
        request
    }

    /// Graceful shutdown; returns the storage for a restart.
    pub async fn stop(mut self) -> HubStorage {
        let _ = self.stop.take().unwrap().send(());
        let result = self.task.take().unwrap().await.expect("hub task panicked");
        result.expect("hub stopped with an error");
        std::mem::replace(
            &mut self.storage,
            HubStorage {
                backend: Backend::Sqlite,
                data_dir: tempfile::tempdir().unwrap(),
                pg: None,
                bucket: None,
                shared_database: None,
            },
        )
    }

    pub async fn restart(self) -> Self {
        let storage = self.stop().await;
        Self::start_on(storage, |_| {}).await
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The next text frame of `socket`, decoded; fails after 20 s without one
/// (a hang guard).
pub async fn next_frame<S>(socket: &mut S) -> sf_protocol::v1::WsFrame
where
    S: futures_util::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    use futures_util::StreamExt;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("no frame within 20 s")
            .expect("socket ended")
            .expect("socket error");
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}
