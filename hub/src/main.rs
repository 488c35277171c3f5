//! `sf-hub`: parses settings, binds listeners, runs the hub until SIGINT or
//! SIGTERM; or runs a `token` command or `check`.

use std::io::IsTerminal;

use anyhow::Context;
use clap::Parser;
use sf_hub::config::{Cli, Command};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let Cli {
        command,
        mut settings,
    } = Cli::parse();
    // From the environment only, so secrets never show in `ps`.
    settings.read_secrets_from_env();
    match command {
        Some(Command::Token { action }) => {
            let output = sf_hub::token_cli::run(&settings, action)
                .await
                .context("sf-hub token failed")?;
            print!("{output}");
            return Ok(());
        }
        Some(Command::Check { repair }) => {
            let report = sf_hub::check::run_with(&settings, repair)
                .await
                .context("sf-hub check failed")?;
            print!("{report}");
            std::process::exit(if report.is_consistent() { 0 } else { 1 });
        }
        None => {}
    }
    let api_addr = settings.listen_addr().map_err(anyhow::Error::msg)?;
    let metrics_addr = settings.metrics_addr().map_err(anyhow::Error::msg)?;
    let api = TcpListener::bind(api_addr).await.with_context(|| {
        format!("cannot listen on {api_addr} (--listen); is another hub running?")
    })?;
    let metrics = TcpListener::bind(metrics_addr).await.with_context(|| {
        format!("cannot listen on {metrics_addr} (--metrics-listen); is another hub running?")
    })?;
    sf_hub::launch(settings, api, metrics, shutdown_signal())
        .await
        .context("sf-hub stopped")
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
        _ = interrupt => tracing::info!("interrupted; shutting down"),
        _ = terminate => tracing::info!("terminated; shutting down"),
    }
}
