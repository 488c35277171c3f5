//! What a scenario needs of the machine beyond processes: a private
//! PostgreSQL it can restart (started with `initdb`, so other tests never
//! notice), and a small file system for one agent's folder that it can fill
//! up. Either may be impossible here (no PostgreSQL binaries, no right to
//! mount); the scenario then says so and goes on without that fault.

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A PostgreSQL server of its own, on a free port, trust authentication.
pub struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    /// Root cannot run PostgreSQL: it runs as the `postgres` user then.
    as_postgres: bool,
    _dir: tempfile::TempDir,
}

impl PrivatePostgres {
    /// `initdb` and start; `Err` says why it cannot run here.
    pub fn start() -> Result<Self, String> {
        let bin = pg_bin_dir().ok_or("no PostgreSQL server binaries (initdb, pg_ctl) found")?;
        let dir = tempfile::Builder::new()
            .prefix("sf-e2e-pg-")
            .tempdir()
            .map_err(|e| format!("a folder for PostgreSQL: {e}"))?;
        let as_postgres = is_root();
        let data = dir.path().join("data");
        if as_postgres {
            // The server's user must reach and own its folder.
            run(Command::new("chmod").arg("0755").arg(dir.path()))?;
            std::fs::create_dir(&data).map_err(|e| e.to_string())?;
            run(Command::new("chown").arg("postgres").arg(&data))?;
        }
        let port = sf_test_support::free_port();
        let pg = PrivatePostgres {
            bin,
            data,
            port,
            as_postgres,
            _dir: dir,
        };
        pg.pg(
            "initdb",
            &[
                "-D",
                &pg.data_str(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
            ],
        )?;
        pg.up()?;
        Ok(pg)
    }

    /// `postgres://…` of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server the way a crash would (`-m immediate`: no
    /// checkpoint, clients cut off).
    pub fn crash(&self) -> Result<(), String> {
        self.pg(
            "pg_ctl",
            &["-D", &self.data_str(), "-m", "immediate", "-w", "stop"],
        )
    }

    pub fn up(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.data_str()
        );
        let log = format!("{}/server.log", self.data_str());
        self.pg(
            "pg_ctl",
            &[
                "-D",
                &self.data_str(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "start",
            ],
        )
    }

    fn data_str(&self) -> String {
        self.data.display().to_string()
    }

    fn pg(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let exe = self.bin.join(tool);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        command.args(args).current_dir("/");
        run(&mut command)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.crash();
    }
}

/// A tmpfs mounted for one agent's folder, which a filler file can fill.
pub struct SmallDisk {
    mount: PathBuf,
    _dir: tempfile::TempDir,
}

/// How big the small file system is: room for the scenario's files and
/// their trash, so it is full only when filled on purpose.
const SMALL_DISK: &str = "size=384m";

impl SmallDisk {
    /// Mounts it; `Err` says why it cannot be mounted here.
    pub fn mount() -> Result<Self, String> {
        if !is_root() {
            return Err("mounting a small file system needs root".into());
        }
        let dir = tempfile::Builder::new()
            .prefix("sf-e2e-disk-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let mount = dir.path().join("mnt");
        std::fs::create_dir(&mount).map_err(|e| e.to_string())?;
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", SMALL_DISK, "tmpfs"])
            .arg(&mount))?;
        Ok(SmallDisk { mount, _dir: dir })
    }

    /// Where the agent's folder goes.
    pub fn folder(&self) -> PathBuf {
        self.mount.join("folder")
    }

    fn filler(&self) -> PathBuf {
        self.mount.join("filler")
    }

    /// Writes a file beside the folder until the file system is full.
    pub fn fill(&self) {
        use std::io::Write;
        let Ok(mut file) = std::fs::File::create(self.filler()) else {
            return;
        };
        let block = vec![0u8; 1 << 20];
        while file.write_all(&block).is_ok() {}
    }

    pub fn free(&self) {
        let _ = std::fs::remove_file(self.filler());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: an agent may still hold files open while the test ends.
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

fn pg_bin_dir() -> Option<PathBuf> {
    let from_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    let mut candidates: Vec<PathBuf> = from_config.into_iter().collect();
    if let Ok(versions) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut found: Vec<PathBuf> = versions.flatten().map(|v| v.path().join("bin")).collect();
        found.sort();
        candidates.extend(found.into_iter().rev());
    }
    candidates
        .into_iter()
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
}

fn run(command: &mut Command) -> Result<(), String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{command:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
