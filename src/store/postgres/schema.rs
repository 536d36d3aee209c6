//! The database schema, created and migrated by reclaim: numbered steps applied in order,
//! each in its own transaction, the version recorded in `reclaim_schema`. Several nodes
//! starting at once take turns through an advisory lock.

use deadpool_postgres::Client;

use super::{PgError, lock};

/// Every step, oldest first; a step is never changed once released, only followed.
const STEPS: &[&str] = &[
    // 1: messages (staged until their commit makes them visible), sealed chunks, the
    // notice outbox with its leases and rate-limit memory, settings, and the audit chain.
    r"
    CREATE TABLE messages (
        id uuid PRIMARY KEY,
        visible boolean NOT NULL DEFAULT false,
        staged_at bigint NOT NULL,
        received_at bigint NOT NULL DEFAULT 0,
        size bigint NOT NULL DEFAULT 0,
        sealed_size bigint NOT NULL DEFAULT 0,
        domains text[] NOT NULL DEFAULT '{}',
        summary bytea NOT NULL DEFAULT '',
        held_at bigint
    );
    CREATE INDEX messages_staged ON messages (staged_at) WHERE NOT visible;
    CREATE TABLE sealed_chunks (
        id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
        seq integer NOT NULL,
        data bytea NOT NULL,
        PRIMARY KEY (id, seq)
    );
    CREATE TABLE outbox (
        id uuid PRIMARY KEY,
        item bytea NOT NULL,
        next_attempt_at bigint NOT NULL,
        lease uuid,
        lease_until bigint
    );
    CREATE INDEX outbox_due ON outbox (next_attempt_at);
    CREATE TABLE notice_counts (name text PRIMARY KEY, n bigint NOT NULL);
    CREATE TABLE notified (pair bytea PRIMARY KEY, at bigint NOT NULL);
    CREATE TABLE notice_windows (key bytea PRIMARY KEY, times bigint[] NOT NULL);
    CREATE TABLE settings (name text PRIMARY KEY, value bytea NOT NULL);
    CREATE TABLE audit (
        seq bigint PRIMARY KEY,
        time bigint NOT NULL,
        record bytea NOT NULL
    );
    CREATE TABLE audit_chain (
        one boolean PRIMARY KEY DEFAULT true CHECK (one),
        seq bigint NOT NULL,
        head text,
        anchor_seq bigint,
        anchor_hash text
    );
    INSERT INTO audit_chain (seq) VALUES (0);
    ",
    // 2: what became of each message's notice (JSON of `NoticeRecord`), for the exit rule.
    r"
    ALTER TABLE messages ADD COLUMN notice text;
    ",
    // 3: the fingerprints of the keys each message is sealed to (empty before this).
    r"
    ALTER TABLE messages ADD COLUMN sealed_to text[] NOT NULL DEFAULT '{}';
    ",
    // 4: four-eyes approval requests, each the JSON of `ApprovalRequest`; `state` and
    // `expires` beside it so that open requests can be counted.
    r"
    CREATE TABLE approval_requests (
        number bigint PRIMARY KEY,
        expires bigint NOT NULL,
        state text NOT NULL,
        record bytea NOT NULL
    );
    ",
];

/// Brings the schema up to date; returns the version it is at.
pub(super) async fn migrate(client: &mut Client) -> Result<usize, PgError> {
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS reclaim_schema (version integer NOT NULL)")
        .await?;
    let txn = client.transaction().await?;
    // One node migrates at a time; the others wait, then find nothing left to do.
    txn.execute("SELECT pg_advisory_xact_lock($1)", &[&lock::MIGRATE])
        .await?;
    let row = txn
        .query_opt("SELECT version FROM reclaim_schema", &[])
        .await?;
    let current = match row {
        Some(row) => usize::try_from(row.get::<_, i32>(0)).unwrap_or(0),
        None => {
            txn.execute("INSERT INTO reclaim_schema (version) VALUES (0)", &[])
                .await?;
            0
        }
    };
    if current > STEPS.len() {
        return Err(PgError::Schema {
            found: current,
            known: STEPS.len(),
        });
    }
    for (n, step) in STEPS.iter().enumerate().skip(current) {
        txn.batch_execute(step).await?;
        let version = i32::try_from(n + 1).expect("a handful of steps");
        txn.execute("UPDATE reclaim_schema SET version = $1", &[&version])
            .await?;
        tracing::info!(version, "database schema migrated");
    }
    txn.commit().await?;
    Ok(STEPS.len())
}
