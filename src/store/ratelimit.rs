//! Notice rate limits, decided inside the transaction that stores the message: per
//! (sender, retired address) interval, per sender, gateway-wide per hour, and per sender
//! organisation within that hour. Everything is keyed by salted hashes, so the memory
//! names nobody.

use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::{StoreError, index_err};

/// When each (sender, retired address) pair was last notified (unix seconds).
pub(super) const NOTIFIED: TableDefinition<&[u8], i64> = TableDefinition::new("notified");
/// Sliding windows: the send times (unix seconds, little-endian i64s, oldest first) of the
/// last notices per sender key, per [`organisation_window`] key, and under [`GATEWAY`] for
/// the whole gateway. Each holds at most its limit of entries, and the limits are bounded
/// by the config. Send times are wall-clock seconds kept in the store, so a restart
/// neither empties a window nor stretches it: the hour is the last 3600 seconds.
const WINDOWS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("notice_windows");
pub(super) const GATEWAY: &[u8] = b"gateway";
pub(super) const HOUR_SECS: i64 = 3600;
/// First byte of an organisation's window key. Sender keys are 32-byte hashes too: the
/// prefix keeps the two apart, and tells pruning that this window spans an hour.
pub(super) const ORGANISATION_PREFIX: u8 = b'o';
/// Length of an organisation's window key: the prefix and the hash.
pub(super) const ORGANISATION_KEY_LEN: usize = 33;

/// The window key of an organisation key (see `outbox::organisation_key`).
pub(super) fn organisation_window(organisation: &[u8; 32]) -> [u8; ORGANISATION_KEY_LEN] {
    let mut key = [ORGANISATION_PREFIX; ORGANISATION_KEY_LEN];
    key[1..].copy_from_slice(organisation);
    key
}

/// How far back the window under `key` looks: an hour for the gateway and organisations.
fn span(key: &[u8], limits: RateLimits) -> i64 {
    let organisation = key.len() == ORGANISATION_KEY_LEN && key[0] == ORGANISATION_PREFIX;
    if key == GATEWAY || organisation {
        HOUR_SECS
    } else {
        limits.sender_interval
    }
}

/// The limits one notice is held to, from `[notify]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Seconds: a notice is skipped if every pair it answers was notified this recently.
    pub pair_interval: i64,
    pub sender_limit: u32,
    /// Seconds of the per-sender window.
    pub sender_interval: i64,
    pub hourly_limit: u32,
    /// Of the hourly limit, at most this many per sender organisation.
    pub domain_limit: u32,
}

/// Which limit held a notice back; the `suppressed:` reason in `stats` and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    PairInterval,
    SenderLimit,
    HourlyLimit,
    /// The sender's organisation has had its share of the hour.
    DomainLimit,
}

impl Limited {
    pub fn as_str(self) -> &'static str {
        match self {
            Limited::PairInterval => "pair_interval",
            Limited::SenderLimit => "sender_limit",
            Limited::HourlyLimit => "hourly_limit",
            Limited::DomainLimit => "domain_limit",
        }
    }
}

/// What one notice is checked by.
pub(super) struct Keys<'a> {
    pub pairs: &'a [[u8; 32]],
    pub sender: &'a [u8; 32],
    pub organisation: &'a [u8; 32],
    pub limits: RateLimits,
}

/// Admits a notice at `now` and records it against every limit, or says which limit holds
/// it back (and records nothing).
pub(super) fn admit(
    txn: &WriteTransaction,
    keys: &Keys<'_>,
    now: i64,
) -> Result<Result<(), Limited>, StoreError> {
    let limits = keys.limits;
    let mut notified = txn.open_table(NOTIFIED).map_err(index_err)?;
    let mut last_notified = Vec::with_capacity(keys.pairs.len());
    for pair in keys.pairs {
        let last = notified.get(pair.as_slice()).map_err(index_err)?;
        last_notified.push(last.map(|v| v.value()));
    }
    let mut windows = txn.open_table(WINDOWS).map_err(index_err)?;
    let read = |key: &[u8], span: i64| -> Result<Vec<i64>, StoreError> {
        let stored = windows.get(key).map_err(index_err)?;
        Ok(stored.map_or_else(Vec::new, |v| decode(v.value(), now - span)))
    };
    let sender = read(keys.sender, limits.sender_interval)?;
    let gateway = read(GATEWAY, HOUR_SECS)?;
    let organisation_key = organisation_window(keys.organisation);
    let organisation = read(&organisation_key, HOUR_SECS)?;
    let windows_now = Windows {
        sender: &sender,
        gateway: &gateway,
        organisation: &organisation,
    };
    if let Err(limited) = judge(&last_notified, windows_now, limits, now) {
        return Ok(Err(limited));
    }
    for pair in keys.pairs {
        notified.insert(pair.as_slice(), now).map_err(index_err)?;
    }
    for (key, mut times, limit) in [
        (keys.sender.as_slice(), sender, limits.sender_limit),
        (GATEWAY, gateway, limits.hourly_limit),
        (&organisation_key, organisation, limits.domain_limit),
    ] {
        times.push(now);
        let keep = times.len().saturating_sub(limit as usize);
        windows
            .insert(key, encode(&times[keep..]).as_slice())
            .map_err(index_err)?;
    }
    Ok(Ok(()))
}

