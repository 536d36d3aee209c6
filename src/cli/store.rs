//! `reclaim store migrate`: copies one store's whole quarantine into another, empty one,
//! and says what it copied.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context;

use crate::config::Config;
use crate::launch::open_store;
use crate::store::migrate::migrate;

pub fn migrate_to(from_config: &Path, to_config: &Path, json: bool) -> anyhow::Result<()> {
    let from = Config::load(from_config)?;
    let to = Config::load(to_config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime.block_on(async {
        let source = open_store(&from)
            .await
            .with_context(|| format!("opening the store of {}", from_config.display()))?;
        let destination = open_store(&to)
            .await
            .with_context(|| format!("opening the store of {}", to_config.display()))?;
        anyhow::Ok(migrate(&source, &destination, "reclaim (store migrate)").await?)
    })?;
    if json {
        super::terminal::write_json(&mut super::stdout::lock(), &report)?;
    } else {
        writeln!(
            super::stdout::lock(),
            "copied {} messages ({} sealed bytes, every one's SHA-256 checked), {} holds, {} queued notices, {} audit records (both chains verified) from {} to {}",
            report.messages,
            report.sealed_bytes,
            report.held,
            report.notices,
            report.audit_records,
            from_config.display(),
            to_config.display()
        )?;
    }
    Ok(())
}
