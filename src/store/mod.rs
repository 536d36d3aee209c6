//! The durable quarantine: each message sealed as a standard age file, small ones as byte
//! ranges of segment files and large ones as files of their own, and a redb index of
//! plaintext metadata plus each message's sealed summary. The store only ever sees sealed
//! bytes. What callers may ask of a store is [`QuarantineStore`] (sealed messages read
//! back as streams, capacity included), the one interface the rest of the gateway holds a
//! store by: [`Store`] implements it, and so does [`postgres::PgStore`].
//!
//! Layout under the store path:
//! - `segments/<n>.seg`: sealed messages up to `[store] inline_max`, appended one after
//!   another; the index says where each one starts and how long it is;
//! - `messages/<id>.age`: a larger sealed message (or one stored before segments existed);
//! - `tmp/`: large messages being received (removed at start if left by a crash);
//! - `index.redb`: the index, segment locations, holds and the audit trail.

pub mod audit;
mod backend;
mod blob;
mod committer;
mod compact;
mod embedded;
mod id;
mod index;
mod locations;
pub mod migrate;
mod outbox;
pub mod postgres;
mod ratelimit;
mod reconcile;
pub mod requests;
mod retain;
mod segment;
mod staging;
mod tables;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use audit::{AuditEntry, AuditPage};
pub use backend::{Expiry, QuarantineStore, Sealed, StagedMessage};
pub use blob::BlobWriter;
pub use id::MessageId;
pub use outbox::{
    NoticeOutcome, NoticePlan, NoticeRecord, OutboxItem, QueuedNotice, pair_key, sender_key,
};
pub use ratelimit::{Limited, RateLimits};
pub use reconcile::Reconciliation;
pub use requests::{
    ApprovalRequest, Filing, GuardedAction, NewRequest, RequestBounds, RequestState, Swap,
};
pub use retain::{DayStats, DomainStats, PurgeReport, Stats};
pub use segment::SegmentRef;
pub use staging::{Stage, StagingLimits};

use crate::capacity::{MemoryBudget, StorageLimits, StorageState};
use committer::Committer;
use index::Index;

