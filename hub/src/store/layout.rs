//! Where chunk files live: `<data-dir>/chunks/ab/<sha256>`, one level of 256
//! directories named by the first byte of the hash, all made when the store
//! opens.
//!
//! Stores written before this layout kept chunks two levels deep
//! (`chunks/ab/cd/<sha256>`, up to 65,536 directories). Nearly every new
//! small chunk then made one or two directories, and making a directory (an
//! inode, a flush) was a sixth of the hub's work on a burst of small files.
//! [`prepare`] moves such a store's chunks up one level, once, before the
//! hub serves anything; the file `<data-dir>/chunks.layout` records that it
//! is done. Each move is a rename within one file system, so a crash
//! part-way leaves every chunk under one of the two names and the next
//! start finishes the job.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sf_protocol::Sha256Hex;

/// What `chunks.layout` holds once the store uses this layout.
const LAYOUT_MARK: &str = "one-level: chunks/<first byte of sha256 in hex>/<sha256>\n";

/// The name of the layout file, next to the `chunks` directory.
const LAYOUT_FILE: &str = "chunks.layout";

/// The path of chunk `hash` under `chunks_dir`.
pub(super) fn chunk_path(chunks_dir: &Path, hash: &Sha256Hex) -> PathBuf {
    let hex = hash.to_hex();
    chunks_dir.join(&hex[..2]).join(hex)
}

/// The directory of chunks whose hash starts with byte `prefix`.
fn prefix_dir(chunks_dir: &Path, prefix: u8) -> PathBuf {
    chunks_dir.join(format!("{prefix:02x}"))
}

/// The chunk files whose hash starts with byte `prefix`, each with its
/// directory entry; names that are not a chunk's (strays) are skipped, and
/// a missing directory holds none.
pub(super) fn chunks_with_prefix(
    chunks_dir: &Path,
    prefix: u8,
) -> io::Result<Vec<(Sha256Hex, std::fs::DirEntry)>> {
    let entries = match std::fs::read_dir(prefix_dir(chunks_dir, prefix)) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let mut chunks = Vec::new();
    for entry in entries {
        let entry = entry?;
        if let Some(hash) = entry
            .file_name()
            .to_str()
            .and_then(|n| Sha256Hex::parse(n).ok())
        {
            chunks.push((hash, entry));
        }
    }
    Ok(chunks)
}

/// Whether the store under `data_dir` is marked as being in this layout.
pub(super) fn is_current(data_dir: &Path) -> io::Result<bool> {
    match std::fs::read_to_string(data_dir.join(LAYOUT_FILE)) {
        Ok(text) => Ok(text == LAYOUT_MARK),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err),
    }
}

/// Makes `chunks_dir` and its 256 directories, moving the chunks of an
/// older two-level store into them first. Returns how many chunks moved.
pub(super) fn prepare(data_dir: &Path, chunks_dir: &Path) -> io::Result<u64> {
    std::fs::create_dir_all(chunks_dir)?;
    let mark = data_dir.join(LAYOUT_FILE);
    let moved = match std::fs::read_to_string(&mark) {
        Ok(text) if text == LAYOUT_MARK => 0,
        Ok(other) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} names a chunk layout this hub does not know ({:?}); \
                     run the hub version that wrote it, or restore the data directory",
                    mark.display(),
                    other.trim()
                ),
            ));
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            let moved = flatten_two_levels(chunks_dir)?;
            write_mark(data_dir, &mark)?;
            moved
        }
        Err(err) => return Err(err),
    };
    for prefix in 0..=u8::MAX {
        match std::fs::create_dir(prefix_dir(chunks_dir, prefix)) {
            Err(err) if err.kind() != io::ErrorKind::AlreadyExists => return Err(err),
            _ => {}
        }
    }
    Ok(moved)
}

