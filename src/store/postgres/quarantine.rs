//! The quarantine on PostgreSQL as a [`QuarantineStore`]: every operation off the message
//! path ends at `query_timeout`; the message path itself at `db_timeout`. Listings, holds,
//! counts and the notice and audit operations of the files beside this one.

use std::collections::BTreeMap;
use std::sync::Arc;

use deadpool_postgres::GenericClient;

use super::messages::{ENTRY, delete_visible, entry, meta, sealed_bytes};
use super::staged::PgStaged;
use super::{PgError, PgStore, audit, notices, requests, to_u64, within};
use crate::capacity::StorageState;
use crate::clock::unix_now;
use crate::store::backend::{Expiry, Sealed};
use crate::store::{
    ApprovalRequest, AuditEntry, AuditPage, Entry, Filing, ListFilter, MessageId, MessageMeta,
    NewRequest, NoticeOutcome, NoticePlan, OutboxItem, PurgeReport, QuarantineStore, RateLimits,
    RequestBounds, RequestState, Reseal, Resealed, Stats, StoreError, Swap, outbox,
};

impl PgStore {
    /// Runs one operation off the message path under `query_timeout`.
    async fn bounded<T>(
        &self,
        operation: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.query_timeout, operation).await {
            Ok(result) => result,
            Err(_) => Err(PgError::Timeout(self.query_timeout).into()),
        }
    }
}

impl QuarantineStore for PgStore {
    type Staged = PgStaged;

    async fn create_blob(&self, id: MessageId) -> Result<PgStaged, StoreError> {
        Ok(PgStaged::create(&self.pool, id, unix_now(), self.timeout).await?)
    }

    async fn commit(
        &self,
        staged: PgStaged,
        meta: MessageMeta,
        sealed_summary: Vec<u8>,
        notices: NoticePlan,
    ) -> Result<(MessageId, NoticeOutcome), StoreError> {
        Ok(within(
            self.timeout,
            self.commit_staged(staged, meta, sealed_summary, notices),
        )
        .await?)
    }

    fn pair_key(&self, sender: &str, retired_address: &str) -> [u8; 32] {
        outbox::pair_key(&self.pair_salt, sender, retired_address)
    }

    fn sender_key(&self, sender: &str) -> [u8; 32] {
        outbox::sender_key(&self.pair_salt, sender)
    }

    fn organisation_key(&self, organisation: &str) -> [u8; 32] {
        outbox::organisation_key(&self.pair_salt, organisation)
    }

    fn storage(&self) -> Arc<StorageState> {
        self.storage.clone()
    }

    async fn refresh_capacity(&self) -> Result<(), StoreError> {
        self.bounded(async {
            // Other nodes add and delete too: take the shared total from the database.
            let used = sealed_bytes(&*self.client().await?).await?;
            self.storage.set_used(used);
            Ok(())
        })
        .await
    }

    async fn outbox_due(
        &self,
        now: i64,
        limit: usize,
        skip: &[MessageId],
    ) -> Result<Vec<(MessageId, OutboxItem)>, StoreError> {
        self.bounded(async {
            let lease = i64::try_from(self.outbox_lease.as_secs()).unwrap_or(i64::MAX);
            Ok(notices::claim(&*self.client().await?, now, limit, lease, skip).await?)
        })
        .await
    }

    async fn outbox_next_due(&self, skip: &[MessageId]) -> Result<Option<i64>, StoreError> {
        self.bounded(async { Ok(notices::next_due(&*self.client().await?, skip).await?) })
            .await
    }

    async fn outbox_settle(
        &self,
        id: MessageId,
        claimed: &OutboxItem,
        next: Option<&OutboxItem>,
        outcome: &str,
    ) -> Result<(), StoreError> {
        self.bounded(async {
            let mut client = self.client().await.map_err(StoreError::from)?;
            let txn = client.transaction().await.map_err(PgError::from)?;
            if notices::settle(&txn, id, claimed, next, outcome).await? {
                txn.commit().await.map_err(PgError::from)?;
            } else {
                tracing::info!(%id, "notice lease was lost to another node; this attempt changes nothing");
            }
            Ok(())
        })
        .await
    }

    async fn outbox_restore(&self, id: MessageId, item: &OutboxItem) -> Result<(), StoreError> {
        self.bounded(async { Ok(notices::restore(&*self.client().await?, id, item).await?) })
            .await
    }

    async fn outbox_len(&self) -> Result<u64, StoreError> {
        self.bounded(async { Ok(notices::len(&*self.client().await?).await?) })
            .await
    }

    async fn notice_counts(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        self.bounded(async { Ok(notices::counts(&*self.client().await?).await?) })
            .await
    }

