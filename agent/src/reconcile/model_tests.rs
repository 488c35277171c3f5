//! The three-way decision at random, against a model of one path shared by
//! a hub and three agents: random user edits on random agents, and sync
//! steps in random order, each agent deciding from its own view of the hub,
//! which may be stale (it catches up only now and then, as the real one
//! reads the feed). The model hub refuses a commit or a delete that is not
//! on top of its current version, as the real one does (`409 conflict`),
//! and the agent then learns the current entry.
//!
//! Checked for every sequence:
//! - a sync step never loses content: whatever was on some agent's disk, in
//!   the hub's history, in a conflict copy or in a trash before it is still
//!   in one of those after it (only users destroy what they wrote);
//! - once the users stop, a few rounds of catching up and syncing bring
//!   every agent to the hub's current content and then to rest: no agent
//!   acts again, so two agents never undo each other (no flip-flop).

use proptest::prelude::*;
use sf_protocol::v1::{Entry, EntryKind};
use sf_protocol::{Sha256Hex, SyncPath};

use super::{Decision, decide};
use crate::model::{LocalFile, SyncedFile};

const AGENTS: usize = 3;

/// Rounds (every agent catches up, then syncs) within which the agents
/// must agree with the hub and stop acting once the users stop. One round
/// lets each agent send its change or meet a conflict, the next takes the
/// winner and the conflict copies' bystanders along, the third only
/// confirms; one more is slack, not a licence to oscillate.
const SETTLE_ROUNDS: usize = 4;

/// What one side holds at the path: a file (a one-byte body and its
/// executable bit) or a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

    fn size(self) -> u64 {
        match self {
            Content::File { .. } => 1,
            Content::Dir => 0,
        }
    }

    fn local(self) -> LocalFile {
        LocalFile {
            kind: self.kind(),
            sha256: self.sha256(),
            size: self.size(),
            mtime_ns: 0,
            inode: 1,
            executable: self.executable(),
        }
    }

    fn synced(self, version: u64) -> SyncedFile {
        let LocalFile {
            kind,
            sha256,
            size,
            mtime_ns,
            inode,
            executable,
        } = self.local();
        SyncedFile {
            kind,
            sha256,
            size,
            mtime_ns,
            inode,
            executable,
            version,
        }
    }
}

/// One version of the path on the hub; `content: None` is a tombstone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version {
    number: u64,
    content: Option<Content>,
}

