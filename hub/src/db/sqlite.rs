//! SQLite, the embedded default: a file in the data dir, in WAL mode, with
//! full fsync on commit so a committed change survives a power cut.

use std::time::Duration;

use sqlx::AnyPool;
use sqlx::Executor;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

pub async fn connect(url: &str) -> Result<AnyPool, sqlx::Error> {
    let pool = AnyPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute("PRAGMA busy_timeout = 30000").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                conn.execute("PRAGMA synchronous = FULL").await?;
                Ok(())
            })
        })
        .connect(url)
        .await?;
    // WAL lets readers (feeds, downloads) proceed while a commit writes; the
    // setting is stored in the file, so once is enough.
    pool.execute("PRAGMA journal_mode = WAL").await?;
    Ok(pool)
}
