//! The `sf-agent` binary syncing one folder, as a child process with its
//! own state home and log: started (waiting for `agent started`), SIGKILLed,
//! SIGTERMed, restarted with the same state; and [`TwoAgents`], where most
//! scenarios begin.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use sf_test_support::{LogFile, PROCESS_DEADLINE, Process};

use crate::bins::binary;
use crate::hub::Hub;
use crate::sandbox::{Sandbox, child_rust_log, keep_if_asked, log_lines_on_failure};

/// Every variable the agent reads: cleared so the caller's environment
/// never leaks into a test. (The agent is a binary only; its list lives
/// here, next to the one place that starts it.)
pub(crate) const AGENT_ENV: &[&str] = &[
    "SERVER_URL",
    "SYNC_DIR",
    "SCAN_INTERVAL",
    "SF_AGENT_NAME",
    "SF_DEBOUNCE_MS",
    "SF_AGENT_HOME",
    "XDG_STATE_HOME",
    "SF_TOKEN",
    "SF_TOKEN_FILE",
    "SF_CA_CERT",
    "SF_AGENT_CONFIG",
    "XDG_CONFIG_HOME",
];

/// How an [`Agent`] is started beyond its defaults.
#[derive(Debug, Clone, Default)]
pub struct AgentOptions {
    /// The agent's config file, written to `agent.toml` in a config home
    /// of its own (`XDG_CONFIG_HOME`); `None`: one that only turns desktop
    /// notifications off (the harness's flags give everything else).
    pub config: Option<String>,
    /// Start the agent with no arguments at all: its config file gives
    /// every setting (the hub's token included, as `token_file`).
    pub no_args: bool,
    /// More environment variables for the agent.
    pub env: Vec<(String, String)>,
}

/// The `sf-agent` binary syncing one folder, with its own state home (so
/// the folder registry of one test never meets another's).
pub struct Agent {
    name: String,
    dir: PathBuf,
    hub_url: String,
    extra_args: Vec<String>,
    home: tempfile::TempDir,
    log: LogFile,
    process: Option<Process>,
    /// Where the current (or last) run's output starts in the log.
    run_offset: u64,
    options: AgentOptions,
}

impl Agent {
    /// Starts `sf-agent --hub hub_url --dir dir --name name extra_args…` and
    /// waits until it logs `agent started` (its watcher is then in place).
    pub async fn start(hub_url: &str, dir: &Path, name: &str, extra_args: &[&str]) -> Agent {
        Self::start_with(hub_url, dir, name, extra_args, AgentOptions::default()).await
    }

    /// [`Agent::start`] with a config file, more variables, or no arguments.
    pub async fn start_with(
        hub_url: &str,
        dir: &Path,
        name: &str,
        extra_args: &[&str],
        options: AgentOptions,
    ) -> Agent {
        let home = tempfile::Builder::new()
            .prefix(&format!("sf-e2e-agent-{name}-"))
            .tempdir()
            .expect("a state home for the agent");
        let log = LogFile::new(home.path().join(format!("sf-agent-{name}.log")));
        let mut agent = Agent {
            name: name.to_owned(),
            dir: dir.to_path_buf(),
            hub_url: hub_url.to_owned(),
            extra_args: extra_args.iter().map(|s| (*s).to_owned()).collect(),
            home,
            log,
            process: None,
            run_offset: 0,
            options,
        };
        agent.restart().await;
        agent
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(Process::pid)
    }

    /// Where this agent keeps its folder registry (`--state-home`).
    pub fn state_home(&self) -> PathBuf {
        self.home.path().join("state")
    }

    /// The agent's own home: its log, state home and config home are in it.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The agent's `XDG_CONFIG_HOME`, which holds
    /// `synced-folder/agent.toml`.
    pub fn config_home(&self) -> PathBuf {
        self.home.path().join("config")
    }

    fn write_config(&self) {
        let file = self.config_home().join("synced-folder").join("agent.toml");
        let text = self
            .options
            .config
            .clone()
            .unwrap_or_else(|| "notify = false\n".to_owned());
        crate::write_file(&file, text);
    }

    /// Launches the agent again with the same folder, name, arguments and
    /// state home, without waiting for it to start.
    pub fn spawn(&mut self) {
        assert!(
            self.process.is_none(),
            "agent {} is still running",
            self.name
        );
        self.run_offset = self.log.mark(&format!("starting sf-agent {}", self.name));
        let (stdout, stderr) = self.log.stdio();
        self.write_config();
        let mut command = Command::new(binary("sf-agent"));
        for name in AGENT_ENV {
            command.env_remove(name);
        }
        command
            .env("RUST_LOG", child_rust_log())
            .env("XDG_CONFIG_HOME", self.config_home())
            .env_remove("RUST_BACKTRACE")
            .envs(self.options.env.iter().map(|(k, v)| (k, v)))
            .current_dir(self.home.path())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        if !self.options.no_args {
            self.add_args(&mut command);
        }
        let process = Process::spawn(&mut command).expect("spawn sf-agent");
        eprintln!(
            "sf-agent {} pid {} on {}",
            self.name,
            process.pid().expect("a child just spawned"),
            self.dir.display()
        );
        self.process = Some(process);
    }

