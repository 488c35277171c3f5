//! `sf-agent install-service`: a systemd user unit that runs the agent at
//! login with the settings of this command line, restarting it when it
//! fails.
//!
//! The unit runs this very executable with `--config FILE` (the config
//! file read now, if any) plus every setting that a flag or an environment
//! variable gave now, as flags (a service sees neither this shell's
//! environment nor its working directory, so paths are made absolute).
//! The token cannot travel that way from `SF_TOKEN`: it must be in a file
//! (`--token-file` or `token_file`).
//!
//! One unit per config file: `sf-agent.service` for the default one (or
//! none), `sf-agent-<stem>.service` for `--config <dir>/<stem>.toml`, so
//! each folder (one config file each) gets its own. It is written to
//! `$XDG_CONFIG_HOME/systemd/user/` (`~/.config/systemd/user/`), then
//! `systemctl --user daemon-reload` and `systemctl --user enable --now`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::config::Settings;
use crate::config_file::{config_home, default_path};

/// The exit status of a settings or token mistake; the unit does not
/// restart the agent on it (`RestartPreventExitStatus`).
pub const EXIT_CONFIG: u8 = 78;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(
        "no folder given: pass --dir (or set `dir` in the config file) so the service knows \
         which folder to sync"
    )]
    NoFolder,
    #[error(
        "the token is in SF_TOKEN, which a service does not see: put it in a file readable only \
         by you and pass --token-file (or set `token_file` in the config file)"
    )]
    TokenInEnv,
    #[error(
        "systemctl was not found: this machine does not run systemd. Run `sf-agent \
         install-service --print` to see the unit, and see the README for launchd (macOS) and \
         Windows"
    )]
    NoSystemctl,
    #[error("neither XDG_CONFIG_HOME nor HOME is set, so there is no place for the unit")]
    NoConfigHome,
    #[error("cannot find this executable's path ({0}), which the unit must name")]
    NoExecutable(#[source] std::io::Error),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {output}")]
    Systemctl {
        command: String,
        status: String,
        output: String,
    },
}

/// The unit's file name for these settings.
pub fn unit_name(settings: &Settings) -> String {
    let stem = settings
        .origin
        .file
        .as_deref()
        .filter(|file| default_path() != std::path::absolute(file).ok())
        .and_then(Path::file_stem)
        .and_then(|stem| stem.to_str());
    match stem {
        None => "sf-agent.service".to_owned(),
        Some(stem) => {
            let clean: String = stem
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            format!("sf-agent-{clean}.service")
        }
    }
}

/// One argument of `ExecStart=`, quoted for systemd where needed; `%` and
/// `$` are doubled so systemd expands neither.
fn quote(arg: &str) -> String {
    let escaped = arg.replace('%', "%%").replace('$', "$$");
    let plain = !escaped.is_empty()
        && !escaped
            .chars()
            .any(|c| c.is_whitespace() || "\"'\\;".contains(c) || c.is_control());
    if plain {
        return escaped;
    }
    let mut quoted = String::from("\"");
    for c in escaped.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string()
}

/// The agent's command line in the unit: `exe`, the config file, and each
/// setting given by a flag or an environment variable.
fn command_line(settings: &Settings, exe: &Path) -> Vec<String> {
    let mut args = vec![exe.display().to_string()];
    if let Some(file) = &settings.origin.file {
        args.extend(["--config".to_owned(), absolute(file)]);
    }
    let mut flag = |name: &str, value: Option<String>| {
        args.push(format!("--{name}"));
        args.extend(value);
    };
    for id in &settings.origin.given {
        let path = |p: &Option<PathBuf>| p.as_deref().map(absolute);
        match *id {
            "hub" => flag("hub", Some(settings.hub.join(","))),
            "dir" => flag("dir", path(&settings.dir)),
            "name" => flag("name", settings.name.clone()),
            "scan_interval" => flag(
                "scan-interval",
                settings.scan_interval.map(|s| s.to_string()),
            ),
            "poll" if settings.poll => flag("poll", None),
            "debounce_ms" => flag("debounce-ms", Some(settings.debounce_ms.to_string())),
            "state_home" => flag("state-home", path(&settings.state_home)),
            "token_file" => flag("token-file", path(&settings.token_file)),
            "ca_cert" => flag("ca-cert", path(&settings.ca_cert)),
            "no_notify" if settings.no_notify => flag("no-notify", None),
            _ => {}
        }
    }
    args
}

/// The unit for `settings`, running `exe`.
pub fn unit_text(settings: &Settings, exe: &Path) -> Result<String, ServiceError> {
    let dir = settings.dir.as_deref().ok_or(ServiceError::NoFolder)?;
    if settings.token_file.is_none() && settings.token_env.is_set() {
        return Err(ServiceError::TokenInEnv);
    }
    let exec: Vec<String> = command_line(settings, exe)
        .iter()
        .map(|a| quote(a))
        .collect();
    let name = unit_name(settings);
    Ok(format!(
        "# Written by `sf-agent install-service`; `sf-agent install-service --print` shows the\n\
         # unit for the current settings. Logs: journalctl --user -u {name}\n\
         [Unit]\n\
         Description=synced-folder agent for {}\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart={}\n\
         Restart=on-failure\n\
         RestartSec=10\n\
         # A wrong setting or a refused token: restarting cannot help.\n\
         RestartPreventExitStatus={EXIT_CONFIG}\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        absolute(dir).replace('%', "%%"),
        exec.join(" "),
    ))
}

