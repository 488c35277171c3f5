//! Whole-tree plans ([`decide_all`]) at random, carried out against a model
//! of a hub and two agents: folders with files in them, a case-only twin,
//! users who write, make folders and remove whole trees on random agents,
//! agents that catch up with the hub now and then and sync their whole
//! tree in one plan.
//!
//! The model does what the real parts do where it matters: the hub refuses
//! a write not on its current version, a file inside a live file, a file
//! over a folder with live contents, and a folder's delete while it has
//! live contents (`409`); a download makes missing parent folders; a
//! folder goes to the trash only when nothing is left in it; a conflict
//! copy (of a folder: with everything in it) or a trashed file is set
//! aside, not lost.
//!
//! Checked for every sequence: a sync never loses content, and once the
//! users stop, a few rounds bring both agents to the hub's tree and to
//! rest (no flip-flop); carrying a plan out in another order of its
//! independent steps (paths that are not inside one another) ends in the
//! same state.

use std::collections::BTreeMap;

use proptest::prelude::*;
use sf_protocol::v1::{Entry, EntryKind};
use sf_protocol::{Sha256Hex, SyncPath};

use super::{Decision, Direction, decide_all};
use crate::model::{LocalFile, SyncedFile};

const AGENTS: usize = 2;
/// Rounds within which the agents must agree with the hub and rest once
/// the users stop: a tree needs more than one path (a folder's delete is
/// refused until its contents' deletes are in, a file over a folder waits
/// for the folder to go).
const SETTLE_ROUNDS: usize = 6;
const PATHS: &[&str] = &["d", "d/x", "d/y", "x", "X"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Content {
    File(u8),
    Dir,
}

impl Content {
    fn kind(self) -> EntryKind {
        match self {
            Content::File(_) => EntryKind::File,
            Content::Dir => EntryKind::Dir,
        }
    }

    fn local(self) -> LocalFile {
        LocalFile {
            kind: self.kind(),
            sha256: match self {
                Content::File(body) => Sha256Hex::of(&[body]),
                Content::Dir => Sha256Hex::empty(),
            },
            size: u64::from(matches!(self, Content::File(_))),
            mtime_ns: 0,
            inode: 1,
            executable: false,
        }
    }

    fn synced(self, version: u64) -> SyncedFile {
        let l = self.local();
        SyncedFile {
            kind: l.kind,
            sha256: l.sha256,
            size: l.size,
            mtime_ns: 0,
            inode: 1,
            executable: false,
            version,
        }
    }
}

/// One path's three views, as `decide_all` takes them.
type PathViews = (
    SyncPath,
    Option<LocalFile>,
    Option<SyncedFile>,
    Option<Entry>,
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version {
    number: u64,
    content: Option<Content>,
}

fn entry(path: &str, v: Version) -> Entry {
    Entry {
        path: SyncPath::parse(path).expect("a valid path"),
        kind: v.content.map_or(EntryKind::File, Content::kind),
        version: v.number,
        seq: v.number,
        sha256: v.content.map(|c| c.local().sha256),
        size: u64::from(matches!(v.content, Some(Content::File(_)))),
        mtime_ns: 0,
        executable: false,
        deleted: v.content.is_none(),
        origin: "model".into(),
        committed_ms: 0,
        chunks: None,
    }
}

fn parent(path: &str) -> Option<&str> {
    path.rsplit_once('/').map(|(p, _)| p)
}

fn inside(child: &str, folder: &str) -> bool {
    child
        .strip_prefix(folder)
        .is_some_and(|r| r.starts_with('/'))
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Agent {
    disk: BTreeMap<String, Content>,
    synced: BTreeMap<String, (u64, Content)>,
    known: BTreeMap<String, Version>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct World {
    hub: BTreeMap<String, Vec<Version>>,
    agents: [Agent; AGENTS],
    kept: Vec<Content>,
}

#[derive(Debug, Clone)]
enum Step {
    /// Write a file (or make a folder) at a path, or remove it (`None`,
    /// a folder with everything in it).
    Edit(usize, usize, Option<Content>),
    CatchUp(usize),
    Sync(usize),
}

impl World {
    fn current(&self, path: &str) -> Option<Version> {
        self.hub.get(path).and_then(|h| h.last().copied())
    }

    fn live(&self, path: &str) -> Option<Content> {
        self.current(path).and_then(|v| v.content)
    }

    fn everywhere(&self) -> Vec<Content> {
        let mut all: Vec<Content> = self
            .agents
            .iter()
            .flat_map(|a| a.disk.values().copied())
            .collect();
        all.extend(self.hub.values().flatten().filter_map(|v| v.content));
        all.extend(self.kept.iter().copied());
        all.retain(|c| *c != Content::Dir);
        all
    }

    /// A user's change, as a disk allows it.
    fn edit(&mut self, agent: usize, path: &str, content: Option<Content>) {
        let disk = &mut self.agents[agent].disk;
        match content {
            None => disk.retain(|p, _| p != path && !inside(p, path)),
            Some(content) => {
                if let Some(folder) = parent(path) {
                    match disk.get(folder) {
                        Some(Content::File(_)) => return,
                        Some(Content::Dir) => {}
                        None => {
                            disk.insert(folder.to_owned(), Content::Dir);
                        }
                    }
                }
                let has_contents = disk.keys().any(|p| inside(p, path));
                if content != Content::Dir && has_contents {
                    return;
                }
                disk.insert(path.to_owned(), content);
            }
        }
    }

    /// The hub's checks of a write of `content` at `path` on top of `base`.
    fn write(&mut self, path: &str, base: u64, content: Option<Content>) -> Result<Version, ()> {
        let current = self.current(path);
        if base != current.map_or(0, |v| v.number) {
            return Err(());
        }
        let live_inside = self
            .hub
            .keys()
            .any(|p| inside(p, path) && self.live(p).is_some());
        let in_a_file =
            parent(path).is_some_and(|f| matches!(self.live(f), Some(Content::File(_))));
        let refused = match content {
            None => live_inside,
            Some(Content::File(_)) => live_inside || in_a_file,
            Some(Content::Dir) => in_a_file,
        };
        if refused {
            return Err(());
        }
        let version = Version {
            number: base + 1,
            content,
        };
        self.hub.entry(path.to_owned()).or_default().push(version);
        Ok(version)
    }

    fn plan(&self, agent: usize) -> Vec<(SyncPath, Decision)> {
        let a = &self.agents[agent];
        let mut paths: Vec<&String> = a
            .disk
            .keys()
            .chain(a.synced.keys())
            .chain(a.known.keys())
            .collect();
        paths.sort();
        paths.dedup();
        let views: Vec<PathViews> = paths
            .into_iter()
            .map(|p| {
                (
                    SyncPath::parse(p.as_str()).expect("a valid path"),
                    a.disk.get(p).map(|c| c.local()),
                    a.synced.get(p).map(|(n, c)| c.synced(*n)),
                    a.known.get(p).map(|v| entry(p, *v)),
                )
            })
            .collect();
        decide_all(
            views
                .iter()
                .map(|(p, l, s, r)| (p, l.as_ref(), s.as_ref(), r.as_ref())),
            Direction::SendReceive,
        )
    }

    /// Plans and carries the plan out; false when there was nothing to do.
    fn sync(&mut self, agent: usize, order: &[usize]) -> bool {
        let plan = self.plan(agent);
        if plan.is_empty() {
            return false;
        }
        let order: Vec<usize> = if order.is_empty() {
            (0..plan.len()).collect()
        } else {
            order.to_vec()
        };
        for i in order {
            let (path, decision) = &plan[i];
            self.act(agent, path.as_str(), decision);
        }
        true
    }

    fn act(&mut self, me: usize, path: &str, decision: &Decision) {
        let local = self.agents[me].disk.get(path).copied();
        // The engine acts only on what it decided on: a path an earlier
        // step changed (a folder renamed aside with it) is left for the
        // next cycle.
        let decided_on = match decision {
            Decision::Upload { local, .. }
            | Decision::ConflictCopyThenDownload { local, .. }
            | Decision::SetAsideThenDownload { local, .. }
            | Decision::TrashLocal { local }
            | Decision::Record { local, .. } => Some(Some(local.clone())),
            Decision::Download { replacing, .. } => Some(replacing.clone()),
            _ => None,
        };
        if decided_on.is_some_and(|decided| decided != local.map(Content::local)) {
            return;
        }
        match decision {
            Decision::Nothing => {}
            Decision::Upload { base_version, .. } => match self.write(path, *base_version, local) {
                Ok(v) => {
                    let a = &mut self.agents[me];
                    a.synced.insert(
                        path.to_owned(),
                        (v.number, local.expect("an upload has a file")),
                    );
                    a.known.insert(path.to_owned(), v);
                }
                Err(()) => {
                    if let Some(v) = self.current(path) {
                        self.agents[me].known.insert(path.to_owned(), v);
                    }
                }
            },
            Decision::DeleteRemote { synced } => match self.current(path) {
                None => {
                    self.agents[me].synced.remove(path);
                }
                Some(v) if v.content.is_none() => {
                    let a = &mut self.agents[me];
                    a.synced.remove(path);
                    a.known.insert(path.to_owned(), v);
                }
                Some(_) => match self.write(path, synced.version, None) {
                    Ok(v) => {
                        let a = &mut self.agents[me];
                        a.synced.remove(path);
                        a.known.insert(path.to_owned(), v);
                    }
                    Err(()) => {
                        if let Some(v) = self.current(path) {
                            self.agents[me].known.insert(path.to_owned(), v);
                        }
                    }
                },
            },
            Decision::Download { .. } => self.download(me, path),
            Decision::ConflictCopyThenDownload { .. } | Decision::SetAsideThenDownload { .. } => {
                if local.is_some() {
                    // Renamed aside, a folder with everything in it: the
                    // copy is a new path the model keeps instead of syncing.
                    let disk = &mut self.agents[me].disk;
                    let moved: Vec<String> = disk
                        .keys()
                        .filter(|p| p.as_str() == path || inside(p, path))
                        .cloned()
                        .collect();
                    for p in moved {
                        if let Some(c) = disk.remove(&p) {
                            self.kept.push(c);
                        }
                    }
                }
                self.download(me, path);
            }
            Decision::TrashLocal { .. } => {
                let a = &mut self.agents[me];
                if a.disk.keys().any(|p| inside(p, path)) {
                    return; // something is still in the folder: it stays
                }
                if let Some(local) = a.disk.remove(path) {
                    self.kept.push(local);
                }
                self.agents[me].synced.remove(path);
            }
            Decision::Record { entry, .. } => {
                if let Some(local) = local {
                    self.agents[me]
                        .synced
                        .insert(path.to_owned(), (entry.version, local));
                }
            }
            Decision::Forget => {
                self.agents[me].synced.remove(path);
            }
        }
    }

    /// Puts the known live entry on disk (making missing parent folders;
    /// a file in the way of a parent blocks it) and records it.
    fn download(&mut self, me: usize, path: &str) {
        let a = &mut self.agents[me];
        let Some(version) = a.known.get(path).copied() else {
            return;
        };
        let Some(content) = version.content else {
            return;
        };
        let mut folder = parent(path);
        while let Some(f) = folder {
            match a.disk.get(f) {
                Some(Content::File(_)) => return,
                Some(Content::Dir) => {}
                None => {
                    a.disk.insert(f.to_owned(), Content::Dir);
                }
            }
            folder = parent(f);
        }
        if content != Content::Dir && a.disk.keys().any(|p| inside(p, path)) {
            return; // a folder with contents is not replaced by a file
        }
        a.disk.insert(path.to_owned(), content);
        a.synced.insert(path.to_owned(), (version.number, content));
    }

    fn step(&mut self, step: &Step) {
        match *step {
            Step::Edit(agent, path, content) => self.edit(agent, PATHS[path], content),
            Step::CatchUp(agent) => {
                let known: BTreeMap<String, Version> = self
                    .hub
                    .iter()
                    .filter_map(|(p, h)| h.last().map(|v| (p.clone(), *v)))
                    .collect();
                self.agents[agent].known = known;
            }
            Step::Sync(agent) => {
                let before = self.everywhere();
                self.sync(agent, &[]);
                let after = self.everywhere();
                for c in before {
                    assert!(
                        after.contains(&c),
                        "agent {agent}'s sync lost {c:?}: {self:#?}"
                    );
                }
            }
        }
    }

    /// Both agents' disks hold the hub's live tree.
    fn agreed(&self) -> bool {
        let hub: BTreeMap<String, Content> = self
            .hub
            .iter()
            .filter_map(|(p, h)| h.last().and_then(|v| v.content).map(|c| (p.clone(), c)))
            .collect();
        self.agents.iter().all(|a| a.disk == hub)
    }
}

fn step() -> impl Strategy<Value = Step> {
    let agent = 0..AGENTS;
    let content = prop_oneof![3 => (0u8..3).prop_map(Content::File), 1 => Just(Content::Dir)];
    prop_oneof![
        3 => (agent.clone(), 0..PATHS.len(), proptest::option::weighted(0.75, content))
            .prop_map(|(a, p, c)| Step::Edit(a, p, c)),
        2 => agent.clone().prop_map(Step::CatchUp),
        3 => agent.prop_map(Step::Sync),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_500, ..ProptestConfig::default() })]

    #[test]
    fn tree_syncs_lose_nothing_and_settle_without_flip_flop(
        steps in proptest::collection::vec(step(), 0..40)
    ) {
        let mut world = World::default();
        for step in &steps {
            world.step(step);
        }
        let mut rested = false;
        for _ in 0..SETTLE_ROUNDS {
            let mut acted = false;
            for agent in 0..AGENTS {
                world.step(&Step::CatchUp(agent));
                let before = world.everywhere();
                acted |= world.sync(agent, &[]);
                let after = world.everywhere();
                prop_assert!(before.iter().all(|c| after.contains(c)), "{world:#?}");
            }
            if !acted {
                rested = true;
                break;
            }
        }
        prop_assert!(rested, "still acting after {SETTLE_ROUNDS} rounds: {world:#?}");
        prop_assert!(world.agreed(), "at rest but not agreed with the hub: {world:#?}");
    }

    #[test]
    fn independent_steps_of_a_plan_end_the_same_in_any_order(
        steps in proptest::collection::vec(step(), 0..30),
        agent in 0..AGENTS,
        seed in any::<u64>(),
    ) {
        let mut world = World::default();
        for step in &steps {
            world.step(step);
        }
        world.step(&Step::CatchUp(agent));
        let plan = world.plan(agent);
        // Another order that still makes folders before what is in them
        // (shallower first) and removes them after (deeper first), the
        // paths of one depth shuffled.
        let shuffle = |i: usize| {
            let mut z = seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z ^ (z >> 31)
        };
        let depth = |i: usize| plan[i].0.as_str().matches('/').count() as i64;
        let (mut making, mut removing): (Vec<usize>, Vec<usize>) =
            (0..plan.len()).partition(|&i| !plan[i].1.action().is_removal());
        making.sort_by_key(|&i| (depth(i), shuffle(i)));
        removing.sort_by_key(|&i| (-depth(i), shuffle(i)));
        let order: Vec<usize> = making.into_iter().chain(removing).collect();
        let mut sorted = world.clone();
        sorted.sync(agent, &[]);
        let mut shuffled = world.clone();
        shuffled.sync(agent, &order);
        prop_assert_eq!(&sorted.hub, &shuffled.hub);
        prop_assert_eq!(&sorted.agents, &shuffled.agents);
    }
}