/// Moves every `chunks/ab/cd/<sha256>` to `chunks/ab/<sha256>` and removes
/// the emptied `cd` directories; each `ab` directory is flushed once its
/// moves are done, so they are durable before the layout file says so.
fn flatten_two_levels(chunks_dir: &Path) -> io::Result<u64> {
    let mut moved = 0;
    for outer in std::fs::read_dir(chunks_dir)? {
        let outer = outer?;
        if !outer.file_type()?.is_dir() {
            continue;
        }
        let outer_path = outer.path();
        let mut changed = false;
        for inner in std::fs::read_dir(&outer_path)? {
            let inner = inner?;
            if !inner.file_type()?.is_dir() {
                continue;
            }
            for chunk in std::fs::read_dir(inner.path())? {
                let chunk = chunk?;
                let name = chunk.file_name();
                // Only chunk names move; anything else stays where it is.
                if name
                    .to_str()
                    .and_then(|n| Sha256Hex::parse(n).ok())
                    .is_none()
                {
                    continue;
                }
                std::fs::rename(chunk.path(), outer_path.join(&name))?;
                moved += 1;
            }
            // Left in place when something that is not a chunk is inside.
            if std::fs::remove_dir(inner.path()).is_ok() {
                changed = true;
            }
        }
        if changed {
            std::fs::File::open(&outer_path)?.sync_all()?;
        }
    }
    Ok(moved)
}

/// Writes the layout file durably: temp file, flush, rename, flush the
/// directory.
fn write_mark(data_dir: &Path, mark: &Path) -> io::Result<()> {
    let temp = data_dir.join(format!("{LAYOUT_FILE}.part"));
    let mut file = std::fs::File::create(&temp)?;
    file.write_all(LAYOUT_MARK.as_bytes())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temp, mark)?;
    std::fs::File::open(data_dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_of(n: u8) -> Sha256Hex {
        Sha256Hex::of(&[n])
    }

    #[test]
    fn a_two_level_store_moves_up_one_level_once() {
        let data = tempfile::tempdir().unwrap();
        let chunks = data.path().join("chunks");
        let mut hashes = Vec::new();
        for n in 0..20u8 {
            let hash = hash_of(n);
            let hex = hash.to_hex();
            let old_dir = chunks.join(&hex[..2]).join(&hex[2..4]);
            std::fs::create_dir_all(&old_dir).unwrap();
            std::fs::write(old_dir.join(&hex), [n]).unwrap();
            hashes.push(hash);
        }
        // Something that is not a chunk stays where it was.
        let stray_dir = chunks.join("00").join("ff");
        std::fs::create_dir_all(&stray_dir).unwrap();
        std::fs::write(stray_dir.join("notes.txt"), b"mine").unwrap();

        assert_eq!(prepare(data.path(), &chunks).unwrap(), 20);
        for (n, hash) in hashes.iter().enumerate() {
            assert_eq!(std::fs::read(chunk_path(&chunks, hash)).unwrap(), [n as u8]);
            let hex = hash.to_hex();
            assert!(!chunks.join(&hex[..2]).join(&hex[2..4]).exists());
        }
        assert!(stray_dir.join("notes.txt").exists());
        assert_eq!(
            std::fs::read_dir(&chunks).unwrap().count(),
            256,
            "every prefix directory is made"
        );
        // Once marked, a second start moves nothing (and scans nothing).
        assert_eq!(prepare(data.path(), &chunks).unwrap(), 0);
    }

    #[test]
    fn a_half_moved_store_is_finished_on_the_next_start() {
        let data = tempfile::tempdir().unwrap();
        let chunks = data.path().join("chunks");
        let (moved, left) = (hash_of(1), hash_of(2));
        for hash in [&moved, &left] {
            let hex = hash.to_hex();
            std::fs::create_dir_all(chunks.join(&hex[..2]).join(&hex[2..4])).unwrap();
        }
        // As a crash would leave it: one chunk moved, the other not, no mark.
        std::fs::write(chunk_path(&chunks, &moved), b"1").unwrap();
        let hex = left.to_hex();
        std::fs::write(chunks.join(&hex[..2]).join(&hex[2..4]).join(&hex), b"2").unwrap();

        assert_eq!(prepare(data.path(), &chunks).unwrap(), 1);
        assert_eq!(std::fs::read(chunk_path(&chunks, &moved)).unwrap(), b"1");
        assert_eq!(std::fs::read(chunk_path(&chunks, &left)).unwrap(), b"2");
    }

    #[test]
    fn an_unknown_layout_is_refused_with_what_to_do() {
        let data = tempfile::tempdir().unwrap();
        std::fs::write(data.path().join(LAYOUT_FILE), "sharded-by-moon-phase\n").unwrap();
        let err = prepare(data.path(), &data.path().join("chunks")).unwrap_err();
        assert!(err.to_string().contains("sharded-by-moon-phase"), "{err}");
        assert!(
            err.to_string().contains("restore the data directory"),
            "{err}"
        );
    }
}
