//! `reclaim desk`: loads the reviewer's identity (asking its passphrase here, on the
//! terminal), starts the desk on loopback, prints its one-time URL and serves until
//! Ctrl-C.

use std::net::{Ipv4Addr, SocketAddr};

use anyhow::Context;

use super::ReviewContext;
use super::filter::Filter;
use super::list;
use crate::desk::{Bound, Limits};

pub fn run(
    context: ReviewContext,
    listen: Option<SocketAddr>,
    open: bool,
    limits: Limits,
) -> anyhow::Result<()> {
    let listen = listen.unwrap_or_else(|| SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    if !listen.ip().is_loopback() {
        anyhow::bail!(crate::desk::DeskError::NotLoopback(listen));
    }
    // Decrypting one summary now asks for a protected identity's passphrase while the
    // terminal is the reviewer's, and proves the admin API and the identity fit.
    context.identities()?;
    list::fetch(&context, Some(1), &Filter::default())
        .context("the desk could not read the quarantine")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the desk's runtime")?;
    runtime.block_on(async move {
        let bound = Bound::bind(context, listen, limits).await?;
        let url = bound.url();
        println!("reclaim desk on {}", bound.addr);
        println!("open this URL in your browser (it works once; Ctrl-C stops the desk):");
        println!("  {url}");
        if open {
            // Best effort: without a desktop the URL above is the way in.
            if let Err(e) = std::process::Command::new("xdg-open").arg(&url).spawn() {
                eprintln!("could not run xdg-open ({e}); open the URL yourself");
            }
        }
        let shutdown = tokio_util::sync::CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            stop.cancel();
        });
        bound.serve(shutdown).await?;
        Ok(())
    })
}
