//! The `wanted_chunks` table: chunks the hub lost and asks agents for (see
//! `crate::repair`), kept across restarts and shared with `sf-hub check`;
//! and what the check and the repair look up: which files held a chunk,
//! which chunks are referenced, and whether the feed's seqs run unbroken.

use sf_protocol::v1::WantedFile;
use sf_protocol::{Sha256Hex, SyncPath};
use sqlx::Row;

use super::{Database, DbError, now_ms};

impl Database {
    /// Every chunk wanted, in hash order.
    pub async fn wanted_chunks(&self) -> Result<Vec<Sha256Hex>, DbError> {
        let rows: Vec<String> = sqlx::query_scalar("SELECT hash FROM wanted_chunks ORDER BY hash")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|raw| parse_hash(raw, "wanted_chunks"))
            .collect()
    }

    /// Records `hash` as wanted for `reason` (`damaged` or `missing`); a
    /// chunk wanted already keeps its row, with the newer reason.
    pub async fn want_chunk(&self, hash: &Sha256Hex, reason: &str) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO wanted_chunks (hash, reason, noticed_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (hash) DO UPDATE SET reason = excluded.reason",
        )
        .bind(hash.to_hex())
        .bind(reason)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets `hash`: a good copy is stored again.
    pub async fn unwant_chunk(&self, hash: &Sha256Hex) -> Result<(), DbError> {
        sqlx::query("DELETE FROM wanted_chunks WHERE hash = $1")
            .bind(hash.to_hex())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Up to `limit` committed files (live or not, newest first, each path
    /// and content once) whose chunk list holds `hash`. Scans the versions:
    /// this runs only when a chunk is lost, which should be rare.
    pub async fn files_holding(
        &self,
        hash: &Sha256Hex,
        limit: usize,
    ) -> Result<Vec<WantedFile>, DbError> {
        let pattern = format!("%\"{hash}\"%");
        let rows = sqlx::query(
            "SELECT path, sha256, size FROM versions \
             WHERE kind = 'file' AND sha256 IS NOT NULL AND chunks LIKE $1 \
             ORDER BY seq DESC LIMIT $2",
        )
        .bind(pattern)
        .bind((limit * 8) as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut files: Vec<WantedFile> = Vec::new();
        for row in rows {
            let path: String = row.try_get("path")?;
            let sha: String = row.try_get("sha256")?;
            let size: i64 = row.try_get("size")?;
            let file = WantedFile {
                size: u64::try_from(size)
                    .map_err(|_| DbError::Corrupt(format!("versions size {size}")))?,
                path: SyncPath::parse(path.clone())
                    .map_err(|e| DbError::Corrupt(format!("versions path {path:?}: {e}")))?,
                sha256: parse_hash(&sha, "versions")?,
            };
            if !files.contains(&file) {
                files.push(file);
            }
            if files.len() == limit {
                break;
            }
        }
        Ok(files)
    }

    /// The referenced chunks whose hash starts with the two hex digits of
    /// `prefix` (one 256th of `chunk_refs`), in hash order.
    pub async fn chunk_refs_with_prefix(&self, prefix: u8) -> Result<Vec<Sha256Hex>, DbError> {
        let low = format!("{prefix:02x}");
        let high = format!("{low}g"); // after every hex digit
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT hash FROM chunk_refs WHERE hash >= $1 AND hash < $2 ORDER BY hash",
        )
        .bind(low)
        .bind(high)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|raw| parse_hash(raw, "chunk_refs"))
            .collect()
    }
}

/// How the change feed's seqs lie (see [`Database::feed_shape`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedShape {
    /// `hub_state.head_seq`: the last seq handed out.
    pub head: u64,
    pub versions: u64,
    pub max_seq: u64,
    /// The first seqs (up to 10) missing below the highest: a reader paging
    /// the feed would skip them.
    pub gaps: Vec<u64>,
    /// Paths whose current version points at no version row.
    pub dangling_files: u64,
}

impl Database {
    /// Checks that seqs run 1, 2, … up to head with none missing, and that
    /// every path's current version exists.
    pub async fn feed_shape(&self) -> Result<FeedShape, DbError> {
        let head = self.head().await?;
        let row = sqlx::query("SELECT COUNT(*) AS n, COALESCE(MAX(seq), 0) AS top FROM versions")
            .fetch_one(&self.pool)
            .await?;
        let versions: i64 = row.try_get("n")?;
        let max_seq: i64 = row.try_get("top")?;
        let mut gaps = Vec::new();
        if versions != max_seq {
            let first: Option<i64> = sqlx::query_scalar("SELECT MIN(seq) FROM versions")
                .fetch_one(&self.pool)
                .await?;
            if first.is_some_and(|first| first > 1) {
                gaps.push(1);
            }
            let after: Vec<i64> = sqlx::query_scalar(
                "SELECT v.seq + 1 FROM versions v WHERE v.seq < $1 AND NOT EXISTS \
                 (SELECT 1 FROM versions w WHERE w.seq = v.seq + 1) ORDER BY v.seq LIMIT 10",
            )
            .bind(max_seq)
            .fetch_all(&self.pool)
            .await?;
            gaps.extend(after.into_iter().filter_map(|seq| u64::try_from(seq).ok()));
            gaps.truncate(10);
        }
        let dangling: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM files f WHERE NOT EXISTS \
             (SELECT 1 FROM versions v WHERE v.seq = f.seq)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(FeedShape {
            head,
            versions: versions.max(0) as u64,
            max_seq: max_seq.max(0) as u64,
            gaps,
            dangling_files: dangling.max(0) as u64,
        })
    }
}

fn parse_hash(raw: &str, table: &str) -> Result<Sha256Hex, DbError> {
    Sha256Hex::parse(raw).map_err(|e| DbError::Corrupt(format!("{table} hash {raw:?}: {e}")))
}
