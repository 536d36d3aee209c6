//! The embedded store as a [`QuarantineStore`]: redb commits, fsyncs and unlinks block, so
//! each operation runs in `spawn_blocking` on a handle cloned from the store.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::backend::{Expiry, Sealed};
use super::index::{self, Index};
use super::{
    AuditEntry, AuditPage, BlobWriter, Entry, ListFilter, MessageId, MessageMeta, NoticeOutcome,
    NoticePlan, OutboxItem, PurgeReport, QuarantineStore, StagedMessage, Stats, Store, StoreError,
    blob, outbox, sync_dir,
};
use crate::capacity::StorageState;

impl StagedMessage for BlobWriter {
    fn id(&self) -> MessageId {
        BlobWriter::id(self)
    }

    async fn write(&mut self, sealed: &[u8]) -> Result<(), StoreError> {
        BlobWriter::write(self, sealed).await
    }
}

/// Runs blocking store work off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Index(format!("store task failed: {e}")))?
}

/// What deleting needs, owned, so that it can move onto a blocking thread.
struct Files {
    messages_dir: PathBuf,
    index: Arc<Index>,
    storage: Arc<StorageState>,
}

impl Files {
    /// Deletes sealed data first, then index entry, summary and hold, so a crash in between
    /// leaves an entry whose data is gone (reported loudly at start and removed by the next
    /// delete or purge), never sealed data nobody will delete.
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
}

impl Store {
    fn files(&self) -> Files {
        Files {
            messages_dir: self.messages_dir.clone(),
            index: self.index.clone(),
            storage: self.storage.clone(),
        }
    }

    /// Runs `work` on the index off the async workers.
    async fn on_index<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Index) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let index = self.index.clone();
        blocking(move || work(&index)).await
    }
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

    fn storage(&self) -> Arc<StorageState> {
        self.storage.clone()
    }

    async fn refresh_capacity(&self) -> Result<(), StoreError> {
        let storage = self.storage.clone();
        let tmp_dir = self.tmp_dir.clone();
        blocking(move || {
            storage
                .refresh_free(&tmp_dir)
                .map_err(|e| StoreError::io(&tmp_dir, e))
        })
        .await
    }

    async fn outbox_due(
        &self,
        now: i64,
        limit: usize,
        skip: &[MessageId],
    ) -> Result<Vec<(MessageId, OutboxItem)>, StoreError> {
        let skip = skip.to_vec();
        self.on_index(move |index| outbox::due(index.db(), now, limit, &skip))
            .await
    }

    async fn outbox_next_due(&self, skip: &[MessageId]) -> Result<Option<i64>, StoreError> {
        let skip = skip.to_vec();
        self.on_index(move |index| outbox::next_due(index.db(), &skip))
            .await
    }

    async fn outbox_settle(
        &self,
        id: MessageId,
        _claimed: &OutboxItem,
        next: Option<&OutboxItem>,
        outcome: &str,
    ) -> Result<(), StoreError> {
        // One gateway owns this outbox: there is no lease to check.
        let next = next.cloned();
        let outcome = outcome.to_owned();
        self.on_index(move |index| outbox::settle(index.db(), id, next.as_ref(), &outcome))
            .await
    }

    async fn outbox_restore(&self, id: MessageId, item: &OutboxItem) -> Result<(), StoreError> {
        let item = item.clone();
        self.on_index(move |index| outbox::restore(index.db(), id, &item))
            .await
    }

    async fn outbox_len(&self) -> Result<u64, StoreError> {
        self.on_index(|index| outbox::len(index.db())).await
    }

    async fn notice_counts(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        self.on_index(|index| outbox::counts(index.db())).await
    }

    async fn list(
        &self,
        before: Option<MessageId>,
        limit: usize,
        filter: &ListFilter,
    ) -> Result<(Vec<Entry>, Option<MessageId>), StoreError> {
        let filter = filter.clone();
        self.on_index(move |index| index.list(before, limit, &filter))
            .await
    }

    async fn get(&self, id: MessageId) -> Result<Option<Entry>, StoreError> {
        self.on_index(move |index| index.get(id)).await
    }

    async fn read_sealed(&self, id: MessageId) -> Result<Option<Sealed>, StoreError> {
        if self.get(id).await?.is_none() {
            return Ok(None);
        }
        let path = self.blob_path(id);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| StoreError::io(&path, e))?;
        let length = file
            .metadata()
            .await
            .map_err(|e| StoreError::io(&path, e))?
            .len();
        Ok(Some(Sealed {
            length,
            reader: Box::new(file),
        }))
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.on_index(|index| index.count()).await
    }

    async fn stats(&self) -> Result<Stats, StoreError> {
        self.on_index(|index| {
            let mut stats = Stats::default();
            for (_, meta, held) in index.scan()? {
                stats.add(&meta, held);
            }
            stats.notices = outbox::counts(index.db())?;
            Ok(stats)
        })
        .await
    }

    async fn set_hold(&self, id: MessageId, held: bool, now: i64) -> Result<bool, StoreError> {
        self.on_index(move |index| index.set_hold(id, held, now))
            .await
    }

    async fn delete(&self, ids: &[MessageId]) -> Result<Vec<bool>, StoreError> {
        let files = self.files();
        let ids = ids.to_vec();
        blocking(move || files.delete(&ids)).await
    }

    async fn purge(&self, expired: Expiry) -> Result<PurgeReport, StoreError> {
        let files = self.files();
        blocking(move || {
            let mut report = PurgeReport::default();
            let mut doomed = Vec::new();
            for (id, meta, held) in files.index.scan()? {
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
                files.delete(batch)?;
            }
            report.deleted = doomed.iter().map(ToString::to_string).collect();
            Ok(report)
        })
        .await
    }

    async fn audit(&self, entry: AuditEntry) -> Result<u64, StoreError> {
        self.on_index(move |index| index.audit_append(entry)).await
    }

    async fn audit_page(&self, after: u64, limit: usize) -> Result<AuditPage, StoreError> {
        self.on_index(move |index| index.audit_page(after, limit))
            .await
    }

    async fn prune_audit(&self, cutoff: i64) -> Result<usize, StoreError> {
        self.on_index(move |index| index.audit_prune(cutoff)).await
    }
}
