//! Writing, reading and finding files in synced folders.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sf_protocol::Sha256Hex;
use sha2::{Digest, Sha256};

/// Writes `bytes` at `path`, creating parent folders.
pub fn write_file(path: &Path, bytes: impl AsRef<[u8]>) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
    }
    fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

pub fn read_file(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

pub fn sha256(bytes: impl AsRef<[u8]>) -> Sha256Hex {
    Sha256Hex::of(bytes.as_ref())
}

/// The sha256 of a file, streamed through 1 MiB reads.
pub fn file_sha256(path: &Path) -> io::Result<Sha256Hex> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(Sha256Hex::from(hasher));
        }
        hasher.update(&buffer[..n]);
    }
}

pub fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

pub fn is_executable(path: &Path) -> bool {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o111
        != 0
}

/// Every file under `<dir>/.sf/trash/<date>/` that holds `relative` there,
/// or in a place of its own when something of its name was trashed earlier
/// that day (`<date>/<ms>-<n>/<relative>`, or the renamed form
/// `<name>.<ms>`).
pub fn trashed_copies(dir: &Path, relative: &str) -> Vec<PathBuf> {
    let trash = dir.join(".sf").join("trash");
    let mut found = Vec::new();
    let Ok(days) = fs::read_dir(&trash) else {
        return found;
    };
    let name = relative.rsplit('/').next().unwrap_or(relative);
    let numbered = |name: &str| {
        name.split_once('-').is_some_and(|(ms, n)| {
            [ms, n]
                .iter()
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    let places = days.flatten().flat_map(|day| {
        let own: Vec<PathBuf> = fs::read_dir(day.path())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| numbered(&entry.file_name().to_string_lossy()))
            .map(|entry| entry.path())
            .collect();
        std::iter::once(day.path()).chain(own)
    });
    for place in places {
        let candidate = place.join(relative);
        if candidate.is_file() {
            found.push(candidate.clone());
        }
        let Some(parent) = candidate.parent() else {
            continue;
        };
        let Ok(siblings) = fs::read_dir(parent) else {
            continue;
        };
        for sibling in siblings.flatten() {
            let other = sibling.file_name().to_string_lossy().into_owned();
            if other
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|stamp| !stamp.is_empty() && stamp.bytes().all(|b| b.is_ascii_digit()))
            {
                found.push(sibling.path());
            }
        }
    }
    found.sort();
    found
}

/// The `.part` files in `<dir>/.sf/tmp`, with their sizes.
pub fn part_files(dir: &Path) -> Vec<(PathBuf, u64)> {
    let Ok(entries) = fs::read_dir(dir.join(".sf").join("tmp")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .map(|e| (e.path(), e.metadata().map_or(0, |m| m.len())))
        .collect()
}

/// Whether `candidate` is a conflict copy of `original` made by one of
/// `origins`: same folder, `<stem> (conflict <origin> YYYY-MM-DD HHMMSS)<ext>`,
/// where `<ext>` is the last `.xxx` of the name (if any).
pub fn is_conflict_copy(candidate: &str, original: &str, origins: &[&str]) -> bool {
    let (dir, name) = match original.rsplit_once('/') {
        Some((dir, name)) => (format!("{dir}/"), name),
        None => (String::new(), original),
    };
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 && i + 1 < name.len() => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    let Some(rest) = candidate
        .strip_prefix(&dir)
        .filter(|r| !r.contains('/'))
        .and_then(|r| r.strip_prefix(stem))
        .and_then(|r| r.strip_prefix(" (conflict "))
        .and_then(|r| r.strip_suffix(ext))
        .and_then(|r| r.strip_suffix(')'))
    else {
        return false;
    };
    origins.iter().any(|origin| {
        rest.strip_prefix(origin)
            .and_then(|r| r.strip_prefix(' '))
            .is_some_and(is_stamp)
    })
}

/// `YYYY-MM-DD HHMMSS`.
fn is_stamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 17
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            _ => c.is_ascii_digit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_names() {
        assert!(is_conflict_copy(
            "docs/report (conflict b 2026-11-24 101500).txt",
            "docs/report.txt",
            &["a", "b"]
        ));
        assert!(is_conflict_copy(
            "Makefile (conflict a 2026-11-24 101500)",
            "Makefile",
            &["a"]
        ));
        assert!(!is_conflict_copy(
            "docs/report (conflict c 2026-11-24 101500).txt",
            "docs/report.txt",
            &["a", "b"]
        ));
        assert!(!is_conflict_copy(
            "report (conflict b 2026-11-24 101500).txt",
            "docs/report.txt",
            &["b"]
        ));
        assert!(!is_conflict_copy(
            "docs/report (conflict b 2026-11-24 1015).txt",
            "docs/report.txt",
            &["b"]
        ));
    }
}
