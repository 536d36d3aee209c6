//! Copying a whole quarantine from one store to another (embedded to PostgreSQL or back):
//! every message with its id, metadata, sealed summary and hold, its queued notice, and
//! the audit trail. Every sealed message's SHA-256 is checked on the other side, and both
//! audit chains are verified. The destination must be empty; the source is only read.

use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::audit::ChainVerifier;
use super::{AuditEntry, MessageId, NoticePlan, QuarantineStore, StagedMessage, StoreError};
use crate::clock::unix_now;

/// Messages listed per page while copying.
const PAGE: usize = 500;
/// Audit records read per page.
const AUDIT_PAGE: usize = 1000;

/// Why a migration stopped. Nothing is removed from the source in any case.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the destination is not empty ({messages} messages, {audit} audit records)")]
    NotEmpty { messages: u64, audit: usize },
    #[error("reading sealed message {id}: {source}")]
    Read {
        id: MessageId,
        source: std::io::Error,
    },
    #[error("message {id} vanished from the {side} while it was copied")]
    Vanished { id: MessageId, side: &'static str },
    #[error("message {id} differs after the copy (SHA-256 {from} before, {to} after)")]
    Hash {
        id: MessageId,
        from: String,
        to: String,
    },
    #[error("the {side} audit chain does not verify: {reason}")]
    Chain { side: &'static str, reason: String },
}

/// What a migration did.
#[derive(Debug, Default, serde::Serialize)]
pub struct MigrationReport {
    pub messages: u64,
    pub sealed_bytes: u64,
    pub held: u64,
    pub notices: u64,
    pub audit_records: u64,
}

/// Lower-case hex of a digest.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads one sealed message to its end, handing each piece to `each`; returns its SHA-256
/// and size.
async fn hash_through(
    store: &impl QuarantineStore,
    id: MessageId,
    side: &'static str,
    mut each: impl AsyncFnMut(&[u8]) -> Result<(), MigrateError>,
) -> Result<(String, u64), MigrateError> {
    let mut sealed = store
        .read_sealed(id)
        .await?
        .ok_or(MigrateError::Vanished { id, side })?;
    let mut hash = Sha256::new();
    let mut size = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = sealed
            .reader
            .read(&mut buf)
            .await
            .map_err(|source| MigrateError::Read { id, source })?;
        if n == 0 {
            return Ok((hex(&hash.finalize()), size));
        }
        hash.update(&buf[..n]);
        size += n as u64;
        each(&buf[..n]).await?;
    }
}

/// Streams one sealed message from `from` into `staged`; returns its SHA-256 and size.
async fn copy_sealed<A: QuarantineStore>(
    from: &A,
    id: MessageId,
    staged: &mut impl StagedMessage,
) -> Result<(String, u64), MigrateError> {
    hash_through(from, id, "source", async |piece: &[u8]| {
        Ok(staged.write(piece.to_vec()).await?)
    })
    .await
}

/// The SHA-256 of a stored sealed message.
async fn sealed_hash<S: QuarantineStore>(store: &S, id: MessageId) -> Result<String, MigrateError> {
    let (hash, _) = hash_through(store, id, "destination", async |_: &[u8]| Ok(())).await?;
    Ok(hash)
}

/// Reads a whole audit trail, verifying its chain; returns the entries in order.
async fn audit_entries<S: QuarantineStore>(
    store: &S,
    side: &'static str,
) -> Result<Vec<AuditEntry>, MigrateError> {
    let mut entries = Vec::new();
    let mut after = 0;
    let mut verifier = None;
    let head = loop {
        let page = store.audit_page(after, AUDIT_PAGE).await?;
        let chain = verifier.get_or_insert_with(|| ChainVerifier::new(page.anchor.as_ref()));
        for raw in &page.records {
            let record = chain
                .push(raw.as_bytes())
                .map_err(|reason| MigrateError::Chain { side, reason })?;
            entries.push(record.entry);
        }
        match page.next_after {
            Some(next) => after = next,
            None => break page.head,
        }
    };
    verifier
        .unwrap_or_else(|| ChainVerifier::new(None))
        .finish(head.as_deref())
        .map_err(|reason| MigrateError::Chain { side, reason })?;
    Ok(entries)
}

/// Copies everything in `from` into the empty store `to`, and records the migration in
/// the destination's audit trail.
pub async fn migrate<A: QuarantineStore, B: QuarantineStore>(
    from: &A,
    to: &B,
    who: &str,
) -> Result<MigrationReport, MigrateError> {
    let existing = to.count().await?;
    let existing_audit = to.audit_page(0, 1).await?.records.len();
    if existing > 0 || existing_audit > 0 {
        return Err(MigrateError::NotEmpty {
            messages: existing,
            audit: existing_audit,
        });
    }
    let audit = audit_entries(from, "source").await?;
    let mut report = MigrationReport::default();
    let mut before = None;
    loop {
        let (entries, next) = from.list(before, PAGE, &Default::default()).await?;
        for entry in entries {
            let id = entry.id;
            let mut staged = to.create_blob(id).await?;
            let (hash, size) = copy_sealed(from, id, &mut staged).await?;
            to.commit(
                staged,
                entry.meta,
                entry.sealed_summary,
                NoticePlan::default(),
            )
            .await?;
            if entry.held {
                to.set_hold(id, true, unix_now()).await?;
                report.held += 1;
            }
            let copied = sealed_hash(to, id).await?;
            if copied != hash {
                return Err(MigrateError::Hash {
                    id,
                    from: hash,
                    to: copied,
                });
            }
            report.messages += 1;
            report.sealed_bytes += size;
        }
        match next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    // Every notice still queued, however far off its next attempt. (On a shared source
    // this claims them: the source is not to run again once migrated.)
    for (id, item) in from.outbox_due(i64::MAX / 2, usize::MAX, &[]).await? {
        to.outbox_restore(id, &item).await?;
        report.notices += 1;
    }
    for entry in audit {
        to.audit(entry).await?;
        report.audit_records += 1;
    }
    to.audit(AuditEntry {
        time: unix_now(),
        who: who.to_owned(),
        action: "store-migrate".into(),
        detail: Some(format!(
            "copied {} messages, {} notices and {} audit records from another store",
            report.messages, report.notices, report.audit_records
        )),
        status: 200,
        ..AuditEntry::default()
    })
    .await?;
    audit_entries(to, "destination").await?;
    Ok(report)
}
