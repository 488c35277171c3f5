//! Removing chunks from the store safely while other hubs commit: the
//! decision (no version references them) and the removals are made while
//! holding the write lock every commit takes (the `hub_state` row), and the
//! shared count of removals is bumped first, so a commit that found its
//! chunks present before looks again once it holds the lock (see
//! `crate::service`).

use std::collections::HashSet;

use sf_protocol::Sha256Hex;

use super::{Backend, Database, DbError, to_u64};

/// A transaction holding the write lock while chunks are removed.
pub struct RemovalTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
}

impl Database {
    /// Takes the write lock and bumps the shared count of removals (it
    /// counts once the transaction commits).
    pub async fn begin_removal(&self) -> Result<RemovalTx, DbError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE hub_state SET chunk_removals = chunk_removals + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        Ok(RemovalTx {
            tx,
            backend: self.backend,
        })
    }

    /// The shared count of chunk removals (see [`Database::begin_removal`]).
    pub async fn chunk_removals(&self) -> Result<u64, DbError> {
        let count: i64 = sqlx::query_scalar("SELECT chunk_removals FROM hub_state WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        to_u64(count, "chunk_removals")
    }
}

impl RemovalTx {
    /// Which of `hashes` some version references, as of now (no commit can
    /// add a reference while this holds the lock).
    pub async fn referenced(
        &mut self,
        hashes: &[Sha256Hex],
    ) -> Result<HashSet<Sha256Hex>, DbError> {
        super::read::referenced_chunks_on(&mut self.tx, self.backend, hashes).await
    }

    /// Releases the lock, making the bumped count visible.
    pub async fn commit(self) -> Result<(), DbError> {
        self.tx.commit().await?;
        Ok(())
    }
}
