//! A scenario's script, made from its seed alone: the user operations and
//! faults in order, with the pauses between them. Nothing here looks at a
//! disk or a clock, so a seed always makes the same script; only how the
//! processes react to it depends on timing.
//!
//! Operations name paths from a small pool (folders `a`, `b`, `a/c`,
//! `Ünï`; files such as `f0.txt`, `café.txt`, `Notes.md`) so that they
//! collide: the same path edited on two agents, a folder renamed while a
//! file in it is written, a case-only or NFC/NFD rename over a name
//! another agent uses.

use std::fmt;
use std::time::Duration;

/// A seeded generator (SplitMix64): small, fast, the same on every
/// platform, and enough for choosing steps.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5f1c_0d0a_7f3e_4b6e)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Folders operations work in ("" is the folder's root).
pub const DIRS: &[&str] = &["", "a", "b", "a/c", "Ünï"];
/// File names; `café.txt` is NFC here (its NFD twin is made by
/// [`Op::NfdRename`]), `Notes.md` has a case-only twin `notes.md`.
pub const NAMES: &[&str] = &[
    "f0.txt",
    "f1.txt",
    "f2.bin",
    "f3.bin",
    "café.txt",
    "Notes.md",
    "notes.md",
];

/// How big a written file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// 0 to 4 KiB.
    Tiny(u64),
    /// Up to 700 KiB: one or a few chunks.
    Medium(u64),
    /// 6 to 24 MiB: many chunks, uploads and downloads that take a while.
    Large(u64),
}

impl Size {
    pub fn bytes(self) -> u64 {
        match self {
            Size::Tiny(n) | Size::Medium(n) | Size::Large(n) => n,
        }
    }

    fn draw(rng: &mut Rng, large_percent: u64) -> Size {
        if rng.chance(large_percent) {
            Size::Large((6 << 20) + rng.below(18 << 20))
        } else if rng.chance(25) {
            Size::Medium(4096 + rng.below(700 << 10))
        } else {
            Size::Tiny(rng.below(4097))
        }
    }
}

/// One thing a user does in one agent's folder. Paths are relative to the
/// folder, `/`-separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create or overwrite (truncate, then write) with seeded bytes.
    Write {
        path: String,
        size: Size,
        seed: u64,
    },
    /// Write a temp file next to it, then rename it over (editors do).
    EditorSave {
        path: String,
        size: Size,
        seed: u64,
    },
    Append {
        path: String,
        len: u64,
        seed: u64,
    },
    /// Cut to `permille` / 1000 of its length.
    Truncate {
        path: String,
        permille: u64,
    },
    /// Overwrite `len` bytes in place at `permille` / 1000 of its length.
    Patch {
        path: String,
        permille: u64,
        len: u64,
        seed: u64,
    },
    /// Rename a file or folder (to another folder too).
    Rename {
        from: String,
        to: String,
    },
    /// `Notes.md` ↔ `notes.md`.
    CaseRename {
        path: String,
    },
    /// `café.txt` (NFC) → its NFD spelling; the agent renames it back.
    NfdRename {
        path: String,
    },
    Delete {
        path: String,
    },
    DeleteTree {
        dir: String,
    },
    Mkdir {
        dir: String,
    },
    Rmdir {
        dir: String,
    },
    SetExecutable {
        path: String,
        on: bool,
    },
}

/// A fault injected at a moment of the script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL an agent; restart it after `down`.
    KillAgent { agent: usize, down: Duration },
    /// SIGKILL the hub; restart it (same port, same data) after `down`.
    KillHub { down: Duration },
    /// SIGSTOP an agent for `down` (it sees its own folder's events late).
    FreezeAgent { agent: usize, down: Duration },
    /// Close an agent's connections to the hub and refuse new ones.
    CutLink { agent: usize, down: Duration },
    /// Accept an agent's connections but forward nothing.
    StallLink { agent: usize, down: Duration },
    /// Forward an agent's traffic at 256 KiB/s.
    SlowLink { agent: usize, down: Duration },
    /// Crash the hub's PostgreSQL (`pg_ctl stop -m immediate`); start it
    /// again after `down`. Only in scripts of a hub on PostgreSQL.
    RestartDatabase { down: Duration },
    /// Fill the file system of the last agent's folder; free it after
    /// `down`. Only in scripts with a small disk.
    FillDisk { agent: usize, down: Duration },
}

impl Fault {
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::KillAgent { .. } => "agent SIGKILL",
            Fault::KillHub { .. } => "hub SIGKILL",
            Fault::FreezeAgent { .. } => "agent SIGSTOP",
            Fault::CutLink { .. } => "network cut",
            Fault::StallLink { .. } => "network stall",
            Fault::SlowLink { .. } => "network slow",
            Fault::RestartDatabase { .. } => "database restart",
            Fault::FillDisk { .. } => "disk full",
        }
    }
}

/// One step of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Op {
        agent: usize,
        op: Op,
    },
    /// The same path written on two agents at once.
    Race {
        agents: (usize, usize),
        path: String,
        seeds: (u64, u64),
    },
    Fault(Fault),
    Wait(Duration),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Op { agent, op } => write!(f, "agent {agent}: {op:?}"),
            Step::Race { agents, path, .. } => {
                write!(f, "agents {} and {}: both write {path}", agents.0, agents.1)
            }
            Step::Fault(fault) => write!(f, "fault: {fault:?}"),
            Step::Wait(pause) => write!(f, "wait {pause:?}"),
        }
    }
}

