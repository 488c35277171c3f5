//! The content store: chunks on disk under `<data-dir>/chunks/ab/<sha256>`
//! (see `layout`), each written to a temp file, made durable and linked into place, so a
//! chunk file either holds exactly the bytes its name promises or does not
//! exist. One chunk is fsynced on its own; the chunks of a pack are made
//! durable together (`pack`), `read` streams ranges and single chunks, and
//! `fetch` sends many in one answer. Every
//! chunk read to be sent is hashed first (`integrity`): a damaged one is
//! refused, moved aside and asked of agents again.
//!
//! The store also keeps what garbage collection and `--max-store-bytes` need:
//! the bytes it holds, a count of removals (commits re-check their chunks when
//! it moved), and chunk mtimes refreshed whenever a client is told a chunk is
//! present, so a chunk about to be committed outlives the grace period.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sf_protocol::Sha256Hex;
use sf_protocol::chunking::{Chunk, ChunkRef};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

mod audit;
mod fetch;
mod integrity;
mod layout;
mod pack;
mod read;
mod removal;
mod usage;
mod verify;

pub use audit::StoredChunk;
pub use integrity::{ChunkReadError, Lost, WantedNews};
pub use pack::{Pack, PackFrame};
pub use usage::StoreFull;
pub use verify::VerifyError;

