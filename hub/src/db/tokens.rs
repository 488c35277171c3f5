//! The `tokens` and `hub_meta` tables: access tokens (by hash, never the
//! secret) and the hub's identity.

use sf_protocol::v1::Scope;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Database, DbError, now_ms};

/// One row of `tokens`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    /// SHA-256 of the token, as lower-case hex.
    pub hash: String,
    pub scope: Scope,
    pub created_ms: i64,
    pub last_used_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
}

macro_rules! token_columns {
    () => {
        "id, name, hash, scope, created_ms, last_used_ms, revoked_ms"
    };
}

fn token_from_row(row: &AnyRow) -> Result<TokenRow, DbError> {
    let scope: String = row.try_get("scope")?;
    Ok(TokenRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        hash: row.try_get("hash")?,
        scope: Scope::parse(&scope)
            .ok_or_else(|| DbError::Corrupt(format!("token scope {scope:?}")))?,
        created_ms: row.try_get("created_ms")?,
        last_used_ms: row.try_get("last_used_ms")?,
        revoked_ms: row.try_get("revoked_ms")?,
    })
}

/// Why a token could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AddTokenError {
    #[error("a token named {0:?} already exists; revoke it first or choose another name")]
    NameTaken(String),
    #[error("this token is already known to the hub")]
    AlreadyKnown,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Database {
    /// Adds a token by its hash. Names are unique among live tokens.
    pub async fn add_token(
        &self,
        name: &str,
        hash: &str,
        scope: Scope,
    ) -> Result<TokenRow, AddTokenError> {
        if self.token_by_hash(hash).await?.is_some() {
            return Err(AddTokenError::AlreadyKnown);
        }
        let inserted = sqlx::query(
            "INSERT INTO tokens (name, hash, scope, created_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(name)
        .bind(hash)
        .bind(scope.as_str())
        .bind(now_ms())
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => {}
            // Either unique index: a live token with this name, or (a race
            // with another process) the same hash.
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                return Err(match self.token_by_hash(hash).await? {
                    Some(_) => AddTokenError::AlreadyKnown,
                    None => AddTokenError::NameTaken(name.to_owned()),
                });
            }
            Err(err) => return Err(AddTokenError::Db(err.into())),
        }
        self.token_by_hash(hash).await?.ok_or_else(|| {
            AddTokenError::Db(DbError::Corrupt("token vanished after insert".into()))
        })
    }

    /// Every token, revoked ones too, oldest first.
    pub async fn list_tokens(&self) -> Result<Vec<TokenRow>, DbError> {
        let sql = concat!("SELECT ", token_columns!(), " FROM tokens ORDER BY id");
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        rows.iter().map(token_from_row).collect()
    }

    /// Tokens that are not revoked: what the hub's credential cache holds.
    pub async fn live_tokens(&self) -> Result<Vec<TokenRow>, DbError> {
        let sql = concat!(
            "SELECT ",
            token_columns!(),
            " FROM tokens WHERE revoked_ms IS NULL"
        );
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        rows.iter().map(token_from_row).collect()
    }

    pub async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>, DbError> {
        let sql = concat!("SELECT ", token_columns!(), " FROM tokens WHERE hash = $1");
        let row = sqlx::query(sql)
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// How many tokens were ever made (revoked ones count: a hub whose
    /// tokens were all revoked must not quietly make a new one).
    pub async fn token_count(&self) -> Result<u64, DbError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tokens")
            .fetch_one(&self.pool)
            .await?;
        Ok(count.max(0) as u64)
    }

    /// Revokes the live token called `name`; `false` when there is none.
    pub async fn revoke_token(&self, name: &str) -> Result<bool, DbError> {
        let done =
            sqlx::query("UPDATE tokens SET revoked_ms = $1 WHERE name = $2 AND revoked_ms IS NULL")
                .bind(now_ms())
                .bind(name)
                .execute(&self.pool)
                .await?;
        if done.rows_affected() > 0 {
            self.announce_access_change().await?;
        }
        Ok(done.rows_affected() > 0)
    }

    /// Tells every hub on this database (PostgreSQL) to look again at who
    /// may do what: a token was revoked or a web session ended.
    pub async fn announce_access_change(&self) -> Result<(), DbError> {
        if self.backend == super::Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(super::TOKENS_CHANNEL)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    pub async fn touch_token(&self, id: i64, at_ms: i64) -> Result<(), DbError> {
        sqlx::query("UPDATE tokens SET last_used_ms = $1 WHERE id = $2")
            .bind(at_ms)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// This hub's identity: random, made the first time it is asked for and
    /// kept in the database, so every hub process on one database shares it.
    pub async fn hub_id(&self) -> Result<String, DbError> {
        let fresh = new_hub_id();
        sqlx::query(
            "INSERT INTO hub_meta (key, value) VALUES ('hub_id', $1) ON CONFLICT (key) DO NOTHING",
        )
        .bind(&fresh)
        .execute(&self.pool)
        .await?;
        let id: String = sqlx::query_scalar("SELECT value FROM hub_meta WHERE key = 'hub_id'")
            .fetch_one(&self.pool)
            .await?;
        Ok(id)
    }
}

fn new_hub_id() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}
