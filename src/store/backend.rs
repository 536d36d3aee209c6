//! The store's one interface: every operation the gateway's message path, the notice
//! worker, the purger and the admin API need from a quarantine store. The embedded store
//! and the one on PostgreSQL implement it; everything that holds a store is generic over
//! it, and only launching (and `store migrate`) names a store type. Dispatch is static:
//! the operations return `impl Future`, so the trait is not object-safe, and it need not
//! be. Every operation is async; the embedded store runs its blocking redb and file work
//! in `spawn_blocking` itself.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use tokio::io::AsyncRead;

use crate::capacity::StorageState;

use super::{
    ApprovalRequest, AuditEntry, AuditPage, Entry, Filing, ListFilter, MessageId, MessageMeta,
    NewRequest, NoticeOutcome, NoticePlan, OutboxItem, PurgeReport, RateLimits, RequestBounds,
    RequestState, Reseal, Resealed, Stats, StoreError, Swap,
};

/// A sealed message being read back: its length in bytes and its bytes, streamed.
pub struct Sealed {
    pub length: u64,
    pub reader: Box<dyn AsyncRead + Send + Unpin>,
}

/// Decides which messages a purge deletes (held ones are always kept).
pub type Expiry = Arc<dyn Fn(&MessageMeta) -> bool + Send + Sync>;

/// A message being received: sealed bytes go in as they are produced; nothing is visible
/// until [`QuarantineStore::commit`] succeeds, and dropping it uncommitted leaves nothing.
pub trait StagedMessage: Send {
    /// The id the message will be stored under.
    fn id(&self) -> MessageId;

    /// Appends sealed bytes. Owned, so that a store writing to a file can hand them to the
    /// blocking pool as they are, without a copy held per session.
    fn write(&mut self, sealed: Vec<u8>) -> impl Future<Output = Result<(), StoreError>> + Send;
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

    /// The key of a sender organisation for its share of the hourly notice limit.
    fn organisation_key(&self, organisation: &str) -> [u8; 32];

    // Capacity.

    /// How full the store is; shared with the sessions, which refuse new mail at the limit.
    fn storage(&self) -> Arc<StorageState>;

    /// Measures again what [`Self::storage`] cannot count by itself (free disk space).
    fn refresh_capacity(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    // The notice worker.

    /// Claims notices due now (unix seconds), at most `limit`, leaving out `skip` (those
    /// being delivered now). On a shared store each claim carries a lease
    /// ([`OutboxItem::lease`]) that only its holder can settle.
    fn outbox_due(
        &self,
        now: i64,
        limit: usize,
        skip: &[MessageId],
    ) -> impl Future<Output = Result<Vec<(MessageId, OutboxItem)>, StoreError>> + Send;

    /// When the next notice falls due, leaving out `skip` (notices being delivered now).
    fn outbox_next_due(
        &self,
        skip: &[MessageId],
    ) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;

    /// Settles the claim `claimed` (as [`Self::outbox_due`] returned it): records a failed
    /// attempt (`next` is `Some`) or removes a delivered or abandoned notice (`None`),
    /// counting `outcome` (`sent`, `failed:temporary`, …). A claim whose lease was lost
    /// to another node changes nothing.
    fn outbox_settle(
        &self,
        id: MessageId,
        claimed: &OutboxItem,
        next: Option<&OutboxItem>,
        outcome: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Puts a notice into the outbox as it was, attempts and all, outside any rate limit
    /// (`store migrate`).
    fn outbox_restore(
        &self,
        id: MessageId,
        item: &OutboxItem,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Notices waiting.
    fn outbox_len(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Notice totals for `stats`.
    fn notice_counts(
        &self,
    ) -> impl Future<Output = Result<BTreeMap<String, u64>, StoreError>> + Send;

    // Review and administration.

    /// Up to `limit` entries that match `filter`, newest first, strictly older than
    /// `before` if given; and where the next page starts, if there may be one.
    fn list(
        &self,
        before: Option<MessageId>,
        limit: usize,
        filter: &ListFilter,
    ) -> impl Future<Output = Result<(Vec<Entry>, Option<MessageId>), StoreError>> + Send;

    /// One entry.
    fn get(&self, id: MessageId) -> impl Future<Output = Result<Option<Entry>, StoreError>> + Send;

    /// A message's sealed bytes; `None` when there is no such message.
    fn read_sealed(
        &self,
        id: MessageId,
    ) -> impl Future<Output = Result<Option<Sealed>, StoreError>> + Send;

    /// Number of indexed messages.
    fn count(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Counts and sizes from the plaintext index.
    fn stats(&self) -> impl Future<Output = Result<Stats, StoreError>> + Send;

    /// Places (`true`) or lifts a legal hold; `false` when there is no such message.
    fn set_hold(
        &self,
        id: MessageId,
        held: bool,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes messages now, sealed data with their index entries. Returns, per id,
    /// whether it existed.
    fn delete(
        &self,
        ids: &[MessageId],
    ) -> impl Future<Output = Result<Vec<bool>, StoreError>> + Send;

    /// Replaces a message's header, summary and recorded fingerprints in one step, and
    /// leaves no copy of the old header behind that the store still serves or keeps in
    /// place; the payload's bytes are kept as they are. Durable before it returns.
    fn reseal(
        &self,
        id: MessageId,
        change: Reseal,
    ) -> impl Future<Output = Result<Resealed, StoreError>> + Send;

    // Retention.

    /// Deletes every message `expired` says has run out, except those under hold.
    fn purge(
        &self,
        expired: Expiry,
    ) -> impl Future<Output = Result<PurgeReport, StoreError>> + Send;

    // The audit trail.

    /// Records one audit entry durably; returns its sequence number.
    fn audit(&self, entry: AuditEntry) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Up to `limit` audit records after sequence number `after`, with the chain's ends.
    fn audit_page(
        &self,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<AuditPage, StoreError>> + Send;

    /// Removes audit records older than `cutoff`, keeping the chain verifiable.
    fn prune_audit(&self, cutoff: i64) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Forgets what the notice rate limits no longer look at under `limits` at `now`: pairs
    /// last notified a whole `pair_interval` ago, and windows with no send left in them.
    /// Returns how many entries went.
    fn prune_rate_memory(
        &self,
        now: i64,
        limits: RateLimits,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    // Four-eyes approvals.

    /// Files an approval request and gives it the next number, unless `bounds.max_open`
    /// requests are open (pending or approved, not expired) at `now`; counting and filing
    /// are one atomic step, which also forgets the requests that expired before
    /// `bounds.forget_expired_before` (all but the newest).
    fn request_create(
        &self,
        new: NewRequest,
        bounds: RequestBounds,
        now: i64,
    ) -> impl Future<Output = Result<Filing, StoreError>> + Send;

    /// One request by number.
    fn request_get(
        &self,
        number: u64,
    ) -> impl Future<Output = Result<Option<ApprovalRequest>, StoreError>> + Send;

    /// Up to `limit` requests, newest first.
    fn request_list(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ApprovalRequest>, StoreError>> + Send;

    /// Sets request `number`'s state to `next` only if it is `expected` now (approving,
    /// denying and using are all this compare-and-set, so of two racing changes one wins).
    fn request_swap(
        &self,
        number: u64,
        expected: &RequestState,
        next: RequestState,
    ) -> impl Future<Output = Result<Swap, StoreError>> + Send;
}
