//! The quarantine on PostgreSQL as a [`QuarantineStore`]: commits, listings, holds,
//! deletion, the purge (one node at a time), sealed messages read back chunk by chunk,
//! and the notice and audit operations of the files beside this one.

use std::collections::BTreeMap;
use std::sync::Arc;

use deadpool_postgres::GenericClient;
use tokio::io::AsyncWriteExt;
use tokio_postgres::{Client, Row};

use super::staged::{CHUNK_SIZE, PgStaged};
use super::{PgError, PgStore, STALE_STAGING_SECS, audit, lock, notices, to_i64, to_u64, within};
use crate::capacity::StorageState;
use crate::clock::unix_now;
use crate::store::backend::{Expiry, Sealed};
use crate::store::{
    AuditEntry, AuditPage, Entry, ListFilter, MessageId, MessageMeta, NoticeOutcome, NoticePlan,
    OutboxItem, PurgeReport, QuarantineStore, RateLimits, Stats, StoreError, outbox,
};

/// Columns of an entry, in the order [`entry`] reads them.
const ENTRY: &str =
    "id, received_at, size, sealed_size, domains, summary, held_at IS NOT NULL AS held, notice";

/// Reads an entry's metadata; `notice` only where the query selected it.
fn meta(row: &Row) -> MessageMeta {
    MessageMeta {
        received_at: row.get("received_at"),
        size: to_u64(row.get("size")),
        sealed_size: to_u64(row.get("sealed_size")),
        domains: row.get("domains"),
        notice: row
            .try_get::<_, Option<String>>("notice")
            .ok()
            .flatten()
            .and_then(|json| serde_json::from_str(&json).ok()),
    }
}

fn entry(row: &Row) -> Entry {
    Entry {
        id: MessageId::from_uuid(row.get("id")),
        meta: meta(row),
        sealed_summary: row.get("summary"),
        held: row.get("held"),
    }
}

/// Sealed bytes of every visible message.
pub(super) async fn sealed_bytes(client: &Client) -> Result<u64, PgError> {
    let row = client
        .query_one(
            "SELECT COALESCE(sum(sealed_size), 0)::bigint FROM messages WHERE visible",
            &[],
        )
        .await?;
    Ok(to_u64(row.get(0)))
}

/// Deletes visible messages (their chunks go with them); returns the ids that existed and
/// their sealed bytes.
async fn delete_visible(
    client: &impl GenericClient,
    ids: &[uuid::Uuid],
) -> Result<Vec<(uuid::Uuid, u64)>, PgError> {
    let rows = client
        .query(
            "DELETE FROM messages WHERE id = ANY($1) AND visible RETURNING id, sealed_size",
            &[&ids],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), to_u64(r.get(1)))).collect())
}

impl PgStore {
    async fn commit_staged(
        &self,
        mut staged: PgStaged,
        meta: MessageMeta,
        sealed_summary: Vec<u8>,
        notices: NoticePlan,
    ) -> Result<(MessageId, NoticeOutcome), PgError> {
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        let id = staged.id.uuid();
        if !staged.pending.is_empty() {
            txn.execute(
                "INSERT INTO sealed_chunks (id, seq, data) VALUES ($1, $2, $3)",
                &[&id, &staged.next_seq, &staged.pending],
            )
            .await?;
        }
        let sealed_size = staged.written;
        let outcome = notices::queue_in(&txn, &notices, unix_now()).await?;
        // A migration passes the record it copies; otherwise it is this commit's outcome.
        let record = meta
            .notice
            .clone()
            .unwrap_or_else(|| outcome.record(&notices));
        let record = serde_json::to_string(&record)
            .map_err(|e| PgError::Data(format!("notice record: {e}")))?;
        let flipped = txn
            .execute(
                "UPDATE messages SET visible = true, received_at = $2, size = $3, \
                 sealed_size = $4, domains = $5, summary = $6, notice = $7 \
                 WHERE id = $1 AND NOT visible",
                &[
                    &id,
                    &meta.received_at,
                    &to_i64(meta.size),
                    &to_i64(sealed_size),
                    &meta.domains,
                    &sealed_summary,
                    &record,
                ],
            )
            .await?;
        if flipped != 1 {
            return Err(PgError::Data(format!(
                "staged message {} is gone (removed as stale?)",
                staged.id
            )));
        }
        txn.commit().await?;
        staged.committed = true;
        self.storage.added(sealed_size);
        Ok((staged.id, outcome))
    }

