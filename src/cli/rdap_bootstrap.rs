//! `reclaim rdap-bootstrap`: fetches a current copy of IANA's RDAP bootstrap file for DNS
//! and puts it where `[rdap] bootstrap` reads it, so that the registration watch knows
//! every registry's RDAP service (the copy built into reclaim covers a few TLDs only).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::{Config, DnsResolver};
use crate::rdap::bootstrap::{self, Fetched, MAX_BOOTSTRAP_SIZE};

pub fn run(config_path: &Path, url: Option<&str>, output: Option<&Path>) -> anyhow::Result<()> {
    let config = Config::load(config_path)?;
    let target: PathBuf = match (output, &config.rdap.bootstrap) {
        (Some(path), _) => path.to_owned(),
        (None, Some(path)) => path.clone(),
        (None, None) => anyhow::bail!(
            "where should the file go? Set [rdap] bootstrap in {} (lookups read it from there) or give --output",
            config_path.display()
        ),
    };
    // The rule of every RDAP request: with DNS off or a fixed table, reclaim sends nothing
    // to a place the operator did not name.
    let url = match url {
        Some(url) => url.to_owned(),
        None if matches!(config.dns, DnsResolver::Off | DnsResolver::Static(_)) => {
            anyhow::bail!(
                "[dns] is off or a fixed table in {}: give the bootstrap file's URL with --url (IANA's is {})",
                config_path.display(),
                bootstrap::IANA_URL
            )
        }
        None => bootstrap::IANA_URL.to_owned(),
    };
    let client = crate::rdap::Client::new(config.rdap.timeout, MAX_BOOTSTRAP_SIZE)
        .context("setting up the HTTP client")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let fetched = runtime
        .block_on(bootstrap::fetch(&client, &url))
        .with_context(|| format!("fetching {url}; {} is unchanged", target.display()))?;
    write_atomically(&target, &fetched).with_context(|| format!("writing {}", target.display()))?;
    writeln!(
        super::stdout::lock(),
        "{}: {} top-level domain(s), published {}",
        target.display(),
        fetched.labels,
        fetched.publication.as_deref().unwrap_or("(no date given)")
    )?;
    if output.is_some_and(|o| config.rdap.bootstrap.as_deref() != Some(o)) {
        writeln!(
            super::stdout::lock(),
            "note: lookups read [rdap] bootstrap, which does not name this file; set it there to use it"
        )?;
    }
    Ok(())
}

/// Replaces `target` whole or not at all: a lookup reading it meanwhile sees the old file
/// or the new one, and a crash leaves one of them.
fn write_atomically(target: &Path, fetched: &Fetched) -> std::io::Result<()> {
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map_or_else(|| "bootstrap".into(), |n| n.to_string_lossy().into_owned());
    let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(fetched.text.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::rename(&temporary, target)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}