/// Why a store operation failed. Every variant is worth retrying later from the sender's
/// point of view (`451 4.3.0`): the message was not acknowledged. The index variants keep
/// redb's own error, one variant per kind of redb failure, so that a caller can tell a
/// locked or damaged index from a failed commit.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The index file could not be opened (already open elsewhere, damaged, too old).
    #[error("index: {0}")]
    Database(#[from] redb::DatabaseError),
    #[error("index: {0}")]
    Transaction(#[from] redb::TransactionError),
    #[error("index: {0}")]
    Table(#[from] redb::TableError),
    /// Reading or writing the index file failed.
    #[error("index: {0}")]
    Storage(#[from] redb::StorageError),
    #[error("index: {0}")]
    Commit(#[from] redb::CommitError),
    /// An index record could not be encoded.
    #[error("index: {0}")]
    Encode(#[source] serde_json::Error),
    /// A message's index entry does not decode.
    #[error("index: entry {id} is unreadable: {source}")]
    Unreadable {
        id: MessageId,
        source: serde_json::Error,
    },
    /// An audit record or the audit chain's anchor does not encode or decode.
    #[error("index: audit record: {0}")]
    Audit(#[source] serde_json::Error),
    /// An approval request does not decode.
    #[error("index: approval request: {0}")]
    Request(#[source] serde_json::Error),
    /// Blocking store work ended without an answer (it panicked, or the runtime is
    /// shutting down).
    #[error("index: {what} task failed: {source}")]
    Task {
        what: &'static str,
        source: tokio::task::JoinError,
    },
    #[error("the store is shutting down")]
    Closed,
    #[error(transparent)]
    Postgres(#[from] postgres::PgError),
    /// The group commit a message was part of failed; every message in the batch gets
    /// the same error, shared.
    #[error("group commit: {0}")]
    Batch(#[source] std::sync::Arc<StoreError>),
}

impl StoreError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// Blocking work (`what`, e.g. "store open") that did not come back.
    pub(crate) fn task(what: &'static str, source: tokio::task::JoinError) -> Self {
        StoreError::Task { what, source }
    }
}

/// For `map_err` on any redb call: each redb error type becomes its own variant.
pub(crate) fn index_err(e: impl Into<StoreError>) -> StoreError {
    e.into()
}

/// Plaintext facts about a stored message, kept in the index. Nothing here names a person:
/// addresses and subjects live in the sealed summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageMeta {
    /// Seconds since the Unix epoch.
    pub received_at: i64,
    /// Plaintext size in bytes (trace fields plus the message as sent).
    pub size: u64,
    /// Size of the sealed file in bytes.
    pub sealed_size: u64,
    /// The retired domains the message was addressed to.
    pub domains: Vec<String>,
    /// What became of the message's notice. Absent in entries written before reclaim
    /// recorded it; set by the store when it commits, from the commit's outcome (a
    /// migration passes the record it copies instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<NoticeRecord>,
    /// Fingerprints of the keys the message is sealed to ([`crate::seal::fingerprint`]),
    /// sorted. Empty in entries written before reclaim recorded it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sealed_to: Vec<String>,
}

/// A message's file key rewrapped for other keys ([`crate::seal::reseal`]): the header
/// that replaces its first bytes, the summary and the fingerprints that go with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reseal {
    /// The header being replaced, as the reviewer read it: the store replaces nothing if
    /// the message no longer starts with it (someone re-sealed it meanwhile).
    pub old_header: Vec<u8>,
    pub header: Vec<u8>,
    pub summary: Vec<u8>,
    /// Sorted, as [`MessageMeta::sealed_to`].
    pub sealed_to: Vec<String>,
}

/// What became of a [`Reseal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resealed {
    /// The new header, summary and fingerprints are in place, durably.
    Done,
    /// There is no such message (any more).
    Missing,
    /// The message no longer starts with the header the reviewer read: nothing changed.
    Changed,
}

/// One index entry: metadata and the sealed summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: MessageId,
    pub meta: MessageMeta,
    pub sealed_summary: Vec<u8>,
    /// Under legal hold: exempt from retention.
    pub held: bool,
}

/// Which messages a listing wants, on plaintext index fields only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// A retired domain as the index records it (normalised ASCII).
    pub domain: Option<String>,
    /// Received at or after (seconds since the epoch).
    pub since: Option<i64>,
    /// Received before (seconds since the epoch).
    pub until: Option<i64>,
}

impl ListFilter {
    pub fn matches(&self, meta: &MessageMeta) -> bool {
        self.domain
            .as_ref()
            .is_none_or(|d| meta.domains.iter().any(|m| m == d))
            && self.since.is_none_or(|t| meta.received_at >= t)
            && self.until.is_none_or(|t| meta.received_at < t)
    }
}

/// The quarantine store. Share it as `Arc<Store>`.
pub struct Store {
    messages_dir: PathBuf,
    tmp_dir: PathBuf,
    segments: std::sync::Arc<segment::Segments>,
    staging: StagingLimits,
    /// What messages staged in memory use together.
    staging_budget: std::sync::Arc<MemoryBudget>,
    index: std::sync::Arc<Index>,
    committer: Committer,
    pair_salt: Vec<u8>,
    /// How full the store is, for the sessions' `452 4.3.1` before the data.
    storage: std::sync::Arc<StorageState>,
}

impl Store {
    /// Opens (creating if needed) the store at `root`, removes stale temp files and
    /// reconciles index and blobs. Blocking: call at start-up. No quota, no floor.
    pub fn open(root: &Path) -> Result<(Self, Reconciliation), StoreError> {
        Self::open_with(root, StorageLimits::default())
    }

    /// [`Self::open`], with a quota and a free-disk floor that [`Self::storage`] enforces.
    pub fn open_with(
        root: &Path,
        limits: StorageLimits,
    ) -> Result<(Self, Reconciliation), StoreError> {
        Self::open_tuned(root, limits, StagingLimits::default())
    }

    /// [`Self::open_with`], with how small messages are staged and stored.
    pub fn open_tuned(
        root: &Path,
        limits: StorageLimits,
        staging: StagingLimits,
    ) -> Result<(Self, Reconciliation), StoreError> {
        let messages_dir = root.join("messages");
        let tmp_dir = root.join("tmp");
        let segments_dir = root.join("segments");
        for dir in [root, &messages_dir, &tmp_dir, &segments_dir] {
            create_private_dir(dir)?;
        }
        let index = std::sync::Arc::new(Index::open(&root.join("index.redb"))?);
        let (segments, stale_segments) = segment::Segments::open(
            &segments_dir,
            staging.segment_size,
            index.live_per_segment()?,
        )?;
        let segments = std::sync::Arc::new(segments);
        let report =
            reconcile::reconcile(&index, &messages_dir, &tmp_dir, &segments, stale_segments)?;
        let pair_salt = outbox::salt(index.db())?;
        let committer = Committer::start(index.clone(), messages_dir.clone(), segments.clone())?;
        let used = index
            .scan()?
            .iter()
            .map(|(_, meta, _)| meta.sealed_size)
            .sum();
        let storage = std::sync::Arc::new(StorageState::new(limits, used));
        storage
            .refresh_free(root)
            .map_err(|e| StoreError::io(root, e))?;
        Ok((
            Self {
                messages_dir,
                tmp_dir,
                segments,
                staging,
                staging_budget: MemoryBudget::new(staging.memory),
                index,
                committer,
                pair_salt,
                storage,
            },
            report,
        ))
    }

    /// Where a message's sealed file lives, if it has one of its own (large messages, and
    /// every message stored before segments existed); see [`QuarantineStore::read_sealed`].
    pub fn blob_path(&self, id: MessageId) -> PathBuf {
        blob::final_path(&self.messages_dir, id)
    }
}

/// Creates a directory readable by its owner only (the quarantine is sealed, but its size
/// and timing are nobody else's business either).
fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR)
        .create(dir)
    {
        Ok(()) => Ok(()),
        Err(e) => Err(StoreError::io(dir, e)),
    }
}

/// Opens (creating if needed) a file of the store for reading and writing with mode 0600,
/// whatever the umask: the index holds audit reasons and queued notices in plaintext. A
/// file left wider by an older release, or made by hand, is narrowed to 0600.
fn open_private(path: &Path) -> Result<std::fs::File, StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |e| StoreError::io(path, e);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(PRIVATE_FILE)
        .open(path)
        .map_err(io)?;
    // On the open file, not the path: a name swapped in between is never changed.
    let mode = file.metadata().map_err(io)?.permissions().mode();
    if mode & 0o7777 != PRIVATE_FILE {
        file.set_permissions(std::fs::Permissions::from_mode(PRIVATE_FILE))
            .map_err(io)?;
    }
    Ok(file)
}

