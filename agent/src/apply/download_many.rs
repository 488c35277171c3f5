//! Downloading a batch of small files at once: the chunks not already on
//! disk come down in one pack, each file is built in `.sf/tmp` and checked
//! against its sha256, then one flush of the file system makes every file
//! durable before any of them replaces anything, and a second one makes
//! the renames durable. A thousand files cost two flushes and one request,
//! not a thousand of each; memory holds one chunk at a time.
//!
//! Every file is still put in place on its own (`download::place_file`),
//! with the same care for a file the user saved meanwhile.

use std::io::Write;
use std::path::Path;

use sf_protocol::Sha256Hex;
use sf_protocol::chunking::ChunkRef;
use sf_protocol::v1::{Entry, EntryKind};
use sha2::{Digest, Sha256};

use super::confined::{Dir, GROUP_SYNC};
use super::download::{local_chunk, make_dir, place_file, set_file_metadata, synced_file};
use super::{ApplyError, Folder, io, temp_name};
use crate::hub_client::{HubClient, HubError, PackReader};
use crate::model::{LocalFile, SyncedFile};
use crate::progress::Progress;
use crate::state::State;

/// One file or folder of a batch: the hub's entry, and what the decision
/// saw at its path (`None`: nothing).
pub(crate) struct Wanted<'a> {
    pub entry: &'a Entry,
    pub expected: Option<&'a LocalFile>,
}

/// What one item of a batch came to.
pub(crate) type Written = Result<(SyncedFile, Vec<ChunkRef>), ApplyError>;

