//! Where chunk bytes live, behind one interface: a directory on the hub's
//! own disk (`local`, the embedded default) or an S3-compatible bucket
//! (`bucket`, for several hubs). The store's logic (verification, the
//! wanted set, usage, garbage collection) sits above this and is the same
//! for both.
//!
//! Every method blocks: the store calls them from blocking threads, as it
//! always did for files. Each chunk is an object named by its hash; an
//! object either holds exactly the bytes its name promises or does not
//! exist, and `publish` returns only once the bytes are durable (fsynced,
//! or acknowledged by the bucket), so a commit never references a chunk
//! the store could still lose.

use std::io;
use std::path::PathBuf;
use std::time::SystemTime;

use sf_protocol::Sha256Hex;

use super::Stored;

/// What the store knows of an object without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectMeta {
    pub len: u64,
    /// When it was stored or last refreshed: garbage collection goes by it.
    pub modified: SystemTime,
}

/// Which stored copy was read: a file's device and inode, an object's ETag.
/// A copy found damaged is moved aside only if it is still the one read,
/// never a good copy stored since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyTag(pub String);

/// A new chunk's bytes on their way into the store: in a temp file (the
/// local store streams uploads to disk) or in memory (a bucket takes whole
/// objects, at most `MAX_CHUNK_SIZE` bytes each).
pub enum Staged {
    File(TempFile),
    Memory(Vec<u8>),
}

/// A temp file removed when dropped, however the write ends.
pub struct TempFile {
    pub path: PathBuf,
}

impl TempFile {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // Gone already once published; any other failure is cleared at open.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The result of publishing a group: for each chunk, in order, how it was
/// stored, or `None` if it was not (then `error` says why).
pub struct GroupOutcome {
    pub stored: Vec<Option<Stored>>,
    pub error: Option<io::Error>,
}

/// What reading one chunk gives: its bytes and which copy they came from,
/// or `None` when it is not stored.
pub type ReadChunk = io::Result<Option<(Vec<u8>, CopyTag)>>;

/// One object store of chunks. See the module docs; all methods block.
pub trait Objects: Send + Sync {
    /// Where the chunks are, for logs and error messages.
    fn describe(&self) -> String;

    /// Length and age of chunk `hash`; `None` when it is not stored.
    fn stat(&self, hash: &Sha256Hex) -> io::Result<Option<ObjectMeta>>;

    /// [`Self::stat`] for many chunks, in order (a bucket asks in parallel).
    fn stat_many(&self, hashes: &[Sha256Hex]) -> io::Result<Vec<Option<ObjectMeta>>> {
        hashes.iter().map(|hash| self.stat(hash)).collect()
    }

    /// At most `limit` bytes of chunk `hash`, with which copy they came
    /// from; `None` when it is not stored.
    fn read(&self, hash: &Sha256Hex, limit: u64) -> ReadChunk;

    /// [`Self::read`] of each of `hashes` in order, as an iterator that may
    /// read ahead a few (a bucket's round trips overlap); memory stays at a
    /// few chunks.
    fn read_many(
        &self,
        hashes: Vec<Sha256Hex>,
        limit: u64,
    ) -> Box<dyn Iterator<Item = ReadChunk> + Send + '_> {
        Box::new(hashes.into_iter().map(move |hash| self.read(&hash, limit)))
    }

    /// How many chunks a reader of many should have under way ahead of the
    /// one it sends (0: read each when it is needed, as a disk answers at
    /// once).
    fn read_ahead(&self) -> usize {
        0
    }

    /// Marks a stored chunk as freshly used, so garbage collection keeps
    /// it for its grace period; `false` when it is not stored.
    fn touch(&self, hash: &Sha256Hex) -> io::Result<bool>;

    /// [`Self::touch`] for each of `hashes` (a bucket refreshes several at
    /// once).
    fn touch_many(&self, hashes: &[Sha256Hex]) -> Vec<io::Result<bool>> {
        hashes.iter().map(|hash| self.touch(hash)).collect()
    }

    /// Whether an upload should look for (and refresh) a stored copy before
    /// taking the bytes: where that is cheaper than storing them (a disk).
    /// A store that says no refreshes a copy it finds when it publishes
    /// (see [`Self::publish`]).
    fn looks_before_upload(&self) -> bool {
        true
    }

    /// A temp file to stream an upload into, where the store keeps uploads
    /// on disk; `None` for a store that takes them from memory.
    fn staging_file(&self) -> Option<TempFile>;

    /// Stages a chunk of a pack (not yet durable or visible).
    fn stage(&self, data: Vec<u8>) -> io::Result<Staged>;

    /// Makes a staged chunk durable and visible under its name, unless a
    /// copy is there already (then, where the store did not look before the
    /// upload, that copy is refreshed). Returns once it is durable.
    fn publish(&self, hash: &Sha256Hex, staged: Staged) -> io::Result<Stored>;

    /// Staged bytes a pack holds before it publishes them as a group.
    fn group_bytes(&self) -> u64 {
        64 << 20
    }

    /// Publishes a group of staged chunks; every chunk reported stored is
    /// durable when this returns. Stores that can flush many at once do.
    fn publish_group(&self, group: Vec<(Sha256Hex, Staged)>) -> GroupOutcome {
        let mut stored = Vec::with_capacity(group.len());
        let mut error = None;
        for (hash, staged) in group {
            if error.is_some() {
                stored.push(None);
                continue;
            }
            match self.publish(&hash, staged) {
                Ok(how) => stored.push(Some(how)),
                Err(err) => {
                    stored.push(None);
                    error = Some(err);
                }
            }
        }
        GroupOutcome { stored, error }
    }

    /// Removes chunk `hash` if it is stored and, given `older_than`, was
    /// last stored or refreshed before it; returns the bytes freed.
    fn remove(&self, hash: &Sha256Hex, older_than: Option<SystemTime>) -> io::Result<Option<u64>>;

    /// [`Self::remove`] for each of `hashes` (a bucket removes several at
    /// once).
    fn remove_many(
        &self,
        hashes: &[Sha256Hex],
        older_than: Option<SystemTime>,
    ) -> Vec<io::Result<Option<u64>>> {
        hashes
            .iter()
            .map(|hash| self.remove(hash, older_than))
            .collect()
    }

    /// The chunks whose hash starts with byte `prefix`, in hash order:
    /// one 256th of the store, so callers hold little in memory.
    fn list(&self, prefix: u8) -> io::Result<Vec<(Sha256Hex, ObjectMeta)>>;

    /// Moves chunk `hash` out of the store, to where damaged copies are
    /// kept for the operator, if it is still the copy `tag`. Returns where
    /// it went; `None` when that copy is no longer in the store.
    fn quarantine(&self, hash: &Sha256Hex, tag: &CopyTag) -> io::Result<Option<String>>;

    /// Proves the store can be written to and read from, for `/readyz`.
    fn probe(&self) -> io::Result<()>;

    /// Temp files older than `cutoff` (uploads cut off, or left by a
    /// crash): removed by `sf-hub check --repair`. A bucket has none.
    fn old_temp_files(&self, cutoff: SystemTime) -> io::Result<Vec<PathBuf>>;
}
