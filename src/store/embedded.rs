//! The embedded store as a [`QuarantineStore`]: redb commits, fsyncs and unlinks block, so
//! each operation runs in `spawn_blocking` on a handle cloned from the store.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use super::backend::{Expiry, Sealed};
use super::index::{self, Index};
use super::segment::{SegmentRef, Segments};
use super::{
    ApprovalRequest, AuditEntry, AuditPage, Entry, Filing, ListFilter, MessageId, MessageMeta,
    NewRequest, NoticeOutcome, NoticePlan, OutboxItem, PurgeReport, QuarantineStore, RateLimits,
    RequestBounds, RequestState, Reseal, Resealed, Stage, StagedMessage, Stats, Store, StoreError,
    Swap, blob, compact, index_err, outbox, ratelimit, sync_dir,
};
use crate::capacity::StorageState;
use crate::seal::reseal::{MAX_HEADER, header_length};

impl StagedMessage for Stage {
    fn id(&self) -> MessageId {
        Stage::id(self)
    }

    async fn write(&mut self, sealed: Vec<u8>) -> Result<(), StoreError> {
        Stage::write(self, sealed).await
    }
}

/// Runs blocking store work off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::task("store", e))?
}

/// What deleting needs, owned, so that it can move onto a blocking thread.
struct Files {
    messages_dir: PathBuf,
    tmp_dir: PathBuf,
    index: Arc<Index>,
    segments: Arc<Segments>,
    storage: Arc<StorageState>,
}

impl Files {
    /// Deletes sealed data first (a file unlinked, a segment range overwritten with
    /// zeros), then index entry, summary and hold, so a crash in between leaves an entry
    /// whose data is gone (reported loudly at start and removed by the next delete or
    /// purge), never sealed data nobody will delete.
    fn delete(&self, ids: &[MessageId]) -> Result<Vec<bool>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let _maintenance = self
            .segments
            .maintenance
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let refs = self.index.segment_refs(ids)?;
        // A message in a segment may have its own file too: a re-seal that stopped
        // between writing the file and indexing it.
        for id in ids {
            let path = blob::final_path(&self.messages_dir, *id);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(&path, e)),
            }
        }
        let in_segments: Vec<SegmentRef> = refs.iter().flatten().copied().collect();
        self.segments.wipe(&in_segments)?;
        sync_dir(&self.messages_dir)?;
        let removed = self.index.remove_all(ids)?;
        self.segments.forget(&in_segments);
        self.storage
            .removed(removed.iter().flatten().copied().sum::<u64>());
        if let Err(error) = self.storage.refresh_free(&self.messages_dir) {
            tracing::warn!(%error, "cannot measure the store's free disk space");
        }
        Ok(removed.iter().map(Option::is_some).collect())
    }

    /// Re-seals one message: its new header and the payload copied after it go to a file
    /// of its own (fsynced, renamed into place), then the index takes the new summary and
    /// fingerprints and forgets the segment range in one transaction, and only then is the
    /// old range overwritten with zeros. For a message in a segment, a crash before the
    /// index commit leaves the old message as it was (and a spare file that the next
    /// re-seal or delete replaces or removes); one after it leaves an unindexed old range,
    /// which compaction drops. For a message that is already its own file, the rename
    /// replaces it before the index commit: a crash between the two leaves the new header
    /// with the old summary and recipients in the index. The file key is unchanged, so the
    /// message still opens for the new group, and the next re-seal rewraps the summary and
    /// corrects the index.
    /// Holds [`Segments::maintenance`] throughout, so that no delete or compaction moves
    /// the message meanwhile.
    fn reseal(&self, id: MessageId, change: &Reseal) -> Result<Resealed, StoreError> {
        use std::os::unix::fs::FileExt;

        let _maintenance = self
            .segments
            .maintenance
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if self.index.get(id)?.is_none() {
            return Ok(Resealed::Missing);
        }
        let range = self.index.segment_refs(&[id])?.into_iter().flatten().next();
        let own_file = blob::final_path(&self.messages_dir, id);
        let (source_path, offset) = match range {
            Some(r) => (self.segments.path(r.segment), r.offset),
            None => (own_file.clone(), 0),
        };
        let source =
            std::fs::File::open(&source_path).map_err(|e| StoreError::io(&source_path, e))?;
        let length = match range {
            Some(r) => r.len,
            None => source
                .metadata()
                .map_err(|e| StoreError::io(&source_path, e))?
                .len(),
        };
        let mut start = vec![0u8; length.min(MAX_HEADER as u64) as usize];
        source
            .read_exact_at(&mut start, offset)
            .map_err(|e| StoreError::io(&source_path, e))?;
        if header_length(&start) != Some(change.old_header.len())
            || !start.starts_with(&change.old_header)
        {
            return Ok(Resealed::Changed);
        }
        let old = change.old_header.len() as u64;

        let tmp = self.tmp_dir.join(format!("{id}.reseal.tmp"));
        let written = (|| -> std::io::Result<u64> {
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            out.write_all(&change.header)?;
            let mut buffer = vec![0u8; 64 * 1024];
            let mut at = old;
            while at < length {
                let n = (length - at).min(buffer.len() as u64) as usize;
                source.read_exact_at(&mut buffer[..n], offset + at)?;
                out.write_all(&buffer[..n])?;
                at += n as u64;
            }
            out.sync_all()?;
            Ok(change.header.len() as u64 + (length - old))
        })()
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            StoreError::io(&tmp, e)
        })?;
        std::fs::rename(&tmp, &own_file).map_err(|e| StoreError::io(&own_file, e))?;
        sync_dir(&self.messages_dir)?;
        sync_dir(&self.tmp_dir)?;

        self.index
            .resealed(id, &change.summary, &change.sealed_to, written)?;
        if let Some(r) = range {
            self.segments.wipe(&[r])?;
            self.segments.forget(&[r]);
        }
        self.storage.removed(length);
        self.storage.added(written);
        Ok(Resealed::Done)
    }

    /// Gives back the space of deleted messages: unlinks segments with nothing live, and
    /// compacts those less than half live. A failure is logged; the space stays used.
    fn reclaim_segments(&self) {
        if let Err(error) = compact::reclaim(&self.index, &self.segments) {
            tracing::warn!(%error, "reclaiming segment space failed; it is retried after the next delete");
        }
    }
}

