//! The redb index: message metadata (plaintext JSON) and sealed summaries, keyed by id.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};

pub(super) use super::index_err;
use super::outbox::{self, NoticeOutcome, NoticePlan};

/// One message to index, with the notices it causes.
pub(super) struct Commit {
    pub entry: Entry,
    pub notices: NoticePlan,
    /// Where its sealed bytes are, when in a segment (set by the committer).
    pub segment: Option<SegmentRef>,
}
use super::segment::SegmentRef;
use super::tables::{AUDIT, AUDIT_STATE, HOLDS, META, REQUESTS, SEGMENT_REFS, SUMMARIES};
use super::{Entry, ListFilter, MessageId, MessageMeta, StoreError};

pub(super) struct Index {
    pub(super) db: Database,
}

impl Index {
    pub(super) fn open(path: &Path) -> Result<Self, StoreError> {
        let file = super::open_private(path)?;
        let backend = redb::backends::FileBackend::new(file).map_err(index_err)?;
        let db = redb::Builder::new()
            .create_with_backend(backend)
            .map_err(index_err)?;
        // Create the tables so that readers never meet a missing table.
        let txn = db.begin_write().map_err(index_err)?;
        txn.open_table(META).map_err(index_err)?;
        txn.open_table(SUMMARIES).map_err(index_err)?;
        txn.open_table(HOLDS).map_err(index_err)?;
        // Added with segments; an index from before them gains it, empty, here.
        txn.open_table(SEGMENT_REFS).map_err(index_err)?;
        txn.open_table(AUDIT).map_err(index_err)?;
        txn.open_table(AUDIT_STATE).map_err(index_err)?;
        // Added with four-eyes approvals.
        txn.open_table(REQUESTS).map_err(index_err)?;
        txn.commit().map_err(index_err)?;
        Ok(Self { db })
    }

    /// Inserts entries in one transaction; returns once the commit is durable (fsync).
    /// Indexes a batch in one transaction, with its notices; returns once the commit is
    /// durable, with what became of each commit's notice.
    pub(super) fn insert_all(
        &self,
        batch: &[Commit],
        now: i64,
    ) -> Result<Vec<NoticeOutcome>, StoreError> {
        let txn = self.db.begin_write().map_err(index_err)?;
        let mut queued = Vec::with_capacity(batch.len());
        for commit in batch {
            queued.push(outbox::queue_in(&txn, &commit.notices, now)?);
        }
        {
            let mut meta = txn.open_table(META).map_err(index_err)?;
            let mut summaries = txn.open_table(SUMMARIES).map_err(index_err)?;
            let mut segments = txn.open_table(SEGMENT_REFS).map_err(index_err)?;
            for (commit, outcome) in batch.iter().zip(&queued) {
                let entry = &commit.entry;
                if let Some(r) = commit.segment {
                    segments
                        .insert(entry.id.key(), (r.segment, r.offset, r.len))
                        .map_err(index_err)?;
                }
                let stored = MessageMeta {
                    // A migration passes the record it copies.
                    notice: Some(
                        entry
                            .meta
                            .notice
                            .clone()
                            .unwrap_or_else(|| outcome.record(&commit.notices)),
                    ),
                    ..entry.meta.clone()
                };
                let json = serde_json::to_vec(&stored).map_err(StoreError::Encode)?;
                meta.insert(entry.id.key(), json.as_slice())
                    .map_err(index_err)?;
                summaries
                    .insert(entry.id.key(), entry.sealed_summary.as_slice())
                    .map_err(index_err)?;
            }
        }
        txn.commit().map_err(index_err)?;
        Ok(queued)
    }

    pub(super) fn db(&self) -> &Database {
        &self.db
    }

    pub(super) fn list(
        &self,
        before: Option<MessageId>,
        limit: usize,
        filter: &ListFilter,
    ) -> Result<(Vec<Entry>, Option<MessageId>), StoreError> {
        let txn = self.db.begin_read().map_err(index_err)?;
        let meta = txn.open_table(META).map_err(index_err)?;
        let summaries = txn.open_table(SUMMARIES).map_err(index_err)?;
        let holds = txn.open_table(HOLDS).map_err(index_err)?;
        let upper = before.map_or(u128::MAX, |id| id.key());
        let mut out = Vec::with_capacity(limit.min(1024));
        let mut last_scanned = None;
        for item in meta.range(..upper).map_err(index_err)?.rev() {
            if out.len() >= limit {
                // More may follow: the next page starts after the last one scanned.
                return Ok((out, last_scanned));
            }
            let (key, value) = item.map_err(index_err)?;
            let key = key.value();
            last_scanned = Some(MessageId::from_key(key));
            let entry = decode(key, value.value(), &summaries, &holds)?;
            if filter.matches(&entry.meta) {
                out.push(entry);
            }
        }
        Ok((out, None))
    }

    /// Every entry's id, metadata and hold, oldest first (no summaries).
    pub(super) fn scan(&self) -> Result<Vec<(MessageId, MessageMeta, bool)>, StoreError> {
        let txn = self.db.begin_read().map_err(index_err)?;
        let meta = txn.open_table(META).map_err(index_err)?;
        let holds = txn.open_table(HOLDS).map_err(index_err)?;
        let mut out = Vec::new();
        for item in meta.iter().map_err(index_err)? {
            let (key, value) = item.map_err(index_err)?;
            let id = MessageId::from_key(key.value());
            let meta: MessageMeta = serde_json::from_slice(value.value())
                .map_err(|source| StoreError::Unreadable { id, source })?;
            let held = holds.get(key.value()).map_err(index_err)?.is_some();
            out.push((id, meta, held));
        }
        Ok(out)
    }

