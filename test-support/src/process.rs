//! A child process that cannot outlive its test: killed (SIGKILL) and
//! reaped when dropped — also when the test panics — with SIGKILL and
//! SIGTERM on demand and a bounded wait for its exit.

use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// How often a wait looks at the child again.
const POLL: Duration = Duration::from_millis(20);

/// A running (or exited, not yet forgotten) child.
#[derive(Debug)]
pub struct Process {
    child: Option<Child>,
}

impl Process {
    pub fn spawn(command: &mut Command) -> std::io::Result<Self> {
        Ok(Self {
            child: Some(command.spawn()?),
        })
    }

    /// Its pid while it runs (`None` once its exit was seen).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Its exit status if it has exited (the child is then forgotten: a
    /// second call says `None`).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().expect("poll a child")?;
        self.child = None;
        Some(status)
    }

    /// SIGKILL (what `Child::kill` sends on Unix: no shutdown code runs) and
    /// reap; `None` if it had already exited and been seen to.
    pub fn sigkill(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        child.kill().expect("SIGKILL a child");
        Some(child.wait().expect("reap a child"))
    }

    /// SIGKILL and reap, ignoring errors: for `Drop`, where a panic during
    /// a failing test's unwinding would abort the whole run.
    pub fn kill_quietly(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM; the caller then waits with [`Process::wait_exit`].
    pub fn sigterm(&self) {
        self.signal("TERM");
    }

    /// Freezes the child (SIGSTOP): it runs no code until
    /// [`Process::resume`], while the kernel keeps its sockets and queues
    /// what arrives for it.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Lets a paused child run on (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    /// Sends SIG`name` through `kill -NAME <pid>` (the crates here have no
    /// `unsafe` for `libc::kill`).
    fn signal(&self, name: &str) {
        let pid = self.pid().expect("a signal to a child that has exited");
        let sent = Command::new("kill")
            .args([format!("-{name}"), pid.to_string()])
            .status()
            .unwrap_or_else(|err| panic!("run kill -{name}: {err}"));
        assert!(sent.success(), "kill -{name} {pid} failed: {sent}");
    }

    /// Waits up to `timeout` for the child to exit on its own: its status,
    /// or `None` if it still runs (it is left running).
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if self.child.is_none() || Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill_quietly();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn term_kill_and_drop() {
        let mut sleeper = Process::spawn(Command::new("sleep").arg("30")).unwrap();
        assert!(sleeper.pid().is_some());
        assert!(sleeper.exited().is_none());
        sleeper.sigterm();
        let status = sleeper.wait_exit(Duration::from_secs(10)).await.unwrap();
        assert!(!status.success());
        assert!(sleeper.pid().is_none());
        assert!(sleeper.sigkill().is_none());

        let mut sleeper = Process::spawn(Command::new("sleep").arg("30")).unwrap();
        assert!(sleeper.wait_exit(Duration::from_millis(50)).await.is_none());
        assert!(!sleeper.sigkill().unwrap().success());

        let sleeper = Process::spawn(Command::new("sleep").arg("30")).unwrap();
        let pid = sleeper.pid().unwrap();
        drop(sleeper);
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
}