/// What a script is made of.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub agents: usize,
    /// User operations (and races) in the script.
    pub ops: usize,
    /// Percent of steps that are faults.
    pub fault_percent: u64,
    /// Percent of written files that are large.
    pub large_percent: u64,
    /// The hub runs on a private PostgreSQL, which faults restart.
    pub postgres: bool,
    /// The last agent's folder is on a small file system, which faults fill.
    pub small_disk: bool,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            agents: 3,
            ops: 40,
            fault_percent: 12,
            large_percent: 4,
            postgres: false,
            small_disk: true,
        }
    }
}

impl Shape {
    /// The shape CI and the soak give seed `seed`: every other seed on
    /// PostgreSQL.
    pub fn for_seed(seed: u64) -> Shape {
        Shape {
            postgres: seed.is_multiple_of(2),
            ..Shape::default()
        }
    }
}

/// The script of seed `seed`.
pub fn script(seed: u64, shape: Shape) -> Vec<Step> {
    let mut rng = Rng::new(seed);
    let mut steps = Vec::new();
    let mut ops = 0;
    while ops < shape.ops {
        if rng.chance(shape.fault_percent) {
            steps.push(Step::Fault(fault(&mut rng, shape)));
        } else {
            let agent = rng.below(shape.agents as u64) as usize;
            if shape.agents > 1 && rng.chance(6) {
                let other =
                    (agent + 1 + rng.below(shape.agents as u64 - 1) as usize) % shape.agents;
                steps.push(Step::Race {
                    agents: (agent, other),
                    path: file_path(&mut rng),
                    seeds: (rng.next_u64(), rng.next_u64()),
                });
            } else {
                let op = op(&mut rng, shape.large_percent);
                let large = matches!(
                    &op,
                    Op::Write {
                        size: Size::Large(_),
                        ..
                    } | Op::EditorSave {
                        size: Size::Large(_),
                        ..
                    }
                );
                steps.push(Step::Op { agent, op });
                // Kill someone while the large file is under way: its
                // writer mid-upload, or another agent mid-download.
                if large && rng.chance(50) {
                    steps.push(Step::Wait(Duration::from_millis(150 + rng.below(600))));
                    let victim = rng.below(shape.agents as u64) as usize;
                    steps.push(Step::Fault(Fault::KillAgent {
                        agent: victim,
                        down: Duration::from_millis(200 + rng.below(1500)),
                    }));
                }
            }
            ops += 1;
        }
        // Mostly quick succession, sometimes long enough to sync.
        let pause = if rng.chance(15) {
            600 + rng.below(1500)
        } else {
            rng.below(250)
        };
        steps.push(Step::Wait(Duration::from_millis(pause)));
    }
    steps
}

fn fault(rng: &mut Rng, shape: Shape) -> Fault {
    let agent = rng.below(shape.agents as u64) as usize;
    let down = Duration::from_millis(300 + rng.below(2500));
    match rng.below(12) {
        0..=2 => Fault::KillAgent { agent, down },
        3 => Fault::KillHub { down },
        4 | 5 => Fault::FreezeAgent { agent, down },
        6 | 7 => Fault::CutLink { agent, down },
        8 => Fault::StallLink { agent, down },
        9 => Fault::SlowLink { agent, down },
        10 if shape.postgres => Fault::RestartDatabase { down },
        10 => Fault::KillHub { down },
        _ if shape.small_disk => Fault::FillDisk {
            agent: shape.agents - 1,
            down,
        },
        _ => Fault::CutLink { agent, down },
    }
}

fn dir(rng: &mut Rng) -> String {
    (*rng.pick(DIRS)).to_owned()
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

fn file_path(rng: &mut Rng) -> String {
    let dir = dir(rng);
    let name = *rng.pick(NAMES);
    join(&dir, name)
}

fn op(rng: &mut Rng, large_percent: u64) -> Op {
    let path = file_path(rng);
    match rng.below(100) {
        0..=29 => Op::Write {
            path,
            size: Size::draw(rng, large_percent),
            seed: rng.next_u64(),
        },
        30..=39 => Op::EditorSave {
            path,
            size: Size::draw(rng, large_percent),
            seed: rng.next_u64(),
        },
        40..=46 => Op::Append {
            path,
            len: 1 + rng.below(3000),
            seed: rng.next_u64(),
        },
        47..=50 => Op::Truncate {
            path,
            permille: rng.below(1000),
        },
        51..=55 => Op::Patch {
            path,
            permille: rng.below(1000),
            len: 1 + rng.below(2000),
            seed: rng.next_u64(),
        },
        56..=65 => {
            // A file, or (one time in three) a whole folder.
            let (from, to) = if rng.chance(33) {
                (dir(rng), dir(rng))
            } else {
                (path, file_path(rng))
            };
            Op::Rename { from, to }
        }
        66..=68 => Op::CaseRename { path },
        69..=71 => Op::NfdRename { path },
        72..=81 => Op::Delete { path },
        82..=85 => Op::DeleteTree { dir: dir(rng) },
        86..=91 => Op::Mkdir { dir: dir(rng) },
        92..=94 => Op::Rmdir { dir: dir(rng) },
        _ => Op::SetExecutable {
            path,
            on: rng.chance(50),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_always_makes_the_same_script() {
        let shape = Shape::default();
        assert_eq!(script(42, shape), script(42, shape));
        assert_ne!(script(42, shape), script(43, shape));
        let steps = script(7, shape);
        let ops = steps
            .iter()
            .filter(|s| matches!(s, Step::Op { .. } | Step::Race { .. }))
            .count();
        assert_eq!(ops, shape.ops);
    }
}
