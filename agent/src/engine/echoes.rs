//! The file events the agent's own changes raise. Every file it downloads
//! and every path it moves to the trash comes back as an event; looking at
//! each again costs two state queries and a decision that is always
//! "nothing", and a burst of ten thousand downloads made that a tenth of
//! the receiving agent's work. Here the engine remembers what it left on
//! disk, and an event whose path still holds exactly that costs one stat.
//!
//! Only event paths are dropped this way: a path the change feed names is
//! always looked at. What the engine left is also what it recorded as
//! synced, so a path that still matches it would be decided "nothing";
//! any other outcome for the path (an upload, a deletion sent, a failure,
//! a retry put off) forgets it, so the record and the memory never
//! disagree.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

use sf_protocol::SyncPath;
use sf_protocol::v1::EntryKind;
use tokio::time::Instant;

use crate::model::SyncedFile;
use crate::scan::{Kind, Stat, local_path};

/// How long what the engine left waits for its event: they arrive within
/// milliseconds; a late one is looked at like any other.
const WINDOW: Duration = Duration::from_secs(5);
/// At most this many paths are remembered (memory stays flat however big
/// the burst; paths beyond it are looked at like any other).
const MAX_REMEMBERED: usize = 20_000;

/// What the engine left at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Left {
    /// Moved to the trash: nothing there.
    Nothing,
    /// A file it wrote, by its stat data.
    File {
        size: u64,
        mtime_ns: i64,
        inode: u64,
        executable: bool,
    },
}

#[derive(Default)]
pub(super) struct Echoes {
    left: HashMap<SyncPath, (Left, Instant)>,
}

impl Echoes {
    /// The engine wrote `file` at `path` and recorded it as synced.
    pub(super) fn wrote(&mut self, path: &SyncPath, file: &SyncedFile) {
        if file.kind == EntryKind::File {
            self.remember(
                path,
                Left::File {
                    size: file.size,
                    mtime_ns: file.mtime_ns,
                    inode: file.inode,
                    executable: file.executable,
                },
            );
        }
    }

    /// The engine moved what was at `path` to the trash and forgot it.
    pub(super) fn removed(&mut self, path: &SyncPath) {
        self.remember(path, Left::Nothing);
    }

    /// Anything else the engine decided about `path` (an upload, a
    /// deletion sent, a failure, a retry put off) ends what it remembered:
    /// a later event there is looked at.
    pub(super) fn forget(&mut self, path: &SyncPath) {
        self.left.remove(path);
    }

    fn remember(&mut self, path: &SyncPath, left: Left) {
        if self.left.len() < MAX_REMEMBERED || self.left.contains_key(path) {
            self.left.insert(path.clone(), (left, Instant::now()));
        }
    }

    /// Removes from `paths` (named by events) those that hold what the
    /// engine left there; forgets what waited longer than [`WINDOW`].
    pub(super) fn drop_from(&mut self, root: &Path, paths: &mut BTreeSet<SyncPath>) {
        if self.left.is_empty() {
            return;
        }
        let now = Instant::now();
        self.left
            .retain(|_, (_, at)| now.duration_since(*at) < WINDOW);
        // Not forgotten once matched: one change raises several events
        // (at once and after the debounce window), each checked again.
        paths.retain(|path| match self.left.get(path) {
            Some((left, _)) => !still_there(root, path, *left),
            None => true,
        });
    }
}

/// Whether `path` holds what the engine left there.
fn still_there(root: &Path, path: &SyncPath, left: Left) -> bool {
    let found = match std::fs::symlink_metadata(local_path(root, path)) {
        Ok(metadata) => Some(Stat::of(&metadata)),
        Err(err)
            if matches!(
                err.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            None
        }
        // Cannot tell: looked at.
        Err(_) => return false,
    };
    match (left, found) {
        (Left::Nothing, None) => true,
        (
            Left::File {
                size,
                mtime_ns,
                inode,
                executable,
            },
            Some(stat),
        ) => {
            stat.kind == Kind::File
                && stat.size == size
                && stat.mtime_ns == mtime_ns
                && stat.inode == inode
                && stat.executable == executable
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sf_protocol::Sha256Hex;

    fn synced_of(path: &Path) -> SyncedFile {
        let stat = Stat::of(&std::fs::symlink_metadata(path).unwrap());
        SyncedFile {
            kind: EntryKind::File,
            sha256: Sha256Hex::empty(),
            size: stat.size,
            mtime_ns: stat.mtime_ns,
            inode: stat.inode,
            executable: stat.executable,
            version: 1,
        }
    }

    fn p(raw: &str) -> SyncPath {
        SyncPath::parse(raw).unwrap()
    }

    /// Only what is still exactly as the engine left it is dropped: a file
    /// changed, replaced or made since is looked at.
    #[test]
    fn only_paths_still_as_the_engine_left_them_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for name in ["kept", "rewritten", "replaced"] {
            std::fs::write(root.join(name), "v1").unwrap();
        }
        let mut echoes = Echoes::default();
        for name in ["kept", "rewritten", "replaced"] {
            echoes.wrote(&p(name), &synced_of(&root.join(name)));
        }
        echoes.removed(&p("trashed"));
        echoes.removed(&p("made-again"));

        std::fs::write(root.join("rewritten"), "v2, longer").unwrap();
        std::fs::write(root.join("replaced.new"), "v1").unwrap();
        std::fs::rename(root.join("replaced.new"), root.join("replaced")).unwrap();
        std::fs::write(root.join("made-again"), "new").unwrap();

        let mut paths: BTreeSet<SyncPath> = [
            "kept",
            "rewritten",
            "replaced",
            "trashed",
            "made-again",
            "other",
        ]
        .map(p)
        .into();
        echoes.drop_from(root, &mut paths);
        let left: Vec<&str> = paths.iter().map(SyncPath::as_str).collect();
        assert_eq!(left, ["made-again", "other", "replaced", "rewritten"]);

        // A second event for "kept" is dropped too, until it changes.
        let mut again: BTreeSet<SyncPath> = [p("kept")].into();
        echoes.drop_from(root, &mut again);
        assert!(again.is_empty());
        std::fs::write(root.join("kept"), "v2, longer").unwrap();
        let mut again: BTreeSet<SyncPath> = [p("kept")].into();
        echoes.drop_from(root, &mut again);
        assert_eq!(again.len(), 1);
    }

    /// A file the engine wrote, renamed away by the user (deleted on the
    /// hub) and renamed back: the same stat data, but no longer synced, so
    /// it must be looked at.
    #[test]
    fn a_path_decided_since_is_looked_at_again() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("a.txt"), "v1").unwrap();
        let mut echoes = Echoes::default();
        echoes.wrote(&p("a.txt"), &synced_of(&root.join("a.txt")));
        echoes.forget(&p("a.txt"));
        let mut paths: BTreeSet<SyncPath> = [p("a.txt")].into();
        echoes.drop_from(root, &mut paths);
        assert_eq!(paths.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn what_waited_too_long_is_looked_at() {
        let dir = tempfile::tempdir().unwrap();
        let mut echoes = Echoes::default();
        echoes.removed(&p("gone"));
        tokio::time::advance(WINDOW + Duration::from_millis(1)).await;
        let mut paths: BTreeSet<SyncPath> = [p("gone")].into();
        echoes.drop_from(dir.path(), &mut paths);
        assert_eq!(paths.len(), 1);
    }
}