/// Writes each of `wanted` at its path, in order. The outer error fails the
/// whole batch (the hub's pack broke off, the state database failed, the
/// folder cannot be opened): nothing of it was put in place.
pub(crate) async fn download_many(
    root: &Path,
    hub: &HubClient,
    state: &State,
    wanted: &[Wanted<'_>],
    progress: Option<&Progress>,
) -> Result<Vec<Written>, ApplyError> {
    let folder = Folder::open(root)?;
    let tmp = folder.state_dir(&["tmp"])?;
    let mut results: Vec<Option<Written>> = Vec::with_capacity(wanted.len());
    // Where each file's chunks come from: those already on disk are copied,
    // the rest arrive in one pack, in the order they are written.
    let mut plans = Vec::with_capacity(wanted.len());
    let mut fetch: Vec<ChunkRef> = Vec::new();
    let all: Vec<Sha256Hex> = wanted
        .iter()
        .flat_map(|item| item.entry.chunks.as_deref().unwrap_or_default())
        .map(|chunk| chunk.hash)
        .collect();
    let on_disk = state.chunks_on_disk(&all).await?;
    for item in wanted {
        let entry = item.entry;
        if entry.kind == EntryKind::Dir {
            results.push(Some(make_dir(&folder, entry, item.expected)));
            plans.push(Vec::new());
            continue;
        }
        results.push(None);
        let mut plan = Vec::new();
        for chunk in entry.chunks.as_deref().unwrap_or_default() {
            let here = on_disk.contains(&chunk.hash);
            if !here {
                fetch.push(*chunk);
            }
            plan.push((*chunk, here));
        }
        plans.push(plan);
    }
    let mut pack = if fetch.is_empty() {
        None
    } else {
        Some(hub.fetch_pack(&fetch).await?)
    };

    let mut temps: Vec<(usize, String)> = Vec::new();
    let outcome = async {
        for (index, item) in wanted.iter().enumerate() {
            if results[index].is_some() {
                continue;
            }
            let temp = temp_name();
            match write_temp(
                &folder,
                &tmp,
                &temp,
                hub,
                state,
                item.entry,
                &plans[index],
                pack.as_mut(),
                progress,
            )
            .await
            {
                Ok(Ok(())) => temps.push((index, temp)),
                Ok(Err(err)) => {
                    let _ = tmp.unlink(&temp);
                    results[index] = Some(Err(err));
                }
                Err(err) => {
                    let _ = tmp.unlink(&temp);
                    return Err(err);
                }
            }
        }
        Ok(())
    }
    .await;
    if let Err(err) = outcome {
        for (_, temp) in &temps {
            let _ = tmp.unlink(temp);
        }
        return Err(err);
    }
    if temps.is_empty() {
        return Ok(results.into_iter().flatten().collect());
    }
    // Every new file is durable before any replaces what is there.
    if GROUP_SYNC && let Err(err) = tmp.sync_filesystem() {
        for (_, temp) in &temps {
            let _ = tmp.unlink(temp);
        }
        return Err(io(tmp.path())(err));
    }
    for (index, temp) in temps {
        let item = &wanted[index];
        let placed = place_file(&folder, &tmp, &temp, item.entry, item.expected, !GROUP_SYNC);
        if placed.is_err() {
            let _ = tmp.unlink(&temp);
        }
        results[index] = Some(placed.map(|found| {
            let sha = item.entry.sha256.unwrap_or_else(Sha256Hex::empty);
            let chunks = item.entry.chunks.clone().unwrap_or_default();
            (synced_file(item.entry, sha, &found), chunks)
        }));
    }
    // The renames, before the state database says the files are synced.
    if GROUP_SYNC {
        tmp.sync_filesystem().map_err(io(tmp.path()))?;
    }
    Ok(results.into_iter().flatten().collect())
}

/// Builds one file in `tmp/temp` from its chunks, checks it and sets its
/// metadata. The inner error is this file's alone; the outer one (the pack
/// broke off, the state database failed) ends the batch. This file's chunks
/// are taken from the pack even after its own failure, so the next file
/// finds its own chunks next.
#[allow(clippy::too_many_arguments)]
async fn write_temp(
    folder: &Folder,
    tmp: &Dir,
    temp: &str,
    hub: &HubClient,
    state: &State,
    entry: &Entry,
    plan: &[(ChunkRef, bool)],
    mut pack: Option<&mut PackReader>,
    progress: Option<&Progress>,
) -> Result<Result<(), ApplyError>, ApplyError> {
    let path = &entry.path;
    let shown = tmp.path().join(temp);
    let Some(expected_sha) = entry.sha256 else {
        drain(plan, pack).await?;
        return Ok(Err(ApplyError::NoDigest { path: path.clone() }));
    };
    let mut out = match tmp.create_new(temp) {
        Ok(out) => out,
        Err(err) => {
            drain(plan, pack).await?;
            return Ok(Err(io(&shown)(err)));
        }
    };
    let mut failure = None;
    let mut whole = Sha256::new();
    for (chunk, on_disk) in plan {
        let bytes = chunk_bytes(folder, hub, state, chunk, *on_disk, pack.as_deref_mut()).await?;
        whole.update(&bytes);
        if failure.is_none()
            && let Err(err) = out.write_all(&bytes)
        {
            failure = Some(io(&shown)(err));
        }
        if let Some(progress) = progress {
            progress.add_bytes(chunk.len);
        }
    }
    if let Some(err) = failure {
        return Ok(Err(err));
    }
    let actual: Sha256Hex = whole.into();
    if actual != expected_sha {
        return Ok(Err(ApplyError::Corrupt {
            path: path.clone(),
            expected: expected_sha,
            actual,
        }));
    }
    let finished =
        set_file_metadata(&out, &shown, entry.mtime_ns, entry.executable).and_then(|()| {
            if GROUP_SYNC {
                Ok(())
            } else {
                out.sync_all().map_err(io(&shown))
            }
        });
    Ok(finished)
}

/// One chunk's bytes: copied from a synced file that holds it (`on_disk`,
/// as the chunk index said), else the pack's next one. A file that changed
/// since the lookup costs a fetch of that chunk on its own.
pub(super) async fn chunk_bytes(
    folder: &Folder,
    hub: &HubClient,
    state: &State,
    chunk: &ChunkRef,
    on_disk: bool,
    pack: Option<&mut PackReader>,
) -> Result<bytes::Bytes, ApplyError> {
    if !on_disk {
        return Ok(next_from(pack).await?.1);
    }
    Ok(match local_chunk(folder, state, chunk).await? {
        Some(bytes) => bytes::Bytes::from(bytes),
        None => hub.fetch_chunk(&chunk.hash).await?,
    })
}

/// The pack's next chunk, which must be there.
async fn next_from(pack: Option<&mut PackReader>) -> Result<(ChunkRef, bytes::Bytes), ApplyError> {
    let missing = || HubError::Protocol("the chunk pack is shorter than asked for".into());
    let pack = pack.ok_or_else(missing)?;
    Ok(pack.next_chunk().await?.ok_or_else(missing)?)
}

/// Skips this file's chunks in the pack.
async fn drain(
    plan: &[(ChunkRef, bool)],
    mut pack: Option<&mut PackReader>,
) -> Result<(), ApplyError> {
    for (_, on_disk) in plan {
        if !on_disk {
            next_from(pack.as_deref_mut()).await?;
        }
    }
    Ok(())
}
