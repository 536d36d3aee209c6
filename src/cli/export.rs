//! `reclaim export`: fetches sealed files (each fetch recorded with its reason) and
//! decrypts them on this side: one message, or every match into an mbox or a folder.

use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::filter::Filter;
use super::list;
use super::mbox;
use super::{ReviewContext, parse_id};
use crate::admin::http::percent_encode;
use crate::store::MessageId;

/// Where a bulk export goes.
pub enum Target<'a> {
    Mbox(&'a Path),
    Dir(&'a Path),
}

/// The sealed-file path of the admin API, with purpose and reason for the audit trail.
pub fn sealed_path(id: MessageId, purpose: &str, reason: &str) -> String {
    format!(
        "/v1/messages/{id}/sealed?purpose={purpose}&reason={}",
        percent_encode(reason)
    )
}

/// Fetches and decrypts one whole message into memory.
pub fn fetch_plain(
    context: &ReviewContext,
    id: MessageId,
    purpose: &str,
    reason: &str,
) -> anyhow::Result<Vec<u8>> {
    let sealed = context.client.get(&sealed_path(id, purpose, reason))?;
    let mut plain = Vec::new();
    context
        .identities()?
        .open_buffered(BufReader::new(sealed))
        .and_then(|mut r| Ok(r.read_to_end(&mut plain)?))
        .with_context(|| format!("cannot decrypt message {id} (is this the right identity?)"))?;
    Ok(plain)
}

/// Creates a file readable by the reviewer only: it holds quarantined plaintext.
fn private_file(path: &Path) -> anyhow::Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// `export ID [-o FILE]`: streams one message.
pub fn one(
    context: &ReviewContext,
    id: &str,
    output: Option<&Path>,
    reason: &str,
) -> anyhow::Result<()> {
    let id = parse_id(id)?;
    let sealed = context.client.get(&sealed_path(id, "export", reason))?;
    let mut plaintext = context
        .identities()?
        .open_buffered(BufReader::new(sealed))
        .with_context(|| format!("cannot decrypt message {id} (is this the right identity?)"))?;
    match output {
        Some(path) => {
            let mut file = private_file(path)?;
            std::io::copy(&mut plaintext, &mut file)
                .with_context(|| format!("decrypting message {id} into {}", path.display()))?;
            file.sync_all()?;
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
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
    reason: &str,
) -> anyhow::Result<()> {
    let mut listed = list::fetch(context, None, filter)?;
    listed.reverse();
    let progress = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(listed.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    progress.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} messages {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut mbox_out = match target {
        Target::Mbox(path) => Some((BufWriter::new(private_file(path)?), path)),
        Target::Dir(dir) => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            None
        }
    };
    for m in &listed {
        let id: MessageId = m.id.parse().map_err(anyhow::Error::msg)?;
        let plain = fetch_plain(context, id, "export", reason)?;
        match (&mut mbox_out, &target) {
            (Some((out, path)), _) => {
                let date = mbox::separator_date(m.received_unix);
                mbox::write_message(out, &m.mail_from, &date, &plain)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            (None, Target::Dir(dir)) => {
                let path: PathBuf = dir.join(format!("{id}.eml"));
                let mut file = private_file(&path)?;
                file.write_all(&plain)
                    .and_then(|()| file.sync_all())
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            (None, Target::Mbox(_)) => {}
        }
        progress.inc(1);
    }
    if let Some((out, path)) = mbox_out {
        let file = out
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", path.display()))?;
        file.sync_all()?;
    }
    progress.finish_and_clear();
    eprintln!("exported {} message(s)", listed.len());
    Ok(())
}
