//! The store's interface: every operation the gateway's message path, the notice worker,
//! the purger and the admin API need from a quarantine store, so that another backend can
//! take the embedded one's place. [`Store`] (redb index plus sealed files) implements it.
//! Blocking methods are run in `spawn_blocking` by their callers, as before.

use std::collections::BTreeMap;
use std::future::Future;

use super::index;
use super::outbox;
use super::retain::utc_day;
use super::{
    AuditEntry, AuditPage, BlobWriter, Entry, ListFilter, MessageId, MessageMeta, NoticeOutcome,
    NoticePlan, OutboxItem, PurgeReport, Stats, Store, StoreError, blob, sync_dir,
};

/// A message being received: sealed bytes go in as they are produced; nothing is visible
/// until [`QuarantineStore::commit`] succeeds, and dropping it uncommitted leaves nothing.
pub trait StagedMessage: Send {
    /// The id the message will be stored under.
    fn id(&self) -> MessageId;

    /// Appends sealed bytes.
    fn write(&mut self, sealed: &[u8]) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl StagedMessage for BlobWriter {
    fn id(&self) -> MessageId {
        BlobWriter::id(self)
    }

    async fn write(&mut self, sealed: &[u8]) -> Result<(), StoreError> {
        BlobWriter::write(self, sealed).await
    }
}

/// A durable quarantine: messages with their sealed summaries, holds, the notice outbox
/// with its rate-limit memory, and the audit trail.
pub trait QuarantineStore: Send + Sync + 'static {
    /// Where a message being received goes until it is committed.
    type Staged: StagedMessage;

    // The message path.

    /// Starts staging a new sealed message.
    fn create_blob(
        &self,
        id: MessageId,
    ) -> impl Future<Output = Result<Self::Staged, StoreError>> + Send;

    /// Makes a staged message durable and visible, with its metadata and sealed summary,
    /// and queues the planned notice in the same transaction unless a rate limit holds it
    /// back. Returns only once all of it is durable (the `250` waits for this). Returns the
    /// id and what became of the notice.
    fn commit(
        &self,
        staged: Self::Staged,
        meta: MessageMeta,
        sealed_summary: Vec<u8>,
        notices: NoticePlan,
    ) -> impl Future<Output = Result<(MessageId, NoticeOutcome), StoreError>> + Send;

    /// The key of a (sender, retired address) pair for notice rate limits.
    fn pair_key(&self, sender: &str, retired_address: &str) -> [u8; 32];

    /// The key of an envelope sender for the per-sender notice limit.
    fn sender_key(&self, sender: &str) -> [u8; 32];

    // The notice worker. Blocking.

    /// Notices due now (unix seconds), at most `limit`.
    fn outbox_due(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<(MessageId, OutboxItem)>, StoreError>;

    /// When the next notice falls due, leaving out `skip` (notices being delivered now).
    fn outbox_next_due(&self, skip: &[MessageId]) -> Result<Option<i64>, StoreError>;

    /// Records a failed attempt (`Some`) or removes a delivered or abandoned notice
    /// (`None`), counting `outcome` (`sent`, `failed:temporary`, …).
    fn outbox_settle(
        &self,
        id: MessageId,
        item: Option<&OutboxItem>,
        outcome: &str,
    ) -> Result<(), StoreError>;

    /// Notices waiting.
    fn outbox_len(&self) -> Result<u64, StoreError>;

    /// Notice totals for `stats`.
    fn notice_counts(&self) -> Result<BTreeMap<String, u64>, StoreError>;

    // Review and administration. Blocking.

    /// Up to `limit` entries that match `filter`, newest first, strictly older than
    /// `before` if given; and where the next page starts, if there may be one.
    fn list(
        &self,
        before: Option<MessageId>,
        limit: usize,
        filter: &ListFilter,
    ) -> Result<(Vec<Entry>, Option<MessageId>), StoreError>;

    /// One entry.
    fn get(&self, id: MessageId) -> Result<Option<Entry>, StoreError>;

    /// Number of indexed messages.
    fn count(&self) -> Result<u64, StoreError>;

    /// Counts and sizes from the plaintext index.
    fn stats(&self) -> Result<Stats, StoreError>;

    /// Places (`true`) or lifts a legal hold; `false` when there is no such message.
    fn set_hold(&self, id: MessageId, held: bool, now: i64) -> Result<bool, StoreError>;

    /// Deletes messages now: sealed data first, then index entry, summary and hold, so a
    /// crash in between leaves an entry whose data is gone (reported loudly at start and
    /// removed by the next delete or purge), never sealed data nobody will delete.
    /// Returns, per id, whether it existed.
    fn delete(&self, ids: &[MessageId]) -> Result<Vec<bool>, StoreError>;

    // Retention. Blocking.

    /// Deletes every message `expired` says has run out, except those under hold.
    fn purge(&self, expired: impl Fn(&MessageMeta) -> bool) -> Result<PurgeReport, StoreError>;

    // The audit trail. Blocking.

    /// Records one audit entry durably; returns its sequence number.
    fn audit(&self, entry: AuditEntry) -> Result<u64, StoreError>;

    /// Up to `limit` audit records after sequence number `after`, with the chain's ends.
    fn audit_page(&self, after: u64, limit: usize) -> Result<AuditPage, StoreError>;

    /// Removes audit records older than `cutoff`, keeping the chain verifiable.
    fn prune_audit(&self, cutoff: i64) -> Result<usize, StoreError>;
}

impl QuarantineStore for Store {
    type Staged = BlobWriter;

