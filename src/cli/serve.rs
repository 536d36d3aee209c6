//! `reclaim serve`: runs the gateway until SIGTERM or SIGINT.

use std::path::Path;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::launch::launch;

pub fn run(config_path: &Path) -> anyhow::Result<()> {
    let config = Config::load(config_path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let running = launch(&config, shutdown.clone()).await?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        }
        shutdown.cancel();
        let _ = running.task.await;
        tracing::info!("stopped");
        Ok(())
    })
}
