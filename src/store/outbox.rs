//! The notice outbox: notices waiting for delivery, and the totals for `stats`. A notice is
//! queued (or held back by a rate limit) in the same index transaction as the message it
//! answers, so an acknowledged message never loses its notice and limits survive restarts.

use redb::{
    ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ratelimit::{self, Keys, RateLimits};
use super::{MessageId, StoreError, index_err};

const OUTBOX: TableDefinition<u128, &[u8]> = TableDefinition::new("outbox");
const SETTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("settings");
/// Running totals for `stats`: queued, sent, failed and suppressed notices by reason.
const COUNTS: TableDefinition<&str, u64> = TableDefinition::new("notice_counts");

/// The notice a message causes (at most one), and why others were not sent.
#[derive(Debug, Clone, Default)]
pub struct NoticePlan {
    pub notice: Option<QueuedNotice>,
    /// A reason (`automated`, `per_message`, …) and how many notices it held back.
    pub suppressed: Vec<(&'static str, u64)>,
}

/// What became of a message's planned notice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoticeOutcome {
    /// Notices queued (0 or 1).
    pub queued: usize,
    /// The rate limit that held the planned notice back, if one did.
    pub limited: Option<&'static str>,
}

impl NoticeOutcome {
    /// The record kept in the message's index entry: what `plan` and this outcome meant
    /// for the sender.
    pub fn record(&self, plan: &NoticePlan) -> NoticeRecord {
        if self.queued > 0 {
            NoticeRecord::Queued
        } else if let Some(limit) = self.limited {
            NoticeRecord::HeldBack(limit.to_owned())
        } else {
            // `per_message` only ever accompanies a notice that was planned.
            let reason = plan
                .suppressed
                .iter()
                .map(|(reason, _)| *reason)
                .find(|reason| *reason != "per_message")
                .unwrap_or("domain_mode");
            NoticeRecord::NotPlanned(reason.to_owned())
        }
    }
}

/// What became of a message's notice, decided in the transaction that stored the message
/// and kept with its index entry, so that the exit rule counts who was really told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "reason")]
pub enum NoticeRecord {
    /// A notice to the envelope sender was queued.
    Queued,
    /// A notice was planned and a rate limit held it back (`pair_interval`, …).
    HeldBack(String),
    /// None was planned: the domain's mode tells nobody (`domain_mode`), or the sender may
    /// not be told (`automated`, `unauthenticated`, …).
    NotPlanned(String),
}

fn bump(txn: &WriteTransaction, key: &str, by: u64) -> Result<(), StoreError> {
    if by == 0 {
        return Ok(());
    }
    let mut counts = txn.open_table(COUNTS).map_err(index_err)?;
    let now = counts.get(key).map_err(index_err)?.map_or(0, |v| v.value());
    counts.insert(key, now + by).map_err(index_err)?;
    Ok(())
}

/// The notice totals (`queued`, `sent`, `failed:permanent`, `suppressed:automated`, …).
pub(super) fn counts(
    db: &redb::Database,
) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
    let txn = db.begin_read().map_err(index_err)?;
    let Ok(table) = txn.open_table(COUNTS) else {
        return Ok(Default::default());
    };
    let mut out = std::collections::BTreeMap::new();
    for row in table.iter().map_err(index_err)? {
        let (key, value) = row.map_err(index_err)?;
        out.insert(key.value().to_owned(), value.value());
    }
    Ok(out)
}

/// A notice waiting for delivery. It holds the recipient's address in plaintext: the
/// gateway must be able to read it to deliver it. It is deleted once delivered or given up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxItem {
    /// The envelope recipient: the sender of the quarantined message.
    pub to: String,
    /// The complete notice (RFC 5322, CRLF line ends).
    pub message: String,
    /// Unix seconds when queued.
    pub created_at: i64,
    pub attempts: u32,
    /// Unix seconds of the next delivery attempt.
    pub next_attempt_at: i64,
    /// On a shared store, the lease of the claim that handed this notice out: only that
    /// claim may settle it. Never stored in the embedded outbox.
    #[serde(skip)]
    pub lease: Option<uuid::Uuid>,
}

/// A notice to queue with a message, unless a rate limit holds it back.
#[derive(Debug, Clone)]
pub struct QueuedNotice {
    pub id: MessageId,
    /// The (sender, retired address) pairs it answers; see [`pair_key`].
    pub pairs: Vec<[u8; 32]>,
    /// The sender's key for the per-sender limit; see [`sender_key`].
    pub sender: [u8; 32],
    /// The sender organisation's key for its share of the hourly limit; see
    /// [`organisation_key`].
    pub organisation: [u8; 32],
    pub limits: RateLimits,
    pub item: OutboxItem,
}

/// The per-store salt for pair keys, created on first use.
pub(super) fn salt(db: &redb::Database) -> Result<Vec<u8>, StoreError> {
    {
        let txn = db.begin_read().map_err(index_err)?;
        if let Ok(table) = txn.open_table(SETTINGS)
            && let Some(value) = table.get("pair_salt").map_err(index_err)?
        {
            return Ok(value.value().to_vec());
        }
    }
    let mut fresh = uuid::Uuid::new_v4().as_bytes().to_vec();
    fresh.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    let txn = db.begin_write().map_err(index_err)?;
    {
        let mut table = txn.open_table(SETTINGS).map_err(index_err)?;
        table
            .insert("pair_salt", fresh.as_slice())
            .map_err(index_err)?;
        txn.open_table(OUTBOX).map_err(index_err)?;
        txn.open_table(ratelimit::NOTIFIED).map_err(index_err)?;
    }
    txn.commit().map_err(index_err)?;
    Ok(fresh)
}

