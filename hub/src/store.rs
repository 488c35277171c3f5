//! The content store: chunks named by their sha256, in a directory on the
//! hub's disk or in an S3-compatible bucket (`objects`: the interface;
//! `local` and `bucket`: the two back ends, chosen once from `--store`). A
//! chunk is either stored with exactly the bytes its name promises or
//! absent, and is acknowledged only once durable. `pack` stores many chunks
//! from one request, `read` streams ranges and single chunks, and `fetch`
//! sends many in one answer. Every chunk read to be sent is hashed first
//! (`integrity`): a damaged one is refused, moved aside and asked of agents
//! again.
//!
//! The store also keeps what garbage collection and `--max-store-bytes` need:
//! the bytes it holds, a count of removals (commits re-check their chunks when
//! it moved), and chunk ages refreshed whenever a client is told a chunk is
//! present, so a chunk about to be committed outlives the grace period.

use std::collections::HashSet;
use std::io;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sf_protocol::Sha256Hex;
use sf_protocol::chunking::{Chunk, ChunkRef};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

mod audit;
mod bucket;
mod fetch;
mod integrity;
mod layout;
mod local;
mod location;
mod objects;
mod pack;
mod read;
mod removal;
mod usage;
mod verify;

pub use audit::StoredChunk;
pub use bucket::BucketError;
pub use integrity::{ChunkReadError, Lost, WantedNews};
pub use location::{BucketAccess, StoreLocation};
pub use objects::CopyTag;
pub use pack::{Pack, PackFrame};
pub use usage::StoreFull;
pub use verify::VerifyError;

use objects::{Objects, Staged};

/// A present chunk older than this gets a fresh age when a client is told
/// the hub holds it (see [`ChunkStore::missing_blocking`]): the client is
/// about to commit it, and garbage collection goes by age.
const REFRESH_AFTER: Duration = Duration::from_secs(3600);

/// How long a successful readiness probe of the store is trusted.
const PROBE_FRESH: Duration = Duration::from_secs(2);

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

/// The back end holding the chunks.
enum Backend {
    Local(local::LocalDir),
    Bucket(bucket::Bucket),
}

pub struct ChunkStore {
    backend: Backend,
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
    /// When the last readiness probe succeeded.
    probed: Mutex<Option<std::time::Instant>>,
}

impl ChunkStore {
    /// Opens (creating if needed) the local store under `data_dir`,
    /// clearing temp files a crash or a cut-off upload may have left behind.
    pub fn open(data_dir: &Path) -> io::Result<Self> {
        Ok(Self::with_backend(Backend::Local(local::LocalDir::open(
            data_dir,
        )?)))
    }

    /// Opens the store at `location`: the local one under `data_dir`, or a
    /// bucket (checked to be reachable first). Call from a blocking thread
    /// inside the runtime.
    pub fn open_at(
        location: &StoreLocation,
        access: &BucketAccess,
        data_dir: &Path,
    ) -> Result<Self, OpenError> {
        match location {
            StoreLocation::Local => Self::open(data_dir).map_err(|source| OpenError::Local {
                dir: data_dir.display().to_string(),
                source,
            }),
            StoreLocation::Bucket(bucket) => Ok(Self::with_backend(Backend::Bucket(
                bucket::Bucket::connect(bucket, access)?,
            ))),
        }
    }

    fn with_backend(backend: Backend) -> Self {
        Self {
            backend,
            capacity: None,
            used: AtomicU64::new(0),
            removals: AtomicU64::new(0),
            uncounted: Mutex::new(Some(HashSet::new())),
            census_prefix: std::sync::atomic::AtomicU32::new(0),
            counted: watch::Sender::new(false),
            wanted: Mutex::default(),
            wanted_news: tokio::sync::Notify::new(),
            probed: Mutex::new(None),
        }
    }

    fn objects(&self) -> &dyn Objects {
        match &self.backend {
            Backend::Local(dir) => dir,
            Backend::Bucket(bucket) => bucket,
        }
    }