impl Store {
    fn files(&self) -> Files {
        Files {
            messages_dir: self.messages_dir.clone(),
            tmp_dir: self.tmp_dir.clone(),
            index: self.index.clone(),
            segments: self.segments.clone(),
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
    type Staged = Stage;

    async fn create_blob(&self, id: MessageId) -> Result<Stage, StoreError> {
        Stage::create(
            id,
            &self.staging,
            &self.staging_budget,
            self.tmp_dir.clone(),
            self.messages_dir.clone(),
        )
        .await
    }

    async fn commit(
        &self,
        staged: Stage,
        mut meta: MessageMeta,
        sealed_summary: Vec<u8>,
        notices: NoticePlan,
    ) -> Result<(MessageId, NoticeOutcome), StoreError> {
        let id = staged.id();
        let inline = match staged {
            Stage::InFile(blob) => {
                meta.sealed_size = blob.persist().await?;
                None
            }
            Stage::InMemory(memory) => {
                meta.sealed_size = memory.sealed().len() as u64;
                Some(memory)
            }
        };
        let sealed_size = meta.sealed_size;
        let queued = self
            .committer
            .commit(
                index::Commit {
                    entry: Entry {
                        id,
                        meta,
                        sealed_summary,
                        held: false,
                    },
                    notices,
                    segment: None,
                },
                inline,
            )
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

    fn organisation_key(&self, organisation: &str) -> [u8; 32] {
        outbox::organisation_key(&self.pair_salt, organisation)
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
        // A compaction may move the message between reading where it is and opening that
        // file: the second look finds the copy.
        for attempt in 0..2 {
            let refs = self
                .on_index(move |index| index.segment_refs(&[id]))
                .await?;
            let Some(r) = refs.into_iter().flatten().next() else {
                break;
            };
            match segment_range(&self.segments, r).await {
                Err(StoreError::Io { source, .. })
                    if attempt == 0 && source.kind() == std::io::ErrorKind::NotFound => {}
                result => return result.map(Some),
            }
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
        blocking(move || {
            let deleted = files.delete(&ids)?;
            files.reclaim_segments();
            Ok(deleted)
        })
        .await
    }

    async fn reseal(&self, id: MessageId, change: Reseal) -> Result<Resealed, StoreError> {
        let files = self.files();
        blocking(move || {
            let done = files.reseal(id, &change)?;
            if done == Resealed::Done {
                files.reclaim_segments();
            }
            Ok(done)
        })
        .await
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
            if !doomed.is_empty() {
                files.reclaim_segments();
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

    async fn prune_rate_memory(&self, now: i64, limits: RateLimits) -> Result<usize, StoreError> {
        self.on_index(move |index| {
            let txn = index.db().begin_write().map_err(index_err)?;
            let removed = ratelimit::prune(&txn, now, limits)?;
            txn.commit().map_err(index_err)?;
            Ok(removed)
        })
        .await
    }

    async fn request_create(
        &self,
        new: NewRequest,
        bounds: RequestBounds,
        now: i64,
    ) -> Result<Filing, StoreError> {
        self.on_index(move |index| index.request_create(new, bounds, now))
            .await
    }

    async fn request_get(&self, number: u64) -> Result<Option<ApprovalRequest>, StoreError> {
        self.on_index(move |index| index.request_get(number)).await
    }

    async fn request_list(&self, limit: usize) -> Result<Vec<ApprovalRequest>, StoreError> {
        self.on_index(move |index| index.request_list(limit)).await
    }

    async fn request_swap(
        &self,
        number: u64,
        expected: &RequestState,
        next: RequestState,
    ) -> Result<Swap, StoreError> {
        let expected = expected.clone();
        self.on_index(move |index| index.request_swap(number, &expected, next))
            .await
    }
}

/// A segment range as a stream of its own: the standard age file of one message.
async fn segment_range(segments: &Segments, r: SegmentRef) -> Result<Sealed, StoreError> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let path = segments.path(r.segment);
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| StoreError::io(&path, e))?;
    file.seek(std::io::SeekFrom::Start(r.offset))
        .await
        .map_err(|e| StoreError::io(&path, e))?;
    Ok(Sealed {
        length: r.len,
        reader: Box::new(file.take(r.len)),
    })
}
