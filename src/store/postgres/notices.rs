//! The shared notice outbox: notices queued in the transaction of the message they
//! answer, held to the same rate limits as on the embedded store (decided under one
//! advisory lock, so that nodes do not both admit the last notice of a window), and
//! claimed with leases: a claim takes rows no other node holds (`FOR UPDATE SKIP LOCKED`)
//! and marks them with a fresh token until the lease runs out; only that token settles
//! them, so a node that lost its lease (stopped, cut off) changes nothing when it wakes.

use std::collections::BTreeMap;

use tokio_postgres::{Client, Transaction};

use super::{PgError, lock};
use crate::store::ratelimit::{
    GATEWAY, HOUR_SECS, ORGANISATION_KEY_LEN, ORGANISATION_PREFIX, Windows, judge,
    organisation_window,
};
use crate::store::{MessageId, NoticeOutcome, NoticePlan, OutboxItem, RateLimits};

/// The per-store salt for pair keys, created on first use; the same on every node.
pub(super) async fn salt(client: &Client) -> Result<Vec<u8>, PgError> {
    let mut fresh = uuid::Uuid::new_v4().as_bytes().to_vec();
    fresh.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    // The first node to get here decides; the others read what it wrote.
    client
        .execute(
            "INSERT INTO settings (name, value) VALUES ('pair_salt', $1) ON CONFLICT DO NOTHING",
            &[&fresh],
        )
        .await?;
    let row = client
        .query_one("SELECT value FROM settings WHERE name = 'pair_salt'", &[])
        .await?;
    Ok(row.get(0))
}

async fn bump(txn: &Transaction<'_>, name: &str, by: u64) -> Result<(), PgError> {
    if by == 0 {
        return Ok(());
    }
    txn.execute(
        "INSERT INTO notice_counts (name, n) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET n = notice_counts.n + EXCLUDED.n",
        &[&name, &super::to_i64(by)],
    )
    .await?;
    Ok(())
}

/// Forgets what the rate limits no longer look at (as the embedded store's
/// `ratelimit::prune`), under the admission lock so that no admission is half-seen.
pub(super) async fn prune(
    client: &mut Client,
    now: i64,
    limits: RateLimits,
) -> Result<usize, PgError> {
    let txn = client.transaction().await?;
    txn.execute("SELECT pg_advisory_xact_lock($1)", &[&lock::NOTICES])
        .await?;
    let pairs = txn
        .execute(
            "DELETE FROM notified WHERE at <= $1",
            &[&(now - limits.pair_interval)],
        )
        .await?;
    // The gateway's and the organisations' windows span an hour, the senders' their
    // interval; organisation keys are told apart by length and first byte.
    let windows = txn
        .execute(
            "DELETE FROM notice_windows WHERE NOT EXISTS (SELECT 1 FROM unnest(times) AS t \
             WHERE t > CASE WHEN key = $1::bytea \
                 OR (length(key) = $4 AND get_byte(key, 0) = $5) \
             THEN $2::bigint ELSE $3::bigint END)",
            &[
                &GATEWAY,
                &(now - HOUR_SECS),
                &(now - limits.sender_interval),
                &(ORGANISATION_KEY_LEN as i32),
                &i32::from(ORGANISATION_PREFIX),
            ],
        )
        .await?;
    txn.commit().await?;
    Ok(usize::try_from(pairs + windows).unwrap_or(usize::MAX))
}

/// The send times inside a window.
async fn window(txn: &Transaction<'_>, key: &[u8], after: i64) -> Result<Vec<i64>, PgError> {
    let row = txn
        .query_opt("SELECT times FROM notice_windows WHERE key = $1", &[&key])
        .await?;
    let times: Vec<i64> = row.map(|r| r.get(0)).unwrap_or_default();
    Ok(times.into_iter().filter(|&t| t > after).collect())
}

/// Queues a message's notice inside its transaction, unless a rate limit holds it back,
/// and counts every notice not sent by reason.
pub(super) async fn queue_in(
    txn: &Transaction<'_>,
    plan: &NoticePlan,
    now: i64,
) -> Result<NoticeOutcome, PgError> {
    for (reason, n) in &plan.suppressed {
        bump(txn, &format!("suppressed:{reason}"), *n).await?;
    }
    let Some(notice) = &plan.notice else {
        return Ok(NoticeOutcome::default());
    };
    // Limits are read and written by every node: one admission at a time, held until
    // this transaction ends.
    txn.execute("SELECT pg_advisory_xact_lock($1)", &[&lock::NOTICES])
        .await?;
    let limits = notice.limits;
    let mut last_notified = Vec::with_capacity(notice.pairs.len());
    for pair in &notice.pairs {
        let row = txn
            .query_opt(
                "SELECT at FROM notified WHERE pair = $1",
                &[&pair.as_slice()],
            )
            .await?;
        last_notified.push(row.map(|r| r.get::<_, i64>(0)));
    }
    let sender = window(txn, &notice.sender, now - limits.sender_interval).await?;
    let gateway = window(txn, GATEWAY, now - HOUR_SECS).await?;
    let organisation_key = organisation_window(&notice.organisation);
    let organisation = window(txn, &organisation_key, now - HOUR_SECS).await?;
    let windows = Windows {
        sender: &sender,
        gateway: &gateway,
        organisation: &organisation,
    };
    if let Err(limited) = judge(&last_notified, windows, limits, now) {
        bump(txn, &format!("suppressed:{}", limited.as_str()), 1).await?;
        return Ok(NoticeOutcome {
            queued: 0,
            limited: Some(limited.as_str()),
        });
    }
    for pair in &notice.pairs {
        txn.execute(
            "INSERT INTO notified (pair, at) VALUES ($1, $2) \
             ON CONFLICT (pair) DO UPDATE SET at = EXCLUDED.at",
            &[&pair.as_slice(), &now],
        )
        .await?;
    }
    for (key, mut times, limit) in [
        (notice.sender.as_slice(), sender, limits.sender_limit),
        (GATEWAY, gateway, limits.hourly_limit),
        (&organisation_key, organisation, limits.domain_limit),
    ] {
        times.push(now);
        let keep = times.len().saturating_sub(limit as usize);
        txn.execute(
            "INSERT INTO notice_windows (key, times) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET times = EXCLUDED.times",
            &[&key, &&times[keep..]],
        )
        .await?;
    }
    let json = serde_json::to_vec(&notice.item).map_err(PgError::Encode)?;
    txn.execute(
        "INSERT INTO outbox (id, item, next_attempt_at) VALUES ($1, $2, $3)",
        &[&notice.id.uuid(), &json, &notice.item.next_attempt_at],
    )
    .await?;
    bump(txn, "queued", 1).await?;
    Ok(NoticeOutcome {
        queued: 1,
        limited: None,
    })
}