    /// Removes staged messages of nodes that died mid-message; returns how many.
    async fn remove_stale_staging(&self, now: i64) -> Result<u64, PgError> {
        let removed = self
            .client()
            .await?
            .execute(
                "DELETE FROM messages WHERE NOT visible AND staged_at < $1",
                &[&(now - STALE_STAGING_SECS)],
            )
            .await?;
        Ok(removed)
    }

    async fn purge_expired(&self, expired: Expiry) -> Result<PurgeReport, PgError> {
        let stale = self.remove_stale_staging(unix_now()).await?;
        if stale > 0 {
            tracing::info!(
                stale,
                "removed messages a node left half received (never acknowledged)"
            );
        }
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        // One node purges at a time; the lock ends with the transaction (or the session).
        let ours: bool = txn
            .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&lock::PURGE])
            .await?
            .get(0);
        let mut report = PurgeReport::default();
        if !ours {
            tracing::debug!("another node is purging; skipped");
            return Ok(report);
        }
        let rows = txn
            .query(
                "SELECT id, received_at, size, sealed_size, domains, held_at IS NOT NULL AS held \
                 FROM messages WHERE visible ORDER BY id",
                &[],
            )
            .await?;
        let mut doomed = Vec::new();
        for row in &rows {
            if !expired(&meta(row)) {
                continue;
            }
            if row.get::<_, bool>("held") {
                report.held += 1;
            } else {
                doomed.push(row.get::<_, uuid::Uuid>("id"));
            }
        }
        let mut freed = 0;
        for batch in doomed.chunks(1000) {
            freed += delete_visible(&txn, batch)
                .await?
                .iter()
                .map(|(_, bytes)| bytes)
                .sum::<u64>();
        }
        txn.commit().await?;
        self.storage.removed(freed);
        report.deleted = doomed
            .iter()
            .map(|id| MessageId::from_uuid(*id).to_string())
            .collect();
        Ok(report)
    }

    async fn open_sealed(&self, id: MessageId) -> Result<Option<Sealed>, PgError> {
        let client = self.client().await?;
        let Some(row) = client
            .query_opt(
                "SELECT sealed_size FROM messages WHERE id = $1 AND visible",
                &[&id.uuid()],
            )
            .await?
        else {
            return Ok(None);
        };
        let length = to_u64(row.get(0));
        let (reader, mut writer) = tokio::io::duplex(CHUNK_SIZE);
        let limit = self.query_timeout;
        // Chunk by chunk: a large message never sits whole in memory. Each chunk's query,
        // and each hand-over to a reader that may have stopped reading, ends at the query
        // timeout, so that neither a hung database nor a stalled download keeps a pooled
        // connection. The reader then meets the end early, short of `length`.
        tokio::spawn(async move {
            let mut seq: i32 = 0;
            loop {
                let chunk = within(limit, async {
                    Ok(client
                        .query_opt(
                            "SELECT data FROM sealed_chunks WHERE id = $1 AND seq = $2",
                            &[&id.uuid(), &seq],
                        )
                        .await?)
                })
                .await;
                match chunk {
                    Ok(Some(row)) => {
                        let handed =
                            tokio::time::timeout(limit, writer.write_all(row.get::<_, &[u8]>(0)))
                                .await;
                        match handed {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => return,
                            Err(_) => {
                                tracing::warn!(%id, "a sealed download stopped reading; ended at the query timeout");
                                return;
                            }
                        }
                    }
                    Ok(None) => return,
                    Err(error) => {
                        tracing::error!(%error, %id, "reading a sealed message failed");
                        return;
                    }
                }
                seq += 1;
            }
        });
        Ok(Some(Sealed {
            length,
            reader: Box::new(reader),
        }))
    }
}

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
}
