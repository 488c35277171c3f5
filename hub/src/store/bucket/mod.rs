//! The chunk store in an S3-compatible bucket (`--store s3://BUCKET[/PREFIX]`),
//! shared by every hub that names it: AWS S3, MinIO, Garage, Ceph RGW, R2.
//!
//! Objects are `PREFIX/chunks/ab/<sha256>`; damaged copies go to
//! `PREFIX/damaged/<sha256>.<millis>`. The client is the `object_store`
//! crate (Apache Arrow's, maintained, used by DataFusion and delta-rs): it
//! signs requests and retries transient failures, so this module only maps
//! the store's few operations onto objects. The hub's settings carry the
//! standard variables (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`); the client also reads any other `AWS_*` one.
//!
//! A PUT is acknowledged by the server only once the object is durable,
//! and a chunk is reported stored only after that acknowledgement. New
//! chunks are written with `If-None-Match: *` where the server supports it;
//! when a copy is there already, the upload's verified bytes are written
//! over it, which refreshes its age (and would mend a damaged copy). An
//! object's age for garbage collection is its Last-Modified time; S3
//! cannot change that in place, so refreshing an old chunk a client is
//! about to reference copies it aside and back on the server (no bytes
//! pass through the hub).
//!
//! The store's callers block (see `objects`); this back end runs its
//! requests on a small runtime of its own, so a store busy with many
//! requests never takes the threads the hub's runtime needs (its blocking
//! pool also resolves host names), several at a time where a caller asks
//! about many chunks.

mod keys;

use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{StreamExt, TryStreamExt, stream};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use sf_protocol::Sha256Hex;

use crate::store::Stored;
use crate::store::location::{BucketAccess, BucketLocation};
use crate::store::objects::{
    CopyTag, GroupOutcome, ObjectMeta, Objects, ReadChunk, Staged, TempFile,
};
use keys::{Keys, io_error};

/// Requests in flight when many chunks are looked up or stored at once.
const PARALLEL: usize = 16;

/// Chunks read ahead of the one being hashed (see `Objects::read_many`).
const READ_AHEAD: usize = 4;

/// Staged bytes a pack publishes at once (held in memory until then).
const GROUP_BYTES: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    #[error(
        "cannot set up the S3 client for {location}: {source}; check AWS_ENDPOINT_URL, \
         AWS_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )]
    Config {
        location: String,
        #[source]
        source: object_store::Error,
    },
    #[error(
        "the bucket {location} at {endpoint} cannot be used: {source}; check that the endpoint \
         is reachable, that the bucket exists (the hub does not create it) and that the \
         credentials may read, write and delete objects in it"
    )]
    Unusable {
        location: String,
        endpoint: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot start the threads that talk to the bucket: {0}")]
    Runtime(#[source] io::Error),
}

pub struct Bucket {
    keys: Arc<Keys>,
    location: BucketLocation,
    endpoint: String,
    /// Where the requests run (see the module docs); shut down in the
    /// background when the store goes, which may be on an async thread.
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl Drop for Bucket {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Bucket {
    /// Builds the client from the `AWS_*` variables and proves the bucket
    /// can be written, read and deleted in. Call from a blocking thread.
    pub fn connect(location: &BucketLocation, access: &BucketAccess) -> Result<Self, BucketError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sf-hub-s3")
            .enable_all()
            .build()
            .map_err(BucketError::Runtime)?;
        let handle = runtime.handle().clone();
        let endpoint = access.endpoint.clone().filter(|v| !v.trim().is_empty());
        // Whatever other AWS_* variables say (a session token, a profile's
        // settings), then what the hub was given explicitly.
        let mut builder = AmazonS3Builder::from_env();
        if let Some(endpoint) = &endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &access.region {
            builder = builder.with_region(region);
        }
        if let Some(key) = &access.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &access.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let mut builder = builder
            .with_bucket_name(&location.bucket)
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(20),
                ..RetryConfig::default()
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(60)),
            );
        // Plain HTTP only when the operator wrote an http:// endpoint
        // (MinIO on the same host or network, a test server).
        if endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"))
        {
            builder = builder.with_allow_http(true);
        }
        let client = builder.build().map_err(|source| BucketError::Config {
            location: location.to_string(),
            source,
        })?;
        let root = if location.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", location.prefix)
        };
        let bucket = Self {
            keys: Arc::new(Keys {
                client: Box::new(client),
                root,
            }),
            location: location.clone(),
            endpoint: endpoint.unwrap_or_else(|| "the AWS default endpoint".into()),
            runtime: Some(runtime),
            handle,
        };
        bucket.probe().map_err(|source| BucketError::Unusable {
            location: location.to_string(),
            endpoint: bucket.endpoint.clone(),
            source,
        })?;
        Ok(bucket)
    }

    fn wait<F: std::future::Future>(&self, future: F) -> F::Output {
        self.handle.block_on(future)
    }
}

