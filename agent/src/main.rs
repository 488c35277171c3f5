//! `sf-agent`: runs the sync loop until SIGINT/SIGTERM, or prints `status`.

use std::io::IsTerminal;

use anyhow::Context;
use clap::Parser;
use sf_agent::config::{Cli, Command};
use tracing_subscriber::EnvFilter;

mod allocator;

fn main() -> anyhow::Result<()> {
    // Before the runtime starts its threads (see `allocator`).
    allocator::limit_arenas();
    let cli = Cli::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(Command::Status { dir }) = cli.command {
        let report = sf_agent::status::report(&dir)
            .await
            .with_context(|| format!("cannot read the sync state of {}", dir.display()))?;
        print!("{report}");
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(sf_agent::progress::log_writer())
        .init();
    sf_agent::run(cli.run, shutdown_signal())
        .await
        .context("sf-agent stopped")
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
