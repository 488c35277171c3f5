//! The folder changes of `sf-agent conflicts --keep` and `sf-agent trash
//! --restore`, made as a user would make them (the running agent syncs
//! them) but through the same confined directory handles as every change
//! of the agent: no link is followed, nothing existing is overwritten, and
//! whatever leaves the folder goes to the trash.

use std::path::PathBuf;

use sf_protocol::SyncPath;

use super::confined::{Dir, Kind, WalkError};
use super::{ApplyError, Folder, io, keep_in_trash};
use crate::state::STATE_DIR;

/// The regular file at `path`, with its folder; refused for anything else.
fn file_at<'p>(folder: &Folder, path: &'p SyncPath) -> Result<(Dir, &'p str), ApplyError> {
    let (parent, name) = folder.parent_of(path, false)?;
    match parent.stat(name).map_err(io(parent.path().join(name)))? {
        Some(found) if found.kind == Kind::File => Ok((parent, name)),
        Some(found) => Err(ApplyError::Blocked {
            path: path.clone(),
            at: path.to_string(),
            what: found.kind,
        }),
        None => Err(ApplyError::ChangedMeanwhile { path: path.clone() }),
    }
}

/// Moves the file at `path` into today's trash; returns where it went.
pub(crate) fn move_to_trash(
    root: &std::path::Path,
    path: &SyncPath,
) -> Result<PathBuf, ApplyError> {
    let folder = Folder::open(root)?;
    let (parent, name) = file_at(&folder, path)?;
    let kept = keep_in_trash(&folder, &parent, name, path)?;
    parent.sync().map_err(io(parent.path()))?;
    Ok(kept)
}

/// Puts the content of the file `copy` in the place of `original` (in the
/// same folder), and the content `original` had into the trash, kept as
/// `original`; returns where that went (`None` when `original` was
/// absent). Where the file system can, the two swap places in one step, so
/// `original` is never missing.
pub(crate) fn take_copy_in_place(
    root: &std::path::Path,
    copy: &SyncPath,
    original: &SyncPath,
) -> Result<Option<PathBuf>, ApplyError> {
    debug_assert_eq!(copy.parent(), original.parent());
    let folder = Folder::open(root)?;
    let (parent, copy_name) = file_at(&folder, copy)?;
    let name = original.file_name();
    let present = parent.stat(name).map_err(io(parent.path().join(name)))?;
    let kept = match present {
        None => {
            no_replace(&parent, copy_name, &parent, name, original)?;
            None
        }
        Some(found) if found.kind == Kind::File => {
            if parent
                .exchange(copy_name, &parent, name)
                .map_err(io(parent.path().join(name)))?
            {
                // The copy's name now holds what the original held.
                Some(keep_in_trash(&folder, &parent, copy_name, original)?)
            } else {
                let kept = keep_in_trash(&folder, &parent, name, original)?;
                no_replace(&parent, copy_name, &parent, name, original)?;
                Some(kept)
            }
        }
        Some(found) => {
            return Err(ApplyError::Blocked {
                path: original.clone(),
                at: original.to_string(),
                what: found.kind,
            });
        }
    };
    parent.sync().map_err(io(parent.path()))?;
    Ok(kept)
}

/// Moves what is at `trashed` (a '/'-separated path inside `.sf/trash`)
/// back into the folder as `to`, making its folders; fails with
/// `AlreadyExists` when something is at `to`.
pub(crate) fn restore_from_trash(
    root: &std::path::Path,
    trashed: &str,
    to: &SyncPath,
) -> Result<(), ApplyError> {
    let folder = Folder::open(root)?;
    let (dirs, name) = trashed.rsplit_once('/').unwrap_or(("", trashed));
    let names = [STATE_DIR, "trash"]
        .into_iter()
        .chain(dirs.split('/').filter(|d| !d.is_empty()));
    let from = folder.root.walk(names, false).map_err(|err| match err {
        WalkError::Blocked { at, what } => ApplyError::StateDirBlocked { at, what },
        WalkError::Io { path, source } => ApplyError::Io { path, source },
    })?;
    let (parent, to_name) = folder.parent_of(to, true)?;
    no_replace(&from, name, &parent, to_name, to)?;
    parent.sync().map_err(io(parent.path()))?;
    from.sync().map_err(io(from.path()))?;
    Ok(())
}