/// The send times still inside the windows one notice is held to.
#[derive(Clone, Copy)]
pub(super) struct Windows<'a> {
    pub sender: &'a [i64],
    pub gateway: &'a [i64],
    pub organisation: &'a [i64],
}

/// The rule itself, on what the memory holds: when each pair was last notified, and the
/// send times still inside the sender's, the gateway's and the organisation's windows.
/// Shared by every store.
pub(super) fn judge(
    last_notified: &[Option<i64>],
    windows: Windows<'_>,
    limits: RateLimits,
    now: i64,
) -> Result<(), Limited> {
    let all_recent = !last_notified.is_empty()
        && last_notified
            .iter()
            .all(|last| last.is_some_and(|t| t > now - limits.pair_interval));
    if all_recent {
        return Err(Limited::PairInterval);
    }
    if windows.sender.len() >= limits.sender_limit as usize {
        return Err(Limited::SenderLimit);
    }
    if windows.gateway.len() >= limits.hourly_limit as usize {
        return Err(Limited::HourlyLimit);
    }
    // Checked last: a full gateway is reported as such, whoever caused it.
    if windows.organisation.len() >= limits.domain_limit as usize {
        return Err(Limited::DomainLimit);
    }
    Ok(())
}

/// Removes what [`admit`] would no longer look at under `limits` at `now`: pairs last
/// notified a whole `pair_interval` ago, and windows with no send left inside them.
pub(super) fn prune(
    txn: &WriteTransaction,
    now: i64,
    limits: RateLimits,
) -> Result<usize, StoreError> {
    let mut removed = 0;
    let mut notified = txn.open_table(NOTIFIED).map_err(index_err)?;
    notified
        .retain(|_, at| {
            let keep = at > now - limits.pair_interval;
            removed += usize::from(!keep);
            keep
        })
        .map_err(index_err)?;
    let mut windows = txn.open_table(WINDOWS).map_err(index_err)?;
    windows
        .retain(|key, times| {
            let keep = !decode(times, now - span(key, limits)).is_empty();
            removed += usize::from(!keep);
            keep
        })
        .map_err(index_err)?;
    Ok(removed)
}

/// The times after `cutoff` from a stored window.
fn decode(bytes: &[u8], cutoff: i64) -> Vec<i64> {
    bytes
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().expect("chunks_exact gives 8 bytes")))
        .filter(|&t| t > cutoff)
        .collect()
}

