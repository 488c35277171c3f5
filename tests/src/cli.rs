//! `sf-agent`'s commands (`history`, `restore`, `conflicts`, `trash`,
//! `install-service`, `status`) run as a user runs them, and what they
//! print.

use std::ffi::OsStr;
use std::process::{Command, ExitStatus, Stdio};

use crate::agent::AGENT_ENV;
use crate::bins::binary;

/// What one run of `sf-agent` printed, and how it ended.
#[derive(Debug)]
pub struct CliOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    /// Its output, or a panic with its error when it failed.
    pub fn ok(self) -> String {
        assert!(
            self.status.success(),
            "sf-agent failed with {}:\nstdout: {}\nstderr: {}",
            self.status,
            self.stdout,
            self.stderr
        );
        self.stdout
    }

    /// Its output parsed as one JSON document, or a panic.
    pub fn json(self) -> serde_json::Value {
        let stdout = self.ok();
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("sf-agent printed no JSON ({e}): {stdout}"))
    }

    /// Its error message, or a panic when it succeeded.
    pub fn err(self) -> String {
        assert!(
            !self.status.success(),
            "sf-agent succeeded but should not have:\n{}",
            self.stdout
        );
        self.stderr
    }
}

/// `sf-agent ARGS…` with none of the agent's variables from the caller's
/// environment, `XDG_CONFIG_HOME` set to a folder without a config file,
/// then `env` on top; waits for it to end.
pub fn agent_cli<A, K, V>(args: &[A], env: &[(K, V)]) -> CliOutput
where
    A: AsRef<OsStr>,
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let empty = tempfile::tempdir().expect("an empty config home");
    let mut command = Command::new(binary("sf-agent"));
    for name in AGENT_ENV {
        command.env_remove(name);
    }
    let output = command
        .env("XDG_CONFIG_HOME", empty.path())
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run sf-agent");
    CliOutput {
        status: output.status,
        stdout: String::from_utf8(output.stdout).expect("sf-agent prints UTF-8"),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
