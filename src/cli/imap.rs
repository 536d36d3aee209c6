//! `reclaim imap`: loads the reviewer's identity (asking its passphrase here, on the
//! terminal), starts the IMAP server on loopback, prints its address and the password of
//! this run, and serves until Ctrl-C.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::imap::{Bound, ImapError, Limits, Review};
use crate::review::ReviewContext;
use crate::review::filter::Filter;
use crate::review::listing;

pub fn run(
    context: ReviewContext,
    listen: Option<SocketAddr>,
    state: Option<&Path>,
    reason: &str,
    limits: Limits,
) -> anyhow::Result<()> {
    let listen = listen.unwrap_or_else(|| SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    if !listen.ip().is_loopback() {
        anyhow::bail!(ImapError::NotLoopback(listen));
    }
    if reason.trim().is_empty() {
        anyhow::bail!("--reason must say why the quarantine is read");
    }
    let state = match state {
        Some(dir) => dir.to_owned(),
        None => default_state_dir()?,
    };
    // As the desk: a protected identity's passphrase is asked now, while the terminal is
    // the reviewer's, and one summary proves the admin API and the identity fit.
    context.identities()?;
    listing::fetch(&context, Some(1), &Filter::default())
        .context("reclaim imap could not read the quarantine")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the IMAP server's runtime")?;
    runtime.block_on(async move {
        let quarantine = Box::new(Review::new(context, reason));
        let bound = Bound::bind(quarantine, &state, listen, limits).await?;
        say(&format!(
            "reclaim imap on {addr}\n\
             IMAP server: {ip}, port {port}, no encryption (loopback only), normal password\n\
             user name: any\n\
             password (for this run only): {password}\n\
             every message a client opens is an audited read with reason {reason:?}; Ctrl-C stops",
            addr = bound.addr,
            ip = bound.addr.ip(),
            port = bound.addr.port(),
            password = bound.password(),
        ));
        let shutdown = tokio_util::sync::CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            stop.cancel();
        });
        bound.serve(shutdown).await;
        Ok(())
    })
}

/// `$XDG_STATE_HOME/reclaim`, else `~/.local/state/reclaim`.
fn default_state_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("reclaim"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("no HOME and no XDG_STATE_HOME: pass --state DIR")?;
    Ok(PathBuf::from(home).join(".local/state/reclaim"))
}

/// Tells the terminal; a terminal that went away does not stop the server.
fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}
