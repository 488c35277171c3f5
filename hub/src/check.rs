//! `sf-hub check [--repair]`: the chunk store checked against the database,
//! safe to run while a hub serves both.
//!
//! It reads every stored chunk and hashes it (damaged: bytes that do not
//! hash to the name), compares the store with `chunk_refs` one 256th at a
//! time (missing: referenced, not stored; orphaned: stored, referenced by
//! no version), lists temp files older than the grace period, and checks
//! that the change feed's seqs run unbroken up to head. With `--repair` it
//! moves damaged chunks to `<data-dir>/damaged/`, records damaged and
//! missing chunks that versions reference as wanted (a running hub asks its
//! agents for them, see `crate::repair`), removes orphans and temp files
//! older than the grace period, and forgets wanted chunks that are back.
//!
//! Why removing orphans is safe beside a running hub: as for garbage
//! collection (`crate::gc`), a chunk is an orphan only if no version
//! references it, and one about to be committed has a fresh mtime (it was
//! just uploaded, or reported present, which renews an mtime older than an
//! hour), so it is younger than the grace period, which the check takes as
//! at least two hours. The database is asked again right before each
//! removal. (The running hub's store gauges catch up at its next start.)

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sf_protocol::Sha256Hex;

use crate::db::{Database, DbError, FeedShape};
use crate::store::ChunkStore;

/// Orphans younger than this are never removed by the check, whatever
/// `--chunk-grace` says: a chunk reported present to a client within the
/// last hour has an mtime within the last hour.
const MIN_ORPHAN_AGE: Duration = Duration::from_secs(2 * 3600);

