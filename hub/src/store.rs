//! The content store: chunks on disk under `<data-dir>/chunks/ab/cd/<sha256>`,
//! each written to a temp file, fsynced and renamed into place, so a chunk
//! file either holds exactly the bytes its name promises or does not exist.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt, stream};
use sf_protocol::Sha256Hex;
use sf_protocol::chunking::{Chunk, ChunkRef};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

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
    #[error("writing the chunk failed: {0}")]
    Io(#[from] io::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the hub does not hold {} of the listed chunks; upload them first", .0.len())]
    Missing(Vec<Sha256Hex>),
    #[error("chunk {hash} is {actual} bytes, not {listed} as listed")]
    LengthMismatch {
        hash: Sha256Hex,
        listed: u64,
        actual: u64,
    },
    #[error("the chunks concatenate to {actual}, not to the sha256 {expected} given")]
    HashMismatch {
        expected: Sha256Hex,
        actual: Sha256Hex,
    },
    #[error("reading chunks failed: {0}")]
    Io(#[from] io::Error),
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
    next_tmp: AtomicU64,
}

impl ChunkStore {
    /// Opens (creating if needed) the store under `data_dir`, clearing temp
    /// files a crash may have left behind.
    pub fn open(data_dir: &Path) -> io::Result<Self> {
        let chunks_dir = data_dir.join("chunks");
        let tmp_dir = data_dir.join("tmp");
        std::fs::create_dir_all(&chunks_dir)?;
        if tmp_dir.exists() {
            std::fs::remove_dir_all(&tmp_dir)?;
        }
        std::fs::create_dir_all(&tmp_dir)?;
        Ok(Self {
            chunks_dir,
            tmp_dir,
            next_tmp: AtomicU64::new(0),
        })
    }

    fn chunk_path(&self, hash: &Sha256Hex) -> PathBuf {
        let hex = hash.to_hex();
        self.chunks_dir.join(&hex[..2]).join(&hex[2..4]).join(hex)
    }

    fn temp_path(&self) -> PathBuf {
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        self.tmp_dir
            .join(format!("{}-{n}.part", std::process::id()))
    }

    /// The stored length of `hash`, or `None` when the hub lacks it.
    pub async fn len_of(&self, hash: &Sha256Hex) -> io::Result<Option<u64>> {
        match tokio::fs::metadata(self.chunk_path(hash)).await {
            Ok(meta) => Ok(Some(meta.len())),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Stores a chunk streamed from a request body after checking that its
    /// bytes hash to `expected`. Memory stays at one body frame.
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
        let already = tokio::fs::try_exists(&final_path).await?;
        let temp = self.temp_path();
        let mut file = if already {
            None
        } else {
            Some(tokio::fs::File::create(&temp).await?)
        };
        let result: Result<u64, PutError> = async {
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
            if let Some(file) = file.as_mut() {
                file.sync_all().await?;
            }
            Ok(len)
        }
        .await;
        drop(file);
        match result {
            Ok(len) if already => Ok((Stored::AlreadyPresent, len)),
            Ok(len) => {
                self.publish(&temp, &final_path).await?;
                Ok((Stored::New, len))
            }
            Err(err) => {
                let _ = tokio::fs::remove_file(&temp).await;
                Err(err)
            }
        }
    }

    /// Moves a complete temp file into place and makes the rename durable.
    async fn publish(&self, temp: &Path, final_path: &Path) -> io::Result<()> {
        let temp = temp.to_owned();
        let final_path = final_path.to_owned();
        tokio::task::spawn_blocking(move || publish_blocking(&temp, &final_path))
            .await
            .map_err(io::Error::other)?
    }

    /// Stores a chunk already in memory (from the hub's own chunker).
    /// Blocking: call from a blocking thread.
    pub fn put_blocking(&self, chunk: &Chunk) -> io::Result<Stored> {
        let final_path = self.chunk_path(&chunk.hash);
        if final_path.exists() {
            return Ok(Stored::AlreadyPresent);
        }
        let temp = self.temp_path();
        let written = (|| {
            let mut file = std::fs::File::create(&temp)?;
            file.write_all(&chunk.data)?;
            file.sync_all()?;
            publish_blocking(&temp, &final_path)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written.map(|()| Stored::New)
    }

    /// Chunks among `hashes` that the hub lacks, and the bytes of those it holds.
    pub async fn missing(&self, hashes: &[Sha256Hex]) -> io::Result<(Vec<Sha256Hex>, u64)> {
        let mut missing = Vec::new();
        let mut present_bytes = 0;
        for hash in hashes {
            match self.len_of(hash).await? {
                Some(len) => present_bytes += len,
                None => missing.push(*hash),
            }
        }
        Ok((missing, present_bytes))
    }

    /// Checks that `chunks` are all stored, have their listed lengths and
    /// concatenate to `sha256`. Reads every byte; blocking.
    pub fn verify_blocking(
        &self,
        chunks: &[ChunkRef],
        sha256: &Sha256Hex,
    ) -> Result<(), VerifyError> {
        let missing: Vec<Sha256Hex> = chunks
            .iter()
            .filter(|c| !self.chunk_path(&c.hash).exists())
            .map(|c| c.hash)
            .collect();
        if !missing.is_empty() {
            return Err(VerifyError::Missing(missing));
        }
        let mut whole = Sha256::new();
        let mut buffer = vec![0u8; 256 * 1024];
        for chunk in chunks {
            let mut file = std::fs::File::open(self.chunk_path(&chunk.hash))?;
            let mut actual = 0u64;
            loop {
                let n = file.read(&mut buffer)?;
                if n == 0 {
                    break;
                }
                whole.update(&buffer[..n]);
                actual += n as u64;
            }
            if actual != chunk.len {
                return Err(VerifyError::LengthMismatch {
                    hash: chunk.hash,
                    listed: chunk.len,
                    actual,
                });
            }
        }
        let actual = Sha256Hex::from(whole);
        if actual != *sha256 {
            return Err(VerifyError::HashMismatch {
                expected: *sha256,
                actual,
            });
        }
        Ok(())
    }

    /// Streams bytes `start..end` of the content made of `chunks`.
    pub fn read_range(
        &self,
        chunks: &[ChunkRef],
        start: u64,
        end: u64,
    ) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        let mut segments = Vec::new();
        let mut chunk_start = 0u64;
        for chunk in chunks {
            let chunk_end = chunk_start + chunk.len;
            if chunk_end > start && chunk_start < end {
                let skip = start.saturating_sub(chunk_start);
                let take = end.min(chunk_end) - chunk_start.max(start);
                segments.push((self.chunk_path(&chunk.hash), skip, take));
            }
            chunk_start = chunk_end;
        }
        stream::iter(segments)
            .then(|(path, skip, take)| async move {
                let mut file = tokio::fs::File::open(&path).await?;
                if skip > 0 {
                    file.seek(io::SeekFrom::Start(skip)).await?;
                }
                Ok::<_, io::Error>(ReaderStream::with_capacity(file.take(take), 64 * 1024))
            })
            .try_flatten()
    }

    /// Streams one whole chunk, or `None` when the hub lacks it.
    pub async fn read_chunk(
        &self,
        hash: &Sha256Hex,
    ) -> io::Result<Option<(u64, ReaderStream<tokio::fs::File>)>> {
        match tokio::fs::File::open(self.chunk_path(hash)).await {
            Ok(file) => {
                let len = file.metadata().await?.len();
                Ok(Some((len, ReaderStream::with_capacity(file, 64 * 1024))))
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Counts stored chunks and their bytes by walking the store; blocking.
    pub fn census_blocking(&self) -> io::Result<(u64, u64)> {
        let (mut count, mut bytes) = (0, 0);
        for outer in std::fs::read_dir(&self.chunks_dir)? {
            for inner in std::fs::read_dir(outer?.path())? {
                for chunk in std::fs::read_dir(inner?.path())? {
                    count += 1;
                    bytes += chunk?.metadata()?.len();
                }
            }
        }
        Ok((count, bytes))
    }

    /// Proves the store is writable, for readiness checks.
    pub async fn probe(&self) -> io::Result<()> {
        let temp = self.temp_path();
        tokio::fs::write(&temp, b"ready").await?;
        tokio::fs::remove_file(&temp).await
    }
}

fn publish_blocking(temp: &Path, final_path: &Path) -> io::Result<()> {
    let parent = final_path.parent().expect("chunk paths have a parent");
    std::fs::create_dir_all(parent)?;
    std::fs::rename(temp, final_path)?;
    // The rename is durable only once the directory entry is on disk.
    std::fs::File::open(parent)?.sync_all()
}