/// Mode of every file in the store.
const PRIVATE_FILE: u32 = 0o600;
/// Mode of every folder in the store.
const PRIVATE_DIR: u32 = 0o700;

/// fsyncs a directory so that entries created or renamed in it survive a crash.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    /// The causes below `error`, nearest first.
    fn causes(error: &StoreError) -> Vec<&(dyn std::error::Error + 'static)> {
        let mut out = Vec::new();
        let mut next = error.source();
        while let Some(cause) = next {
            out.push(cause);
            next = cause.source();
        }
        out
    }

    #[test]
    fn an_index_error_keeps_the_redb_error_as_its_source() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("index.redb");
        let _open = Index::open(&path).expect("first open");
        let error = match Index::open(&path) {
            Ok(_) => panic!("the index opened twice"),
            Err(error) => error,
        };
        assert!(
            matches!(
                error,
                StoreError::Database(redb::DatabaseError::DatabaseAlreadyOpen)
            ),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "index: Database already open. Cannot acquire lock."
        );
        let source = error.source().expect("a source");
        assert!(source.is::<redb::DatabaseError>(), "{source:?}");

        // Every waiter of a failed group commit shares it, and still reaches redb's error.
        let batch = StoreError::Batch(std::sync::Arc::new(error));
        assert!(batch.to_string().starts_with("group commit: index: "));
        assert!(
            causes(&batch)
                .iter()
                .any(|cause| cause.is::<redb::DatabaseError>()),
            "{batch:?}"
        );
    }

    #[test]
    fn an_unreadable_entry_names_it_and_keeps_the_json_error() {
        let id = MessageId::new();
        let source = serde_json::from_slice::<MessageMeta>(b"{").expect_err("not JSON");
        let error = StoreError::Unreadable { id, source };
        assert!(
            error
                .to_string()
                .starts_with(&format!("index: entry {id} is unreadable: ")),
            "{error}"
        );
        assert!(error.source().expect("a source").is::<serde_json::Error>());
    }
}
