//! `reclaim store migrate`: copies one store's whole quarantine into another, empty one,
//! and says what it copied.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context;

use crate::config::{Config, StoreBackend};
use crate::launch::{LaunchError, open_embedded, open_postgres};
use crate::store::QuarantineStore;
use crate::store::migrate::{MigrationReport, migrate};

pub fn migrate_to(from_config: &Path, to_config: &Path, json: bool) -> anyhow::Result<()> {
    let from = Config::load(from_config)?;
    let to = Config::load(to_config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let paths = (from_config, to_config);
    let report = runtime.block_on(async {
        use StoreBackend::{Embedded, Postgres};
        match (&from.store.backend, &to.store.backend) {
            (Embedded, Embedded) => copy(open_embedded(&from), open_embedded(&to), paths).await,
            (Embedded, Postgres(b)) => {
                copy(open_embedded(&from), open_postgres(&to, b), paths).await
            }
            (Postgres(a), Embedded) => {
                copy(open_postgres(&from, a), open_embedded(&to), paths).await
            }
            (Postgres(a), Postgres(b)) => {
                copy(open_postgres(&from, a), open_postgres(&to, b), paths).await
            }
        }
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

/// Opens the source, then the destination (each named by its config file's path in an
/// error), and copies the one into the other.
async fn copy<A: QuarantineStore, B: QuarantineStore>(
    source: impl Future<Output = Result<A, LaunchError>>,
    destination: impl Future<Output = Result<B, LaunchError>>,
    (from_config, to_config): (&Path, &Path),
) -> anyhow::Result<MigrationReport> {
    let source = source
        .await
        .with_context(|| format!("opening the store of {}", from_config.display()))?;
    let destination = destination
        .await
        .with_context(|| format!("opening the store of {}", to_config.display()))?;
    Ok(migrate(&source, &destination, "reclaim (store migrate)").await?)
}
