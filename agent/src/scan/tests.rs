//! The pieces of a scan on real files: listings, NFC renames, symlinks and
//! special files, stat reuse and rehashing. [`scan`] below strings
//! [`list_dir`], [`normalise_names`] and [`examine_at`] together over a
//! whole tree, as the engine's walk does a directory at a time.

use std::time::{Duration, SystemTime};

use std::collections::BTreeMap;
use std::fs;

use sf_protocol::Sha256Hex;
use sf_protocol::v1::EntryKind;

use super::examine::{HASH_BUFFER, hash_file};
use super::*;
use crate::ignore::IgnoreRules;
use crate::model::{LocalFile, SyncedFile};

/// What a whole-tree walk found.
#[derive(Debug, Default)]
struct ScanResult {
    files: BTreeMap<SyncPath, LocalFile>,
    unstable: Vec<SyncPath>,
    unreadable: Vec<(SyncPath, String)>,
    skipped: Vec<(String, String)>,
}

/// Walks the whole tree, renaming names to NFC.
fn scan(
    root: &Path,
    rules: &IgnoreRules,
    known: &dyn Fn(&SyncPath) -> Option<SyncedFile>,
) -> io::Result<ScanResult> {
    let mut result = ScanResult::default();
    let mut pending: Vec<Option<SyncPath>> = vec![None];
    while let Some(dir) = pending.pop() {
        let mut listing = match (list_dir(root, dir.as_ref(), rules), &dir) {
            (Ok(listing), _) => listing,
            (Err(error), None) => return Err(error),
            (Err(error), Some(_)) if is_absent(&error) => continue,
            (Err(error), Some(dir)) => {
                result
                    .unreadable
                    .push((dir.clone(), format!("cannot list the directory: {error}")));
                continue;
            }
        };
        normalise_names(
            root,
            &mut listing,
            rules,
            &|p| known(p).is_some(),
            Names::Normalise,
        );
        result.skipped.append(&mut listing.skipped);
        result.unreadable.append(&mut listing.unreadable);
        for path in &listing.entries {
            let on_disk = local_path(root, listing.on_disk(path));
            match examine_at(&on_disk, path, known(path).as_ref()) {
                Ok(Some(file)) => {
                    if file.kind == EntryKind::Dir {
                        pending.push(Some(path.clone()));
                    }
                    result.files.insert(path.clone(), file);
                }
                Ok(None) => {}
                Err(ScanError::Skipped { path, reason }) => {
                    result.skipped.push((path.to_string(), reason))
                }
                Err(ScanError::Unstable(path)) => result.unstable.push(path),
                Err(ScanError::Unreadable { path, source }) => {
                    result.unreadable.push((path, source.to_string()))
                }
                Err(error @ ScanError::NotNormalised { .. }) => panic!("{error}"),
            }
        }
    }
    result.unstable.sort();
    result.unreadable.sort_by(|a, b| a.0.cmp(&b.0));
    result.skipped.sort();
    Ok(result)
}

fn p(raw: &str) -> SyncPath {
    SyncPath::parse(raw).unwrap()
}

fn write(root: &Path, relative: &str, content: &[u8]) {
    let mut local = root.to_path_buf();
    local.extend(relative.split('/'));
    fs::create_dir_all(local.parent().unwrap()).unwrap();
    fs::write(local, content).unwrap();
}

fn scan_all(root: &Path) -> ScanResult {
    let rules = IgnoreRules::load(root).unwrap();
    scan(root, &rules, &|_| None).unwrap()
}

fn record_for(file: &LocalFile, sha256: Sha256Hex) -> SyncedFile {
    SyncedFile {
        kind: file.kind,
        sha256,
        size: file.size,
        mtime_ns: file.mtime_ns,
        inode: file.inode,
        executable: file.executable,
        version: 7,
    }
}

#[test]
fn lists_nested_dirs_files_empty_dirs_and_empty_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "top.txt", b"hello");
    write(root, "a/b/c/deep.txt", b"deep");
    write(root, "a/empty-file", b"");
    fs::create_dir_all(root.join("empty-dir")).unwrap();

    let result = scan_all(root);
    let names: Vec<&str> = result.files.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "a",
            "a/b",
            "a/b/c",
            "a/b/c/deep.txt",
            "a/empty-file",
            "empty-dir",
            "top.txt"
        ]
    );
    let top = &result.files[&p("top.txt")];
    assert_eq!(top.kind, EntryKind::File);
    assert_eq!(top.sha256, Sha256Hex::of(b"hello"));
    assert_eq!(top.size, 5);
    assert!(top.mtime_ns > 0);
    #[cfg(unix)]
    assert_ne!(top.inode, 0);
    let empty = &result.files[&p("a/empty-file")];
    assert_eq!((empty.sha256, empty.size), (Sha256Hex::empty(), 0));
    let dir_entry = &result.files[&p("empty-dir")];
    assert_eq!(dir_entry.kind, EntryKind::Dir);
    assert_eq!((dir_entry.sha256, dir_entry.size), (Sha256Hex::empty(), 0));
    assert!(!dir_entry.executable);
    assert!(result.unstable.is_empty());
    assert!(result.unreadable.is_empty());
    assert!(result.skipped.is_empty());
}

