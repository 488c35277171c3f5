//! The `web_sessions` table: the web page's sign-ins, each a token exchanged
//! for a cookie. Only the SHA-256 of the cookie's secret is stored; the row
//! is shared by every hub on the database, so a page signed in through one
//! hub works through any other behind the same load balancer.

use sqlx::Row;

use super::{Database, DbError, now_ms};

/// A live session: the token it stands for and its anti-forgery secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub token_id: i64,
    pub csrf: String,
    pub expires_ms: i64,
}

impl Database {
    /// Records a session for `token_id` until `expires_ms`.
    pub async fn add_session(
        &self,
        hash: &str,
        token_id: i64,
        csrf: &str,
        expires_ms: i64,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO web_sessions (hash, token_id, csrf, created_ms, expires_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(hash)
        .bind(token_id)
        .bind(csrf)
        .bind(now_ms())
        .bind(expires_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session whose secret hashes to `hash`, when it has not expired
    /// and its token is not revoked.
    pub async fn live_session(&self, hash: &str) -> Result<Option<SessionRow>, DbError> {
        let row = sqlx::query(
            "SELECT s.token_id, s.csrf, s.expires_ms FROM web_sessions s \
             JOIN tokens t ON t.id = s.token_id \
             WHERE s.hash = $1 AND s.expires_ms > $2 AND t.revoked_ms IS NULL",
        )
        .bind(hash)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(SessionRow {
                token_id: row.try_get("token_id")?,
                csrf: row.try_get("csrf")?,
                expires_ms: row.try_get("expires_ms")?,
            })
        })
        .transpose()
    }

    /// Ends a session (sign-out). Ending one that is gone is not an error.
    pub async fn remove_session(&self, hash: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM web_sessions WHERE hash = $1")
            .bind(hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets sessions that expired; returns how many.
    pub async fn remove_expired_sessions(&self) -> Result<u64, DbError> {
        let done = sqlx::query("DELETE FROM web_sessions WHERE expires_ms <= $1")
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
