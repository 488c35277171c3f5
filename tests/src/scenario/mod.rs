//! Randomized scenarios through the real binaries: a seed makes a script of
//! user operations and faults (`plan`), which runs against a real `sf-hub`
//! and several real `sf-agent`s, each reaching the hub through a relay the
//! scenario controls (`link`); operations happen in the agents' folders
//! (`ops`) while a sampler reads them; once the faults stop and everything
//! settles, the invariants are checked (`check`): every folder equals the
//! hub, nothing written is lost, no file was ever seen torn, no process
//! panicked, every agent's status is clean and its `.sf/tmp` empty.
//!
//! The same seed performs the same operations and faults in the same order;
//! how far each got when the next came depends on timing, so a replay
//! reaches the same kind of state, not the same bytes at the same moment.
//! A failure names its seed and the command that replays it.

mod check;
mod link;
mod machine;
mod ops;
mod plan;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use plan::{Fault, Op, Shape, Step, script};

use self::link::{Link, LinkState};
use self::machine::{PrivatePostgres, SmallDisk};
use self::ops::{DATABASE, Folder, HUB, Ledger, lock};
use crate::{Agent, Hub, HubOptions, Sandbox, agent_status, hub_contents, wait_converged};

/// How long the folders may take to agree with the hub once the last fault
/// is over.
const SETTLE: Duration = Duration::from_secs(120);

/// What a scenario did, for the closing figures.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub seed: u64,
    pub ops: usize,
    pub faults: BTreeMap<&'static str, usize>,
    /// Faults not injected because their target was already down.
    pub faults_skipped: usize,
    pub sampled_reads: u64,
    pub required_contents: usize,
    pub elapsed: Duration,
    pub settle: Duration,
}

/// How to replay `seed`.
pub fn replay_command(seed: u64) -> String {
    format!(
        "SF_SCENARIO_SEED={seed} cargo test -p sf-e2e --test random_scenarios -- --ignored replay \
         --nocapture"
    )
}

/// Where an agent is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Up,
    Killed,
    Frozen,
    LinkDown,
    DiskFull,
}

/// Something to undo at a moment: a fault's end.
#[derive(Debug, Clone, Copy)]
enum Recovery {
    Agent(usize),
    Hub,
    Database,
}

struct Run {
    hub: Hub,
    agents: Vec<Agent>,
    links: Vec<Link>,
    health: Vec<Health>,
    hub_up: bool,
    /// The hub's private PostgreSQL, when the script runs on one, and
    /// whether it is up.
    database: Option<PrivatePostgres>,
    database_up: bool,
    /// The last agent's small file system, when the machine allows one.
    disk: Option<SmallDisk>,
    folders: Arc<Vec<Folder>>,
    ledger: Arc<Mutex<Ledger>>,
    due: Vec<(Instant, Recovery)>,
    summary: Summary,
}

