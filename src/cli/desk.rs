//! `reclaim desk`: loads the reviewer's identity (asking its passphrase here, on the
//! terminal), starts the desk on loopback, prints its one-time URL (and a new one each
//! time a browser session ends) and serves until Ctrl-C.

use std::net::{Ipv4Addr, SocketAddr};

use anyhow::Context;

use crate::desk::{Bound, Limits, LoginFile};
use crate::review::ReviewContext;
use crate::review::filter::Filter;
use crate::review::listing;

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
    listing::fetch(&context, Some(1), &Filter::default())
        .context("the desk could not read the quarantine")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the desk's runtime")?;
    runtime.block_on(async move {
        let bound = Bound::bind(context, listen, limits).await?;
        let url = bound.url();
        say(&format!(
            "reclaim desk on {}\n\
             open this URL in your browser (it works once; Ctrl-C stops the desk):\n  {url}\n\
             press Enter here to end the browser session and get a new URL",
            bound.addr
        ));
        // The file must outlive the browser's read of it: it goes once the URL in it was
        // used, or when the desk stops.
        let mut login_file = if open { open_in_browser(&url) } else { None };
        let mut redemptions = bound.redemptions();
        let mut urls = bound.urls();
        let control = bound.control();
        std::thread::spawn(move || {
            // Blocking reads of the terminal; ends with stdin (none under a service).
            for line in std::io::stdin().lines() {
                if line.is_err() {
                    break;
                }
                control.end_session();
            }
        });
        let shutdown = tokio_util::sync::CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            stop.cancel();
        });
        let serving = tokio::spawn(bound.serve(shutdown.clone()));
        loop {
            tokio::select! {
                changed = urls.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let url = urls.borrow_and_update().clone();
                    say(&format!("the browser session ended; a new one-time URL:\n  {url}"));
                }
                changed = redemptions.changed(), if login_file.is_some() => {
                    if changed.is_ok() {
                        login_file = None;
                    }
                }
                () = shutdown.cancelled() => break,
            }
        }
        drop(login_file);
        serving
            .await
            .map_err(|e| anyhow::anyhow!("the desk stopped: {e}"))??;
        Ok(())
    })
}

/// Tells the terminal. A terminal that went away (closed, or a pipe whose reader quit)
/// does not stop the desk, whose browser session may still be in use.
fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}

/// Hands the URL to the desktop's browser through a file only this user can read: an
/// argument to `xdg-open` would be readable by every local user in /proc.
fn open_in_browser(url: &str) -> Option<LoginFile> {
    let file = match LoginFile::create(&LoginFile::default_parent(), url) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("could not write the login file ({e}); open the URL yourself");
            return None;
        }
    };
    // Best effort: without a desktop the URL above is the way in.
    let opener = std::env::var_os("RECLAIM_DESK_OPENER").unwrap_or_else(|| "xdg-open".into());
    match std::process::Command::new(&opener)
        .arg(file.path())
        .stdin(std::process::Stdio::null())
        .spawn()
    {
        Ok(_) => Some(file),
        Err(e) => {
            eprintln!(
                "could not run {} ({e}); open the URL yourself",
                opener.to_string_lossy()
            );
            None
        }
    }
}
