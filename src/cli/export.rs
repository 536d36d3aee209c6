//! `reclaim export ID`: fetches the sealed file and decrypts it on this side.

use std::io::{BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;

use super::ReviewContext;
use crate::store::MessageId;

pub fn run(context: &ReviewContext, id: &str, output: Option<&Path>) -> anyhow::Result<()> {
    let id: MessageId = id.parse().map_err(anyhow::Error::msg)?;
    let sealed = context.client.get(&format!("/v1/messages/{id}/sealed"))?;
    let mut plaintext = context
        .identities
        .open_buffered(BufReader::new(sealed))
        .with_context(|| format!("cannot decrypt message {id} (is this the right identity?)"))?;
    match output {
        Some(path) => {
            // Plaintext of a quarantined message: readable by the reviewer only.
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
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
