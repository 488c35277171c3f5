//! The plan for a whole tree ([`decide_all`]) at random: every path of a
//! small tree (folders and their files, case-only twins, an accented name,
//! conflict copies and copies of copies) gets random views on disk, in the
//! last synced record and on the hub (tombstones and missing records
//! included), in both directions.
//!
//! Checked for every tree:
//! - no decision replaces or removes local bytes that exist nowhere else:
//!   a download over a local file only when that file is what was last
//!   synced (so the hub's history holds it) or what the hub holds now;
//!   every other removal keeps them (trash, conflict copy, set aside);
//! - the plan does not depend on the order the paths came in;
//! - a folder is created before what is in it, and removed after it;
//! - receive-only plans send nothing to the hub.
//!
//! And a conflict copy of a conflict copy is a new name in the same folder,
//! taken by nothing.

use proptest::prelude::*;
use sf_protocol::conflict::conflict_copy_path;
use sf_protocol::v1::{Entry, EntryKind};
use sf_protocol::{Sha256Hex, SyncPath};
use time::macros::datetime;

use super::{Decision, Direction, decide_all};
use crate::model::{LocalFile, SyncedFile};

/// What one side holds at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Content {
    File { body: u8, executable: bool },
    Dir,
}

impl Content {
    fn kind(self) -> EntryKind {
        match self {
            Content::File { .. } => EntryKind::File,
            Content::Dir => EntryKind::Dir,
        }
    }

    fn sha256(self) -> Sha256Hex {
        match self {
            Content::File { body, .. } => Sha256Hex::of(&[body]),
            Content::Dir => Sha256Hex::empty(),
        }
    }

    fn executable(self) -> bool {
        matches!(
            self,
            Content::File {
                executable: true,
                ..
            }
        )
    }

    fn local(self) -> LocalFile {
        LocalFile {
            kind: self.kind(),
            sha256: self.sha256(),
            size: u64::from(matches!(self, Content::File { .. })),
            mtime_ns: 0,
            inode: 1,
            executable: self.executable(),
        }
    }

    /// Whether `local` on disk is this content (a folder's bit is not
    /// content).
    fn is(self, local: &LocalFile) -> bool {
        local.kind == self.kind()
            && local.sha256 == self.sha256()
            && (self.kind() == EntryKind::Dir || local.executable == self.executable())
    }
}

/// The three views of one path.
#[derive(Debug, Clone)]
struct Views {
    path: SyncPath,
    local: Option<LocalFile>,
    synced: Option<(SyncedFile, Content)>,
    remote: Option<(Entry, Option<Content>)>,
}

/// The tree's paths: folders before their files as on a disk, case-only
/// twins (`x`, `X`), an accented name, and conflict copies of `d/y.txt`
/// two deep.
fn paths() -> Vec<SyncPath> {
    let mut names: Vec<SyncPath> = [
        "d", "d/x", "d/y.txt", "d/e", "d/e/z", "D", "D/x", "x", "X", "café",
    ]
    .iter()
    .map(|p| SyncPath::parse(*p).expect("a valid path"))
    .collect();
    let y = SyncPath::parse("d/y.txt").expect("a valid path");
    let first = conflict_copy_path(&y, "a", datetime!(2026-12-07 10:00 UTC), |_| false)
        .expect("a copy's name");
    let second = conflict_copy_path(&first, "b", datetime!(2026-12-07 10:01 UTC), |_| false)
        .expect("a copy's name");
    names.push(first);
    names.push(second);
    names
}

fn content() -> impl Strategy<Value = Content> {
    prop_oneof![
        4 => (0u8..3, any::<bool>()).prop_map(|(body, executable)| Content::File { body, executable }),
        2 => Just(Content::Dir),
    ]
}

fn views(path: SyncPath) -> impl Strategy<Value = Views> {
    (
        proptest::option::of(content()),
        proptest::option::of((1u64..4, content())),
        proptest::option::of((1u64..5, proptest::option::weighted(0.7, content()))),
    )
        .prop_map(move |(local, synced, remote)| Views {
            path: path.clone(),
            local: local.map(Content::local),
            synced: synced.map(|(version, content)| {
                let l = content.local();
                (
                    SyncedFile {
                        kind: l.kind,
                        sha256: l.sha256,
                        size: l.size,
                        mtime_ns: l.mtime_ns,
                        inode: l.inode,
                        executable: l.executable,
                        version,
                    },
                    content,
                )
            }),
            remote: remote.map(|(version, content)| {
                (
                    Entry {
                        path: path.clone(),
                        kind: content.map_or(EntryKind::File, Content::kind),
                        version,
                        seq: version,
                        sha256: content.map(Content::sha256),
                        size: u64::from(matches!(content, Some(Content::File { .. }))),
                        mtime_ns: 0,
                        executable: content.is_some_and(Content::executable),
                        deleted: content.is_none(),
                        origin: "model".to_owned(),
                        committed_ms: 0,
                        chunks: None,
                    },
                    content,
                )
            }),
        })
}

