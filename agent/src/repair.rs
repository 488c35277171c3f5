//! Giving the hub back chunks it lost.
//!
//! A hub that finds a stored chunk damaged, or missing although a version
//! references it, announces it on the WebSocket (`wanted` frames) with files
//! that held it. This task reads each such file that is in the folder, as
//! the upload would (chunk by chunk, links never followed), and sends the
//! hub the wanted chunks it finds. The hub stores a chunk only under the
//! hash of its bytes, so an agent can only ever give back bytes the hub
//! already had: a file changed since, or unrelated, simply yields nothing.
//! Announcements repeat while chunks are wanted; only the latest is
//! handled. A file of another size than the content named, an ignored
//! file, and a file that already yielded nothing unchanged are not read.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use sf_protocol::Sha256Hex;
use sf_protocol::chunking::{Chunk, Chunker};
use sf_protocol::v1::{WS_MAX_WANTED, WS_MAX_WANTED_FILES, WantedChunk, WantedFile};
use tokio::sync::watch;

use crate::apply::open_in_folder;
use crate::hub_client::HubClient;
use crate::ignore::IgnoreRules;

/// A file already read for nothing: skipped while it stays the same.
type Fruitless = (String, u64, i64);

/// Handles the hub's announcements until `stop`: always the latest one
/// (the hub repeats what is still wanted).
pub(crate) async fn give_back(
    hub: HubClient,
    root: PathBuf,
    mut announcements: watch::Receiver<Vec<WantedChunk>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut fruitless: HashSet<Fruitless> = HashSet::new();
    loop {
        tokio::select! {
            changed = announcements.changed() => if changed.is_err() { return },
            _ = stop.wait_for(|stopping| *stopping) => return,
        }
        let chunks = announcements.borrow_and_update().clone();
        let (found, files) = give_back_once(&hub, &root, &chunks, &mut fruitless).await;
        if found > 0 {
            tracing::info!(
                chunks = found,
                files,
                "gave the hub back chunks it had lost, read from files in the folder"
            );
        }
    }
}

/// Reads the announced files this folder has (at most what a frame may
/// name; ignored files never) and uploads the wanted chunks found in them;
/// returns how many were sent and from how many files.
async fn give_back_once(
    hub: &HubClient,
    root: &Path,
    chunks: &[WantedChunk],
    fruitless: &mut HashSet<Fruitless>,
) -> (usize, usize) {
    let chunks = &chunks[..chunks.len().min(WS_MAX_WANTED)];
    let mut wanted: HashSet<Sha256Hex> = chunks.iter().map(|chunk| chunk.hash).collect();
    let mut seen = HashSet::new();
    let files: Vec<&WantedFile> = chunks
        .iter()
        .flat_map(|chunk| chunk.files.iter().take(WS_MAX_WANTED_FILES))
        .filter(|file| seen.insert((file.path.as_str(), file.sha256)))
        .collect();
    // Read once per announcement: the rules may have changed since.
    let ignore = IgnoreRules::load(root).unwrap_or_else(|_| IgnoreRules::defaults());
    let (mut sent, mut read_from) = (0, 0);
    for file in files {
        if wanted.is_empty() {
            break;
        }
        if ignore.is_ignored(file.path.as_str(), false) {
            continue;
        }
        let (root, path, looking_for) = (root.to_owned(), file.path.clone(), wanted.clone());
        let size = file.size;
        let known = fruitless.clone();
        let read = tokio::task::spawn_blocking(move || {
            let opened = open_in_folder(&root, &path)?;
            let meta = opened.metadata()?;
            let stamp: Fruitless = (path.as_str().to_owned(), meta.len(), mtime_ns(&meta));
            // Another size cannot be that content; the same unchanged file
            // already yielded nothing.
            if meta.len() != size || known.contains(&stamp) {
                return Ok((Vec::new(), None));
            }
            let found = wanted_in(opened, &looking_for)?;
            Ok::<_, std::io::Error>((found, Some(stamp)))
        })
        .await;
        let found = match read {
            Ok(Ok((found, stamp))) => {
                if let (true, Some(stamp)) = (found.is_empty(), stamp) {
                    fruitless.insert(stamp);
                }
                found
            }
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

fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt;
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
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
