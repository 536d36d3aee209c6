//! One audit chain for every node: an append locks the chain's single head row
//! (`FOR UPDATE`), so appends are ordered by the database, never by node clocks, and each
//! record names the hash of the one before it exactly as on the embedded store.

use tokio_postgres::Client;

use super::PgError;
use crate::store::audit::{Anchor, AuditRecord, GENESIS, hash_hex};
use crate::store::{AuditEntry, AuditPage};

fn json_err(e: serde_json::Error) -> PgError {
    PgError::Record {
        what: "audit",
        source: e,
    }
}

/// Appends one record durably; returns its sequence number.
pub(super) async fn append(client: &mut Client, entry: AuditEntry) -> Result<u64, PgError> {
    let txn = client.transaction().await?;
    let row = txn
        .query_one("SELECT seq, head FROM audit_chain FOR UPDATE", &[])
        .await?;
    let seq = super::to_u64(row.get(0)) + 1;
    let prev = row
        .get::<_, Option<String>>(1)
        .unwrap_or_else(|| GENESIS.to_owned());
    let time = entry.time;
    let record = AuditRecord { seq, entry, prev };
    let bytes = serde_json::to_vec(&record).map_err(json_err)?;
    let seq_db = super::to_i64(seq);
    txn.execute(
        "INSERT INTO audit (seq, time, record) VALUES ($1, $2, $3)",
        &[&seq_db, &time, &bytes],
    )
    .await?;
    txn.execute(
        "UPDATE audit_chain SET seq = $1, head = $2",
        &[&seq_db, &hash_hex(&bytes)],
    )
    .await?;
    txn.commit().await?;
    Ok(seq)
}

async fn ends(client: &Client) -> Result<(Option<Anchor>, Option<String>), PgError> {
    let row = client
        .query_one("SELECT head, anchor_seq, anchor_hash FROM audit_chain", &[])
        .await?;
    let anchor = match (
        row.get::<_, Option<i64>>(1),
        row.get::<_, Option<String>>(2),
    ) {
        (Some(seq), Some(hash)) => Some(Anchor {
            seq: super::to_u64(seq),
            hash,
        }),
        _ => None,
    };
    Ok((anchor, row.get(0)))
}

/// Up to `limit` records after `after`, with the chain's ends.
pub(super) async fn page(client: &Client, after: u64, limit: usize) -> Result<AuditPage, PgError> {
    let (anchor, head) = ends(client).await?;
    let rows = client
        .query(
            "SELECT seq, record FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[
                &super::to_i64(after),
                &i64::try_from(limit).unwrap_or(i64::MAX),
            ],
        )
        .await?;
    let last = rows.last().map(|r| super::to_u64(r.get(0)));
    let records: Vec<String> = rows
        .iter()
        .map(|r| String::from_utf8_lossy(r.get::<_, &[u8]>(1)).into_owned())
        .collect();
    Ok(AuditPage {
        anchor,
        head,
        next_after: if records.len() == limit { last } else { None },
        records,
    })
}

/// Removes the records before the first one at or after `cutoff`, anchoring the chain at
/// the last one removed.
pub(super) async fn prune(client: &mut Client, cutoff: i64) -> Result<usize, PgError> {
    let txn = client.transaction().await?;
    txn.execute("SELECT 1 FROM audit_chain FOR UPDATE", &[])
        .await?;
    let keep_from: Option<i64> = txn
        .query_one("SELECT min(seq) FROM audit WHERE time >= $1", &[&cutoff])
        .await?
        .get(0);
    let last_doomed = txn
        .query_opt(
            "SELECT seq, record FROM audit WHERE seq < COALESCE($1, 9223372036854775807) \
             ORDER BY seq DESC LIMIT 1",
            &[&keep_from],
        )
        .await?;
    let Some(last) = last_doomed else {
        return Ok(0);
    };
    let seq: i64 = last.get(0);
    let hash = hash_hex(last.get::<_, &[u8]>(1));
    let pruned = txn
        .execute("DELETE FROM audit WHERE seq <= $1", &[&seq])
        .await?;
    txn.execute(
        "UPDATE audit_chain SET anchor_seq = $1, anchor_hash = $2",
        &[&seq, &hash],
    )
    .await?;
    txn.commit().await?;
    Ok(usize::try_from(pruned).unwrap_or(usize::MAX))
}
