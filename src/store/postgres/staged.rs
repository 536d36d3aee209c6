//! A message being received into PostgreSQL: an invisible `messages` row, and its sealed
//! bytes inserted chunk by chunk as they are sealed, so that at most one chunk per message
//! is ever in memory. The commit transaction writes the last chunk and flips the row
//! visible; until then no listing sees it.

use std::time::Duration;

use deadpool_postgres::Pool;

use super::{PgError, within};
use crate::store::{MessageId, StagedMessage, StoreError};

/// Sealed bytes per stored chunk: large enough that a big message is few rows, small
/// enough that many sessions at once hold little memory.
pub(super) const CHUNK_SIZE: usize = 256 * 1024;

/// A staged message. Dropping it uncommitted deletes the staged row in the background;
/// if the node dies first, the purge removes it once it is stale.
pub struct PgStaged {
    pub(super) id: MessageId,
    pool: Pool,
    /// The deadline of each insert.
    timeout: Duration,
    /// Sealed bytes not yet stored (less than [`CHUNK_SIZE`] after each write).
    pub(super) pending: Vec<u8>,
    /// The sequence number of the next chunk.
    pub(super) next_seq: i32,
    /// Sealed bytes written so far, pending ones included.
    pub(super) written: u64,
    pub(super) committed: bool,
}

impl PgStaged {
    /// Stages a new message: its row exists from now on, invisible.
    pub(super) async fn create(
        pool: &Pool,
        id: MessageId,
        now: i64,
        timeout: Duration,
    ) -> Result<Self, PgError> {
        within(timeout, async {
            pool.get()
                .await?
                .execute(
                    "INSERT INTO messages (id, staged_at) VALUES ($1, $2)",
                    &[&id.uuid(), &now],
                )
                .await?;
            Ok(())
        })
        .await?;
        Ok(Self {
            id,
            pool: pool.clone(),
            timeout,
            pending: Vec::with_capacity(CHUNK_SIZE),
            next_seq: 0,
            written: 0,
            committed: false,
        })
    }

    /// Stores every full chunk that is pending.
    async fn flush_full_chunks(&mut self) -> Result<(), PgError> {
        if self.pending.len() < CHUNK_SIZE {
            return Ok(());
        }
        // A pooled connection only while inserting: a slow sender holds none.
        let client = self.pool.get().await?;
        let insert = client
            .prepare_cached("INSERT INTO sealed_chunks (id, seq, data) VALUES ($1, $2, $3)")
            .await?;
        while self.pending.len() >= CHUNK_SIZE {
            let rest = self.pending.split_off(CHUNK_SIZE);
            let chunk = std::mem::replace(&mut self.pending, rest);
            client
                .execute(&insert, &[&self.id.uuid(), &self.next_seq, &chunk])
                .await?;
            self.next_seq += 1;
        }
        Ok(())
    }
}

impl StagedMessage for PgStaged {
    fn id(&self) -> MessageId {
        self.id
    }

    async fn write(&mut self, sealed: Vec<u8>) -> Result<(), StoreError> {
        self.pending.extend_from_slice(&sealed);
        self.written += sealed.len() as u64;
        let timeout = self.timeout;
        Ok(within(timeout, self.flush_full_chunks()).await?)
    }
}

impl Drop for PgStaged {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let pool = self.pool.clone();
        let id = self.id.uuid();
        let timeout = self.timeout;
        // Under the same deadline as the message path: a hung database must not collect
        // one waiting task (and pooled connection) per abandoned message.
        runtime.spawn(async move {
            let removed = within(timeout, async {
                pool.get()
                    .await?
                    .execute(
                        "DELETE FROM messages WHERE id = $1 AND NOT visible",
                        &[&id],
                    )
                    .await
                    .map_err(PgError::from)
            })
            .await;
            if let Err(error) = removed {
                tracing::warn!(%error, "cannot remove an abandoned staged message now; the purge will");
            }
        });
    }
}
