//! Giving the hub back chunks it lost.
//!
//! A hub that finds a stored chunk damaged, or missing although a version
//! references it, announces it on the WebSocket (`wanted` frames) with files
//! that held it. This task reads each such file that is in the folder, as
//! the upload would (chunk by chunk, links never followed), and sends the
//! hub the wanted chunks it finds. The hub stores a chunk only under the
//! hash of its bytes, so an agent can only ever give back bytes the hub
//! already had: a file changed since, or unrelated, simply yields nothing.
//! Announcements repeat while chunks are wanted; one is handled at a time,
//! the latest first.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use sf_protocol::Sha256Hex;
use sf_protocol::chunking::{Chunk, Chunker};
use sf_protocol::v1::{WantedChunk, WantedFile};
use tokio::sync::{mpsc, watch};

use crate::apply::open_in_folder;
use crate::hub_client::HubClient;

/// Announcements waiting while one is handled; older ones are dropped (the
/// hub repeats what is still wanted).
pub(crate) const QUEUE: usize = 1;

/// Handles the hub's announcements until `stop`.
pub(crate) async fn give_back(
    hub: HubClient,
    root: PathBuf,
    mut announcements: mpsc::Receiver<Vec<WantedChunk>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let chunks = tokio::select! {
            next = announcements.recv() => match next {
                Some(chunks) => chunks,
                None => return,
            },
            _ = stop.wait_for(|stopping| *stopping) => return,
        };
        let (found, files) = give_back_once(&hub, &root, &chunks).await;
        if found > 0 {
            tracing::info!(
                chunks = found,
                files,
                "gave the hub back chunks it had lost, read from files in the folder"
            );
        }
    }
}

/// Reads the announced files this folder has and uploads the wanted chunks
/// found in them; returns how many were sent and from how many files.
async fn give_back_once(hub: &HubClient, root: &Path, chunks: &[WantedChunk]) -> (usize, usize) {
    let mut wanted: HashSet<Sha256Hex> = chunks.iter().map(|chunk| chunk.hash).collect();
    let mut files: Vec<&WantedFile> = Vec::new();
    for file in chunks.iter().flat_map(|chunk| &chunk.files) {
        if !files.contains(&file) {
            files.push(file);
        }
    }
    let (mut sent, mut read_from) = (0, 0);
    for file in files {
        if wanted.is_empty() {
            break;
        }
        let (root, path, looking_for) = (root.to_owned(), file.path.clone(), wanted.clone());
        let read = tokio::task::spawn_blocking(move || {
            let file = open_in_folder(&root, &path)?;
            wanted_in(file, &looking_for)
        })
        .await;
        let found = match read {
            Ok(Ok(found)) => found,
            // Not in this folder (or not a regular file): nothing to give.
            Ok(Err(err)) => {
                tracing::debug!(path = %file.path, error = %err, "cannot read a file the hub named");
                continue;
            }
            Err(_) => return (sent, read_from),
        };
        if found.is_empty() {
            continue;
        }
        let hashes: Vec<Sha256Hex> = found.iter().map(|chunk| chunk.hash).collect();
        match hub.put_pack(found).await {
            Ok(()) => {
                sent += hashes.len();
                read_from += 1;
                for hash in hashes {
                    wanted.remove(&hash);
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "could not give the hub back a chunk it lost");
                return (sent, read_from);
            }
        }
    }
    (sent, read_from)
}

/// The chunks of `file` whose hash is in `wanted`, each once. Memory stays
/// at the chunks found (wanted chunks are few).
fn wanted_in(file: std::fs::File, wanted: &HashSet<Sha256Hex>) -> std::io::Result<Vec<Chunk>> {
    let mut found: Vec<Chunk> = Vec::new();
    for chunk in Chunker::new(file) {
        let chunk = chunk?;
        if wanted.contains(&chunk.hash) && !found.iter().any(|f| f.hash == chunk.hash) {
            found.push(chunk);
        }
    }
    Ok(found)
}