/// A tree as a disk and a hub can hold it: whatever is inside a folder
/// means the folder is one, on disk, in the synced records and on the hub
/// (which never keeps files inside a folder that is gone).
fn tree() -> impl Strategy<Value = Vec<Views>> {
    paths()
        .into_iter()
        .map(views)
        .collect::<Vec<_>>()
        .prop_map(|mut tree| {
            // Deepest first, so a grandchild makes its grandparent a folder.
            tree.sort_by_key(|v| std::cmp::Reverse(v.path.as_str().matches('/').count()));
            for i in 0..tree.len() {
                let Some(parent) = tree[i].path.parent().map(str::to_owned) else {
                    continue;
                };
                let Some(p) = tree.iter().position(|v| v.path.as_str() == parent) else {
                    continue;
                };
                let dir = Content::Dir.local();
                if tree[i].local.is_some() {
                    tree[p].local = Some(dir.clone());
                }
                if tree[i].synced.is_some() {
                    let version = tree[p].synced.as_ref().map_or(1, |(s, _)| s.version);
                    tree[p].synced = Some((
                        SyncedFile {
                            kind: dir.kind,
                            sha256: dir.sha256,
                            size: 0,
                            mtime_ns: 0,
                            inode: 1,
                            executable: false,
                            version,
                        },
                        Content::Dir,
                    ));
                }
                if tree[i].remote.as_ref().is_some_and(|(_, c)| c.is_some()) {
                    let version = tree[p].remote.as_ref().map_or(1, |(e, _)| e.version);
                    let mut entry = tree[i].remote.as_ref().expect("live").0.clone();
                    entry.path = tree[p].path.clone();
                    entry.kind = EntryKind::Dir;
                    entry.version = version;
                    entry.seq = version;
                    entry.sha256 = Some(Sha256Hex::empty());
                    entry.size = 0;
                    entry.executable = false;
                    tree[p].remote = Some((entry, Some(Content::Dir)));
                }
            }
            tree.sort_by(|a, b| a.path.cmp(&b.path));
            tree
        })
}

fn plan(tree: &[Views], direction: Direction) -> Vec<(SyncPath, Decision)> {
    decide_all(
        tree.iter().map(|v| {
            (
                &v.path,
                v.local.as_ref(),
                v.synced.as_ref().map(|(s, _)| s),
                v.remote.as_ref().map(|(e, _)| e),
            )
        }),
        direction,
    )
}

fn is_inside(child: &SyncPath, parent: &SyncPath) -> bool {
    child
        .as_str()
        .strip_prefix(parent.as_str())
        .is_some_and(|rest| rest.starts_with('/'))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3_000, ..ProptestConfig::default() })]

    #[test]
    fn a_plan_keeps_local_bytes_is_ordered_and_does_not_depend_on_input_order(
        tree in tree(),
        rotation in 0usize..12,
        reverse in any::<bool>(),
    ) {
        for direction in [Direction::SendReceive, Direction::ReceiveOnly] {
            let planned = plan(&tree, direction);
            for (path, decision) in &planned {
                let views = tree.iter().find(|v| &v.path == path).expect("a planned path");
                if let (Decision::Download { .. }, Some(local)) = (decision, &views.local) {
                    let was_synced = views.synced.as_ref().is_some_and(|(_, c)| c.is(local));
                    let is_remote = views.remote.as_ref().and_then(|(_, c)| *c).is_some_and(|c| c.is(local));
                    prop_assert!(
                        was_synced || is_remote,
                        "{path}: a download replaces local bytes found nowhere else: {views:?}"
                    );
                }
                if direction == Direction::ReceiveOnly {
                    prop_assert!(!decision.action().writes_to_hub(), "{path}: {decision:?} sends");
                }
            }
            // Removals last; among the rest a folder before what is in it,
            // among removals what is in a folder before the folder.
            let removal_starts = planned
                .iter()
                .position(|(_, d)| d.action().is_removal())
                .unwrap_or(planned.len());
            prop_assert!(planned[removal_starts..].iter().all(|(_, d)| d.action().is_removal()));
            let (making, removing) = planned.split_at(removal_starts);
            for (i, (earlier, _)) in making.iter().enumerate() {
                for (later, _) in &making[i + 1..] {
                    prop_assert!(!is_inside(earlier, later), "{later} made after {earlier} inside it");
                }
            }
            for (i, (earlier, _)) in removing.iter().enumerate() {
                for (later, _) in &removing[i + 1..] {
                    prop_assert!(!is_inside(later, earlier), "{earlier} removed before {later} inside it");
                }
            }
            let mut shuffled = tree.clone();
            shuffled.rotate_left(rotation % tree.len());
            if reverse {
                shuffled.reverse();
            }
            prop_assert_eq!(plan(&shuffled, direction), planned);
        }
    }

    #[test]
    fn a_conflict_copy_of_a_conflict_copy_is_a_new_name_beside_it(
        origins in proptest::collection::vec("[a-z]{1,8}", 1..4),
        taken_count in 0usize..4,
    ) {
        let base = SyncPath::parse("docs/report.v2.txt").expect("a valid path");
        let at = datetime!(2026-12-07 10:00 UTC);
        let mut names = vec![base.clone()];
        for origin in &origins {
            let latest = names.last().expect("at least the original").clone();
            // Earlier copies, and a few more names, are taken.
            let taken: Vec<SyncPath> = names.iter().take(names.len().min(taken_count + 1)).cloned().collect();
            let copy = conflict_copy_path(&latest, origin, at, |c| taken.contains(c) || names.contains(c))
                .expect("a copy's name");
            prop_assert_eq!(copy.parent(), base.parent());
            prop_assert!(!names.contains(&copy), "{copy} is taken");
            names.push(copy);
        }
    }
}
