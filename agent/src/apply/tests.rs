//! Real files in temporary folders, real symlinks: what each change does on
//! disk, and that nothing leaves the folder.

use std::os::unix::fs::symlink;

use std::io::Write;

use sf_protocol::v1::Entry;

use super::download::put_in_place;
use super::*;
use crate::hub_client::HubClient;
use crate::ignore::IgnoreRules;
use crate::model::SyncedFile;
use crate::scan::local_path;
use crate::state::State;

/// One path through [`trash_many`], as a batch of one.
fn trash_one(
    root: &Path,
    path: &SyncPath,
    expected: &LocalFile,
    rules: &IgnoreRules,
) -> Result<Option<PathBuf>, ApplyError> {
    trash_many(root, &[(path, expected)], rules)?.remove(0)
}

fn seen(path: &Path) -> LocalFile {
    let meta = std::fs::symlink_metadata(path).unwrap();
    let Stat {
        size,
        mtime_ns,
        inode,
        ..
    } = Stat::of(&meta);
    LocalFile {
        kind: if meta.is_dir() {
            EntryKind::Dir
        } else {
            EntryKind::File
        },
        sha256: Sha256Hex::empty(),
        size,
        mtime_ns,
        inode,
        executable: false,
    }
}

fn folder() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    std::fs::create_dir_all(root.join(STATE_DIR).join("tmp")).unwrap();
    (dir, root)
}

fn p(raw: &str) -> SyncPath {
    SyncPath::parse(raw).unwrap()
}

fn trash_files(root: &Path) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    let mut pending = vec![root.join(STATE_DIR).join("trash")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            } else {
                found.push(std::fs::read(entry.path()).unwrap());
            }
        }
    }
    found
}

fn tmp_entries(root: &Path) -> usize {
    std::fs::read_dir(root.join(STATE_DIR).join("tmp"))
        .unwrap()
        .count()
}

/// Writes `content` as a finished download in `.sf/tmp`; returns its name.
fn finished_download(folder: &Folder, content: &str) -> (Dir, String) {
    let tmp = folder.state_dir(&["tmp"]).unwrap();
    let name = temp_name();
    let mut file = tmp.create_new(&name).unwrap();
    file.write_all(content.as_bytes()).unwrap();
    (tmp, name)
}

fn place(
    root: &Path,
    path: &str,
    content: &str,
    expected: Option<&LocalFile>,
) -> Result<(), ApplyError> {
    let folder = Folder::open(root).unwrap();
    let path = p(path);
    let (tmp, temp) = finished_download(&folder, content);
    let (parent, name) = folder.parent_of(&path, true)?;
    let result = put_in_place(&folder, &tmp, &temp, &parent, name, expected, &path);
    if result.is_err() {
        let _ = tmp.unlink(&temp);
    }
    result
}

#[test]
fn a_download_replaces_only_the_version_it_was_decided_on() {
    let (_dir, root) = folder();
    let target = root.join("doc.txt");
    std::fs::write(&target, "synced version").unwrap();
    let decided_on = seen(&target);

    // Unchanged: replaced, and nothing is left in .sf/tmp.
    place(&root, "doc.txt", "hub version", Some(&decided_on)).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"hub version");
    assert_eq!(tmp_entries(&root), 0);

    // Saved by the user since the decision: left alone.
    let decided_on = seen(&target);
    std::fs::write(&target, "the user's newer save").unwrap();
    let err = place(&root, "doc.txt", "hub version 2", Some(&decided_on)).unwrap_err();
    assert!(matches!(err, ApplyError::ChangedMeanwhile { .. }), "{err}");
    assert_eq!(std::fs::read(&target).unwrap(), b"the user's newer save");
    assert!(trash_files(&root).is_empty());
}