    async fn create_blob(&self, id: MessageId) -> Result<BlobWriter, StoreError> {
        BlobWriter::create(id, &self.tmp_dir, &self.messages_dir).await
    }

    async fn commit(
        &self,
        blob: BlobWriter,
        mut meta: MessageMeta,
        sealed_summary: Vec<u8>,
        notices: NoticePlan,
    ) -> Result<(MessageId, NoticeOutcome), StoreError> {
        let id = blob.id();
        meta.sealed_size = blob.persist().await?;
        let sealed_size = meta.sealed_size;
        let queued = self
            .committer
            .commit(index::Commit {
                entry: Entry {
                    id,
                    meta,
                    sealed_summary,
                    held: false,
                },
                notices,
            })
            .await?;
        self.storage.added(sealed_size);
        Ok((id, queued))
    }

    fn pair_key(&self, sender: &str, retired_address: &str) -> [u8; 32] {
        outbox::pair_key(&self.pair_salt, sender, retired_address)
    }

    fn sender_key(&self, sender: &str) -> [u8; 32] {
        outbox::sender_key(&self.pair_salt, sender)
    }

    fn outbox_due(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<(MessageId, OutboxItem)>, StoreError> {
        outbox::due(self.index.db(), now, limit)
    }

    fn outbox_next_due(&self, skip: &[MessageId]) -> Result<Option<i64>, StoreError> {
        outbox::next_due(self.index.db(), skip)
    }

    fn notice_counts(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        outbox::counts(self.index.db())
    }

    fn outbox_settle(
        &self,
        id: MessageId,
        item: Option<&OutboxItem>,
        outcome: &str,
    ) -> Result<(), StoreError> {
        outbox::settle(self.index.db(), id, item, outcome)
    }

    fn outbox_len(&self) -> Result<u64, StoreError> {
        outbox::len(self.index.db())
    }

    fn list(
        &self,
        before: Option<MessageId>,
        limit: usize,
        filter: &ListFilter,
    ) -> Result<(Vec<Entry>, Option<MessageId>), StoreError> {
        self.index.list(before, limit, filter)
    }

    fn get(&self, id: MessageId) -> Result<Option<Entry>, StoreError> {
        self.index.get(id)
    }

    fn count(&self) -> Result<u64, StoreError> {
        self.index.count()
    }

    fn audit(&self, entry: AuditEntry) -> Result<u64, StoreError> {
        self.index.audit_append(entry)
    }

    fn audit_page(&self, after: u64, limit: usize) -> Result<AuditPage, StoreError> {
        self.index.audit_page(after, limit)
    }

    fn prune_audit(&self, cutoff: i64) -> Result<usize, StoreError> {
        self.index.audit_prune(cutoff)
    }

    fn delete(&self, ids: &[MessageId]) -> Result<Vec<bool>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        for id in ids {
            let path = blob::final_path(&self.messages_dir, *id);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(&path, e)),
            }
        }
        sync_dir(&self.messages_dir)?;
        let removed = self.index.remove_all(ids)?;
        self.storage
            .removed(removed.iter().flatten().copied().sum::<u64>());
        if let Err(error) = self.storage.refresh_free(&self.messages_dir) {
            tracing::warn!(%error, "cannot measure the store's free disk space");
        }
        Ok(removed.iter().map(Option::is_some).collect())
    }

    fn set_hold(&self, id: MessageId, held: bool, now: i64) -> Result<bool, StoreError> {
        self.index.set_hold(id, held, now)
    }

    fn purge(&self, expired: impl Fn(&MessageMeta) -> bool) -> Result<PurgeReport, StoreError> {
        let mut report = PurgeReport::default();
        let mut doomed = Vec::new();
        for (id, meta, held) in self.index.scan()? {
            if !expired(&meta) {
                continue;
            }
            if held {
                report.held += 1;
            } else {
                doomed.push(id);
            }
        }
        // Bounded batches keep each index transaction small.
        for batch in doomed.chunks(1000) {
            self.delete(batch)?;
        }
        report.deleted = doomed.iter().map(ToString::to_string).collect();
        Ok(report)
    }

    fn stats(&self) -> Result<Stats, StoreError> {
        let mut stats = Stats::default();
        for (_, meta, held) in self.index.scan()? {
            stats.messages += 1;
            stats.bytes += meta.size;
            stats.sealed_bytes += meta.sealed_size;
            stats.held += u64::from(held);
            for domain in &meta.domains {
                let d = stats.domains.entry(domain.clone()).or_default();
                d.messages += 1;
                d.bytes += meta.size;
                d.held += u64::from(held);
            }
            let day = stats.days.entry(utc_day(meta.received_at)).or_default();
            day.messages += 1;
            day.bytes += meta.size;
        }
        stats.notices = self.notice_counts()?;
        Ok(stats)
    }
}
