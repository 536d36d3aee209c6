//! Messages on PostgreSQL: how entries are read from rows, the commit that makes a staged
//! message visible, deletion, the purge (one node at a time) and sealed messages read back
//! chunk by chunk. `quarantine.rs` puts them behind [`QuarantineStore`].
//!
//! [`QuarantineStore`]: crate::store::QuarantineStore

use deadpool_postgres::GenericClient;
use tokio::io::AsyncWriteExt;
use tokio_postgres::{Client, Row};

use super::staged::{CHUNK_SIZE, PgStaged};
use super::{PgError, PgStore, STALE_STAGING_SECS, lock, notices, to_i64, to_u64, within};
use crate::clock::unix_now;
use crate::store::backend::{Expiry, Sealed};
use crate::store::{
    Entry, MessageId, MessageMeta, NoticeOutcome, NoticePlan, PurgeReport, Reseal, Resealed,
};

/// Columns of an entry, in the order [`entry`] reads them.
pub(super) const ENTRY: &str = "id, received_at, size, sealed_size, domains, summary, held_at IS NOT NULL AS held, notice, \
     sealed_to";

/// Reads an entry's metadata; `notice` and `sealed_to` only where the query selected them.
pub(super) fn meta(row: &Row) -> MessageMeta {
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
        sealed_to: row
            .try_get::<_, Vec<String>>("sealed_to")
            .unwrap_or_default(),
    }
}

pub(super) fn entry(row: &Row) -> Entry {
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
pub(super) async fn delete_visible(
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

/// Re-seals one message in one transaction: the new header in place of the old one at the
/// start of chunk 0 (every other chunk is payload and stays), with the new summary,
/// fingerprints and sealed size. The row lock makes a concurrent re-seal or delete wait;
/// a reader streaming the message meanwhile sees the old chunk 0 or the new one, whole.
/// Returns the change in sealed size.
pub(super) async fn reseal(
    client: &mut Client,
    id: MessageId,
    change: &Reseal,
) -> Result<(Resealed, i64), PgError> {
    let txn = client.transaction().await?;
    let row = txn
        .query_opt(
            "SELECT sealed_size FROM messages WHERE id = $1 AND visible FOR UPDATE",
            &[&id.uuid()],
        )
        .await?;
    if row.is_none() {
        return Ok((Resealed::Missing, 0));
    }
    let chunk = txn
        .query_opt(
            "SELECT data FROM sealed_chunks WHERE id = $1 AND seq = 0",
            &[&id.uuid()],
        )
        .await?;
    // Chunk 0 holds the first 256 KiB (or the whole message), and a header is at most
    // 64 KiB, so the header is all in chunk 0.
    let Some(data) = chunk.map(|row| row.get::<_, Vec<u8>>(0)) else {
        return Ok((Resealed::Changed, 0));
    };
    if crate::seal::reseal::header_length(&data) != Some(change.old_header.len())
        || !data.starts_with(&change.old_header)
    {
        return Ok((Resealed::Changed, 0));
    }
    let new = [change.header.as_slice(), &data[change.old_header.len()..]].concat();
    let delta = change.header.len() as i64 - change.old_header.len() as i64;
    txn.execute(
        "UPDATE sealed_chunks SET data = $2 WHERE id = $1 AND seq = 0",
        &[&id.uuid(), &new],
    )
    .await?;
    txn.execute(
        "UPDATE messages SET summary = $2, sealed_to = $3, sealed_size = sealed_size + $4 \
         WHERE id = $1",
        &[&id.uuid(), &change.summary, &change.sealed_to, &delta],
    )
    .await?;
    txn.commit().await?;
    Ok((Resealed::Done, delta))
}

impl PgStore {
    pub(super) async fn commit_staged(
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
        let record = serde_json::to_string(&record).map_err(|source| PgError::Record {
            what: "notice",
            source,
        })?;
        let flipped = txn
            .execute(
                "UPDATE messages SET visible = true, received_at = $2, size = $3, \
                 sealed_size = $4, domains = $5, summary = $6, notice = $7, sealed_to = $8 \
                 WHERE id = $1 AND NOT visible",
                &[
                    &id,
                    &meta.received_at,
                    &to_i64(meta.size),
                    &to_i64(sealed_size),
                    &meta.domains,
                    &sealed_summary,
                    &record,
                    &meta.sealed_to,
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
    pub(super) async fn remove_stale_staging(&self, now: i64) -> Result<u64, PgError> {
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

    pub(super) async fn purge_expired(&self, expired: Expiry) -> Result<PurgeReport, PgError> {
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

    pub(super) async fn open_sealed(&self, id: MessageId) -> Result<Option<Sealed>, PgError> {
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
