//! `reclaim serve`: runs the gateway until SIGTERM or SIGINT.

use std::path::Path;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::launch::launch;

/// The umask the gateway runs under. Every file and socket it makes names its mode, but a
/// library that creates one without (or a future one) must not fall back to whatever the
/// operator's shell had (umask 000 makes them world-writable). Set before any thread
/// exists, since the umask is one per process.
const SERVE_UMASK: u32 = 0o077;

pub fn run(config_path: &Path) -> anyhow::Result<()> {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(SERVE_UMASK));
    let config = Config::load(config_path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let running = launch(&config, shutdown.clone()).await?;
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut hangup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
        loop {
            tokio::select! {
                _ = term.recv() => {
                    tracing::info!("SIGTERM: shutting down");
                    break;
                }
                _ = tokio::signal::ctrl_c() => {
                    tracing::info!("SIGINT: shutting down");
                    break;
                }
                _ = hangup.recv() => match &running.tls {
                    Some(tls) => match tls.reload() {
                        Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                        Err(error) => tracing::error!(%error, "SIGHUP: TLS reload failed; keeping the old certificate"),
                    },
                    None => tracing::info!("SIGHUP: no [tls] configured, nothing to reload"),
                },
            }
        }
        shutdown.cancel();
        let _ = running.task.await;
        tracing::info!("stopped");
        Ok(())
    })
}