/// A present chunk whose mtime is older than this gets a fresh one when a
/// client is told the hub holds it (see [`ChunkStore::missing_blocking`]): the client
/// is about to commit it, and garbage collection goes by mtime.
const REFRESH_AFTER: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum PutError {
    #[error("chunk bytes hash to {actual}, not to the name {expected} they were sent under")]
    HashMismatch {
        expected: Sha256Hex,
        actual: Sha256Hex,
    },
    #[error("chunk is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("chunk is empty; a 0-byte file is committed with no chunks")]
    Empty,
    #[error("reading the request body failed: {0}")]
    Body(String),
    #[error(transparent)]
    Full(#[from] StoreFull),
    #[error("writing the chunk failed: {0}")]
    Io(#[from] io::Error),
    /// The blocking file work panicked (a bug), or was dropped at shutdown.
    #[error(transparent)]
    Worker(#[from] tokio::task::JoinError),
}

/// Whether a put wrote a new chunk or found an identical one already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    New,
    AlreadyPresent,
}

pub struct ChunkStore {
    chunks_dir: PathBuf,
    tmp_dir: PathBuf,
    /// Where damaged chunks are moved (see `integrity`).
    damaged_dir: PathBuf,
    next_tmp: AtomicU64,
    /// `--max-store-bytes`, if set.
    capacity: Option<u64>,
    /// Bytes in chunk files: the start-up census plus every change since.
    used: AtomicU64,
    /// Chunks removed since start. A commit verified while this moved
    /// re-checks that its chunks are still there before it is written.
    removals: AtomicU64,
    /// Until the start-up census is done: chunks stored since open, which
    /// are counted already and which the census therefore skips.
    uncounted: Mutex<Option<HashSet<Sha256Hex>>>,
    /// Prefixes (first hash byte) the start-up census has walked; 256 once
    /// it is done.
    census_prefix: std::sync::atomic::AtomicU32,
    counted: watch::Sender<bool>,
    /// Chunks the store should hold but lost, and what changed (`integrity`).
    wanted: Mutex<integrity::WantedSet>,
    wanted_news: tokio::sync::Notify,
}

impl ChunkStore {
    /// Opens (creating if needed) the store under `data_dir`, clearing temp
    /// files a crash or a cut-off upload may have left behind.
    pub fn open(data_dir: &Path) -> io::Result<Self> {
        let chunks_dir = data_dir.join("chunks");
        let tmp_dir = data_dir.join("tmp");
        let moved = layout::prepare(data_dir, &chunks_dir)?;
        if moved > 0 {
            tracing::info!(
                moved,
                "moved the chunks of an older store layout up one level"
            );
        }
        if tmp_dir.exists() {
            std::fs::remove_dir_all(&tmp_dir)?;
        }
        std::fs::create_dir_all(&tmp_dir)?;
        Ok(Self {
            chunks_dir,
            tmp_dir,
            damaged_dir: data_dir.join("damaged"),
            next_tmp: AtomicU64::new(0),
            capacity: None,
            used: AtomicU64::new(0),
            removals: AtomicU64::new(0),
            uncounted: Mutex::new(Some(HashSet::new())),
            census_prefix: std::sync::atomic::AtomicU32::new(0),
            counted: watch::Sender::new(false),
            wanted: Mutex::default(),
            wanted_news: tokio::sync::Notify::new(),
        })
    }

    /// Refuses new chunks once `capacity` bytes are stored (`None`: no limit).
    pub fn with_capacity(mut self, capacity: Option<u64>) -> Self {
        self.capacity = capacity;
        self
    }

    fn chunk_path(&self, hash: &Sha256Hex) -> PathBuf {
        layout::chunk_path(&self.chunks_dir, hash)
    }

    fn temp_path(&self) -> PathBuf {
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        self.tmp_dir
            .join(format!("{}-{n}.part", std::process::id()))
    }

    /// Stores a chunk streamed from a request body after checking that its
    /// bytes hash to `expected`. Memory stays at one body frame. A chunk
    /// already stored gets a fresh mtime, so garbage collection keeps it
    /// while the commit that lists it is on its way.
    pub async fn put_stream<S, E>(
        &self,
        expected: Sha256Hex,
        body: S,
        limit: u64,
    ) -> Result<(Stored, u64), PutError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut body = body;
        let final_path = self.chunk_path(&expected);
        let already = {
            let path = final_path.clone();
            tokio::task::spawn_blocking(move || refresh_blocking(&path)).await??
        };
        if !already {
            // Full already: refuse before reading (or writing) anything.
            self.ensure_room()?;
        }
        // Removed on every way out, a dropped future (client gone) included.
        let temp = TempFile::new(self.temp_path());
        let mut file = if already {
            None
        } else {
            Some(tokio::fs::File::create(&temp.path).await?)
        };
        let mut hasher = Sha256::new();
        let mut len = 0u64;
        while let Some(frame) = body.next().await {
            let frame = frame.map_err(|e| PutError::Body(e.to_string()))?;
            len += frame.len() as u64;
            if len > limit {
                return Err(PutError::TooLarge { limit });
            }
            hasher.update(&frame);
            if let Some(file) = file.as_mut() {
                file.write_all(&frame).await?;
            }
        }
        if len == 0 {
            return Err(PutError::Empty);
        }
        let actual = Sha256Hex::from(hasher);
        if actual != expected {
            return Err(PutError::HashMismatch { expected, actual });
        }
        let Some(file) = file else {
            return Ok((Stored::AlreadyPresent, len));
        };
        file.sync_all().await?;
        drop(file);
        self.reserve(len)?;
        self.note_new(&expected);
        let published = {
            let (temp, final_path) = (temp.path.clone(), final_path.clone());
            match tokio::task::spawn_blocking(move || publish_blocking(&temp, &final_path)).await {
                Ok(published) => published.map_err(PutError::from),
                Err(worker) => Err(PutError::from(worker)),
            }
        };
        match published {
            Ok(Stored::New) => {
                self.stored_anew(&expected);
                Ok((Stored::New, len))
            }
            Ok(Stored::AlreadyPresent) => {
                // A concurrent put of the same chunk won the race.
                self.release(len);
                Ok((Stored::AlreadyPresent, len))
            }
            Err(err) => {
                self.release(len);
                Err(err)
            }
        }
    }

    /// Stores a chunk already in memory (from the hub's own chunker), or
    /// refreshes the mtime of the identical one already stored.
    /// Blocking: call from a blocking thread.
    pub fn put_blocking(&self, chunk: &Chunk) -> Result<Stored, PutError> {
        let final_path = self.chunk_path(&chunk.hash);
        if refresh_blocking(&final_path)? {
            return Ok(Stored::AlreadyPresent);
        }
        let len = chunk.data.len() as u64;
        self.reserve(len)?;
        self.note_new(&chunk.hash);
        let temp = TempFile::new(self.temp_path());
        let written = (|| {
            let mut file = std::fs::File::create(&temp.path)?;
            file.write_all(&chunk.data)?;
            file.sync_all()?;
            drop(file);
            publish_blocking(&temp.path, &final_path)
        })();
        if matches!(written, Ok(Stored::New)) {
            self.stored_anew(&chunk.hash);
        } else {
            self.release(len);
        }
        Ok(written?)
    }

    /// Chunks among `hashes` that the hub lacks (each once, in first-listed
    /// order), and the bytes of those it holds. Present chunks get a fresh
    /// mtime if theirs is old: the client will not upload them again.
    /// Blocking.
    pub fn missing_blocking(&self, hashes: &[Sha256Hex]) -> io::Result<(Vec<Sha256Hex>, u64)> {
        let mut seen = HashSet::with_capacity(hashes.len());
        let mut missing = Vec::new();
        let mut present_bytes = 0;
        let stale = SystemTime::now() - REFRESH_AFTER;
        for hash in hashes.iter().filter(|hash| seen.insert(**hash)) {
            let path = self.chunk_path(hash);
            match std::fs::metadata(&path) {
                Ok(meta) => {
                    present_bytes += meta.len();
                    if meta.modified()? < stale && !refresh_blocking(&path)? {
                        missing.push(*hash);
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::NotFound => missing.push(*hash),
                Err(err) => return Err(err),
            }
        }
        Ok((missing, present_bytes))
    }

    /// Checks, without reading content, that every chunk of `distinct` (each
    /// hash once) is stored with its listed length. Blocking.
    pub fn check_present_blocking(&self, distinct: &[ChunkRef]) -> Result<(), VerifyError> {
        let mut missing = Vec::new();
        for chunk in distinct {
            match std::fs::metadata(self.chunk_path(&chunk.hash)) {
                Ok(meta) if meta.len() != chunk.len => {
                    // Damaged (moved aside now): the client uploads it again,
                    // which repairs it. Else the list is what is wrong.
                    if let Err(ChunkReadError::Damaged { .. }) =
                        self.read_verified_blocking(&chunk.hash)
                    {
                        missing.push(chunk.hash);
                        continue;
                    }
                    return Err(VerifyError::LengthMismatch {
                        hash: chunk.hash,
                        listed: chunk.len,
                        actual: meta.len(),
                    });
                }
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => missing.push(chunk.hash),
                Err(err) => return Err(err.into()),
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(VerifyError::Missing(missing))
        }
    }

    /// Opens one stored chunk for reading; `None` when the hub lacks it.
    pub(crate) fn open_chunk_blocking(
        &self,
        hash: &Sha256Hex,
    ) -> io::Result<Option<std::fs::File>> {
        match std::fs::File::open(self.chunk_path(hash)) {
            Ok(file) => Ok(Some(file)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Proves the store is writable, for readiness checks.
    pub async fn probe(&self) -> io::Result<()> {
        let temp = self.temp_path();
        tokio::fs::write(&temp, b"ready").await?;
        tokio::fs::remove_file(&temp).await
    }
}

/// A temp file removed when dropped, however the write ends.
struct TempFile {
    path: PathBuf,
}

impl TempFile {
    fn new(path: PathBuf) -> Self {
        Self { path }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // Gone already once published; any other failure is cleared at open.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Gives a stored chunk a fresh mtime; `false` when it is not stored.
fn refresh_blocking(path: &Path) -> io::Result<bool> {
    match std::fs::File::open(path) {
        Ok(file) => {
            file.set_modified(SystemTime::now())?;
            Ok(true)
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err),
    }
}

/// Links a complete, durable temp file into place and makes that durable.
fn publish_blocking(temp: &Path, final_path: &Path) -> io::Result<Stored> {
    let stored = link_blocking(temp, final_path)?;
    if stored == Stored::New {
        // The new name is durable only once the directory entry is on disk.
        std::fs::File::open(chunk_dir(final_path))?.sync_all()?;
    }
    Ok(stored)
}

/// Links a complete temp file into place, without making the new name
/// durable (the caller does, for one chunk or for many at once). Linking
/// (unlike renaming) never replaces a chunk a concurrent put stored first,
/// so each chunk is counted once. The temp file's bytes must be durable
/// already: a chunk is never visible under its name before they are.
fn link_blocking(temp: &Path, final_path: &Path) -> io::Result<Stored> {
    let linked = match std::fs::hard_link(temp, final_path) {
        // Its directory was removed by hand since the store opened.
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir_all(chunk_dir(final_path))?;
            std::fs::hard_link(temp, final_path)
        }
        other => other,
    };
    match linked {
        Ok(()) => Ok(Stored::New),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(Stored::AlreadyPresent),
        // A file system without hard links: the identical bytes may replace
        // a concurrent put's, which is harmless.
        Err(_) => {
            std::fs::rename(temp, final_path)?;
            Ok(Stored::New)
        }
    }
}

/// The directory a chunk file lives in (`chunks/ab`).
fn chunk_dir(chunk_path: &Path) -> &Path {
    chunk_path.parent().unwrap_or(chunk_path)
}

/// Reads a chunk file to its end, feeding `sink`; returns its length.
pub(crate) fn read_all(
    mut file: impl Read,
    buffer: &mut [u8],
    mut sink: impl FnMut(&[u8]),
) -> io::Result<u64> {
    let mut total = 0u64;
    loop {
        let n = file.read(buffer)?;
        if n == 0 {
            return Ok(total);
        }
        sink(&buffer[..n]);
        total += n as u64;
    }
}