    async fn list(
        &self,
        before: Option<MessageId>,
        limit: usize,
        filter: &ListFilter,
    ) -> Result<(Vec<Entry>, Option<MessageId>), StoreError> {
        self.bounded(async {
            let before = before.map(MessageId::uuid);
            let rows = self
                .client()
                .await?
                .query(
                    &format!(
                        "SELECT {ENTRY} FROM messages WHERE visible \
                         AND ($1::uuid IS NULL OR id < $1) \
                         AND ($2::text IS NULL OR $2 = ANY(domains)) \
                         AND ($3::bigint IS NULL OR received_at >= $3) \
                         AND ($4::bigint IS NULL OR received_at < $4) \
                         ORDER BY id DESC LIMIT $5"
                    ),
                    &[
                        &before,
                        &filter.domain,
                        &filter.since,
                        &filter.until,
                        &i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1),
                    ],
                )
                .await
                .map_err(PgError::from)?;
            let mut entries: Vec<Entry> = rows.iter().map(entry).collect();
            let next = if entries.len() > limit {
                entries.truncate(limit);
                entries.last().map(|e| e.id)
            } else {
                None
            };
            Ok((entries, next))
        })
        .await
    }

    async fn get(&self, id: MessageId) -> Result<Option<Entry>, StoreError> {
        self.bounded(async {
            let row = self
                .client()
                .await?
                .query_opt(
                    &format!("SELECT {ENTRY} FROM messages WHERE id = $1 AND visible"),
                    &[&id.uuid()],
                )
                .await
                .map_err(PgError::from)?;
            Ok(row.as_ref().map(entry))
        })
        .await
    }

    async fn read_sealed(&self, id: MessageId) -> Result<Option<Sealed>, StoreError> {
        self.bounded(async { Ok(self.open_sealed(id).await?) })
            .await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.bounded(async {
            let row = self
                .client()
                .await?
                .query_one("SELECT count(*) FROM messages WHERE visible", &[])
                .await
                .map_err(PgError::from)?;
            Ok(to_u64(row.get(0)))
        })
        .await
    }

    async fn stats(&self) -> Result<Stats, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT received_at, size, sealed_size, domains, held_at IS NOT NULL AS held \
                     FROM messages WHERE visible",
                    &[],
                )
                .await
                .map_err(PgError::from)?;
            let mut stats = Stats::default();
            for row in &rows {
                stats.add(&meta(row), row.get("held"));
            }
            stats.notices = notices::counts(&client).await?;
            Ok(stats)
        })
        .await
    }

    async fn set_hold(&self, id: MessageId, held: bool, now: i64) -> Result<bool, StoreError> {
        self.bounded(async {
            let held_at = held.then_some(now);
            let changed = self
                .client()
                .await?
                .execute(
                    "UPDATE messages SET held_at = $2 WHERE id = $1 AND visible",
                    &[&id.uuid(), &held_at],
                )
                .await
                .map_err(PgError::from)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn reseal(&self, id: MessageId, change: Reseal) -> Result<Resealed, StoreError> {
        self.bounded(async {
            let mut client = self.client().await?;
            let (done, delta) = super::messages::reseal(&mut client, id, &change).await?;
            if delta > 0 {
                self.storage.added(delta.unsigned_abs());
            } else {
                self.storage.removed(delta.unsigned_abs());
            }
            Ok(done)
        })
        .await
    }

    async fn delete(&self, ids: &[MessageId]) -> Result<Vec<bool>, StoreError> {
        self.bounded(async {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let uuids: Vec<uuid::Uuid> = ids.iter().map(|id| id.uuid()).collect();
            let removed = delete_visible(&self.client().await?, &uuids).await?;
            self.storage
                .removed(removed.iter().map(|(_, bytes)| bytes).sum());
            Ok(uuids
                .iter()
                .map(|id| removed.iter().any(|(gone, _)| gone == id))
                .collect())
        })
        .await
    }

    async fn purge(&self, expired: Expiry) -> Result<PurgeReport, StoreError> {
        self.bounded(async { Ok(self.purge_expired(expired).await?) })
            .await
    }

    async fn audit(&self, entry: AuditEntry) -> Result<u64, StoreError> {
        self.bounded(async {
            let mut client = self.client().await?;
            Ok(audit::append(&mut client, entry).await?)
        })
        .await
    }

    async fn audit_page(&self, after: u64, limit: usize) -> Result<AuditPage, StoreError> {
        self.bounded(async { Ok(audit::page(&*self.client().await?, after, limit).await?) })
            .await
    }

    async fn prune_audit(&self, cutoff: i64) -> Result<usize, StoreError> {
        self.bounded(async {
            let mut client = self.client().await?;
            Ok(audit::prune(&mut client, cutoff).await?)
        })
        .await
    }

    async fn prune_rate_memory(&self, now: i64, limits: RateLimits) -> Result<usize, StoreError> {
        self.bounded(async {
            let mut client = self.client().await?;
            Ok(notices::prune(&mut client, now, limits).await?)
        })
        .await
    }

    async fn request_create(
        &self,
        new: NewRequest,
        bounds: RequestBounds,
        now: i64,
    ) -> Result<Filing, StoreError> {
        self.bounded(async {
            let mut client = self.client().await?;
            Ok(requests::create(&mut client, new, bounds, now).await?)
        })
        .await
    }

    async fn request_get(&self, number: u64) -> Result<Option<ApprovalRequest>, StoreError> {
        self.bounded(async { Ok(requests::get(&*self.client().await?, number).await?) })
            .await
    }

    async fn request_list(&self, limit: usize) -> Result<Vec<ApprovalRequest>, StoreError> {
        self.bounded(async { Ok(requests::list(&*self.client().await?, limit).await?) })
            .await
    }

    async fn request_swap(
        &self,
        number: u64,
        expected: &RequestState,
        next: RequestState,
    ) -> Result<Swap, StoreError> {
        self.bounded(async {
            let mut client = self.client().await?;
            Ok(requests::swap(&mut client, number, expected, next).await?)
        })
        .await
    }
}