/// Why the check could not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Open(#[from] crate::store::OpenError),
    #[error("reading the chunk store ({store}) failed: {source}")]
    Store {
        store: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the check's blocking work failed: {0}")]
    Worker(#[from] tokio::task::JoinError),
}

/// What a check found, and with `--repair` what it did.
#[derive(Debug, Default)]
pub struct Report {
    pub repair: bool,
    pub grace: Duration,
    /// Chunk files read and hashed, and their bytes.
    pub chunks: u64,
    pub bytes: u64,
    /// Stored chunks versions reference whose bytes do not hash to their
    /// name: lost until a good copy comes.
    pub damaged: Vec<Sha256Hex>,
    /// Damaged chunks no version references (garbage either way).
    pub damaged_orphans: u64,
    /// Chunks versions reference that the store lacks.
    pub missing: Vec<Sha256Hex>,
    /// Stored chunks no version references, and how many of them are older
    /// than the grace period (removable).
    pub orphaned: u64,
    pub orphaned_old: u64,
    /// Temp files older than the grace period.
    pub old_temp: u64,
    pub feed: FeedShape,
    /// Rows of `wanted_chunks` when the check started.
    pub wanted: u64,
    /// Some files that held the first missing or damaged chunks.
    pub affected: Vec<String>,
    // What --repair did.
    pub moved_aside: u64,
    pub removed_orphans: u64,
    pub removed_orphan_bytes: u64,
    pub removed_temp: u64,
    pub recorded_wanted: u64,
    pub no_longer_wanted: u64,
}

impl Report {
    /// Whether the store and the database agree, with nothing damaged or
    /// missing (orphans and old temp files are reclaimable, not wrong).
    pub fn is_consistent(&self) -> bool {
        self.damaged.is_empty()
            && self.missing.is_empty()
            && self.feed.gaps.is_empty()
            && self.feed.dangling_files == 0
            && self.feed.head == self.feed.max_seq
    }
}

/// Runs the check on the data directory and database of `settings`, with
/// their grace period.
pub async fn run_with(
    settings: &crate::config::Settings,
    repair: bool,
) -> Result<Report, CheckError> {
    let store = {
        let (location, data_dir) = (settings.store.clone(), settings.data_dir());
        let access = settings.bucket_access();
        tokio::task::spawn_blocking(move || ChunkStore::inspect(&location, &access, &data_dir))
            .await??
    };
    let db = Database::connect(&settings.database_url(), settings.database_timeout).await?;
    let report = run(&db, Arc::new(store), repair, settings.chunk_grace).await;
    db.close().await;
    report
}

/// Runs the check on `store` (opened with `ChunkStore::inspect`) and the
/// database `db`.
pub async fn run(
    db: &Database,
    store: Arc<ChunkStore>,
    repair: bool,
    grace: Duration,
) -> Result<Report, CheckError> {
    let described = store.describe();
    let store_error = |source| CheckError::Store {
        store: described.clone(),
        source,
    };
    let cutoff = SystemTime::now()
        .checked_sub(grace.max(MIN_ORPHAN_AGE))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut report = Report {
        repair,
        grace: grace.max(MIN_ORPHAN_AGE),
        ..Report::default()
    };
    let wanted_before = db.wanted_chunks().await?;
    report.wanted = wanted_before.len() as u64;
    for prefix in 0..=u8::MAX {
        // Listed before the references are read: a chunk committed in
        // between is referenced, never taken for an orphan.
        let listed = {
            let store = Arc::clone(&store);
            tokio::task::spawn_blocking(move || store.list_blocking(prefix))
                .await?
                .map_err(store_error)?
        };
        let referenced = db.chunk_refs_with_prefix(prefix).await?;
        let (mut r, mut s) = (referenced.iter().peekable(), listed.iter().peekable());
        loop {
            match (r.peek(), s.peek()) {
                (Some(&&hash), Some(stored)) if hash == stored.hash => {
                    check_stored(&store, db, &mut report, stored.hash, stored.len, true).await?;
                    r.next();
                    s.next();
                }
                (Some(&&hash), Some(stored)) if hash < stored.hash => {
                    note_missing(&store, &mut report, hash).await?;
                    r.next();
                }
                (Some(&&hash), None) => {
                    note_missing(&store, &mut report, hash).await?;
                    r.next();
                }
                (_, Some(stored)) => {
                    let intact =
                        check_stored(&store, db, &mut report, stored.hash, stored.len, false)
                            .await?;
                    report.orphaned += 1;
                    if stored.modified < cutoff {
                        report.orphaned_old += 1;
                        if repair && intact {
                            remove_orphan(&store, db, &mut report, stored, cutoff).await?;
                        }
                    }
                    s.next();
                }
                (None, None) => break,
            }
        }
    }
    for hash in report.missing.clone() {
        note_affected(db, &mut report, &hash).await?;
        if repair {
            db.want_chunk(&hash, "missing").await?;
            report.recorded_wanted += 1;
        }
    }
    let old_temp = {
        let store = Arc::clone(&store);
        tokio::task::spawn_blocking(move || store.old_temp_files_blocking(cutoff))
            .await?
            .map_err(store_error)?
    };
    report.old_temp = old_temp.len() as u64;
    if repair {
        for temp in old_temp {
            if std::fs::remove_file(&temp).is_ok() {
                report.removed_temp += 1;
            }
        }
        for hash in wanted_before {
            let store = Arc::clone(&store);
            let back = tokio::task::spawn_blocking(move || store.is_intact_blocking(&hash))
                .await?
                .map_err(store_error)?;
            if matches!(back, Some(Ok(()))) {
                db.unwant_chunk(&hash).await?;
                report.no_longer_wanted += 1;
            }
        }
    }
    report.feed = db.feed_shape().await?;
    Ok(report)
}

/// Reads and hashes one stored chunk; with `--repair` a damaged one is moved
/// aside (and, when `referenced`, recorded as wanted). Returns whether it is
/// intact.
async fn check_stored(
    store: &Arc<ChunkStore>,
    db: &Database,
    report: &mut Report,
    hash: Sha256Hex,
    len: u64,
    referenced: bool,
) -> Result<bool, CheckError> {
    let intact = {
        let reader = Arc::clone(store);
        tokio::task::spawn_blocking(move || reader.is_intact_blocking(&hash))
            .await?
            .map_err(|source| CheckError::Store {
                store: store.describe(),
                source,
            })?
    };
    report.chunks += 1;
    report.bytes += len;
    // Gone since listed (garbage collection): nothing to say about it.
    let Some(Err(damaged)) = intact else {
        return Ok(true);
    };
    if referenced {
        report.damaged.push(hash);
        note_affected(db, report, &hash).await?;
    } else {
        report.damaged_orphans += 1;
    }
    if report.repair {
        let store = Arc::clone(store);
        let moved = tokio::task::spawn_blocking(move || {
            store.quarantine_blocking(&hash, &damaged.tag, damaged.len)
        })
        .await?;
        if matches!(moved, Ok(Some(_))) {
            report.moved_aside += 1;
        }
        if referenced {
            db.want_chunk(&hash, "damaged").await?;
            report.recorded_wanted += 1;
        }
    }
    Ok(false)
}

/// Reports `hash`, which a version references, as missing unless it was
/// stored since the listing (committed meanwhile).
async fn note_missing(
    store: &Arc<ChunkStore>,
    report: &mut Report,
    hash: Sha256Hex,
) -> Result<(), CheckError> {
    let check = Arc::clone(store);
    let held = tokio::task::spawn_blocking(move || check.holds_blocking(&hash))
        .await?
        .map_err(|source| CheckError::Store {
            store: store.describe(),
            source,
        })?;
    if !held {
        report.missing.push(hash);
    }
    Ok(())
}

async fn remove_orphan(
    store: &Arc<ChunkStore>,
    db: &Database,
    report: &mut Report,
    stored: &crate::store::StoredChunk,
    cutoff: SystemTime,
) -> Result<(), CheckError> {
    // Under the removal protocol every hub's commits rely on (see
    // `crate::db`'s `removal` module): committed since the references were
    // read means not an orphan any more.
    db.removals_starting().await?;
    let mut removal = db.begin_removal().await?;
    if !removal.referenced(&[stored.hash]).await?.is_empty() {
        removal.finish().await?;
        return Ok(());
    }
    let (remover, hash) = (Arc::clone(store), stored.hash);
    let removed =
        tokio::task::spawn_blocking(move || remover.remove_orphan_blocking(&hash, cutoff)).await;
    removal.finish().await?;
    let removed = removed?.map_err(|source| CheckError::Store {
        store: store.describe(),
        source,
    })?;
    if removed {
        report.removed_orphans += 1;
        report.removed_orphan_bytes += stored.len;
    }
    Ok(())
}

/// Adds a few files that held `hash` to the report (the first ten only).
async fn note_affected(
    db: &Database,
    report: &mut Report,
    hash: &Sha256Hex,
) -> Result<(), CheckError> {
    if report.affected.len() >= 10 {
        return Ok(());
    }
    for file in db.files_holding(hash, 2).await? {
        let line = format!("{} (content {})", file.path, file.sha256);
        if !report.affected.contains(&line) {
            report.affected.push(line);
        }
    }
    Ok(())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
        writeln!(
            f,
            "chunks read and hashed: {} ({:.1} MiB)",
            self.chunks,
            mib(self.bytes)
        )?;
        writeln!(
            f,
            "change feed: head {}, {} versions, highest seq {}",
            self.feed.head, self.feed.versions, self.feed.max_seq
        )?;
        let list = |hashes: &[Sha256Hex]| {
            let shown: Vec<String> = hashes.iter().take(10).map(ToString::to_string).collect();
            let more = hashes.len().saturating_sub(shown.len());
            let mut text = shown.join("\n    ");
            if more > 0 {
                text.push_str(&format!("\n    … and {more} more"));
            }
            text
        };
        if !self.damaged.is_empty() {
            writeln!(
                f,
                "DAMAGED: {} stored chunks that versions reference do not hash to their name:\n    {}",
                self.damaged.len(),
                list(&self.damaged)
            )?;
        }
        if self.damaged_orphans > 0 {
            writeln!(
                f,
                "damaged chunks no version references: {}",
                self.damaged_orphans
            )?;
        }
        if !self.missing.is_empty() {
            writeln!(
                f,
                "MISSING: {} chunks that versions reference are not in the store:\n    {}",
                self.missing.len(),
                list(&self.missing)
            )?;
        }
        if !self.affected.is_empty() {
            writeln!(
                f,
                "files that held them:\n    {}",
                self.affected.join("\n    ")
            )?;
        }
        if !self.feed.gaps.is_empty() {
            let gaps: Vec<String> = self.feed.gaps.iter().map(u64::to_string).collect();
            writeln!(
                f,
                "FEED GAP: seqs missing below the highest (first ones): {}",
                gaps.join(", ")
            )?;
        }
        if self.feed.head != self.feed.max_seq {
            writeln!(
                f,
                "FEED HEAD: head is {} but the highest version's seq is {}",
                self.feed.head, self.feed.max_seq
            )?;
        }
        if self.feed.dangling_files > 0 {
            writeln!(
                f,
                "DANGLING: {} paths point at a version that does not exist",
                self.feed.dangling_files
            )?;
        }
        writeln!(
            f,
            "orphaned chunks (referenced by no version): {}, {} older than the grace period ({:?})",
            self.orphaned, self.orphaned_old, self.grace
        )?;
        writeln!(
            f,
            "temp files older than the grace period: {}",
            self.old_temp
        )?;
        writeln!(
            f,
            "chunks wanted from agents before the check: {}",
            self.wanted
        )?;
        if self.repair {
            writeln!(
                f,
                "repaired: moved {} damaged chunks to damaged/, recorded {} chunks as wanted from \
                 agents, removed {} orphaned chunks ({:.1} MiB) and {} temp files, {} wanted \
                 chunks are back",
                self.moved_aside,
                self.recorded_wanted,
                self.removed_orphans,
                mib(self.removed_orphan_bytes),
                self.removed_temp,
                self.no_longer_wanted
            )?;
        }
        if self.is_consistent() {
            writeln!(f, "consistent")
        } else if self.repair {
            writeln!(
                f,
                "NOT CONSISTENT: lost chunks are recorded as wanted; a running hub asks its \
                 agents for them (a good copy repairs the store): run the check again later"
            )
        } else {
            writeln!(
                f,
                "NOT CONSISTENT: run `sf-hub check --repair` to move damaged chunks aside and \
                 ask agents for what is lost"
            )
        }
    }
}
