//! The `meta` table's keys and values, and the problems kept for
//! `sf-agent status`. The strings stored are those of every earlier
//! version, so existing state databases (and `status` reading one next to
//! an older agent) keep working.

use sqlx::Row;
use sqlx::sqlite::SqliteConnection;

use super::{State, StateError, now_ms};

/// A key of the `meta` table. The strings are those stored since the first
/// version: existing state databases keep working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaKey {
    /// The URL of the hub the agent last synced through (one of `--hub`'s).
    Hub,
    /// The identity of the hub the folder was last synced with.
    HubId,
    /// The token's scope the agent last learnt from the hub ("read", "write").
    Scope,
    /// The last change-feed seq whose entries are in `remote`.
    LastSeq,
    /// The last error that stopped a cycle, for `sf-agent status`.
    LastError,
    /// When the last cycle ended, in ms since the epoch.
    LastCycleMs,
}

impl MetaKey {
    /// The key as stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Hub => "hub",
            Self::HubId => "hub_id",
            Self::Scope => "scope",
            Self::LastSeq => "last_seq",
            Self::LastError => "last_error",
            Self::LastCycleMs => "last_cycle_ms",
        }
    }
}

/// What a [`Problem`] is, for `sf-agent status` to group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// A path that could not be synced; it is tried again.
    Error,
    /// A conflict copy the agent made.
    Conflict,
    /// A hub entry the agent does not apply here (invalid, a name this
    /// system cannot hold, a path through a symlink); its detail starts
    /// with one of [`ProblemKind::REFUSED_PREFIXES`].
    Refused,
}

impl ProblemKind {
    /// How the detail of a refused hub entry starts (see `engine/trust.rs`
    /// and `ApplyError::Blocked`).
    pub const REFUSED_PREFIXES: [&str; 2] = ["not applied:", "refused:"];

    /// The kind as stored. A refusal is stored as "error": the schema allows
    /// only "conflict" and "error", and agents of earlier versions read and
    /// clear the same rows. [`ProblemKind::from_stored`] tells it apart.
    pub(super) fn as_stored(self) -> &'static str {
        match self {
            Self::Error | Self::Refused => "error",
            Self::Conflict => "conflict",
        }
    }

    /// The kind of a stored row: an "error" whose detail starts with one of
    /// [`ProblemKind::REFUSED_PREFIXES`] is a refusal (so are those written
    /// before this enum).
    fn from_stored(kind: &str, detail: &str) -> Result<Self, StateError> {
        match kind {
            "conflict" => Ok(Self::Conflict),
            "error" if Self::REFUSED_PREFIXES.iter().any(|p| detail.starts_with(p)) => {
                Ok(Self::Refused)
            }
            "error" => Ok(Self::Error),
            other => Err(StateError::Corrupt(format!("problem kind {other:?}"))),
        }
    }
}

/// A problem kept for `sf-agent status`.
#[derive(Debug, Clone)]
pub struct Problem {
    pub path: String,
    pub kind: ProblemKind,
    pub detail: String,
}

impl State {
    pub async fn meta(&self, key: MetaKey) -> Result<Option<String>, StateError> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(key.as_str())
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn set_meta(&self, key: MetaKey, value: &str) -> Result<(), StateError> {
        let mut conn = self.pool.acquire().await?;
        upsert_meta(&mut conn, key, value).await
    }

    pub async fn clear_meta(&self, key: MetaKey) -> Result<(), StateError> {
        sqlx::query("DELETE FROM meta WHERE key = ?")
            .bind(key.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_problem(
        &self,
        path: &str,
        kind: ProblemKind,
        detail: &str,
    ) -> Result<(), StateError> {
        sqlx::query(
            "INSERT INTO problems (path, kind, detail, at_ms) VALUES (?, ?, ?, ?) ON CONFLICT (path) \
             DO UPDATE SET kind = excluded.kind, detail = excluded.detail, at_ms = excluded.at_ms",
        )
        .bind(path)
        .bind(kind.as_stored())
        .bind(detail)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn problems(&self) -> Result<Vec<Problem>, StateError> {
        let rows = sqlx::query("SELECT path, kind, detail FROM problems ORDER BY at_ms DESC")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get("kind")?;
                let detail: String = r.try_get("detail")?;
                Ok(Problem {
                    path: r.try_get("path")?,
                    kind: ProblemKind::from_stored(&kind, &detail)?,
                    detail,
                })
            })
            .collect()
    }
}

pub(super) async fn upsert_meta(
    conn: &mut SqliteConnection,
    key: MetaKey,
    value: &str,
) -> Result<(), StateError> {
    sqlx::query(
        "INSERT INTO meta (key, value) VALUES (?, ?) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key.as_str())
    .bind(value)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::fixtures::{file, fresh};
    use sf_protocol::SyncPath;

    #[test]
    fn keys_are_stored_as_before() {
        let keys = [
            MetaKey::Hub,
            MetaKey::HubId,
            MetaKey::Scope,
            MetaKey::LastSeq,
            MetaKey::LastError,
            MetaKey::LastCycleMs,
        ];
        let stored: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            stored,
            [
                "hub",
                "hub_id",
                "scope",
                "last_seq",
                "last_error",
                "last_cycle_ms"
            ]
        );
    }

    #[tokio::test]
    async fn problems_keep_their_kind_and_old_rows_read_as_before() {
        let (_dirs, state) = fresh().await;
        state
            .set_problem("err", ProblemKind::Error, "permission denied")
            .await
            .unwrap();
        state
            .set_problem("copy", ProblemKind::Conflict, "local version of x")
            .await
            .unwrap();
        state
            .set_problem(
                "bad",
                ProblemKind::Refused,
                "not applied: d is a symbolic link",
            )
            .await
            .unwrap();
        // As an agent from before the enum wrote a refused hub entry.
        sqlx::query(
            "INSERT INTO problems (path, kind, detail, at_ms) VALUES ('old', 'error', ?, 0)",
        )
        .bind("refused: the hub's version 1 is invalid (no sha256)")
        .execute(&state.pool)
        .await
        .unwrap();
        let kinds = async || {
            let mut kinds: Vec<(String, ProblemKind)> = state
                .problems()
                .await
                .unwrap()
                .into_iter()
                .map(|p| (p.path, p.kind))
                .collect();
            kinds.sort_by(|a, b| a.0.cmp(&b.0));
            kinds
        };
        assert_eq!(
            kinds().await,
            [
                ("bad".into(), ProblemKind::Refused),
                ("copy".into(), ProblemKind::Conflict),
                ("err".into(), ProblemKind::Error),
                ("old".into(), ProblemKind::Refused),
            ]
        );
        // Syncing a path ends its error or refusal, not a conflict copy's note.
        for path in ["err", "copy", "bad"] {
            let path = SyncPath::parse(path).unwrap();
            state.record(&path, &file(1), &[]).await.unwrap();
        }
        assert_eq!(
            kinds().await,
            [
                ("copy".into(), ProblemKind::Conflict),
                ("old".into(), ProblemKind::Refused),
            ]
        );
        // A copy gone from both sides (resolved) ends its note.
        state
            .forget(&SyncPath::parse("copy").unwrap())
            .await
            .unwrap();
        assert_eq!(kinds().await, [("old".into(), ProblemKind::Refused)]);
    }
}