fn staged_bytes(staged: Staged) -> io::Result<Vec<u8>> {
    match staged {
        Staged::Memory(data) => Ok(data),
        // Not made by this back end (it stages in memory), but readable.
        Staged::File(temp) => std::fs::read(&temp.path),
    }
}

impl Objects for Bucket {
    fn describe(&self) -> String {
        format!("{} at {}", self.location, self.endpoint)
    }

    fn stat(&self, hash: &Sha256Hex) -> io::Result<Option<ObjectMeta>> {
        self.wait(self.keys.head(hash))
    }

    fn stat_many(&self, hashes: &[Sha256Hex]) -> io::Result<Vec<Option<ObjectMeta>>> {
        let keys = &self.keys;
        self.wait(
            stream::iter(hashes)
                .map(|hash| keys.head(hash))
                .buffered(PARALLEL)
                .try_collect(),
        )
    }

    fn read(&self, hash: &Sha256Hex, limit: u64) -> ReadChunk {
        self.wait(self.keys.read(&self.keys.chunk(hash), limit))
    }

    fn read_many(
        &self,
        hashes: Vec<Sha256Hex>,
        limit: u64,
    ) -> Box<dyn Iterator<Item = ReadChunk> + Send + '_> {
        let (sender, mut receiver) = tokio::sync::mpsc::channel(1);
        let keys = Arc::clone(&self.keys);
        self.handle.spawn(async move {
            let mut reads = stream::iter(hashes)
                .map(|hash| {
                    let keys = Arc::clone(&keys);
                    async move { keys.read(&keys.chunk(&hash), limit).await }
                })
                .buffered(READ_AHEAD);
            while let Some(read) = reads.next().await {
                // The reader stopped early (a missing chunk): stop too.
                if sender.send(read).await.is_err() {
                    break;
                }
            }
        });
        Box::new(std::iter::from_fn(move || receiver.blocking_recv()))
    }

    fn read_ahead(&self) -> usize {
        READ_AHEAD
    }

    fn touch(&self, hash: &Sha256Hex) -> io::Result<bool> {
        self.wait(self.keys.touch(hash))
    }

    fn touch_many(&self, hashes: &[Sha256Hex]) -> Vec<io::Result<bool>> {
        let keys = &self.keys;
        self.wait(
            stream::iter(hashes)
                .map(|hash| keys.touch(hash))
                .buffered(PARALLEL)
                .collect(),
        )
    }

    fn looks_before_upload(&self) -> bool {
        false
    }

    fn staging_file(&self) -> Option<TempFile> {
        None
    }

    fn stage(&self, data: Vec<u8>) -> io::Result<Staged> {
        Ok(Staged::Memory(data))
    }

    fn group_bytes(&self) -> u64 {
        GROUP_BYTES
    }

    fn publish(&self, hash: &Sha256Hex, staged: Staged) -> io::Result<Stored> {
        let data = staged_bytes(staged)?;
        self.wait(self.keys.put_new(&self.keys.chunk(hash), data))
    }

    fn publish_group(&self, group: Vec<(Sha256Hex, Staged)>) -> GroupOutcome {
        let keys = &self.keys;
        let results: Vec<io::Result<Stored>> = self.wait(
            stream::iter(group)
                .map(|(hash, staged)| async move {
                    keys.put_new(&keys.chunk(&hash), staged_bytes(staged)?)
                        .await
                })
                .buffered(PARALLEL)
                .collect(),
        );
        let mut error = None;
        let stored = results
            .into_iter()
            .map(|result| match result {
                Ok(how) => Some(how),
                Err(err) => {
                    error.get_or_insert(err);
                    None
                }
            })
            .collect();
        GroupOutcome { stored, error }
    }

    fn remove(&self, hash: &Sha256Hex, older_than: Option<SystemTime>) -> io::Result<Option<u64>> {
        self.wait(self.keys.remove(hash, older_than))
    }

    fn remove_many(
        &self,
        hashes: &[Sha256Hex],
        older_than: Option<SystemTime>,
    ) -> Vec<io::Result<Option<u64>>> {
        let keys = &self.keys;
        self.wait(
            stream::iter(hashes)
                .map(|hash| keys.remove(hash, older_than))
                .buffered(PARALLEL)
                .collect(),
        )
    }

    fn list(&self, prefix: u8) -> io::Result<Vec<(Sha256Hex, ObjectMeta)>> {
        let dir = ObjectPath::from(format!("{}chunks/{prefix:02x}", self.keys.root));
        let listed: Vec<object_store::ObjectMeta> = self
            .wait(self.keys.client.list(Some(&dir)).try_collect())
            .map_err(io_error)?;
        let mut chunks: Vec<(Sha256Hex, ObjectMeta)> = listed
            .into_iter()
            .filter_map(|meta| {
                // Anything that is not a chunk's name is not the store's.
                let hash = Sha256Hex::parse(meta.location.filename()?).ok()?;
                (hash.as_bytes()[0] == prefix).then_some((
                    hash,
                    ObjectMeta {
                        len: meta.size,
                        modified: SystemTime::from(meta.last_modified),
                    },
                ))
            })
            .collect();
        chunks.sort_by_key(|(hash, _)| *hash);
        Ok(chunks)
    }

    fn quarantine(&self, hash: &Sha256Hex, tag: &CopyTag) -> io::Result<Option<String>> {
        let key = self.keys.chunk(hash);
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let moved_to = ObjectPath::from(format!("{}damaged/{hash}.{stamp}", self.keys.root));
        let client = &self.keys.client;
        self.wait(async {
            let still_damaged = |meta: &object_store::ObjectMeta| {
                meta.e_tag.as_deref().unwrap_or_default() == tag.0
            };
            match client.head(&key).await {
                Ok(meta) if still_damaged(&meta) => {}
                Ok(_) | Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(err) => return Err(io_error(err)),
            }
            client.copy(&key, &moved_to).await.map_err(io_error)?;
            // A good copy stored since the read stays (a bucket cannot
            // delete on a condition; the window is one round trip).
            match client.head(&key).await {
                Ok(meta) if still_damaged(&meta) => {}
                Ok(_) | Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(err) => return Err(io_error(err)),
            }
            match client.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(err) => return Err(io_error(err)),
            }
            Ok(Some(format!("s3://{}/{moved_to}", self.location.bucket)))
        })
    }

    fn probe(&self) -> io::Result<()> {
        let key = ObjectPath::from(format!(
            "{}probe/{}",
            self.keys.root,
            hex::encode(rand::random::<[u8; 8]>())
        ));
        let client = &self.keys.client;
        self.wait(async {
            client
                .put(&key, PutPayload::from_static(b"ready"))
                .await
                .map_err(io_error)?;
            let read = self.keys.read(&key, 16).await;
            let deleted = client.delete(&key).await.map_err(io_error);
            match read? {
                Some((data, _)) if data == b"ready" => deleted,
                _ => Err(io::Error::other(
                    "an object written to the bucket read back wrong",
                )),
            }
        })
    }

    fn old_temp_files(&self, _cutoff: SystemTime) -> io::Result<Vec<std::path::PathBuf>> {
        // Objects are written whole (no multipart uploads): nothing partial.
        Ok(Vec::new())
    }
}
