//! One bucket's objects as the chunk store names them, each operation one
//! or a few requests: shared by the store's blocking methods and the tasks
//! that read ahead.

use std::io;
use std::time::SystemTime;

use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use sf_protocol::Sha256Hex;

use crate::store::Stored;
use crate::store::objects::{CopyTag, ObjectMeta};

/// The client and how chunk names map to object keys; shared with the
/// tasks that read ahead.
pub(super) struct Keys {
    pub(super) client: Box<dyn ObjectStore>,
    /// The prefix with a trailing `/`, or empty.
    pub(super) root: String,
}

impl Keys {
    pub(super) fn chunk(&self, hash: &Sha256Hex) -> ObjectPath {
        let hex = hash.to_hex();
        ObjectPath::from(format!("{}chunks/{}/{hex}", self.root, &hex[..2]))
    }

    pub(super) async fn head(&self, hash: &Sha256Hex) -> io::Result<Option<ObjectMeta>> {
        match self.client.head(&self.chunk(hash)).await {
            Ok(meta) => Ok(Some(ObjectMeta {
                len: meta.size,
                modified: SystemTime::from(meta.last_modified),
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(io_error(err)),
        }
    }

    /// At most `limit` bytes of `key` (the rest is not read).
    pub(super) async fn read(
        &self,
        key: &ObjectPath,
        limit: u64,
    ) -> io::Result<Option<(Vec<u8>, CopyTag)>> {
        let got = match self.client.get(key).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(err) => return Err(io_error(err)),
        };
        let tag = CopyTag(got.meta.e_tag.clone().unwrap_or_default());
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut data = Vec::with_capacity(usize::try_from(got.meta.size).unwrap_or(0).min(limit));
        let mut body = got.into_stream();
        while let Some(piece) = body.next().await {
            let piece = piece.map_err(io_error)?;
            let room = limit - data.len();
            data.extend_from_slice(&piece[..piece.len().min(room)]);
            if data.len() == limit {
                break;
            }
        }
        Ok(Some((data, tag)))
    }

    /// Stores `data` (verified bytes of the chunk `key` names) unless an
    /// object is there already; then writes them over it, which refreshes
    /// its age and leaves a durable copy whatever a concurrent writer did.
    pub(super) async fn put_new(&self, key: &ObjectPath, data: Vec<u8>) -> io::Result<Stored> {
        let data = bytes::Bytes::from(data);
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .client
            .put_opts(key, PutPayload::from(data.clone()), options)
            .await
        {
            Ok(_) => Ok(Stored::New),
            Err(object_store::Error::AlreadyExists { .. }) => {
                self.client
                    .put(key, PutPayload::from(data))
                    .await
                    .map_err(io_error)?;
                Ok(Stored::AlreadyPresent)
            }
            Err(err) => Err(io_error(err)),
        }
    }

    /// Gives chunk `hash` a fresh Last-Modified by copying it aside and
    /// back on the server; `false` when it is not stored.
    pub(super) async fn touch(&self, hash: &Sha256Hex) -> io::Result<bool> {
        let key = self.chunk(hash);
        let aside = ObjectPath::from(format!(
            "{}refresh/{hash}.{}",
            self.root,
            hex::encode(rand::random::<[u8; 4]>())
        ));
        match self.client.copy(&key, &aside).await {
            Ok(()) => {}
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(err) => return Err(io_error(err)),
        }
        let back = self.client.copy(&aside, &key).await.map_err(io_error);
        let cleared = self.client.delete(&aside).await.map_err(io_error);
        back?;
        cleared?;
        Ok(true)
    }

    pub(super) async fn remove(
        &self,
        hash: &Sha256Hex,
        older_than: Option<SystemTime>,
    ) -> io::Result<Option<u64>> {
        let Some(meta) = self.head(hash).await? else {
            return Ok(None);
        };
        if older_than.is_some_and(|cutoff| meta.modified >= cutoff) {
            return Ok(None);
        }
        match self.client.delete(&self.chunk(hash)).await {
            Ok(()) => Ok(Some(meta.len)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(io_error(err)),
        }
    }
}

/// A client error as an `io::Error`, keeping "not found" recognisable.
pub(super) fn io_error(err: object_store::Error) -> io::Error {
    let kind = match err {
        object_store::Error::NotFound { .. } => io::ErrorKind::NotFound,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, err)
}
