//! Tokens made with the real `sf-hub token` commands, token files for
//! agents, and `sf-agent status` as a user runs it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::bins::binary;
use crate::hub::Hub;

/// Runs `sf-hub token ARGS… --data-dir <hub's data dir>` next to the
/// running hub, with none of the hub's variables from the caller's
/// environment (so it never picks another database); returns its stdout,
/// or panics with its stderr.
pub fn hub_token_command(hub: &Hub, args: &[&str]) -> String {
    let mut command = Command::new(binary("sf-hub"));
    sf_test_support::clear_hub_env(&mut command);
    let output = command
        .arg("token")
        .args(args)
        .arg("--data-dir")
        .arg(hub.data_dir())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run sf-hub token");
    assert!(
        output.status.success(),
        "sf-hub token {args:?} failed with {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("sf-hub token prints UTF-8")
}

/// `sf-hub token create NAME [--read-only]`: the new token.
pub fn create_token(hub: &Hub, name: &str, read_only: bool) -> String {
    let mut args = vec!["create", name];
    if read_only {
        args.push("--read-only");
    }
    let token = hub_token_command(hub, &args).trim().to_owned();
    assert!(
        token.starts_with(sf_protocol::v1::TOKEN_PREFIX),
        "sf-hub token create printed {token:?}"
    );
    token
}

/// Writes `token` to `<dir>/<name>`, readable by its owner only, for
/// `sf-agent --token-file`.
pub fn write_token_file(dir: &Path, name: &str, token: &str) -> PathBuf {
    fs::create_dir_all(dir).expect("create the token file's folder");
    let path = dir.join(name);
    fs::write(&path, format!("{token}\n")).expect("write a token file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
            .expect("make the token file private");
    }
    path
}

/// `sf-agent status --dir DIR`: its report, or panics with its stderr.
pub fn agent_status(dir: &Path) -> String {
    let output = Command::new(binary("sf-agent"))
        .arg("status")
        .arg("--dir")
        .arg(dir)
        .env_remove("SYNC_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("run sf-agent status");
    assert!(
        output.status.success(),
        "sf-agent status failed with {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("sf-agent status prints UTF-8")
}