#[test]
fn sf_dir_and_ignored_paths_are_not_listed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, ".sfignore", b"build/\n*.log\n");
    write(root, ".sf/state.db", b"state");
    write(root, "build/out.bin", b"bin");
    write(root, "src/build/nested.bin", b"bin");
    write(root, "src/app.log", b"log");
    write(root, "src/main.rs", b"fn main() {}");
    write(root, "src/.DS_Store", b"junk");
    write(root, "notes.txt.swp", b"swap");
    write(root, "sub/.sf/kept", b"only the top-level .sf is reserved");

    let result = scan_all(root);
    let names: Vec<&str> = result.files.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        names,
        vec![
            ".sfignore",
            "src",
            "src/main.rs",
            "sub",
            "sub/.sf",
            "sub/.sf/kept"
        ]
    );
    assert!(result.skipped.is_empty(), "{:?}", result.skipped);
}

#[cfg(unix)]
#[test]
fn executable_bit_is_reported() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "run.sh", b"#!/bin/sh\n");
    write(root, "plain.txt", b"text");
    fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o744)).unwrap();
    fs::set_permissions(root.join("plain.txt"), fs::Permissions::from_mode(0o644)).unwrap();

    let result = scan_all(root);
    assert!(result.files[&p("run.sh")].executable);
    assert!(!result.files[&p("plain.txt")].executable);
}

#[cfg(unix)]
#[test]
fn symlinks_are_skipped_and_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "secret.txt", b"outside");
    write(root, "real.txt", b"real");
    std::os::unix::fs::symlink("real.txt", root.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(outside.path(), root.join("linked-dir")).unwrap();
    std::os::unix::fs::symlink("missing", root.join("dangling")).unwrap();

    let result = scan_all(root);
    let names: Vec<&str> = result.files.keys().map(|k| k.as_str()).collect();
    assert_eq!(names, vec!["real.txt"]);
    let skipped: Vec<&str> = result
        .skipped
        .iter()
        .map(|(path, _)| path.as_str())
        .collect();
    assert_eq!(skipped, vec!["dangling", "link.txt", "linked-dir"]);
    assert!(
        result
            .skipped
            .iter()
            .all(|(_, reason)| reason.contains("symbolic link"))
    );

    // The single-path stat agrees.
    assert!(matches!(
        stat_entry(root, &p("link.txt"), None),
        Err(ScanError::Skipped { .. })
    ));
    assert_eq!(
        stat_entry(root, &p("linked-dir/secret.txt"), None).unwrap(),
        None
    );
}

#[cfg(target_os = "linux")]
#[test]
fn bad_names_are_skipped_with_a_reason() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::write(root.join(std::ffi::OsStr::from_bytes(b"bad\xffname")), b"x").unwrap();
    fs::write(root.join("back\\slash"), b"x").unwrap();
    fs::create_dir(root.join("ctrl\u{1}dir")).unwrap();
    fs::write(root.join("ctrl\u{1}dir/inner.txt"), b"x").unwrap();
    write(root, "fine.txt", b"x");

    let result = scan_all(root);
    let names: Vec<&str> = result.files.keys().map(|k| k.as_str()).collect();
    assert_eq!(names, vec!["fine.txt"]);
    assert_eq!(result.skipped.len(), 3, "{:?}", result.skipped);
    let reason_for = |name: &str| {
        result
            .skipped
            .iter()
            .find(|(path, _)| path == name)
            .map(|(_, reason)| reason.clone())
            .unwrap_or_else(|| panic!("{name} not skipped: {:?}", result.skipped))
    };
    assert!(reason_for("bad\u{fffd}name").contains("UTF-8"));
    assert!(reason_for("back\\slash").contains("backslash"));
    assert!(reason_for("ctrl\u{1}dir").contains("control character"));
}

/// Unicode normalisation of names (Linux keeps NFC and NFD apart).
#[cfg(target_os = "linux")]
mod unicode_names;

#[cfg(unix)]
#[test]
fn special_files_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let _socket = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
    let result = scan_all(root);
    assert!(result.files.is_empty());
    assert_eq!(result.skipped.len(), 1);
    assert_eq!(result.skipped[0].0, "sock");
    assert!(result.skipped[0].1.contains("not a regular file"));
}

#[test]
fn not_rehashed_when_stat_matches_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "same.txt", b"content");
    let first = scan_all(root);
    let on_disk = first.files[&p("same.txt")].clone();
    assert_eq!(on_disk.sha256, Sha256Hex::of(b"content"));

    // A record with identical stat but a different digest: if the scan
    // read the file it would report the real digest.
    let recorded = Sha256Hex::of(b"what the state database says");
    let record = record_for(&on_disk, recorded);
    let known = |path: &SyncPath| (path.as_str() == "same.txt").then(|| record.clone());
    let rules = IgnoreRules::load(root).unwrap();
    let second = scan(root, &rules, &known).unwrap();
    assert_eq!(second.files[&p("same.txt")].sha256, recorded);

    assert_eq!(
        stat_entry(root, &p("same.txt"), Some(&record))
            .unwrap()
            .unwrap()
            .sha256,
        recorded
    );
}