#[test]
fn a_new_file_never_replaces_one_that_appeared_meanwhile() {
    let (_dir, root) = folder();
    // Decided on "nothing there", but the user created it since.
    std::fs::write(root.join("new.txt"), "created by the user").unwrap();
    let err = place(&root, "new.txt", "hub version", None).unwrap_err();
    assert!(matches!(err, ApplyError::ChangedMeanwhile { .. }), "{err}");
    assert_eq!(
        std::fs::read(root.join("new.txt")).unwrap(),
        b"created by the user"
    );
    // Missing folders on the way are made.
    place(&root, "a/b/new.txt", "hub version", None).unwrap();
    assert_eq!(
        std::fs::read(root.join("a/b/new.txt")).unwrap(),
        b"hub version"
    );
}

#[test]
fn after_a_crash_partial_downloads_go_and_swapped_out_files_are_kept() {
    let (_dir, root) = folder();
    let tmp = root.join(STATE_DIR).join("tmp");
    std::fs::write(tmp.join("1-0.part"), "half a download").unwrap();
    std::fs::write(tmp.join("1-1.swap"), "maybe the user's save").unwrap();
    std::fs::create_dir(tmp.join("leftover")).unwrap();
    std::fs::write(tmp.join("leftover/x"), "x").unwrap();
    clear_temp(&root).unwrap();
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
    assert_eq!(trash_files(&root), [b"maybe the user's save".to_vec()]);
}

/// A folder with `d` a symlink to a directory outside it, which holds
/// `x.txt`; returns the outside directory.
fn linked_dir(root: &Path) -> tempfile::TempDir {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("x.txt"), "outside").unwrap();
    symlink(outside.path(), root.join("d")).unwrap();
    outside
}

