//! `reclaim export`: fetches sealed files (each fetch recorded with its reason) and
//! decrypts them on this side: one message, or every match into an mbox or a folder.
//! Where plaintext may land is decided in [`super::output`].

use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::output::{self, Destination};
use crate::review::filter::Filter;
use crate::review::{ReviewContext, export, listing, parse_id};
use crate::store::MessageId;

/// Where a bulk export goes.
pub enum Target<'a> {
    Mbox(&'a Path),
    Dir(&'a Path),
}

/// `export ID [-o FILE|-]`: streams one message.
pub fn one(
    context: &ReviewContext,
    id: &str,
    output: Option<&Path>,
    force: bool,
    reason: &str,
) -> anyhow::Result<()> {
    let id = parse_id(id)?;
    // Decided before anything is fetched, so a refused write leaves no fetch in the audit.
    let target = match output::destination(output, std::io::stdout().is_terminal())? {
        Destination::File(path) => Some((output::create(path, force)?, path)),
        Destination::Stdout => None,
    };
    let mut plaintext = export::open(context, id, reason)?;
    match target {
        Some((mut file, path)) => {
            std::io::copy(&mut plaintext, &mut file)
                .with_context(|| format!("decrypting message {id} into {}", path.display()))?;
            file.commit()?;
        }
        None => {
            let mut out = super::stdout::lock();
            std::io::copy(&mut plaintext, &mut out)
                .with_context(|| format!("decrypting message {id}"))?;
            out.flush()?;
        }
    }
    Ok(())
}

/// `export --mbox FILE` / `--dir DIR`: every message that matches, oldest first.
pub fn bulk(
    context: &ReviewContext,
    target: Target<'_>,
    filter: &Filter,
    force: bool,
    reason: &str,
) -> anyhow::Result<()> {
    let mut listed = listing::fetch(context, None, filter)?;
    listed.reverse();
    let mut mbox_out = match target {
        Target::Mbox(path) => Some((BufWriter::new(output::create(path, force)?), path)),
        Target::Dir(dir) => {
            output::create_dir(dir)?;
            // Every target is checked before the first message is fetched.
            for m in &listed {
                output::check_target(&dir.join(format!("{}.eml", m.id)), force)?;
            }
            None
        }
    };
    let progress = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(listed.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    progress.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} messages {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    for m in &listed {
        let id: MessageId = m.id.parse().map_err(anyhow::Error::msg)?;
        match (&mut mbox_out, &target) {
            (Some((out, path)), _) => {
                export::append_mbox(context, m, out, reason)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            (None, Target::Dir(dir)) => {
                let plain = export::fetch_plain(context, id, "export", reason)?;
                let path: PathBuf = dir.join(format!("{id}.eml"));
                let mut file = output::create(&path, force)?;
                file.write_all(&plain)
                    .with_context(|| format!("writing {}", path.display()))?;
                file.commit()?;
            }
            (None, Target::Mbox(_)) => {}
        }
        progress.inc(1);
    }
    if let Some((out, path)) = mbox_out {
        out.into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", path.display()))?
            .commit()?;
    }
    progress.finish_and_clear();
    eprintln!("exported {} message(s)", listed.len());
    Ok(())
}
