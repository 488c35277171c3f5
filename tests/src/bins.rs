//! Where the binaries under test come from, and keeping them up to date.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// The path of a workspace binary (`sf-hub`, `sf-agent`), in the profile
/// directory that holds this test executable (`target/debug/deps/<test>` →
/// `target/debug/<name>`), or in `SF_E2E_BIN_DIR`.
///
/// Under Cargo (which sets `CARGO`), the binaries are first brought up to
/// date, once per test executable, with `cargo build --bins -p sf-hub -p
/// sf-agent` in the same profile. Cargo cannot depend on another package's
/// binaries, and `cargo test --workspace` builds `sf-hub` (it has
/// integration tests) but not the `sf-agent` executable, so whatever
/// happens to be in the target directory could be missing or stale. Set
/// `SF_E2E_NO_BUILD` to skip that step (or `SF_E2E_BIN_DIR` to use other
/// binaries); a missing binary then panics with what to run.
pub fn binary(name: &str) -> PathBuf {
    let dir = bin_dir();
    let prebuilt = std::env::var_os("SF_E2E_BIN_DIR").is_some()
        || std::env::var_os("SF_E2E_NO_BUILD").is_some();
    if !prebuilt && let Some(cargo) = std::env::var_os("CARGO") {
        static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
        if let Err(err) = BUILT.get_or_init(|| build_binaries(&cargo, &dir)) {
            panic!("{err}\nrun `cargo build --workspace` first");
        }
    }
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{name} not found at {}: run `cargo build --workspace` first",
        path.display()
    );
    if prebuilt {
        warn_if_stale(name, &path);
    }
    path
}

fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SF_E2E_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let parent = exe.parent().expect("the test executable has a folder");
    if parent.file_name().is_some_and(|n| n == "deps") {
        parent.parent().unwrap_or(parent).to_path_buf()
    } else {
        parent.to_path_buf()
    }
}

/// `cargo build --bins -p sf-hub -p sf-agent` for the profile whose
/// directory is `bin_dir` (a no-op taking well under a second when they are
/// up to date). Cargo holds no lock while tests run, so this cannot deadlock
/// with the `cargo test` that started us.
fn build_binaries(cargo: &std::ffi::OsStr, bin_dir: &Path) -> Result<(), String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate lives in the workspace");
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--bins", "-p", "sf-hub", "-p", "sf-agent"])
        .stdin(Stdio::null());
    match bin_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(profile) => {
            command.args(["--profile", profile]);
        }
    }
    let started = Instant::now();
    let output = command
        .output()
        .map_err(|e| format!("cannot run {}: {e}", cargo.to_string_lossy()))?;
    if !output.status.success() {
        return Err(format!(
            "`cargo build --bins -p sf-hub -p sf-agent` failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    eprintln!(
        "sf-hub and sf-agent are up to date (cargo build: {:.1}s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Warns once per binary when a source file is newer than it (for binaries
/// the harness did not build itself).
fn warn_if_stale(name: &str, binary: &Path) {
    static WARNED: OnceLock<Mutex<BTreeSet<String>>> = OnceLock::new();
    if !WARNED
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .insert(name.to_owned())
    {
        return;
    }
    let Some(workspace) = Path::new(env!("CARGO_MANIFEST_DIR")).parent() else {
        return;
    };
    let crate_dir = match name {
        "sf-hub" => "hub",
        "sf-agent" => "agent",
        _ => return,
    };
    let Ok(built) = fs::metadata(binary).and_then(|m| m.modified()) else {
        return;
    };
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    for source in [workspace.join(crate_dir), workspace.join("protocol")] {
        newest_file(&source, &mut newest);
    }
    if let Some((when, path)) = newest
        && when > built
    {
        eprintln!(
            "warning: {} is older than {}: run `cargo build --workspace` to test the current code",
            binary.display(),
            path.display()
        );
    }
}

fn newest_file(dir: &Path, newest: &mut Option<(std::time::SystemTime, PathBuf)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            if entry.file_name() != "target" {
                newest_file(&path, newest);
            }
        } else if let Ok(modified) = meta.modified()
            && newest.as_ref().is_none_or(|(when, _)| modified > *when)
        {
            *newest = Some((modified, path));
        }
    }
}