fn outside_names(outside: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn file_entry(path: &str) -> Entry {
    Entry {
        path: p(path),
        kind: EntryKind::File,
        version: 1,
        seq: 1,
        sha256: Some(Sha256Hex::empty()),
        size: 0,
        mtime_ns: 0,
        executable: false,
        deleted: false,
        origin: "hub".into(),
        committed_ms: 0,
        chunks: Some(vec![]),
    }
}

fn dir_entry(path: &str) -> Entry {
    Entry {
        kind: EntryKind::Dir,
        chunks: None,
        ..file_entry(path)
    }
}

/// Downloads `entry` (an empty file or a directory: the hub, which does not
/// exist, is never asked for a chunk).
async fn download_entry(root: &Path, entry: &Entry) -> Result<SyncedFile, ApplyError> {
    let registry = tempfile::tempdir().unwrap();
    let state = State::open(root, registry.path()).await.unwrap();
    let hub = HubClient::new("http://127.0.0.1:9").unwrap();
    let result = download(root, &hub, &state, entry, None, None).await;
    state.close().await;
    result.map(|(file, _)| file)
}

#[tokio::test]
async fn nothing_is_written_through_a_directory_symlink() {
    let (_dir, root) = folder();
    let outside = linked_dir(&root);
    for entry in [
        file_entry("d/new.txt"),
        file_entry("d/x.txt"),
        file_entry("d/sub/deep.txt"),
        dir_entry("d/sub"),
    ] {
        let err = download_entry(&root, &entry).await.unwrap_err();
        assert!(
            matches!(&err, ApplyError::Blocked { at, what: Kind::Symlink, .. } if at == "d"),
            "{}: {err:?}",
            entry.path
        );
        assert_eq!(err.to_string(), "not applied: d is a symbolic link");
    }
    assert_eq!(outside_names(outside.path()), ["x.txt"]);
    assert_eq!(
        std::fs::read(outside.path().join("x.txt")).unwrap(),
        b"outside"
    );
    assert_eq!(tmp_entries(&root), 0, "no download left behind");

    // The same entries below a real directory are written.
    std::fs::remove_file(root.join("d")).unwrap();
    std::fs::create_dir(root.join("d")).unwrap();
    download_entry(&root, &file_entry("d/sub/deep.txt"))
        .await
        .unwrap();
    assert!(root.join("d/sub/deep.txt").is_file());
}

#[tokio::test]
async fn nothing_is_written_below_a_file_or_a_fifo_or_over_a_symlink() {
    let (_dir, root) = folder();
    std::fs::write(root.join("f"), "a file").unwrap();
    let err = download_entry(&root, &file_entry("f/x.txt"))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "not applied: f is a file, not a directory");

    let made = std::process::Command::new("mkfifo")
        .arg(root.join("pipe"))
        .status()
        .unwrap();
    assert!(made.success());
    let err = download_entry(&root, &dir_entry("pipe/sub"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ApplyError::Blocked {
                what: Kind::Special,
                ..
            }
        ),
        "{err}"
    );

    // The target itself a symlink to a file outside: left as it is, and
    // the file it points to too.
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    std::fs::write(&secret, "keep").unwrap();
    symlink(&secret, root.join("link.txt")).unwrap();
    let err = download_entry(&root, &file_entry("link.txt"))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "not applied: link.txt is a symbolic link");
    let err = download_entry(&root, &dir_entry("link.txt"))
        .await
        .unwrap_err();
    assert!(matches!(err, ApplyError::Blocked { .. }), "{err}");
    assert_eq!(std::fs::read(&secret).unwrap(), b"keep");
    assert!(
        std::fs::symlink_metadata(root.join("link.txt"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn nothing_is_trashed_or_renamed_through_a_directory_symlink() {
    let (_dir, root) = folder();
    let outside = linked_dir(&root);
    // What a scan would have seen, were `d` a real folder.
    let looks_synced = seen(&outside.path().join("x.txt"));
    let path = p("d/x.txt");
    let err = trash_one(&root, &path, &looks_synced, &IgnoreRules::defaults()).unwrap_err();
    assert!(matches!(err, ApplyError::Blocked { .. }), "{err}");
    let err = rename_to_conflict_copy(&root, &path, "me", &looks_synced, |_| false).unwrap_err();
    assert!(matches!(err, ApplyError::Blocked { .. }), "{err}");
    assert_eq!(outside_names(outside.path()), ["x.txt"]);
    assert!(trash_files(&root).is_empty());

    // The link itself, as the trash target of `d`: never followed.
    let as_dir = seen(outside.path());
    let err = trash_one(&root, &p("d"), &as_dir, &IgnoreRules::defaults()).unwrap_err();
    assert!(matches!(err, ApplyError::ChangedMeanwhile { .. }), "{err}");
    assert_eq!(outside_names(outside.path()), ["x.txt"]);
}

#[test]
fn trash_and_conflict_copies_work_in_real_folders() {
    let (_dir, root) = folder();
    std::fs::create_dir_all(root.join("a/b")).unwrap();
    std::fs::write(root.join("a/b/f.txt"), "mine").unwrap();
    let local = seen(&root.join("a/b/f.txt"));
    let copy =
        rename_to_conflict_copy(&root, &p("a/b/f.txt"), "laptop", &local, |_| false).unwrap();
    assert!(
        copy.as_str().starts_with("a/b/f (conflict laptop "),
        "{copy}"
    );
    assert_eq!(std::fs::read(local_path(&root, &copy)).unwrap(), b"mine");
    assert!(!root.join("a/b/f.txt").exists());

    let local = seen(&local_path(&root, &copy));
    let kept = trash_one(&root, &copy, &local, &IgnoreRules::defaults())
        .unwrap()
        .unwrap();
    assert!(
        kept.starts_with(root.join(".sf/trash")),
        "{}",
        kept.display()
    );
    assert_eq!(std::fs::read(&kept).unwrap(), b"mine");
    // An empty folder goes to the trash too; one with contents stays.
    std::fs::write(root.join("a/other"), "x").unwrap();
    let a = seen(&root.join("a"));
    assert!(
        trash_one(&root, &p("a"), &a, &IgnoreRules::defaults())
            .unwrap()
            .is_none()
    );
    let b = seen(&root.join("a/b"));
    assert!(
        trash_one(&root, &p("a/b"), &b, &IgnoreRules::defaults())
            .unwrap()
            .is_some()
    );
    assert!(!root.join("a/b").exists());
}

fn linked_state_dir(root: &Path, sub: &str) -> tempfile::TempDir {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("precious"), "keep").unwrap();
    let place = root.join(STATE_DIR).join(sub);
    let _ = std::fs::remove_dir_all(&place);
    symlink(outside.path(), &place).unwrap();
    outside
}

#[test]
fn temp_and_trash_are_never_reached_through_a_symlink() {
    // A symlinked .sf/tmp: the start-up clean-up refuses, and says why,
    // instead of emptying the directory it points to.
    let (_dir, root) = folder();
    let outside = linked_state_dir(&root, "tmp");
    let err = clear_temp(&root).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(".sf/tmp is a symbolic link: the agent keeps"),
        "{err}"
    );
    assert_eq!(outside_names(outside.path()), ["precious"]);

    // A symlinked .sf/trash: nothing is moved into it.
    let (_dir, root) = folder();
    let outside = linked_state_dir(&root, "trash");
    assert!(clear_temp(&root).is_err());
    std::fs::write(root.join("f"), "mine").unwrap();
    let local = seen(&root.join("f"));
    let err = trash_one(&root, &p("f"), &local, &IgnoreRules::defaults()).unwrap_err();
    assert!(
        matches!(&err, ApplyError::StateDirBlocked { at, .. } if at == ".sf/trash"),
        "{err}"
    );
    assert_eq!(std::fs::read(root.join("f")).unwrap(), b"mine");
    assert!(purge_trash(&root).is_err());
    assert_eq!(outside_names(outside.path()), ["precious"]);
}

#[test]
fn purging_old_trash_removes_links_not_what_they_point_to() {
    let (_dir, root) = folder();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("precious"), "keep").unwrap();
    let old = root.join(".sf/trash/2000-01-01/sub");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(old.join("f"), "old").unwrap();
    symlink(outside.path(), old.join("link")).unwrap();
    let recent = root
        .join(".sf/trash")
        .join(time::OffsetDateTime::now_utc().date().to_string());
    std::fs::create_dir_all(&recent).unwrap();
    assert_eq!(purge_trash(&root).unwrap(), 1);
    assert!(!root.join(".sf/trash/2000-01-01").exists());
    assert!(recent.exists());
    assert_eq!(outside_names(outside.path()), ["precious"]);
}