/// Claims up to `limit` notices due at `now` that no live lease holds and that are not in
/// `skip`, for `lease_secs`.
pub(super) async fn claim(
    client: &Client,
    now: i64,
    limit: usize,
    lease_secs: i64,
    skip: &[MessageId],
) -> Result<Vec<(MessageId, OutboxItem)>, PgError> {
    let skip: Vec<uuid::Uuid> = skip.iter().map(|id| id.uuid()).collect();
    let rows = client
        .query(
            "UPDATE outbox SET lease = gen_random_uuid(), lease_until = $1 + $2 \
             WHERE id IN (SELECT id FROM outbox \
                 WHERE next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $1) \
                 AND NOT (id = ANY($4)) \
                 ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING id, item, lease",
            &[
                &now,
                &lease_secs,
                &i64::try_from(limit).unwrap_or(i64::MAX),
                &skip,
            ],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id = MessageId::from_uuid(row.get(0));
        let Ok(mut item) = serde_json::from_slice::<OutboxItem>(row.get(1)) else {
            tracing::error!(%id, "unreadable outbox entry left in place");
            continue;
        };
        item.lease = Some(row.get(2));
        out.push((id, item));
    }
    // Oldest first, as the embedded outbox hands them out.
    out.sort_by_key(|(_, item)| item.next_attempt_at);
    Ok(out)
}

/// When the next notice other than `skip` may be claimed.
pub(super) async fn next_due(client: &Client, skip: &[MessageId]) -> Result<Option<i64>, PgError> {
    let skip: Vec<uuid::Uuid> = skip.iter().map(|id| id.uuid()).collect();
    let row = client
        .query_one(
            "SELECT min(GREATEST(next_attempt_at, COALESCE(lease_until, 0))) FROM outbox \
             WHERE NOT (id = ANY($1))",
            &[&skip],
        )
        .await?;
    Ok(row.get(0))
}

/// Settles a claim; a claim whose lease another node has since taken over changes nothing.
pub(super) async fn settle(
    txn: &Transaction<'_>,
    id: MessageId,
    claimed: &OutboxItem,
    next: Option<&OutboxItem>,
    outcome: &str,
) -> Result<bool, PgError> {
    let Some(lease) = claimed.lease else {
        return Err(PgError::Data(format!(
            "notice {id} settled without a claim"
        )));
    };
    let changed = match next {
        Some(item) => {
            let json = serde_json::to_vec(item).map_err(PgError::Encode)?;
            txn.execute(
                "UPDATE outbox SET item = $3, next_attempt_at = $4, lease = NULL, lease_until = NULL \
                 WHERE id = $1 AND lease = $2",
                &[&id.uuid(), &lease, &json, &item.next_attempt_at],
            )
            .await?
        }
        None => {
            txn.execute(
                "DELETE FROM outbox WHERE id = $1 AND lease = $2",
                &[&id.uuid(), &lease],
            )
            .await?
        }
    };
    if changed == 1 {
        bump(txn, outcome, 1).await?;
    }
    Ok(changed == 1)
}

/// Puts a notice into the outbox as it is, unclaimed.
pub(super) async fn restore(
    client: &Client,
    id: MessageId,
    item: &OutboxItem,
) -> Result<(), PgError> {
    let json = serde_json::to_vec(item).map_err(PgError::Encode)?;
    client
        .execute(
            "INSERT INTO outbox (id, item, next_attempt_at) VALUES ($1, $2, $3)",
            &[&id.uuid(), &json, &item.next_attempt_at],
        )
        .await?;
    Ok(())
}

pub(super) async fn len(client: &Client) -> Result<u64, PgError> {
    let row = client.query_one("SELECT count(*) FROM outbox", &[]).await?;
    Ok(super::to_u64(row.get(0)))
}

pub(super) async fn counts(client: &Client) -> Result<BTreeMap<String, u64>, PgError> {
    let rows = client
        .query("SELECT name, n FROM notice_counts", &[])
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, String>(0), super::to_u64(r.get(1))))
        .collect())
}