    /// Removes the index entries and summaries of `ids` in one durable commit; returns,
    /// for each, the sealed size it had if it existed.
    pub(super) fn remove_all(&self, ids: &[MessageId]) -> Result<Vec<Option<u64>>, StoreError> {
        let txn = self.db.begin_write().map_err(index_err)?;
        let mut found = Vec::with_capacity(ids.len());
        {
            let mut meta = txn.open_table(META).map_err(index_err)?;
            let mut summaries = txn.open_table(SUMMARIES).map_err(index_err)?;
            let mut holds = txn.open_table(HOLDS).map_err(index_err)?;
            let mut segments = txn.open_table(SEGMENT_REFS).map_err(index_err)?;
            for id in ids {
                segments.remove(id.key()).map_err(index_err)?;
                let removed = meta.remove(id.key()).map_err(index_err)?;
                // An unreadable entry is still removed; it counts as no bytes.
                found.push(removed.map(|old| {
                    serde_json::from_slice::<MessageMeta>(old.value()).map_or(0, |m| m.sealed_size)
                }));
                summaries.remove(id.key()).map_err(index_err)?;
                holds.remove(id.key()).map_err(index_err)?;
            }
        }
        txn.commit().map_err(index_err)?;
        Ok(found)
    }

    /// Records a re-seal: the new summary, fingerprints and sealed size, and no segment
    /// range any more (the message is a file of its own now).
    pub(super) fn resealed(
        &self,
        id: MessageId,
        summary: &[u8],
        sealed_to: &[String],
        sealed_size: u64,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(index_err)?;
        {
            let mut meta = txn.open_table(META).map_err(index_err)?;
            let stored = meta
                .get(id.key())
                .map_err(index_err)?
                .map(|value| serde_json::from_slice::<MessageMeta>(value.value()));
            let mut updated = match stored {
                Some(Ok(updated)) => updated,
                Some(Err(source)) => return Err(StoreError::Unreadable { id, source }),
                None => return Ok(()),
            };
            updated.sealed_to = sealed_to.to_vec();
            updated.sealed_size = sealed_size;
            let json = serde_json::to_vec(&updated).map_err(StoreError::Encode)?;
            meta.insert(id.key(), json.as_slice()).map_err(index_err)?;
            let mut summaries = txn.open_table(SUMMARIES).map_err(index_err)?;
            summaries.insert(id.key(), summary).map_err(index_err)?;
            let mut segments = txn.open_table(SEGMENT_REFS).map_err(index_err)?;
            segments.remove(id.key()).map_err(index_err)?;
        }
        txn.commit().map_err(index_err)?;
        Ok(())
    }

    /// Places or lifts a hold; `false` when there is no such message.
    pub(super) fn set_hold(&self, id: MessageId, held: bool, now: i64) -> Result<bool, StoreError> {
        let txn = self.db.begin_write().map_err(index_err)?;
        let exists;
        {
            let meta = txn.open_table(META).map_err(index_err)?;
            exists = meta.get(id.key()).map_err(index_err)?.is_some();
            let mut holds = txn.open_table(HOLDS).map_err(index_err)?;
            if exists && held {
                holds.insert(id.key(), now).map_err(index_err)?;
            } else {
                holds.remove(id.key()).map_err(index_err)?;
            }
        }
        txn.commit().map_err(index_err)?;
        Ok(exists)
    }

    pub(super) fn get(&self, id: MessageId) -> Result<Option<Entry>, StoreError> {
        let txn = self.db.begin_read().map_err(index_err)?;
        let meta = txn.open_table(META).map_err(index_err)?;
        let summaries = txn.open_table(SUMMARIES).map_err(index_err)?;
        let holds = txn.open_table(HOLDS).map_err(index_err)?;
        match meta.get(id.key()).map_err(index_err)? {
            Some(value) => Ok(Some(decode(id.key(), value.value(), &summaries, &holds)?)),
            None => Ok(None),
        }
    }

    pub(super) fn count(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(index_err)?;
        let meta = txn.open_table(META).map_err(index_err)?;
        meta.len().map_err(index_err)
    }

    /// Every indexed id, oldest first.
    pub(super) fn ids(&self) -> Result<Vec<MessageId>, StoreError> {
        let txn = self.db.begin_read().map_err(index_err)?;
        let meta = txn.open_table(META).map_err(index_err)?;
        let mut out = Vec::new();
        for item in meta.iter().map_err(index_err)? {
            let (key, _) = item.map_err(index_err)?;
            out.push(MessageId::from_key(key.value()));
        }
        Ok(out)
    }
}

fn decode(
    key: u128,
    json: &[u8],
    summaries: &redb::ReadOnlyTable<u128, &[u8]>,
    holds: &redb::ReadOnlyTable<u128, i64>,
) -> Result<Entry, StoreError> {
    let id = MessageId::from_key(key);
    let meta: MessageMeta =
        serde_json::from_slice(json).map_err(|source| StoreError::Unreadable { id, source })?;
    let sealed_summary = summaries
        .get(key)
        .map_err(index_err)?
        .map(|v| v.value().to_vec())
        .unwrap_or_default();
    let held = holds.get(key).map_err(index_err)?.is_some();
    Ok(Entry {
        id,
        meta,
        sealed_summary,
        held,
    })
}