/// The key of a (sender, retired address) pair: addresses compared case-insensitively.
pub fn pair_key(salt: &[u8], sender: &str, retired_address: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(salt);
    hash.update(sender.to_lowercase().as_bytes());
    hash.update([0u8]);
    hash.update(retired_address.to_lowercase().as_bytes());
    hash.finalize().into()
}

/// The key of an envelope sender for the per-sender limit, compared case-insensitively.
pub fn sender_key(salt: &[u8], sender: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(salt);
    // Domain separation from pair keys, which start with the sender too.
    hash.update(b"sender\0");
    hash.update(sender.to_lowercase().as_bytes());
    hash.finalize().into()
}

/// The key of a sender organisation (the registrable domain a notice's recipient is at,
/// as `notice::policy::sender_organisation` names it) for its share of the hourly limit.
pub fn organisation_key(salt: &[u8], organisation: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(salt);
    hash.update(b"organisation\0");
    hash.update(organisation.to_lowercase().as_bytes());
    hash.finalize().into()
}

/// Queues a message's notice inside its transaction, unless a rate limit holds it back,
/// and counts every notice not sent by reason.
pub(super) fn queue_in(
    txn: &WriteTransaction,
    plan: &NoticePlan,
    now: i64,
) -> Result<NoticeOutcome, StoreError> {
    for (reason, n) in &plan.suppressed {
        bump(txn, &format!("suppressed:{reason}"), *n)?;
    }
    let Some(notice) = &plan.notice else {
        return Ok(NoticeOutcome::default());
    };
    let keys = Keys {
        pairs: &notice.pairs,
        sender: &notice.sender,
        organisation: &notice.organisation,
        limits: notice.limits,
    };
    if let Err(limited) = ratelimit::admit(txn, &keys, now)? {
        bump(txn, &format!("suppressed:{}", limited.as_str()), 1)?;
        return Ok(NoticeOutcome {
            queued: 0,
            limited: Some(limited.as_str()),
        });
    }
    let json = serde_json::to_vec(&notice.item).map_err(StoreError::Encode)?;
    txn.open_table(OUTBOX)
        .map_err(index_err)?
        .insert(notice.id.key(), json.as_slice())
        .map_err(index_err)?;
    bump(txn, "queued", 1)?;
    Ok(NoticeOutcome {
        queued: 1,
        limited: None,
    })
}

/// Notices due at `now` (unix seconds) other than `skip`, oldest first, at most `limit`.
pub(super) fn due(
    db: &redb::Database,
    now: i64,
    limit: usize,
    skip: &[MessageId],
) -> Result<Vec<(MessageId, OutboxItem)>, StoreError> {
    let txn = db.begin_read().map_err(index_err)?;
    let Ok(table) = txn.open_table(OUTBOX) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for row in table.iter().map_err(index_err)? {
        let (key, value) = row.map_err(index_err)?;
        if skip.contains(&MessageId::from_key(key.value())) {
            continue;
        }
        let Ok(item) = serde_json::from_slice::<OutboxItem>(value.value()) else {
            tracing::error!(id = %MessageId::from_key(key.value()), "unreadable outbox entry left in place");
            continue;
        };
        if item.next_attempt_at <= now {
            out.push((MessageId::from_key(key.value()), item));
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}

/// When the next notice other than `skip` falls due, if any.
pub(super) fn next_due(db: &redb::Database, skip: &[MessageId]) -> Result<Option<i64>, StoreError> {
    let txn = db.begin_read().map_err(index_err)?;
    let Ok(table) = txn.open_table(OUTBOX) else {
        return Ok(None);
    };
    let mut next: Option<i64> = None;
    for row in table.iter().map_err(index_err)? {
        let (key, value) = row.map_err(index_err)?;
        if skip.contains(&MessageId::from_key(key.value())) {
            continue;
        }
        if let Ok(item) = serde_json::from_slice::<OutboxItem>(value.value()) {
            next = Some(next.map_or(item.next_attempt_at, |n| n.min(item.next_attempt_at)));
        }
    }
    Ok(next)
}

/// Replaces an item (after a failed attempt) or removes it (`None`: delivered or given up).
pub(super) fn settle(
    db: &redb::Database,
    id: MessageId,
    item: Option<&OutboxItem>,
    outcome: &str,
) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(index_err)?;
    bump(&txn, outcome, 1)?;
    {
        let mut table = txn.open_table(OUTBOX).map_err(index_err)?;
        match item {
            Some(item) => {
                let json = serde_json::to_vec(item).map_err(StoreError::Encode)?;
                table.insert(id.key(), json.as_slice()).map_err(index_err)?;
            }
            None => {
                table.remove(id.key()).map_err(index_err)?;
            }
        }
    }
    txn.commit().map_err(index_err)
}

/// Puts a notice into the outbox as it is.
pub(super) fn restore(
    db: &redb::Database,
    id: MessageId,
    item: &OutboxItem,
) -> Result<(), StoreError> {
    let json = serde_json::to_vec(item).map_err(StoreError::Encode)?;
    let txn = db.begin_write().map_err(index_err)?;
    txn.open_table(OUTBOX)
        .map_err(index_err)?
        .insert(id.key(), json.as_slice())
        .map_err(index_err)?;
    txn.commit().map_err(index_err)
}

/// Number of notices waiting.
pub(super) fn len(db: &redb::Database) -> Result<u64, StoreError> {
    let txn = db.begin_read().map_err(index_err)?;
    match txn.open_table(OUTBOX) {
        Ok(table) => table.len().map_err(index_err),
        Err(_) => Ok(0),
    }
}
