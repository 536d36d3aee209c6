//! Four-eyes approval requests on PostgreSQL: filing takes an advisory lock so that the cap
//! on open requests and the next number hold across nodes; a change of state locks its row
//! (`FOR UPDATE`) and happens only if the state is still the one expected.

use tokio_postgres::Client;

use super::{PgError, lock, to_i64, to_u64};
use crate::store::{ApprovalRequest, Filing, NewRequest, RequestBounds, RequestState, Swap};

fn encode(request: &ApprovalRequest) -> Result<Vec<u8>, PgError> {
    serde_json::to_vec(request).map_err(|source| PgError::Record {
        what: "approval request",
        source,
    })
}

fn decode(bytes: &[u8]) -> Result<ApprovalRequest, PgError> {
    serde_json::from_slice(bytes).map_err(|source| PgError::Record {
        what: "approval request",
        source,
    })
}

/// Files `new` unless `bounds.max_open` requests are open at `now`, and forgets the ones
/// that expired before `bounds.forget_expired_before` (all but the newest, whose number
/// the next one follows).
pub(super) async fn create(
    client: &mut Client,
    new: NewRequest,
    bounds: RequestBounds,
    now: i64,
) -> Result<Filing, PgError> {
    let txn = client.transaction().await?;
    txn.execute("SELECT pg_advisory_xact_lock($1)", &[&lock::REQUESTS])
        .await?;
    txn.execute(
        "DELETE FROM approval_requests WHERE expires < $1 \
         AND number < (SELECT max(number) FROM approval_requests)",
        &[&bounds.forget_expired_before],
    )
    .await?;
    let open: i64 = txn
        .query_one(
            "SELECT count(*) FROM approval_requests \
             WHERE state IN ('pending', 'approved') AND expires > $1",
            &[&now],
        )
        .await?
        .get(0);
    let open = usize::try_from(open).unwrap_or(usize::MAX);
    if open >= bounds.max_open {
        txn.commit().await?;
        return Ok(Filing::Full { open });
    }
    let last: i64 = txn
        .query_one(
            "SELECT COALESCE(max(number), 0) FROM approval_requests",
            &[],
        )
        .await?
        .get(0);
    let request = ApprovalRequest {
        number: to_u64(last) + 1,
        filed: new,
        state: RequestState::Pending,
    };
    txn.execute(
        "INSERT INTO approval_requests (number, expires, state, record) VALUES ($1, $2, $3, $4)",
        &[
            &to_i64(request.number),
            &request.filed.expires,
            &request.state.name(),
            &encode(&request)?,
        ],
    )
    .await?;
    txn.commit().await?;
    Ok(Filing::Filed(Box::new(request)))
}

pub(super) async fn get(client: &Client, number: u64) -> Result<Option<ApprovalRequest>, PgError> {
    client
        .query_opt(
            "SELECT record FROM approval_requests WHERE number = $1",
            &[&to_i64(number)],
        )
        .await?
        .map(|row| decode(row.get(0)))
        .transpose()
}

pub(super) async fn list(client: &Client, limit: usize) -> Result<Vec<ApprovalRequest>, PgError> {
    client
        .query(
            "SELECT record FROM approval_requests ORDER BY number DESC LIMIT $1",
            &[&i64::try_from(limit).unwrap_or(i64::MAX)],
        )
        .await?
        .iter()
        .map(|row| decode(row.get(0)))
        .collect()
}

/// Sets request `number`'s state to `next` if it is `expected`.
pub(super) async fn swap(
    client: &mut Client,
    number: u64,
    expected: &RequestState,
    next: RequestState,
) -> Result<Swap, PgError> {
    let txn = client.transaction().await?;
    let row = txn
        .query_opt(
            "SELECT record FROM approval_requests WHERE number = $1 FOR UPDATE",
            &[&to_i64(number)],
        )
        .await?;
    let Some(row) = row else {
        return Ok(Swap::Missing);
    };
    let mut request = decode(row.get(0))?;
    if request.state != *expected {
        return Ok(Swap::Stale(request));
    }
    request.state = next;
    txn.execute(
        "UPDATE approval_requests SET state = $2, record = $3 WHERE number = $1",
        &[&to_i64(number), &request.state.name(), &encode(&request)?],
    )
    .await?;
    txn.commit().await?;
    Ok(Swap::Done(request))
}