#[test]
fn rehashed_when_mtime_differs_from_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "changed.txt", b"content");
    let on_disk = scan_all(root).files[&p("changed.txt")].clone();

    let mut record = record_for(&on_disk, Sha256Hex::of(b"stale"));
    record.mtime_ns -= 1_000_000_000;
    let known = |_: &SyncPath| Some(record.clone());
    let rules = IgnoreRules::load(root).unwrap();
    let result = scan(root, &rules, &known).unwrap();
    assert_eq!(
        result.files[&p("changed.txt")].sha256,
        Sha256Hex::of(b"content")
    );

    // Same for a size or an inode difference.
    let mut record = record_for(&on_disk, Sha256Hex::of(b"stale"));
    record.size += 1;
    let local = stat_entry(root, &p("changed.txt"), Some(&record))
        .unwrap()
        .unwrap();
    assert_eq!(local.sha256, Sha256Hex::of(b"content"));
    let mut record = record_for(&on_disk, Sha256Hex::of(b"stale"));
    record.inode = record.inode.wrapping_add(1);
    let local = stat_entry(root, &p("changed.txt"), Some(&record))
        .unwrap()
        .unwrap();
    assert_eq!(local.sha256, Sha256Hex::of(b"content"));
}

#[test]
fn rehashed_after_a_change_that_keeps_the_size() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "f.txt", b"aaaa");
    let before = scan_all(root).files[&p("f.txt")].clone();
    let record = record_for(&before, before.sha256);
    fs::write(root.join("f.txt"), b"bbbb").unwrap();
    let file = fs::File::options()
        .write(true)
        .open(root.join("f.txt"))
        .unwrap();
    file.set_modified(SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    drop(file);
    let after = stat_entry(root, &p("f.txt"), Some(&record))
        .unwrap()
        .unwrap();
    assert_eq!(after.sha256, Sha256Hex::of(b"bbbb"));
}

#[test]
fn stat_entry_for_files_dirs_and_absent_paths() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a/b.txt", b"bee");
    let file = stat_entry(root, &p("a/b.txt"), None).unwrap().unwrap();
    assert_eq!(file.kind, EntryKind::File);
    assert_eq!(file.sha256, Sha256Hex::of(b"bee"));
    assert_eq!(file.size, 3);
    let scanned = scan_all(root);
    assert_eq!(scanned.files[&p("a/b.txt")], file);

    let folder = stat_entry(root, &p("a"), None).unwrap().unwrap();
    assert_eq!(folder.kind, EntryKind::Dir);
    assert_eq!(folder.sha256, Sha256Hex::empty());

    assert_eq!(stat_entry(root, &p("nope"), None).unwrap(), None);
    assert_eq!(stat_entry(root, &p("nope/deeper"), None).unwrap(), None);
    // A parent that is a file.
    assert_eq!(stat_entry(root, &p("a/b.txt/x"), None).unwrap(), None);
}

#[test]
fn hash_file_streams_large_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    let content: Vec<u8> = (0..(3 * HASH_BUFFER + 12345))
        .map(|i| (i % 251) as u8)
        .collect();
    fs::write(&path, &content).unwrap();
    let (sha256, size) = hash_file(&path).unwrap();
    assert_eq!(size, content.len() as u64);
    assert_eq!(sha256, Sha256Hex::of(&content));
}

#[test]
fn local_path_uses_platform_separators() {
    let root = Path::new("root");
    assert_eq!(
        local_path(root, &p("a/b/c.txt")),
        Path::new("root").join("a").join("b").join("c.txt")
    );
}

#[test]
fn missing_root_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("gone");
    assert!(scan(&missing, &IgnoreRules::defaults(), &|_| None).is_err());
}

#[cfg(unix)]
#[test]
fn unreadable_directory_is_reported() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "locked/inner.txt", b"x");
    write(root, "locked-file.txt", b"x");
    fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
    fs::set_permissions(
        root.join("locked-file.txt"),
        fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    let blocked = fs::read_dir(root.join("locked")).is_err();
    let result = scan_all(root);
    fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o755)).unwrap();
    if !blocked {
        // Running as root: permissions do not stop reads; nothing to test.
        return;
    }
    assert!(result.files.contains_key(&p("locked")));
    assert!(!result.files.contains_key(&p("locked/inner.txt")));
    assert!(!result.files.contains_key(&p("locked-file.txt")));
    let unreadable: Vec<&str> = result
        .unreadable
        .iter()
        .map(|(path, _)| path.as_str())
        .collect();
    assert_eq!(unreadable, vec!["locked", "locked-file.txt"]);
}