/// `systemctl` on `PATH`.
fn systemctl() -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("systemctl"))
        .find(|path| path.is_file())
}

fn run(systemctl: &Path, args: &[&str]) -> Result<(), ServiceError> {
    let command = format!("systemctl {}", args.join(" "));
    let output =
        Command::new(systemctl)
            .args(args)
            .output()
            .map_err(|err| ServiceError::Systemctl {
                command: command.clone(),
                status: "not started".into(),
                output: err.to_string(),
            })?;
    if output.status.success() {
        return Ok(());
    }
    Err(ServiceError::Systemctl {
        command,
        status: output.status.to_string(),
        output: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    })
}

/// `sf-agent install-service [--print]`: the unit, or what was done.
pub fn install_service(settings: &Settings, print: bool) -> Result<String, ServiceError> {
    let exe = std::env::current_exe().map_err(ServiceError::NoExecutable)?;
    let unit = unit_text(settings, &exe)?;
    if print {
        return Ok(unit);
    }
    let systemctl = systemctl().ok_or(ServiceError::NoSystemctl)?;
    let dir = config_home()
        .ok_or(ServiceError::NoConfigHome)?
        .join("systemd")
        .join("user");
    let name = unit_name(settings);
    let path = dir.join(&name);
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ServiceError::Io { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let temp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&temp, &unit).map_err(io(&temp))?;
    std::fs::rename(&temp, &path).map_err(io(&path))?;
    run(&systemctl, &["--user", "daemon-reload"])?;
    run(&systemctl, &["--user", "enable", "--now", &name])?;
    Ok(format!(
        "wrote {}; enabled and started {name}: it runs at every login and restarts after a \
         failure.\n  logs:    journalctl --user -u {name}\n  stop:    systemctl --user disable \
         --now {name}\n  at boot, before login: loginctl enable-linger $USER\n",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Cli;
    use clap::CommandFactory;

    fn settings(config: &str, args: &[&str]) -> (tempfile::TempDir, Settings) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("work.toml");
        std::fs::write(&file, config).unwrap();
        let mut all = vec![
            "sf-agent",
            "install-service",
            "--config",
            file.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        let cli = Cli::load_from(Cli::command(), all).unwrap();
        let Some(crate::config::Command::InstallService { mut settings, .. }) = cli.command else {
            panic!("not install-service");
        };
        settings.token_env = crate::config::EnvToken::new(None);
        (dir, settings)
    }

    #[test]
    fn the_unit_runs_this_agent_on_the_config_file_and_restarts_on_failure() {
        let (dir, settings) = settings("dir = \"/srv/My Files\"\nhub = \"http://hub:8080\"\n", &[]);
        let unit = unit_text(&settings, Path::new("/usr/bin/sf-agent")).unwrap();
        let config = dir.path().join("work.toml");
        assert!(
            unit.contains(&format!(
                "\nExecStart=/usr/bin/sf-agent --config {}\n",
                config.display()
            )),
            "{unit}"
        );
        assert!(unit.contains("\nRestart=on-failure\n"), "{unit}");
        assert!(unit.contains("\nRestartPreventExitStatus=78\n"), "{unit}");
        assert!(unit.contains("\nWantedBy=default.target\n"), "{unit}");
        assert!(
            unit.contains("Description=synced-folder agent for /srv/My Files\n"),
            "{unit}"
        );
        assert_eq!(unit_name(&settings), "sf-agent-work.service");
    }

    #[test]
    fn flags_given_now_go_into_the_unit_quoted() {
        let (_dir, settings) = settings(
            "",
            &[
                "--dir",
                "/data/50% off",
                "--token-file",
                "/keys/my token",
                "--poll",
                "--name",
                "it's $HOME",
            ],
        );
        let unit = unit_text(&settings, Path::new("/opt/sf/sf-agent")).unwrap();
        let exec = unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .unwrap();
        assert!(
            exec.ends_with(
                " --dir \"/data/50%% off\" --name \"it's $$HOME\" --poll \
                 --token-file \"/keys/my token\""
            ),
            "{exec}"
        );
    }

    #[test]
    fn a_unit_needs_a_folder_and_a_token_in_a_file() {
        let (_dir, settings) = settings("", &[]);
        assert!(matches!(
            unit_text(&settings, Path::new("/x")),
            Err(ServiceError::NoFolder)
        ));
        let (_dir, mut settings) = settings_with_dir();
        settings.token_env = crate::config::EnvToken::new(Some("sft_x".into()));
        let err = unit_text(&settings, Path::new("/x")).unwrap_err();
        assert!(matches!(err, ServiceError::TokenInEnv), "{err}");
        assert!(!err.to_string().contains("sft_x"));
    }

    fn settings_with_dir() -> (tempfile::TempDir, Settings) {
        settings("dir = \"/d\"", &[])
    }
}
