//! Uploading a file: read once, chunk by chunk, on a blocking task that
//! hands chunks over a small bounded channel; ask the hub which chunks of a
//! batch it lacks, send only those, keep just the chunk list for the commit.
//! Memory stays at a few chunks however large the file.

use std::collections::HashSet;
use std::path::Path;

use sf_protocol::chunking::{Chunk, ChunkRef, Chunker};
use sf_protocol::v1::{
    CommitRequest, EntryKind, ErrorCode, MissingChunksRequest, MissingChunksResponse,
};
use sf_protocol::{Sha256Hex, SyncPath};

use super::requests::json_body;
use super::{
    BATCH_MAX_BYTES, BATCH_MAX_CHUNKS, CHANNEL_CAPACITY, CommitOutcome, HubClient, HubError,
    PACKS_IN_FLIGHT,
};
use crate::progress::Progress;

impl HubClient {
    /// Uploads the file at `disk_path` as the next version of `path` and
    /// commits it.
    ///
    /// The file is read once, chunk by chunk; only chunks the hub lacks are
    /// sent. When the bytes read do not hash to `expected_sha` (the file
    /// changed while being read) nothing is committed and the answer is
    /// [`CommitOutcome::FileChanged`]. If the hub reports missing chunks at
    /// commit time (something removed them meanwhile) the whole upload is
    /// retried once.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_file(
        &self,
        disk_path: &Path,
        path: &SyncPath,
        base_version: u64,
        expected_sha: Sha256Hex,
        mtime_ns: i64,
        executable: bool,
        origin: &str,
        progress: Option<&Progress>,
    ) -> Result<CommitOutcome, HubError> {
        let mut retried = false;
        loop {
            let Some((size, chunks)) = self
                .upload_chunks(disk_path, expected_sha, progress)
                .await?
            else {
                tracing::debug!(%path, "file changed while being uploaded");
                return Ok(CommitOutcome::FileChanged);
            };
            let request = CommitRequest {
                path: path.clone(),
                kind: EntryKind::File,
                base_version,
                sha256: expected_sha,
                size,
                mtime_ns,
                executable,
                chunks,
                origin: origin.to_owned(),
            };
            match self.commit(&request).await {
                Err(HubError::Refused { status, body })
                    if body.error == ErrorCode::MissingChunks && !retried =>
                {
                    tracing::warn!(
                        %path,
                        status,
                        missing = body.missing.as_ref().map_or(0, Vec::len),
                        "the hub lost chunks before the commit; uploading again"
                    );
                    retried = true;
                }
                other => return other,
            }
        }
    }

    /// `POST /v1/commit`, with `409 conflict` mapped to an outcome.
    pub(super) async fn commit(&self, request: &CommitRequest) -> Result<CommitOutcome, HubError> {
        let resp = self
            .send(self.patient.post(self.url("/v1/commit")).json(request))
            .await?;
        if resp.status().is_success() {
            return Ok(CommitOutcome::Committed(
                json_body(resp, "POST /v1/commit").await?,
            ));
        }
        match self.refusal(resp).await {
            HubError::Refused { status: 409, body } if body.error == ErrorCode::Conflict => {
                Ok(CommitOutcome::Conflict(body.current))
            }
            other => Err(other),
        }
    }

    /// Reads `disk_path` chunk by chunk and uploads the chunks the hub lacks.
    /// Returns the size and chunk list, or `None` when the bytes read do not
    /// hash to `expected_sha`.
    async fn upload_chunks(
        &self,
        disk_path: &Path,
        expected_sha: Sha256Hex,
        progress: Option<&Progress>,
    ) -> Result<Option<(u64, Vec<ChunkRef>)>, HubError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(CHANNEL_CAPACITY);
        let source = disk_path.to_owned();
        let reader = tokio::task::spawn_blocking(move || -> std::io::Result<(Sha256Hex, u64)> {
            let mut chunker = Chunker::new(std::fs::File::open(&source)?);
            for chunk in &mut chunker {
                if tx.blocking_send(chunk?).is_err() {
                    // The uploader gave up (an error on its side); stop reading.
                    return Err(std::io::Error::other("upload abandoned"));
                }
            }
            Ok(chunker.finish())
        });

        let mut refs = Vec::new();
        let mut batch = Vec::new();
        let mut batch_bytes = 0;
        let mut stats = UploadStats::default();
        // Packs on their way up while the next batch is read and asked about.
        let mut in_flight = tokio::task::JoinSet::new();
        while let Some(chunk) = rx.recv().await {
            refs.push(chunk.to_ref());
            batch_bytes += chunk.data.len();
            batch.push(chunk);
            if batch.len() >= BATCH_MAX_CHUNKS || batch_bytes >= BATCH_MAX_BYTES {
                let sent = std::mem::take(&mut batch);
                self.send_batch(sent, &mut stats, &mut in_flight, progress)
                    .await?;
                batch_bytes = 0;
            }
        }
        let (sha, size) = reader
            .await
            .map_err(|err| std::io::Error::other(format!("the chunk reader failed: {err}")))??;
        if sha != expected_sha {
            return Ok(None);
        }
        if !batch.is_empty() {
            self.send_batch(batch, &mut stats, &mut in_flight, progress)
                .await?;
        }
        while let Some(sent) = in_flight.join_next().await {
            finished(sent)?;
        }
        tracing::debug!(
            file = %disk_path.display(),
            size,
            chunks = refs.len(),
            sent_chunks = stats.sent_chunks,
            sent_bytes = stats.sent_bytes,
            "chunks uploaded"
        );
        Ok(Some((size, refs)))
    }

    /// Asks which chunks of `batch` the hub lacks and starts uploading those
    /// as one pack, with at most [`PACKS_IN_FLIGHT`] packs under way.
    async fn send_batch(
        &self,
        batch: Vec<Chunk>,
        stats: &mut UploadStats,
        in_flight: &mut tokio::task::JoinSet<Result<(), HubError>>,
        progress: Option<&Progress>,
    ) -> Result<(), HubError> {
        let hashes: Vec<Sha256Hex> = batch.iter().map(|chunk| chunk.hash).collect();
        let bytes: usize = batch.iter().map(|chunk| chunk.data.len()).sum();
        let mut missing: HashSet<Sha256Hex> =
            self.missing_chunks(hashes).await?.into_iter().collect();
        // A chunk that repeats within the batch is sent once.
        let to_send: Vec<Chunk> = batch
            .into_iter()
            .filter(|chunk| missing.remove(&chunk.hash))
            .collect();
        stats.sent_chunks += to_send.len();
        stats.sent_bytes += to_send.iter().map(|chunk| chunk.data.len()).sum::<usize>();
        while in_flight.len() >= PACKS_IN_FLIGHT {
            if let Some(sent) = in_flight.join_next().await {
                finished(sent)?;
            }
        }
        if !to_send.is_empty() {
            let hub = self.clone();
            in_flight.spawn(async move { hub.put_pack(to_send).await });
        }
        if let Some(progress) = progress {
            progress.add_bytes(bytes as u64);
        }
        Ok(())
    }

    /// `POST /v1/chunks/missing`.
    pub(crate) async fn missing_chunks(
        &self,
        chunks: Vec<Sha256Hex>,
    ) -> Result<Vec<Sha256Hex>, HubError> {
        let request = MissingChunksRequest { chunks };
        let resp = self
            .send(
                self.http
                    .post(self.url("/v1/chunks/missing"))
                    .json(&request),
            )
            .await?;
        if !resp.status().is_success() {
            return Err(self.refusal(resp).await);
        }
        let answer: MissingChunksResponse = json_body(resp, "POST /v1/chunks/missing").await?;
        Ok(answer.missing)
    }
}

/// The result of a pack upload task.
fn finished(sent: Result<Result<(), HubError>, tokio::task::JoinError>) -> Result<(), HubError> {
    sent.map_err(|err| {
        HubError::Io(std::io::Error::other(format!(
            "a pack upload failed: {err}"
        )))
    })?
}

#[derive(Default)]
struct UploadStats {
    sent_chunks: usize,
    sent_bytes: usize,
}