/// Runs the scenario of `seed` with `shape`; `Err` says which invariant
/// failed, with the seed and the replay command.
pub async fn run(seed: u64, shape: Shape) -> Result<Summary, String> {
    let sandbox = Sandbox::new(&format!("scenario-{seed}"));
    let started = Instant::now();
    let steps = script(seed, shape);
    sandbox.step(&format!(
        "seed {seed}: {} steps, {} agents (replay: {})",
        steps.len(),
        shape.agents,
        replay_command(seed)
    ));
    let database = if shape.postgres {
        match tokio::task::block_in_place(PrivatePostgres::start) {
            Ok(pg) => Some(pg),
            Err(why) => unavailable("a private PostgreSQL", &why)?,
        }
    } else {
        None
    };
    let disk = if shape.small_disk {
        match SmallDisk::mount() {
            Ok(disk) => Some(disk),
            Err(why) => unavailable("a small file system to fill", &why)?,
        }
    } else {
        None
    };
    let options = HubOptions {
        args: database
            .iter()
            .flat_map(|pg| ["--database-url".to_owned(), pg.url()])
            .collect(),
        ..HubOptions::default()
    };
    let hub = Hub::start_with(&sandbox.dir("hub"), options).await;
    let hub_addr = format!("127.0.0.1:{}", hub.port())
        .parse()
        .expect("an address");
    let token_arg = format!("--token-file={}", hub.token_file().display());
    let mut agents = Vec::new();
    let mut links = Vec::new();
    let mut folders = Vec::new();
    for i in 0..shape.agents {
        let link = Link::start(hub_addr).await.expect("a relay to the hub");
        let dir = match &disk {
            Some(disk) if i == shape.agents - 1 => {
                let folder = disk.folder();
                std::fs::create_dir_all(&folder).expect("the agent's folder on the small disk");
                folder
            }
            _ => sandbox.dir(&format!("agent{i}")),
        };
        let name = format!("agent{i}");
        agents.push(Agent::start(&link.url(), &dir, &name, &[&token_arg]).await);
        links.push(link);
        folders.push(Folder {
            dir,
            lock: Mutex::new(()),
        });
    }
    let mut run = Run {
        hub,
        agents,
        links,
        health: vec![Health::Up; shape.agents],
        hub_up: true,
        database,
        database_up: true,
        disk,
        folders: Arc::new(folders),
        ledger: Arc::new(Mutex::new(Ledger::default())),
        due: Vec::new(),
        summary: Summary {
            seed,
            ..Summary::default()
        },
    };
    let stop_sampler = Arc::new(AtomicBool::new(false));
    let sampler = check::spawn_sampler(
        Arc::clone(&run.folders),
        Arc::clone(&run.ledger),
        Arc::clone(&stop_sampler),
    );

    for (n, step) in steps.iter().enumerate() {
        run.recover_due(false).await;
        if std::env::var_os("SF_SCENARIO_VERBOSE").is_some() {
            sandbox.step(&format!("step {n}: {step}"));
        }
        run.step(step).await;
    }
    sandbox.step("faults over: recovering and settling");
    run.recover_due(true).await;
    let settle_started = Instant::now();
    let dirs: Vec<&std::path::Path> = run.folders.iter().map(|f| f.dir.as_path()).collect();
    let converged = wait_converged(&dirs, run.hub.url(), SETTLE).await;
    run.summary.settle = settle_started.elapsed();
    stop_sampler.store(true, Ordering::Relaxed);
    let sampled = tokio::task::block_in_place(|| sampler.join()).expect("the sampler ran");
    run.summary.sampled_reads = sampled.reads;

    let mut failures = Vec::new();
    if let Err(diff) = converged {
        failures.push(format!(
            "the folders did not converge with the hub:\n{diff}"
        ));
    }
    lock(&run.ledger).close();
    let history = hub_contents(run.hub.url()).await?;
    let lost = {
        let ledger = lock(&run.ledger);
        run.summary.required_contents = ledger.required.len();
        tokio::task::block_in_place(|| check::lost(&ledger, &run.folders, &history))
    };
    if !lost.is_empty() {
        failures.push(format!("contents lost:\n  {}", lost.join("\n  ")));
    }
    if !sampled.torn.is_empty() {
        failures.push(format!("torn files seen:\n  {}", sampled.torn.join("\n  ")));
    }
    if run.hub.log().contains("panicked") {
        failures.push("the hub panicked (see its log)".into());
    }
    for (i, agent) in run.agents.iter().enumerate() {
        if agent.log().contains("panicked") {
            failures.push(format!("agent {i} panicked (see its log)"));
        }
        // Killed mid-download or not, a settled agent keeps nothing in
        // its temp folder.
        let stale: Vec<String> = std::fs::read_dir(agent.dir().join(".sf").join("tmp"))
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if !stale.is_empty() {
            failures.push(format!("agent {i} left files in .sf/tmp: {stale:?}"));
        }
        let status = tokio::task::block_in_place(|| agent_status(agent.dir()));
        let unsettled = check::unsettled(&status);
        if !unsettled.is_empty() {
            failures.push(format!(
                "agent {i}'s status is not clean: {}\n{status}",
                unsettled.join("; ")
            ));
        }
    }
    run.summary.elapsed = started.elapsed();
    if failures.is_empty() {
        sandbox.step(&format!("seed {seed} passed: {:?}", run.summary));
        Ok(run.summary)
    } else {
        let mut logs = format!("hub:\n{}", troubles(&run.hub.log()));
        for (i, agent) in run.agents.iter().enumerate() {
            logs.push_str(&format!("agent {i}:\n{}", troubles(&agent.log())));
        }
        Err(format!(
            "scenario seed {seed} failed; replay with\n  {}\n{}\nwarnings and errors in the logs \
             (last 15 each):\n{logs}",
            replay_command(seed),
            failures.join("\n")
        ))
    }
}

/// The last warnings, errors and stops of a log, for a failure's report.
fn troubles(log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains(" WARN ")
                || l.contains(" ERROR ")
                || l.starts_with("Error")
                || l.contains("panicked")
        })
        .collect();
    let start = lines.len().saturating_sub(15);
    lines[start..].iter().map(|l| format!("  {l}\n")).collect()
}

/// A part of the machine the script needs is not there: a failure where
/// the tests are expected to have everything (`SF_TEST_DATABASE_URL` set,
/// as in CI), else a loud skip of that fault.
fn unavailable<T>(what: &str, why: &str) -> Result<Option<T>, String> {
    if std::env::var_os("SF_TEST_DATABASE_URL").is_some() {
        Err(format!("{what} is needed and cannot be had here: {why}"))
    } else {
        eprintln!("skipped: faults that need {what}: {why}");
        Ok(None)
    }
}

impl Run {
    /// Starts the database again if it is down.
    fn database_back(&mut self) {
        if let Some(pg) = self.database.as_ref().filter(|_| !self.database_up) {
            if let Err(err) = tokio::task::block_in_place(|| pg.up()) {
                panic!("cannot start the private PostgreSQL again: {err}");
            }
            self.database_up = true;
            lock(&self.ledger).recover(DATABASE);
        }
    }

