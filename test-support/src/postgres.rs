//! A private PostgreSQL database per test (or benchmark run), made on the
//! server of `SF_TEST_DATABASE_URL` and dropped afterwards, so tests run in
//! parallel and never see each other's rows. Without the variable a test
//! is skipped loudly ([`crate::skip::unavailable`]), or fails in CI.

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Connection;

/// The variable naming the test server (any database on it, as a user who
/// may `CREATE DATABASE`).
pub const DATABASE_URL_VAR: &str = "SF_TEST_DATABASE_URL";

/// What to set when [`DATABASE_URL_VAR`] is missing.
const HOW: &str = "set SF_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test (any \
                   database on a server where that user may CREATE DATABASE)";

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("cannot connect to {DATABASE_URL_VAR}: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("{sql}: {source}")]
    Statement {
        sql: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("{DATABASE_URL_VAR} has no database part: {0}")]
    NoDatabase(String),
}

/// [`DATABASE_URL_VAR`], if set and not empty.
pub fn admin_url() -> Option<String> {
    std::env::var(DATABASE_URL_VAR)
        .ok()
        .filter(|url| !url.trim().is_empty())
}

/// A database made for one test, `<prefix>_<pid>_<n>`; dropped (`WITH
/// (FORCE)`, so open connections do not keep it) when this is dropped.
#[derive(Debug)]
pub struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
    dropped: bool,
}

impl PgDatabase {
    /// A database for `test` (the name its skip line shows): `None`, after
    /// [`crate::skip::unavailable`], when [`DATABASE_URL_VAR`] is unset;
    /// panics when the server refuses.
    pub async fn create(test: &str) -> Option<Self> {
        let Some(admin_url) = admin_url() else {
            crate::skip::unavailable(test, "SF_TEST_DATABASE_URL is unset", HOW);
            return None;
        };
        let db = Self::create_on(&admin_url, "sf_test")
            .await
            .unwrap_or_else(|e| panic!("{test}: {e}"));
        eprintln!("PostgreSQL database {} created", db.name);
        Some(db)
    }

    /// A database `<prefix>_<pid>_<n>` on the server of `admin_url`.
    pub async fn create_on(admin_url: &str, prefix: &str) -> Result<Self, PgError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "{prefix}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let url = database_url(admin_url, &name)?;
        let mut admin = sqlx::PgConnection::connect(admin_url)
            .await
            .map_err(PgError::Connect)?;
        // The name holds our pid: a leftover of that name is a dead run's.
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&mut admin)
                .await
                .map_err(|source| PgError::Statement { sql, source })?;
        }
        let _ = admin.close().await;
        Ok(Self {
            admin_url: admin_url.to_owned(),
            name,
            url,
            dropped: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its URL: the admin URL with this database (and the same query).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn parts(&self) -> PgUrl {
        PgUrl::parse(&self.url).unwrap_or_else(|e| panic!("{e}"))
    }

    pub async fn connect(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.name))
    }

    /// Drops it now, saying whether that worked (dropping the value does it
    /// quietly).
    pub async fn drop_database(mut self) -> Result<(), PgError> {
        self.dropped = true;
        drop_database(&self.admin_url, &self.name).await
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop cannot await: a short-lived runtime on its own thread.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            runtime.block_on(drop_database(&admin_url, &name))
        })
        .join();
    }
}

async fn drop_database(admin_url: &str, name: &str) -> Result<(), PgError> {
    let mut admin = sqlx::PgConnection::connect(admin_url)
        .await
        .map_err(PgError::Connect)?;
    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
        .execute(&mut admin)
        .await
        .map_err(|source| PgError::Statement { sql, source })?;
    let _ = admin.close().await;
    Ok(())
}

/// `admin_url` with its database replaced by `name` (query kept).
fn database_url(admin_url: &str, name: &str) -> Result<String, PgError> {
    let (server, db) = admin_url
        .rsplit_once('/')
        .filter(|(server, _)| server.contains("//") && !server.ends_with('/'))
        .ok_or_else(|| PgError::NoDatabase(admin_url.to_owned()))?;
    let query = db
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    Ok(format!("{server}/{name}{query}"))
}

/// The parts of a `postgres://user:password@host:port/database?…` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgUrl {
    pub user: String,
    pub password: Option<String>,
    pub host: String,
    pub port: u16,
    pub database: String,
}

impl PgUrl {
    pub fn parse(url: &str) -> Result<PgUrl, String> {
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .ok_or_else(|| format!("{url} is not a postgres:// URL"))?;
        let rest = rest.split_once('?').map_or(rest, |(r, _)| r);
        let (authority, database) = rest
            .split_once('/')
            .ok_or_else(|| format!("{url} names no database"))?;
        let (user_info, host_port) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (user, password) = match user_info {
            Some(info) => match info.split_once(':') {
                Some((u, p)) => (percent_decode(u), Some(percent_decode(p))),
                None => (percent_decode(info), None),
            },
            None => ("postgres".to_owned(), None),
        };
        let (host, port) = match host_port.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() => (
                h.to_owned(),
                p.parse().map_err(|_| format!("bad port in {url}"))?,
            ),
            _ => (host_port.to_owned(), 5432),
        };
        Ok(PgUrl {
            user,
            password,
            host: if host.is_empty() {
                "localhost".to_owned()
            } else {
                host
            },
            port,
            database: percent_decode(database),
        })
    }
}

fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = raw.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() {
        assert_eq!(
            database_url("postgres://u:p@h:5432/test?sslmode=disable", "sf_test_1_0").unwrap(),
            "postgres://u:p@h:5432/sf_test_1_0?sslmode=disable"
        );
        assert_eq!(
            database_url("postgres://h/test", "x").unwrap(),
            "postgres://h/x"
        );
        assert!(database_url("postgres://h", "x").is_err());
    }

    #[test]
    fn url_parts() {
        let parts = PgUrl::parse("postgres://me:p%40ss@db:6543/sf_x?sslmode=disable").unwrap();
        assert_eq!(
            parts,
            PgUrl {
                user: "me".into(),
                password: Some("p@ss".into()),
                host: "db".into(),
                port: 6543,
                database: "sf_x".into(),
            }
        );
        let bare = PgUrl::parse("postgresql://localhost/test").unwrap();
        assert_eq!((bare.user.as_str(), bare.port), ("postgres", 5432));
        assert!(PgUrl::parse("mysql://h/db").is_err());
    }
}