#[test]
fn a_folder_swapped_for_a_symlink_after_it_was_opened_is_not_followed() {
    // The directory fd keeps pointing at the real folder: what is written
    // relative to it lands there, never where a link made since points.
    let (_dir, root) = folder();
    std::fs::create_dir(root.join("d")).unwrap();
    let folder = Folder::open(&root).unwrap();
    let path = p("d/x.txt");
    let (parent, name) = folder.parent_of(&path, false).unwrap();
    std::fs::rename(root.join("d"), root.join("moved")).unwrap();
    let outside = tempfile::tempdir().unwrap();
    symlink(outside.path(), root.join("d")).unwrap();
    let (tmp, temp) = finished_download(&folder, "hub");
    put_in_place(&folder, &tmp, &temp, &parent, name, None, &path).unwrap();
    assert_eq!(std::fs::read(root.join("moved/x.txt")).unwrap(), b"hub");
    assert!(outside_names(outside.path()).is_empty());
    // A new walk sees the link and refuses.
    let err = folder.parent_of(&path, true).unwrap_err();
    assert_eq!(err.to_string(), "not applied: d is a symbolic link");
}

/// A file last modified before 1970 (restored from an old archive, or a
/// clock that was wrong) is seen the same way by the scan that decides and
/// by the check before it is replaced, so a hub update reaches it.
#[test]
fn a_file_from_before_1970_takes_the_hubs_update() {
    let (_dir, root) = folder();
    let target = root.join("old.txt");
    std::fs::write(&target, "from an old archive").unwrap();
    let file = std::fs::File::options().write(true).open(&target).unwrap();
    file.set_modified(crate::scan::system_time(-300_000_000_000_000_000))
        .unwrap();
    drop(file);
    let scanned = crate::scan::stat_entry(&root, &p("old.txt"), None)
        .unwrap()
        .unwrap();
    assert!(scanned.mtime_ns < 0, "{scanned:?}");

    place(&root, "old.txt", "the hub's update", Some(&scanned)).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"the hub's update");
}

mod trash;
