//! Command line and environment, including the original client's variable
//! names (`SERVER_URL`, `SYNC_DIR`, `SCAN_INTERVAL`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// synced-folder agent: keeps one local folder in sync with a hub.
#[derive(Debug, Parser)]
#[command(name = "sf-agent", version, about, long_about = None, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: Settings,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print what is synced, pending, in conflict, and the last error, from
    /// local state alone (the hub is not contacted).
    Status {
        /// The synced folder.
        #[arg(long, env = "SYNC_DIR")]
        dir: PathBuf,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// The hub's URL.
    #[arg(long, env = "SERVER_URL", default_value = "http://127.0.0.1:8080")]
    pub hub: String,

    /// The folder to keep in sync (created state lives in <dir>/.sf).
    #[arg(long, env = "SYNC_DIR")]
    pub dir: Option<PathBuf>,

    /// This agent's name: the origin of its commits and of its conflict
    /// copies. Default: the host name.
    #[arg(long, env = "SF_AGENT_NAME")]
    pub name: Option<String>,

    /// Seconds between full scans: default 60 while file events work, 3 with
    /// --poll.
    #[arg(long, env = "SCAN_INTERVAL")]
    pub scan_interval: Option<u64>,

    /// Do not watch for file events; scan every SCAN_INTERVAL seconds instead
    /// (for network file systems).
    #[arg(long)]
    pub poll: bool,

    /// Milliseconds a changed file must be quiet before it is pushed.
    #[arg(long, env = "SF_DEBOUNCE_MS", default_value_t = 150)]
    pub debounce_ms: u64,

    /// Where the agent remembers which folders it synced, so a vanished
    /// folder marker is noticed. Default: $XDG_STATE_HOME/sf-agent or
    /// ~/.local/state/sf-agent.
    #[arg(long, env = "SF_AGENT_HOME")]
    pub state_home: Option<PathBuf>,
}

impl Settings {
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(host_name)
    }

    pub fn scan_interval(&self, watching: bool) -> Duration {
        let default = if watching { 60 } else { 3 };
        Duration::from_secs(self.scan_interval.unwrap_or(default).max(1))
    }

    pub fn state_home(&self) -> PathBuf {
        if let Some(home) = &self.state_home {
            return home.clone();
        }
        if let Some(xdg) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(xdg).join("sf-agent");
        }
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
        home.join(".local").join("state").join("sf-agent")
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "agent".to_owned())
}
