//! The store a gateway runs on, chosen at launch from `[store] backend`: one type for the
//! rest of the gateway (message path, notice worker, purger, admin API), which hands every
//! operation to the backend behind it.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::backend::{Expiry, Sealed};
use super::postgres::{PgStaged, PgStore};
use super::{
    AuditEntry, AuditPage, Entry, ListFilter, MessageId, MessageMeta, NoticeOutcome, NoticePlan,
    OutboxItem, PurgeReport, QuarantineStore, RateLimits, Stage, StagedMessage, Stats, Store,
    StoreError,
};
use crate::capacity::StorageState;

/// The quarantine store behind a running gateway.
pub enum Backend {
    /// redb index plus sealed files on this machine.
    Embedded(Store),
    /// One quarantine shared by several nodes on PostgreSQL.
    Postgres(PgStore),
}

/// A message being received into whichever backend runs.
pub enum Staging {
    Embedded(Stage),
    Postgres(PgStaged),
}

/// Runs the same expression on whichever store is behind `$backend`.
macro_rules! each {
    ($backend:expr, $store:ident => $body:expr) => {
        match $backend {
            Backend::Embedded($store) => $body,
            Backend::Postgres($store) => $body,
        }
    };
}

impl StagedMessage for Staging {
    fn id(&self) -> MessageId {
        match self {
            Staging::Embedded(blob) => blob.id(),
            Staging::Postgres(staged) => staged.id(),
        }
    }

    async fn write(&mut self, sealed: Vec<u8>) -> Result<(), StoreError> {
        match self {
            Staging::Embedded(blob) => blob.write(sealed).await,
            Staging::Postgres(staged) => staged.write(sealed).await,
        }
    }
}

impl QuarantineStore for Backend {
    type Staged = Staging;

    async fn create_blob(&self, id: MessageId) -> Result<Staging, StoreError> {
        match self {
            Backend::Embedded(store) => store.create_blob(id).await.map(Staging::Embedded),
            Backend::Postgres(store) => store.create_blob(id).await.map(Staging::Postgres),
        }
    }

    async fn commit(
        &self,
        staged: Staging,
        meta: MessageMeta,
        sealed_summary: Vec<u8>,
        notices: NoticePlan,
    ) -> Result<(MessageId, NoticeOutcome), StoreError> {
        match (self, staged) {
            (Backend::Embedded(store), Staging::Embedded(blob)) => {
                store.commit(blob, meta, sealed_summary, notices).await
            }
            (Backend::Postgres(store), Staging::Postgres(staged)) => {
                store.commit(staged, meta, sealed_summary, notices).await
            }
            // Both come from the same backend, which never changes while running.
            _ => Err(StoreError::Closed),
        }
    }

    fn pair_key(&self, sender: &str, retired_address: &str) -> [u8; 32] {
        each!(self, s => s.pair_key(sender, retired_address))
    }

    fn sender_key(&self, sender: &str) -> [u8; 32] {
        each!(self, s => s.sender_key(sender))
    }

    fn organisation_key(&self, organisation: &str) -> [u8; 32] {
        each!(self, s => s.organisation_key(organisation))
    }

    fn storage(&self) -> Arc<StorageState> {
        each!(self, s => s.storage())
    }

    async fn refresh_capacity(&self) -> Result<(), StoreError> {
        each!(self, s => s.refresh_capacity().await)
    }

    async fn outbox_due(
        &self,
        now: i64,
        limit: usize,
        skip: &[MessageId],
    ) -> Result<Vec<(MessageId, OutboxItem)>, StoreError> {
        each!(self, s => s.outbox_due(now, limit, skip).await)
    }

    async fn outbox_next_due(&self, skip: &[MessageId]) -> Result<Option<i64>, StoreError> {
        each!(self, s => s.outbox_next_due(skip).await)
    }

    async fn outbox_settle(
        &self,
        id: MessageId,
        claimed: &OutboxItem,
        next: Option<&OutboxItem>,
        outcome: &str,
    ) -> Result<(), StoreError> {
        each!(self, s => s.outbox_settle(id, claimed, next, outcome).await)
    }

    async fn outbox_restore(&self, id: MessageId, item: &OutboxItem) -> Result<(), StoreError> {
        each!(self, s => s.outbox_restore(id, item).await)
    }

    async fn outbox_len(&self) -> Result<u64, StoreError> {
        each!(self, s => s.outbox_len().await)
    }

    async fn notice_counts(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        each!(self, s => s.notice_counts().await)
    }

    async fn list(
        &self,
        before: Option<MessageId>,
        limit: usize,
        filter: &ListFilter,
    ) -> Result<(Vec<Entry>, Option<MessageId>), StoreError> {
        each!(self, s => s.list(before, limit, filter).await)
    }

    async fn get(&self, id: MessageId) -> Result<Option<Entry>, StoreError> {
        each!(self, s => s.get(id).await)
    }

    async fn read_sealed(&self, id: MessageId) -> Result<Option<Sealed>, StoreError> {
        each!(self, s => s.read_sealed(id).await)
    }

    async fn count(&self) -> Result<u64, StoreError> {
        each!(self, s => s.count().await)
    }

    async fn stats(&self) -> Result<Stats, StoreError> {
        each!(self, s => s.stats().await)
    }

    async fn set_hold(&self, id: MessageId, held: bool, now: i64) -> Result<bool, StoreError> {
        each!(self, s => s.set_hold(id, held, now).await)
    }

    async fn delete(&self, ids: &[MessageId]) -> Result<Vec<bool>, StoreError> {
        each!(self, s => s.delete(ids).await)
    }

    async fn purge(&self, expired: Expiry) -> Result<PurgeReport, StoreError> {
        each!(self, s => s.purge(expired).await)
    }

    async fn audit(&self, entry: AuditEntry) -> Result<u64, StoreError> {
        each!(self, s => s.audit(entry).await)
    }

    async fn audit_page(&self, after: u64, limit: usize) -> Result<AuditPage, StoreError> {
        each!(self, s => s.audit_page(after, limit).await)
    }

    async fn prune_audit(&self, cutoff: i64) -> Result<usize, StoreError> {
        each!(self, s => s.prune_audit(cutoff).await)
    }

    async fn prune_rate_memory(&self, now: i64, limits: RateLimits) -> Result<usize, StoreError> {
        each!(self, s => s.prune_rate_memory(now, limits).await)
    }
}
