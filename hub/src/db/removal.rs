//! Removing chunks from the store safely while other hubs commit.
//!
//! The shared count of removals (`hub_state.chunk_removals`) tells commits
//! whether chunks they found present may have gone since. It is odd while
//! a removal may be under way and even otherwise:
//!
//! 1. [`Database::removals_starting`] makes it odd and commits, before
//!    anything is removed, so every hub sees it even if this one dies
//!    half-way;
//! 2. [`Database::begin_removal`] takes the write lock every commit takes
//!    (the `hub_state` row); the references are checked and the chunks
//!    removed while it is held;
//! 3. [`RemovalTx::finish`] makes the count even and releases the lock.
//!
//! A commit reads the count before looking its chunks up and again as it
//! takes the write lock, and looks again if it moved or is odd (see
//! `crate::service`). A removal that died half-way leaves it odd: commits
//! keep looking again until the next removal finishes.

use std::collections::HashSet;

use sf_protocol::Sha256Hex;

use super::{Backend, Database, DbError, to_u64};

/// A transaction holding the write lock while chunks are removed.
pub struct RemovalTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
}

/// Whether a removal may be under way, by the shared count's value.
pub fn removal_under_way(count: u64) -> bool {
    count % 2 == 1
}

impl Database {
    /// Marks removals as under way (the count becomes odd), durably, before
    /// any chunk is removed.
    pub async fn removals_starting(&self) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE hub_state SET chunk_removals = chunk_removals + 1 + (chunk_removals % 2) \
             WHERE id = 1",
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes the write lock, for checking references and removing chunks
    /// (after [`Database::removals_starting`]).
    pub async fn begin_removal(&self) -> Result<RemovalTx, DbError> {
        let mut tx = self.pool.begin().await?;
        let lock = match self.backend {
            Backend::Sqlite => "UPDATE hub_state SET chunk_removals = chunk_removals WHERE id = 1",
            Backend::Postgres => "SELECT chunk_removals FROM hub_state WHERE id = 1 FOR UPDATE",
        };
        sqlx::query(lock).execute(&mut *tx).await?;
        Ok(RemovalTx {
            tx,
            backend: self.backend,
        })
    }

    /// The shared count of chunk removals (see the module docs).
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

    /// Marks the removal done (the count becomes even) and releases the
    /// lock. Call it whatever the removals did: an error leaves the count
    /// odd, which only makes commits look again.
    pub async fn finish(mut self) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE hub_state SET chunk_removals = chunk_removals + 2 - (chunk_removals % 2) \
             WHERE id = 1",
        )
        .execute(&mut *self.tx)
        .await?;
        self.tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The count is odd from the moment removals start (committed, so a
    /// hub that dies half-way leaves it odd) until they finish; a removal
    /// that starts while it is odd keeps it odd; the write lock sees it.
    #[tokio::test]
    async fn the_count_is_odd_while_removals_may_be_under_way() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = Database::connect(&url, std::time::Duration::from_secs(5))
            .await
            .unwrap();
        let start = db.chunk_removals().await.unwrap();
        assert!(!removal_under_way(start));

        db.removals_starting().await.unwrap();
        let started = db.chunk_removals().await.unwrap();
        assert!(started > start && removal_under_way(started));
        // This one dies before finishing: its transaction is dropped.
        drop(db.begin_removal().await.unwrap());
        assert_eq!(db.chunk_removals().await.unwrap(), started);
        // The next collection starts (still odd, and moved) and finishes.
        db.removals_starting().await.unwrap();
        let again = db.chunk_removals().await.unwrap();
        assert!(again > started && removal_under_way(again));
        let mut removal = db.begin_removal().await.unwrap();
        assert!(
            removal
                .referenced(&[Sha256Hex::empty()])
                .await
                .unwrap()
                .is_empty()
        );
        removal.finish().await.unwrap();
        let finished = db.chunk_removals().await.unwrap();
        assert!(finished > again && !removal_under_way(finished));
        // A commit taking the write lock reads the count there.
        let tx = db.begin_write().await.unwrap();
        assert_eq!(tx.removals, finished);
        tx.rollback().await;
    }
}
