//! Test harness: starts the real hub in-process on port 0 against real SQLite
//! (a temp dir) or real PostgreSQL (a fresh database per test, from
//! `SF_TEST_DATABASE_URL`), and talks to it over real HTTP and WebSocket.
#![allow(dead_code)]

pub mod client;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sf_hub::{LaunchError, Settings};
use sqlx::Connection;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Runs each listed `async fn name(hub: TestHub)` once on SQLite and once on
/// PostgreSQL, as `sqlite::name` and `postgres::name`.
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
    };
}

/// A PostgreSQL database made for one test and dropped after it.
pub struct PgTestDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl PgTestDatabase {
    /// `None` (with a loud `skipped` line) when `SF_TEST_DATABASE_URL` is
    /// unset outside CI; in CI a missing variable fails the test.
    pub async fn create() -> Option<Self> {
        let Ok(admin_url) = std::env::var("SF_TEST_DATABASE_URL") else {
            if std::env::var_os("CI").is_some() {
                panic!("SF_TEST_DATABASE_URL is unset in CI: PostgreSQL tests must not be skipped");
            }
            eprintln!(
                "skipped: PostgreSQL test (set SF_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test to run it)"
            );
            return None;
        };
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "sf_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_micros()
        );
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to SF_TEST_DATABASE_URL: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let url = match admin_url.rsplit_once('/') {
            Some((server, db)) => {
                let query = db
                    .split_once('?')
                    .map(|(_, q)| format!("?{q}"))
                    .unwrap_or_default();
                format!("{server}/{name}{query}")
            }
            None => panic!("SF_TEST_DATABASE_URL has no database part: {admin_url}"),
        };
        Some(Self {
            admin_url,
            name,
            url,
        })
    }
}

impl Drop for PgTestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop cannot await: use a short-lived runtime on its own thread.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut admin)
                    .await;
                }
            });
        })
        .join();
    }
}

/// Where a hub keeps its state, so it can be stopped and started again.
pub struct HubStorage {
    pub backend: Backend,
    pub data_dir: tempfile::TempDir,
    pub pg: Option<PgTestDatabase>,
}

impl HubStorage {
    pub async fn new(backend: Backend) -> Option<Self> {
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgTestDatabase::create().await?),
        };
        Some(Self {
            backend,
            data_dir: tempfile::tempdir().expect("temp dir"),
            pg,
        })
    }

    pub fn settings(&self) -> Settings {
        let mut settings = Settings::with_data_dir(self.data_dir.path());
        settings.database_url = self.pg.as_ref().map(|pg| pg.url.clone());
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
            hub.http = Self::client_with_token(&hub.token);
        }
        hub
    }

    /// A client that sends `token` as `Authorization: Bearer` on every request.
    pub fn client_with_token(token: &str) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap()
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
