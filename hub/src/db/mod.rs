//! The hub's database: index, version history, change feed and audit log.
//!
//! One [`Database`] type serves both back ends through sqlx's `Any` driver:
//! the SQL the hub issues is portable (see `read.rs` and `write.rs`), while
//! what differs — connection set-up and the schema — lives in one module per
//! back end (`sqlite`, `postgres`) with its own migrations folder. The back
//! end is chosen once, from the URL, at start-up. Access tokens and the hub's
//! identity live in `tokens`. Writes go through one kind of transaction
//! (`write`), which loads what it decides on (`known`) and writes its rows
//! at commit (`flush`).

mod browse;
mod flush;
mod known;
mod postgres;
mod read;
mod removal;
mod sessions;
mod sqlite;
mod tokens;
mod wanted;
mod write;

use std::time::{Duration, Instant};

use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, Connection};

pub use known::PathUse;
pub use read::HistoryPage;
pub use removal::removal_under_way;
pub use sqlite::claim_serving;
pub use tokens::{AddTokenError, TokenRow};
pub use wanted::FeedShape;
pub use write::{Action, NewVersion, WriteError, WriteTx};

/// The PostgreSQL notification channel a commit announces its new head on.
pub const FEED_CHANNEL: &str = "sf_feed";
/// The channel a token revocation is announced on.
pub const TOKENS_CHANNEL: &str = "sf_tokens";

/// Which database the hub runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Self, DbError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(DbError::UnsupportedUrl(redact(url)))
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// Bind parameters `first` to `first + n - 1` of a statement, comma
    /// separated (placeholders only, never values): `$k` on PostgreSQL,
    /// plain positional `?` on SQLite, which looks every `$k` up by name
    /// (for the thousands of a multi-row insert, that costs more than the
    /// statement). Either way the values are bound in order.
    pub(crate) fn params(self, first: usize, n: usize) -> String {
        (first..first + n)
            .map(|k| self.param(k))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Bind parameter `k` (see [`Backend::params`]).
    pub(crate) fn param(self, k: usize) -> String {
        match self {
            Backend::Postgres => format!("${k}"),
            Backend::Sqlite => "?".to_owned(),
        }
    }

    fn migrator(self) -> &'static Migrator {
        match self {
            Backend::Sqlite => &sqlite::MIGRATOR,
            Backend::Postgres => &postgres::MIGRATOR,
        }
    }
}

/// Why the database could not be opened, migrated or queried.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    #[error(
        "could not connect to {url} within {waited:?}: {source}; check that the database is \
         running and reachable, or raise --database-timeout"
    )]
    Connect {
        url: String,
        waited: Duration,
        #[source]
        source: sqlx::Error,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("database holds a value the hub cannot read ({0}); was it edited by hand?")]
    Corrupt(String),
    #[error(
        "another hub is serving this SQLite database (it holds {0}); SQLite is for one hub: \
         stop the other one, or run several hubs on PostgreSQL (--database-url postgres://…) \
         with an S3 store (--store s3://…)"
    )]
    AlreadyServed(String),
    #[error(
        "cannot take the lock {path} that keeps a second hub off this SQLite database: {source}"
    )]
    ServingLock {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The hub's connection pool and the back end it talks to.
#[derive(Clone)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
}

impl Database {
    /// Connects (retrying with backoff for up to `timeout`) and runs migrations.
    pub async fn connect(url: &str, timeout: Duration) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let started = Instant::now();
        let mut delay = Duration::from_millis(200);
        let pool = loop {
            // Cap each attempt by the time left, so --database-timeout holds
            // even when one attempt would wait longer on its own.
            let left = timeout.saturating_sub(started.elapsed());
            let attempt = async {
                // One plain connection first: a pool hides why it failed
                // ("timed out"), a connection says it (refused, bad password).
                AnyConnection::connect(url).await?.close().await?;
                match backend {
                    Backend::Sqlite => sqlite::connect(url).await,
                    Backend::Postgres => postgres::connect(url).await,
                }
            };
            let attempt = tokio::time::timeout(left.max(Duration::from_millis(100)), attempt)
                .await
                .unwrap_or(Err(sqlx::Error::PoolTimedOut));
            match attempt {
                Ok(pool) => break pool,
                Err(source) if started.elapsed() + delay >= timeout => {
                    return Err(DbError::Connect {
                        url: redact(url),
                        waited: Duration::from_millis(started.elapsed().as_millis() as u64),
                        source,
                    });
                }
                Err(err) => {
                    tracing::warn!(url = %redact(url), error = %err, retry_in = ?delay, "database not reachable yet");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        };
        backend.migrator().run(&pool).await?;
        tracing::info!(backend = backend.name(), url = %redact(url), "database ready");
        Ok(Self { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A round trip to the database, for readiness checks.
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The URL without its password, for logs and error messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Milliseconds since the epoch, as the database records times.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn to_u64(value: i64, what: &str) -> Result<u64, DbError> {
    u64::try_from(value).map_err(|_| DbError::Corrupt(format!("negative {what}: {value}")))
}

fn to_i64(value: u64) -> i64 {
    // Sizes, versions and seqs stay far below 2^63; saturate rather than wrap.
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chooses_backend_from_url() {
        assert_eq!(Backend::from_url("sqlite://x.db").unwrap(), Backend::Sqlite);
        assert_eq!(
            Backend::from_url("postgres://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::from_url("postgresql://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert!(Backend::from_url("mysql://u@h/db").is_err());
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://./data/hub.db"), "sqlite://./data/hub.db");
    }
}