impl Version {
    fn entry(self) -> Entry {
        let content = self.content;
        Entry {
            path: SyncPath::parse("p").expect("a valid path"),
            kind: content.map_or(EntryKind::File, Content::kind),
            version: self.number,
            seq: self.number,
            sha256: content.map(Content::sha256),
            size: content.map_or(0, Content::size),
            mtime_ns: 0,
            executable: content.is_some_and(Content::executable),
            deleted: content.is_none(),
            origin: "model".to_owned(),
            committed_ms: 0,
            chunks: None,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Agent {
    /// On disk.
    local: Option<Content>,
    /// Last agreed with the hub: version and content.
    synced: Option<(u64, Content)>,
    /// The hub's entry as this agent last learnt it.
    known: Option<Version>,
}

#[derive(Debug, Clone, Default)]
struct World {
    /// Every version the hub committed, oldest first; the last is current.
    hub: Vec<Version>,
    agents: [Agent; AGENTS],
    /// Conflict copies and trashed files: set aside, not lost.
    kept: Vec<Content>,
}

/// What happens next.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// A user writes (or makes a folder, or deletes: `None`) at the path.
    Edit(usize, Option<Content>),
    /// The agent reads the hub's current entry.
    CatchUp(usize),
    /// The agent decides from what it knows and carries the decision out.
    Sync(usize),
}

impl World {
    fn current(&self) -> Option<Version> {
        self.hub.last().copied()
    }

    /// The hub's check: a write goes on top of the current version (0:
    /// no record) or is refused with the current entry.
    fn write(&mut self, base: u64, content: Option<Content>) -> Result<Version, Option<Version>> {
        let current = self.current();
        if base != current.map_or(0, |v| v.number) {
            return Err(current);
        }
        let version = Version {
            number: base + 1,
            content,
        };
        self.hub.push(version);
        Ok(version)
    }

    /// Everything that still exists somewhere.
    fn everywhere(&self) -> Vec<Content> {
        let mut all: Vec<Content> = self.agents.iter().filter_map(|a| a.local).collect();
        all.extend(self.hub.iter().filter_map(|v| v.content));
        all.extend(self.kept.iter().copied());
        all
    }

    fn step(&mut self, step: Step) {
        match step {
            Step::Edit(agent, content) => self.agents[agent].local = content,
            Step::CatchUp(agent) => self.agents[agent].known = self.current(),
            Step::Sync(agent) => {
                let before = self.everywhere();
                self.sync(agent);
                let after = self.everywhere();
                for content in before {
                    assert!(
                        after.contains(&content),
                        "agent {agent}'s sync step lost {content:?}: {self:#?}"
                    );
                }
            }
        }
    }

    /// Decides for `agent` and carries the decision out; false when there
    /// was nothing to do.
    fn sync(&mut self, agent: usize) -> bool {
        let Agent {
            local,
            synced,
            known,
        } = self.agents[agent].clone();
        let decision = decide(
            local.map(Content::local).as_ref(),
            synced.map(|(n, c)| c.synced(n)).as_ref(),
            known.map(Version::entry).as_ref(),
        );
        let me = agent;
        match decision {
            Decision::Nothing => return false,
            Decision::Upload { base_version, .. } => match self.write(base_version, local) {
                Ok(version) => {
                    let agent = &mut self.agents[me];
                    agent.synced = local.map(|c| (version.number, c));
                    agent.known = Some(version);
                }
                Err(current) => self.agents[me].known = current,
            },
            Decision::DeleteRemote { synced } => match self.current() {
                // The hub forgot the path, or it is deleted there already.
                None => self.agents[me].synced = None,
                Some(current) if current.content.is_none() => {
                    let agent = &mut self.agents[me];
                    agent.synced = None;
                    agent.known = Some(current);
                }
                Some(_) => match self.write(synced.version, None) {
                    Ok(version) => {
                        let agent = &mut self.agents[me];
                        agent.synced = None;
                        agent.known = Some(version);
                    }
                    Err(current) => self.agents[me].known = current,
                },
            },
            Decision::Download { .. } => self.download(me),
            Decision::ConflictCopyThenDownload { .. } | Decision::SetAsideThenDownload { .. } => {
                self.kept.extend(local);
                self.download(me);
            }
            Decision::TrashLocal { .. } => {
                self.kept.extend(local);
                let agent = &mut self.agents[me];
                agent.local = None;
                agent.synced = None;
            }
            Decision::Record { entry, .. } => {
                self.agents[me].synced = local.map(|c| (entry.version, c));
            }
            Decision::Forget => self.agents[me].synced = None,
        }
        true
    }

    /// Writes the agent's known live entry to its disk and records it.
    fn download(&mut self, agent: usize) {
        let agent = &mut self.agents[agent];
        let version = agent.known.expect("a download has a hub entry");
        let content = version.content.expect("a download is of a live entry");
        agent.local = Some(content);
        agent.synced = Some((version.number, content));
    }

    /// Every agent holds the hub's current content (nothing where the hub
    /// has a tombstone or no record).
    fn agreed(&self) -> bool {
        let hub = self.current().and_then(|v| v.content);
        self.agents.iter().all(|a| a.local == hub)
    }
}

fn content() -> impl Strategy<Value = Content> {
    prop_oneof![
        4 => (0u8..3, any::<bool>())
            .prop_map(|(body, executable)| Content::File { body, executable }),
        1 => Just(Content::Dir),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let agent = 0..AGENTS;
    prop_oneof![
        2 => (agent.clone(), proptest::option::weighted(0.8, content()))
            .prop_map(|(a, c)| Step::Edit(a, c)),
        2 => agent.clone().prop_map(Step::CatchUp),
        3 => agent.prop_map(Step::Sync),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn sync_never_loses_content_and_settles_without_flip_flop(
        steps in proptest::collection::vec(step(), 0..40)
    ) {
        let mut world = World::default();
        for step in steps {
            world.step(step);
        }
        let mut quiet_round = false;
        for _ in 0..SETTLE_ROUNDS {
            let mut acted = false;
            for agent in 0..AGENTS {
                world.step(Step::CatchUp(agent));
                let before = world.everywhere();
                acted |= world.sync(agent);
                let after = world.everywhere();
                prop_assert!(before.iter().all(|c| after.contains(c)), "{world:#?}");
            }
            if !acted {
                quiet_round = true;
                break;
            }
        }
        prop_assert!(
            quiet_round,
            "still acting after {SETTLE_ROUNDS} rounds: {world:#?}"
        );
        prop_assert!(world.agreed(), "at rest but not agreed with the hub: {world:#?}");
    }
}
