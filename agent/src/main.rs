//! `sf-agent`: runs the sync loop until SIGINT/SIGTERM, or one of the
//! commands (`status`, `history`, `restore`, `conflicts`, `trash`,
//! `install-service`).
//!
//! Exit status: 0 on success, 78 (`EX_CONFIG`) when a setting or the
//! token is wrong (the systemd unit does not restart on it), 1 otherwise.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use sf_agent::commands::{self, Report};
use sf_agent::config::{Cli, Command, LoadError};
use sf_agent::{AgentError, desktop};
use tracing_subscriber::EnvFilter;

mod allocator;

fn main() -> ExitCode {
    // Before the runtime starts its threads (see `allocator`, and
    // `render`: the local time zone is read only while there is one).
    allocator::limit_arenas();
    commands::render::remember_local_offset();
    let cli = match Cli::load() {
        Ok(cli) => cli,
        Err(LoadError::Usage(err)) => err.exit(),
        Err(err) => return fail(&anyhow::Error::from(err), true),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            return fail(
                &anyhow::Error::from(err).context("cannot start the async runtime"),
                false,
            );
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err((err, config)) => fail(&err, config),
    }
}

/// Prints `err` as anyhow does at the edge, and the exit status for it.
fn fail(err: &anyhow::Error, config: bool) -> ExitCode {
    eprintln!("Error: {err:?}");
    if config {
        ExitCode::from(commands::EXIT_CONFIG)
    } else {
        ExitCode::FAILURE
    }
}

fn init_logs(default: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(sf_agent::progress::log_writer())
        .init();
}

fn print(report: Report, json: bool) {
    if json {
        println!("{}", report.json());
    } else {
        print!("{}", report.text());
    }
}

/// Runs the command; an error comes with whether it is a settings or
/// token mistake.
async fn run(cli: Cli) -> Result<(), (anyhow::Error, bool)> {
    let plain = |err: anyhow::Error| (err, false);
    let Some(command) = cli.command else {
        init_logs("info");
        let notifier = desktop::Notifier::new(cli.run.notify());
        let result = sf_agent::run(cli.run, shutdown_signal()).await;
        return result.map_err(|err| {
            notifier.send("synced-folder agent stopped", &err.to_string());
            let config = matches!(
                err,
                AgentError::NoFolder | AgentError::Credentials(_) | AgentError::Unauthorized(_)
            );
            (anyhow::Error::from(err).context("sf-agent stopped"), config)
        });
    };
    // Commands print warnings only (an http:// hub with a token, …).
    init_logs("warn");
    let command_error = |what: String| {
        move |err: commands::CommandError| {
            let is_config = err.is_setting();
            (anyhow::Error::from(err).context(what), is_config)
        }
    };
    match command {
        Command::Status { at } => {
            let dir = at.dir.ok_or_else(|| {
                (
                    anyhow::anyhow!(
                        "no folder given: pass --dir, set SYNC_DIR, or set `dir` in the config file"
                    ),
                    true,
                )
            })?;
            let report = sf_agent::status::report(&dir)
                .await
                .with_context(|| format!("cannot read the sync state of {}", dir.display()))
                .map_err(plain)?;
            print!("{report}");
        }
        Command::History { at, path, json } => {
            let report = commands::history(&at, &path)
                .await
                .map_err(command_error(format!(
                    "cannot list the history of {}",
                    path.display()
                )))?;
            print(report, json);
        }
        Command::Restore {
            at,
            path,
            version,
            json,
        } => {
            let report = commands::restore(&at, &path, version)
                .await
                .map_err(command_error(format!("cannot restore {}", path.display())))?;
            print(report, json);
        }
        Command::Conflicts {
            at,
            keep,
            path,
            json,
        } => {
            let what = match &path {
                Some(path) if keep.is_some() => {
                    format!("cannot resolve the conflict of {}", path.display())
                }
                _ => "cannot list the conflict copies".to_owned(),
            };
            let report =
                commands::conflicts(&at, keep, path.as_deref()).map_err(command_error(what))?;
            print(report, json);
        }
        Command::Trash {
            at,
            restore,
            to,
            json,
        } => {
            let what = match &restore {
                Some(path) => format!("cannot restore {} from the trash", path.display()),
                None => "cannot list the trash".to_owned(),
            };
            let report = commands::trash(&at, restore.as_deref(), to.as_deref())
                .map_err(command_error(what))?;
            print(report, json);
        }
        Command::InstallService { settings, print } => {
            let out = commands::install_service(&settings, print).map_err(|err| {
                use commands::ServiceError as E;
                let is_config = matches!(err, E::NoFolder | E::TokenInEnv);
                (
                    anyhow::Error::from(err).context("cannot install the service"),
                    is_config,
                )
            })?;
            print!("{out}");
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!("interrupted; finishing the current step"),
        _ = terminate => tracing::info!("terminated; finishing the current step"),
    }
}