    /// The harness's arguments: the hub, the folder, the name, the state
    /// home, the token, then the test's own.
    fn add_args(&self, command: &mut Command) {
        command
            .arg("--hub")
            .arg(&self.hub_url)
            .arg("--dir")
            .arg(&self.dir)
            .arg("--name")
            .arg(&self.name)
            .arg("--state-home")
            .arg(self.state_home())
            .args(self.token_args())
            .args(&self.extra_args);
    }

    /// `--token-file` with the token the harness knows for the agent's hub
    /// (written to a private file in the agent's home), unless the test
    /// passes its own token arguments.
    fn token_args(&self) -> Vec<std::ffi::OsString> {
        let own = self
            .extra_args
            .iter()
            .any(|a| a.starts_with("--token-file"));
        let Some(token) = crate::tokens::token_for(&self.hub_url).filter(|_| !own) else {
            return Vec::new();
        };
        let path = crate::write_token_file(self.home.path(), "hub-token", &token);
        vec!["--token-file".into(), path.into_os_string()]
    }

    /// [`Agent::spawn`], then waits for `agent started`.
    pub async fn restart(&mut self) {
        self.spawn();
        self.wait_started().await;
    }

    /// Waits until the current run logs `agent started`; panics if it exits.
    pub async fn wait_started(&mut self) {
        let deadline = Instant::now() + PROCESS_DEADLINE;
        loop {
            if self.log_of_run().contains("agent started") {
                return;
            }
            if let Some(status) = self.exited() {
                panic!(
                    "sf-agent {} exited during start-up with {status}; log:\n{}",
                    self.name,
                    self.log_of_run()
                );
            }
            assert!(
                Instant::now() < deadline,
                "sf-agent {} did not log `agent started` within {PROCESS_DEADLINE:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The output of the current (or last) run.
    pub fn log_of_run(&self) -> String {
        self.log.read_from(self.run_offset)
    }

    /// The output of every run.
    pub fn log(&self) -> String {
        self.log.read()
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            let pid = process.pid().expect("a running agent has a pid");
            let status = process
                .sigkill()
                .map_or("it had exited".to_owned(), |s| s.to_string());
            eprintln!("sf-agent {} pid {pid} killed ({status})", self.name);
            self.log.mark(&format!("SIGKILLed pid {pid}"));
        }
    }

    /// Freezes the agent (SIGSTOP) until [`Agent::resume`]: what the hub
    /// pushes meanwhile waits in its socket, as for a laptop asleep.
    pub fn pause(&self) {
        self.running().pause();
        self.log.mark("SIGSTOPped");
    }

    /// Lets a paused agent run on (SIGCONT).
    pub fn resume(&self) {
        self.running().resume();
        self.log.mark("SIGCONTinued");
    }

    fn running(&self) -> &Process {
        self.process
            .as_ref()
            .unwrap_or_else(|| panic!("agent {} is not running", self.name))
    }

    /// SIGTERM (through `kill -TERM <pid>`), then waits for the exit.
    pub async fn stop(&mut self) -> ExitStatus {
        let process = self
            .process
            .as_ref()
            .unwrap_or_else(|| panic!("agent {} is not running", self.name));
        let pid = process.pid().expect("a running agent has a pid");
        process.sigterm();
        let status = self.wait_exit(PROCESS_DEADLINE).await;
        eprintln!("sf-agent {} pid {pid} stopped ({status})", self.name);
        status
    }

    /// Waits up to `timeout` for the agent to exit on its own; panics (after
    /// a SIGKILL) if it is still running then.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let exit = match self.process.as_mut() {
            Some(process) => process.wait_exit(timeout).await,
            None => None,
        };
        match exit {
            Some(status) => {
                self.process = None;
                self.log.mark(&format!("exited with {status}"));
                status
            }
            None => {
                self.kill();
                panic!(
                    "sf-agent {} still running after {timeout:?}; killed it",
                    self.name
                );
            }
        }
    }

    /// Whether the process is still running (an unexpected exit is logged).
    pub fn is_running(&mut self) -> bool {
        match self.exited() {
            Some(status) => {
                eprintln!("sf-agent {} exited on its own: {status}", self.name);
                false
            }
            None => self.process.is_some(),
        }
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.process.as_mut()?.exited()?;
        self.process = None;
        self.log.mark(&format!("exited with {status}"));
        Some(status)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        drop(self.process.take());
        if std::thread::panicking() {
            self.log
                .print_tail(&format!("sf-agent {}", self.name), log_lines_on_failure());
        }
        keep_if_asked(&mut self.home);
    }
}

/// One hub and two agents, `a` and `b`, each on a fresh folder of the
/// sandbox and started with `agent_args`: where most scenarios begin.
pub struct TwoAgents {
    pub hub: Hub,
    pub a_dir: PathBuf,
    pub b_dir: PathBuf,
    pub a: Agent,
    pub b: Agent,
}

impl TwoAgents {
    pub async fn start(sandbox: &Sandbox, agent_args: &[&str]) -> TwoAgents {
        let hub = Hub::start(&sandbox.dir("hub")).await;
        let a_dir = sandbox.dir("a");
        let b_dir = sandbox.dir("b");
        let a = Agent::start(hub.url(), &a_dir, "a", agent_args).await;
        let b = Agent::start(hub.url(), &b_dir, "b", agent_args).await;
        TwoAgents {
            hub,
            a_dir,
            b_dir,
            a,
            b,
        }
    }
}