    /// `local` or `s3`, for `/readyz`.
    pub fn kind(&self) -> &'static str {
        match &self.backend {
            Backend::Local(_) => "local",
            Backend::Bucket(_) => "s3",
        }
    }

    /// Where the chunks are, for logs.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Local(_) => format!("directory {}", self.objects().describe()),
            Backend::Bucket(_) => format!("bucket {}", self.objects().describe()),
        }
    }

    /// The file of chunk `hash` in a local store (tests damage it).
    #[cfg(test)]
    fn chunk_path(&self, hash: &Sha256Hex) -> std::path::PathBuf {
        match &self.backend {
            Backend::Local(dir) => dir.chunk_path(hash),
            Backend::Bucket(_) => panic!("a bucket has no chunk files"),
        }
    }

    /// Refuses new chunks once `capacity` bytes are stored (`None`: no limit).
    pub fn with_capacity(mut self, capacity: Option<u64>) -> Self {
        self.capacity = capacity;
        self
    }

    /// Stores a chunk streamed from a request body after checking that its
    /// bytes hash to `expected`. Memory stays at one body frame. A chunk
    /// already stored gets a fresh mtime, so garbage collection keeps it
    /// while the commit that lists it is on its way.
    pub async fn put_stream<S, E>(
        self: &std::sync::Arc<Self>,
        expected: Sha256Hex,
        body: S,
        limit: u64,
    ) -> Result<(Stored, u64), PutError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut body = body;
        let already = if self.objects().looks_before_upload() {
            let (store, hash) = (std::sync::Arc::clone(self), expected);
            tokio::task::spawn_blocking(move || store.objects().touch(&hash)).await??
        } else {
            false
        };
        if !already {
            // Full already: refuse before reading (or writing) anything.
            self.ensure_room()?;
        }
        // A temp file is removed on every way out, a dropped future (client
        // gone) included.
        let mut staging = if already {
            Staging::Discard
        } else {
            match self.objects().staging_file() {
                Some(temp) => {
                    let file = tokio::fs::File::create(&temp.path).await?;
                    Staging::File(temp, file)
                }
                None => Staging::Memory(Vec::new()),
            }
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
            match &mut staging {
                Staging::Discard => {}
                Staging::File(_, file) => file.write_all(&frame).await?,
                Staging::Memory(data) => data.extend_from_slice(&frame),
            }
        }
        if len == 0 {
            return Err(PutError::Empty);
        }
        let actual = Sha256Hex::from(hasher);
        if actual != expected {
            return Err(PutError::HashMismatch { expected, actual });
        }
        let staged = match staging {
            Staging::Discard => return Ok((Stored::AlreadyPresent, len)),
            Staging::File(temp, mut file) => {
                // Written out of tokio's buffer; publish makes it durable.
                file.flush().await?;
                drop(file);
                Staged::File(temp)
            }
            Staging::Memory(data) => Staged::Memory(data),
        };
        self.reserve(len)?;
        self.note_new(&expected);
        let published = {
            let store = std::sync::Arc::clone(self);
            match tokio::task::spawn_blocking(move || store.objects().publish(&expected, staged))
                .await
            {
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
        if self.objects().looks_before_upload() && self.objects().touch(&chunk.hash)? {
            return Ok(Stored::AlreadyPresent);
        }
        let len = chunk.data.len() as u64;
        self.reserve(len)?;
        self.note_new(&chunk.hash);
        let written = self
            .objects()
            .publish(&chunk.hash, Staged::Memory(chunk.data.clone()));
        if matches!(written, Ok(Stored::New)) {
            self.stored_anew(&chunk.hash);
        } else {
            self.release(len);
        }
        Ok(written?)
    }

    /// Chunks among `hashes` that the hub lacks (each once, in first-listed
    /// order), and the bytes of those it holds. Present chunks get a fresh
    /// age if theirs is old: the client will not upload them again.
    /// Blocking.
    pub fn missing_blocking(&self, hashes: &[Sha256Hex]) -> io::Result<(Vec<Sha256Hex>, u64)> {
        let mut seen = HashSet::with_capacity(hashes.len());
        let distinct: Vec<Sha256Hex> = hashes
            .iter()
            .filter(|h| seen.insert(**h))
            .copied()
            .collect();
        let stats = self.objects().stat_many(&distinct)?;
        let mut missing = Vec::new();
        let mut present_bytes = 0;
        let mut stale = Vec::new();
        let stale_before = SystemTime::now() - REFRESH_AFTER;
        for (hash, stat) in distinct.iter().zip(stats) {
            match stat {
                Some(meta) => {
                    present_bytes += meta.len;
                    if meta.modified < stale_before {
                        stale.push(*hash);
                    }
                }
                None => missing.push(*hash),
            }
        }
        for (hash, touched) in stale.iter().zip(self.objects().touch_many(&stale)) {
            if !touched? {
                // Gone since the look-up: the client uploads it.
                missing.push(*hash);
            }
        }
        if !stale.is_empty() {
            // Back in first-listed order.
            let order: std::collections::HashMap<Sha256Hex, usize> =
                distinct.iter().enumerate().map(|(i, h)| (*h, i)).collect();
            missing.sort_by_key(|hash| order[hash]);
        }
        Ok((missing, present_bytes))
    }

    /// Checks, without reading content, that every chunk of `distinct` (each
    /// hash once) is stored with its listed length. Blocking.
    pub fn check_present_blocking(&self, distinct: &[ChunkRef]) -> Result<(), VerifyError> {
        let hashes: Vec<Sha256Hex> = distinct.iter().map(|chunk| chunk.hash).collect();
        let stats = self.objects().stat_many(&hashes)?;
        let mut missing = Vec::new();
        for (chunk, stat) in distinct.iter().zip(stats) {
            match stat {
                Some(meta) if meta.len != chunk.len => {
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
                        actual: meta.len,
                    });
                }
                Some(_) => {}
                None => missing.push(chunk.hash),
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(VerifyError::Missing(missing))
        }
    }

    /// Whether chunk `hash` is stored (its name only). Blocking.
    pub fn holds_blocking(&self, hash: &Sha256Hex) -> io::Result<bool> {
        Ok(self.objects().stat(hash)?.is_some())
    }

    /// Proves the store is writable, for readiness checks. A success is
    /// trusted for [`PROBE_FRESH`]: the probe is open to anyone, and on a
    /// bucket it costs three requests.
    pub async fn probe(self: &std::sync::Arc<Self>) -> io::Result<()> {
        let fresh =
            |at: &Option<std::time::Instant>| at.is_some_and(|at| at.elapsed() < PROBE_FRESH);
        if fresh(&self.probed.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(());
        }
        let store = std::sync::Arc::clone(self);
        tokio::task::spawn_blocking(move || store.objects().probe())
            .await
            .map_err(io::Error::other)??;
        *self.probed.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now());
        Ok(())
    }
}

/// Where a streamed upload goes while it is hashed: nowhere (the chunk is
/// stored already), a temp file, or memory.
enum Staging {
    Discard,
    File(objects::TempFile, tokio::fs::File),
    Memory(Vec<u8>),
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open the chunk store in {dir}: {source}")]
    Local {
        dir: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Bucket(#[from] BucketError),
}