fn encode(times: &[i64]) -> Vec<u8> {
    times.iter().flat_map(|t| t.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: RateLimits = RateLimits {
        pair_interval: 7 * 86400,
        sender_limit: 3,
        sender_interval: 86400,
        hourly_limit: 5,
        domain_limit: 4,
    };

    fn db() -> (tempfile::TempDir, redb::Database) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = redb::Database::create(dir.path().join("t.redb")).expect("db");
        (dir, db)
    }

    /// Tries one notice in its own transaction, as the committer would, from a sender that
    /// is an organisation of its own.
    fn try_one(
        db: &redb::Database,
        pairs: &[[u8; 32]],
        sender: u8,
        now: i64,
    ) -> Result<(), Limited> {
        try_from(db, pairs, sender, sender, now)
    }

    /// Tries one notice from `sender` at `organisation`.
    fn try_from(
        db: &redb::Database,
        pairs: &[[u8; 32]],
        sender: u8,
        organisation: u8,
        now: i64,
    ) -> Result<(), Limited> {
        let txn = db.begin_write().expect("txn");
        let result = admit(
            &txn,
            &Keys {
                pairs,
                sender: &[sender; 32],
                organisation: &[organisation; 32],
                limits: LIMITS,
            },
            now,
        )
        .expect("store");
        txn.commit().expect("commit");
        result
    }

    #[test]
    fn pair_interval_holds_only_when_every_pair_is_recent() {
        let (_dir, db) = db();
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_eq!(try_one(&db, &[a], 1, 1000), Ok(()));
        assert_eq!(try_one(&db, &[a], 1, 2000), Err(Limited::PairInterval));
        // A notice that also answers a new pair goes out, and refreshes both.
        assert_eq!(try_one(&db, &[a, b], 1, 3000), Ok(()));
        assert_eq!(try_one(&db, &[b, a], 1, 4000), Err(Limited::PairInterval));
        assert_eq!(
            try_one(&db, &[a], 1, 3000 + LIMITS.pair_interval),
            Ok(()),
            "the interval has passed"
        );
    }

    #[test]
    fn sender_limit_is_a_sliding_window() {
        let (_dir, db) = db();
        let mut n = 0u8;
        let mut fresh = || {
            n += 1;
            [[n; 32]]
        };
        for t in [0, 10, 20] {
            assert_eq!(try_one(&db, &fresh(), 7, t), Ok(()));
        }
        assert_eq!(try_one(&db, &fresh(), 7, 30), Err(Limited::SenderLimit));
        assert_eq!(try_one(&db, &fresh(), 8, 30), Ok(()), "another sender");
        // The first one leaves the window a day after it was sent, and only it.
        assert_eq!(try_one(&db, &fresh(), 7, 86400), Ok(()));
        assert_eq!(try_one(&db, &fresh(), 7, 86405), Err(Limited::SenderLimit));
    }

    #[test]
    fn hourly_limit_covers_every_sender() {
        let (_dir, db) = db();
        for sender in 0..5u8 {
            assert_eq!(try_one(&db, &[[sender; 32]], sender, 100), Ok(()));
        }
        assert_eq!(try_one(&db, &[[9; 32]], 9, 200), Err(Limited::HourlyLimit));
        assert_eq!(try_one(&db, &[[9; 32]], 9, 100 + HOUR_SECS), Ok(()));
    }

    #[test]
    fn one_organisation_gets_its_share_of_the_hour_and_no_more() {
        let (_dir, db) = db();
        for sender in 0..4u8 {
            assert_eq!(try_from(&db, &[[sender; 32]], sender, 1, 100), Ok(()));
        }
        // A fresh address at the same organisation: its own sender limit is untouched.
        assert_eq!(
            try_from(&db, &[[10; 32]], 10, 1, 200),
            Err(Limited::DomainLimit)
        );
        // Another organisation still gets the rest of the hour.
        assert_eq!(try_from(&db, &[[11; 32]], 11, 2, 200), Ok(()));
        assert_eq!(
            try_from(&db, &[[12; 32]], 12, 3, 200),
            Err(Limited::HourlyLimit),
            "a full gateway says so, whoever filled it"
        );
        // The budget is an hour's: the first four leave it together.
        assert_eq!(try_from(&db, &[[10; 32]], 10, 1, 100 + HOUR_SECS), Ok(()));
    }

    #[test]
    fn windows_forget_what_has_left_them() {
        use redb::ReadableDatabase;
        let (_dir, db) = db();
        for t in 0..20u8 {
            assert_eq!(try_one(&db, &[[t; 32]], 1, i64::from(t) * 86400), Ok(()));
        }
        let txn = db.begin_read().expect("read");
        let table = txn.open_table(WINDOWS).expect("table");
        for key in [GATEWAY, &[1u8; 32], &organisation_window(&[1; 32])] {
            let stored = table.get(key).expect("get").expect("present");
            assert_eq!(stored.value().len(), 8, "only the last send is remembered");
        }
    }

    #[test]
    fn pruning_forgets_only_what_no_limit_looks_at() {
        let (_dir, db) = db();
        let (old_pair, new_pair) = ([1u8; 32], [2u8; 32]);
        assert_eq!(try_one(&db, &[old_pair], 1, 1000), Ok(()));
        let later = 1000 + LIMITS.pair_interval;
        assert_eq!(try_one(&db, &[new_pair], 2, later), Ok(()));

        let txn = db.begin_write().expect("txn");
        // The old pair, sender 1's window and its organisation's, and nothing else: sender
        // 2, its organisation and the gateway window still hold the send at `later`.
        assert_eq!(prune(&txn, later, LIMITS).expect("prune"), 3);
        txn.commit().expect("commit");
        let txn = db.begin_write().expect("txn");
        assert_eq!(
            prune(&txn, later, LIMITS).expect("prune"),
            0,
            "nothing twice"
        );
        txn.commit().expect("commit");

        // What is left still decides: the new pair is recent, the old one may be told again.
        assert_eq!(
            try_one(&db, &[new_pair], 2, later + 1),
            Err(Limited::PairInterval)
        );
        assert_eq!(try_one(&db, &[old_pair], 1, later + 1), Ok(()));

        // An hour on, the gateway's and the organisations' windows go; the senders' stay
        // their day.
        let txn = db.begin_write().expect("txn");
        assert_eq!(
            prune(&txn, later + 1 + HOUR_SECS, LIMITS).expect("prune"),
            3
        );
        txn.commit().expect("commit");

        // A day on, the senders' windows are empty and go too; the pairs stay a week.
        let txn = db.begin_write().expect("txn");
        assert_eq!(
            prune(&txn, later + 1 + LIMITS.sender_interval, LIMITS).expect("prune"),
            2
        );
        txn.commit().expect("commit");
    }
}