    async fn step(&mut self, step: &Step) {
        match step {
            Step::Wait(pause) => tokio::time::sleep(*pause).await,
            Step::Op { agent, op } => {
                let (folders, ledger, agent, op) = (
                    Arc::clone(&self.folders),
                    Arc::clone(&self.ledger),
                    *agent,
                    op.clone(),
                );
                tokio::task::block_in_place(|| ops::apply(&folders[agent], agent, &op, &ledger));
                self.summary.ops += 1;
            }
            Step::Race {
                agents,
                path,
                seeds,
            } => {
                let size = plan::Size::Tiny(1000);
                for (agent, seed) in [(agents.0, seeds.0), (agents.1, seeds.1)] {
                    let op = Op::Write {
                        path: path.clone(),
                        size,
                        seed,
                    };
                    let (folders, ledger) = (Arc::clone(&self.folders), Arc::clone(&self.ledger));
                    tokio::task::block_in_place(|| {
                        ops::apply(&folders[agent], agent, &op, &ledger)
                    });
                }
                self.summary.ops += 1;
            }
            Step::Fault(fault) => self.inject(*fault).await,
        }
    }

    async fn inject(&mut self, fault: Fault) {
        let now = Instant::now();
        let (target, down) = match fault {
            Fault::RestartDatabase { down } => {
                let Some(pg) = self.database.as_ref().filter(|_| self.database_up) else {
                    self.summary.faults_skipped += 1;
                    return;
                };
                if let Err(err) = tokio::task::block_in_place(|| pg.crash()) {
                    panic!("cannot stop the private PostgreSQL: {err}");
                }
                self.database_up = false;
                lock(&self.ledger).impair(DATABASE);
                self.due.push((now + down, Recovery::Database));
                *self.summary.faults.entry(fault.kind()).or_default() += 1;
                return;
            }
            Fault::FillDisk { agent, down } => {
                if self.disk.is_none() {
                    self.summary.faults_skipped += 1;
                    return;
                }
                (agent, down)
            }
            Fault::KillHub { down } => {
                if !self.hub_up {
                    self.summary.faults_skipped += 1;
                    return;
                }
                self.hub.kill();
                self.hub_up = false;
                lock(&self.ledger).impair(HUB);
                self.due.push((now + down, Recovery::Hub));
                *self.summary.faults.entry(fault.kind()).or_default() += 1;
                return;
            }
            Fault::KillAgent { agent, down }
            | Fault::FreezeAgent { agent, down }
            | Fault::CutLink { agent, down }
            | Fault::StallLink { agent, down }
            | Fault::SlowLink { agent, down } => (agent, down),
        };
        if self.health[target] != Health::Up {
            self.summary.faults_skipped += 1;
            return;
        }
        self.health[target] = match fault {
            Fault::KillAgent { .. } => {
                self.agents[target].kill();
                Health::Killed
            }
            Fault::FreezeAgent { .. } => {
                self.agents[target].pause();
                Health::Frozen
            }
            Fault::CutLink { .. } => {
                self.links[target].set(LinkState::Cut);
                Health::LinkDown
            }
            Fault::StallLink { .. } => {
                self.links[target].set(LinkState::Stalled);
                Health::LinkDown
            }
            Fault::SlowLink { .. } => {
                self.links[target].set(LinkState::Slow);
                Health::LinkDown
            }
            Fault::FillDisk { .. } => {
                if let Some(disk) = &self.disk {
                    tokio::task::block_in_place(|| disk.fill());
                }
                Health::DiskFull
            }
            Fault::KillHub { .. } | Fault::RestartDatabase { .. } => {
                unreachable!("handled above")
            }
        };
        lock(&self.ledger).impair(target);
        self.due.push((now + down, Recovery::Agent(target)));
        *self.summary.faults.entry(fault.kind()).or_default() += 1;
    }

    /// Ends the faults whose time came (all of them when `all`).
    async fn recover_due(&mut self, all: bool) {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) =
            self.due.drain(..).partition(|(at, _)| all || *at <= now);
        self.due = later;
        for (_, recovery) in due {
            match recovery {
                Recovery::Hub => {
                    // A hub cannot start without its database.
                    self.database_back();
                    self.hub.restart().await;
                    self.hub_up = true;
                    lock(&self.ledger).recover(HUB);
                }
                Recovery::Database => self.database_back(),
                Recovery::Agent(i) => {
                    match self.health[i] {
                        Health::Killed => self.agents[i].restart().await,
                        Health::Frozen => self.agents[i].resume(),
                        Health::LinkDown => self.links[i].set(LinkState::Up),
                        Health::DiskFull => {
                            if let Some(disk) = &self.disk {
                                disk.free();
                            }
                        }
                        Health::Up => {}
                    }
                    self.health[i] = Health::Up;
                    lock(&self.ledger).recover(i);
                }
            }
        }
    }
}