/// Renames `name` in `from` to `to_name` in `to` unless something is
/// there (`AlreadyExists`). Where the file system cannot check in the same
/// step, it checks just before.
fn no_replace(
    from: &Dir,
    name: &str,
    to: &Dir,
    to_name: &str,
    path: &SyncPath,
) -> Result<(), ApplyError> {
    let shown = to.path().join(to_name);
    let taken = || ApplyError::Io {
        path: shown.clone(),
        source: std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "something is there already; it was left alone",
        ),
    };
    match from.rename_no_replace(name, to, to_name) {
        Ok(true) => Ok(()),
        Ok(false) => {
            if to.stat(to_name).map_err(io(&shown))?.is_some() {
                return Err(taken());
            }
            from.rename(name, to, to_name).map_err(io(&shown))
        }
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Err(taken()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            Err(ApplyError::ChangedMeanwhile { path: path.clone() })
        }
        Err(source) => Err(ApplyError::Io {
            path: shown,
            source,
        }),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn path(p: &str) -> SyncPath {
        SyncPath::parse(p).unwrap()
    }

    fn folder() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join(".sf/trash")).unwrap();
        std::fs::create_dir_all(root.join("d")).unwrap();
        (dir, root)
    }

    #[test]
    fn the_copy_takes_the_original_s_place_and_the_original_goes_to_the_trash() {
        let (_dir, root) = folder();
        std::fs::write(root.join("d/a.txt"), "theirs").unwrap();
        std::fs::write(root.join("d/a (conflict x).txt"), "mine").unwrap();
        let kept = take_copy_in_place(&root, &path("d/a (conflict x).txt"), &path("d/a.txt"))
            .unwrap()
            .expect("the original was there");
        assert_eq!(std::fs::read(root.join("d/a.txt")).unwrap(), b"mine");
        assert!(!root.join("d/a (conflict x).txt").exists());
        assert_eq!(std::fs::read(&kept).unwrap(), b"theirs");
        assert!(kept.starts_with(root.join(".sf/trash")), "{kept:?}");
        assert!(kept.ends_with("d/a.txt"), "{kept:?}");

        // Without an original, the copy is simply renamed.
        std::fs::write(root.join("d/b (conflict x).txt"), "only").unwrap();
        let kept =
            take_copy_in_place(&root, &path("d/b (conflict x).txt"), &path("d/b.txt")).unwrap();
        assert_eq!(kept, None);
        assert_eq!(std::fs::read(root.join("d/b.txt")).unwrap(), b"only");
    }

    #[test]
    fn a_trashed_file_comes_back_only_to_a_free_place() {
        let (_dir, root) = folder();
        std::fs::write(root.join("d/a.txt"), "gone").unwrap();
        let kept = move_to_trash(&root, &path("d/a.txt")).unwrap();
        assert!(!root.join("d/a.txt").exists());
        let relative = kept
            .strip_prefix(root.join(".sf/trash"))
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();

        std::fs::write(root.join("d/a.txt"), "new").unwrap();
        let err = restore_from_trash(&root, &relative, &path("d/a.txt")).unwrap_err();
        assert!(err.to_string().contains("left alone"), "{err}");
        assert_eq!(std::fs::read(root.join("d/a.txt")).unwrap(), b"new");

        restore_from_trash(&root, &relative, &path("e/f/a.txt")).unwrap();
        assert_eq!(std::fs::read(root.join("e/f/a.txt")).unwrap(), b"gone");
        assert!(!kept.exists());
    }

    #[test]
    fn links_are_never_followed() {
        let (_dir, root) = folder();
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(elsewhere.path().join("x.txt"), "outside").unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), root.join("link")).unwrap();
        let err = move_to_trash(&root, &path("link/x.txt")).unwrap_err();
        assert!(matches!(err, ApplyError::Blocked { .. }), "{err}");
        assert!(elsewhere.path().join("x.txt").exists());
    }
}
