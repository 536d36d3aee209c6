//! Where the embedded store keeps a message while it arrives: in memory while it is small
//! (it then goes into a segment at commit, with no file of its own), in its own file under
//! `tmp/` once it grows past `[store] inline_max` or the staging memory budget is spent.

use std::path::PathBuf;
use std::sync::Arc;

use super::{BlobWriter, MessageId, StoreError};
use crate::capacity::{MemoryBudget, Reservation};

/// How small messages are staged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StagingLimits {
    /// Sealed messages up to this size go into segments; `0` gives every message its own
    /// file, as before segments existed.
    pub inline_max: usize,
    /// Memory all messages staged in memory may use together.
    pub memory: usize,
    /// A segment that reaches this size is closed and a new one started.
    pub segment_size: u64,
}

impl Default for StagingLimits {
    fn default() -> Self {
        Self {
            inline_max: 128 * 1024,
            memory: 8 * 1024 * 1024,
            segment_size: 64 * 1024 * 1024,
        }
    }
}

/// A sealed message being received by the embedded store.
pub enum Stage {
    InMemory(InMemory),
    InFile(BlobWriter),
}

pub struct InMemory {
    id: MessageId,
    sealed: Vec<u8>,
    reservation: Reservation,
    inline_max: usize,
    tmp_dir: PathBuf,
    messages_dir: PathBuf,
}

impl Stage {
    pub(super) async fn create(
        id: MessageId,
        limits: &StagingLimits,
        budget: &Arc<MemoryBudget>,
        tmp_dir: PathBuf,
        messages_dir: PathBuf,
    ) -> Result<Self, StoreError> {
        if limits.inline_max == 0 {
            return Ok(Stage::InFile(
                BlobWriter::create(id, &tmp_dir, &messages_dir).await?,
            ));
        }
        Ok(Stage::InMemory(InMemory {
            id,
            sealed: Vec::new(),
            reservation: Reservation::empty(budget.clone()),
            inline_max: limits.inline_max,
            tmp_dir,
            messages_dir,
        }))
    }

    pub fn id(&self) -> MessageId {
        match self {
            Stage::InMemory(m) => m.id,
            Stage::InFile(blob) => blob.id(),
        }
    }

    /// Appends sealed bytes; moves the message to a file when memory would not do.
    pub async fn write(&mut self, sealed: Vec<u8>) -> Result<(), StoreError> {
        let memory = match self {
            Stage::InFile(blob) => return blob.write(sealed).await,
            Stage::InMemory(memory) => memory,
        };
        let wanted = memory.sealed.len() + sealed.len();
        if wanted <= memory.inline_max {
            // Grow by doubling, but never past inline_max, and only once the budget has
            // agreed: the buffer itself must stay within what was reserved.
            let capacity = memory.sealed.capacity();
            let target = if wanted <= capacity {
                capacity
            } else {
                wanted.max(capacity.saturating_mul(2).min(memory.inline_max))
            };
            if memory.reservation.grow_to(target) {
                memory.sealed.reserve_exact(target - memory.sealed.len());
                memory.sealed.extend_from_slice(&sealed);
                return Ok(());
            }
        }
        let mut blob = BlobWriter::create(memory.id, &memory.tmp_dir, &memory.messages_dir).await?;
        blob.write(std::mem::take(&mut memory.sealed)).await?;
        blob.write(sealed).await?;
        *self = Stage::InFile(blob);
        Ok(())
    }
}

impl InMemory {
    /// The sealed bytes, for appending to a segment.
    pub(super) fn sealed(&self) -> &[u8] {
        &self.sealed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn small_messages_stay_in_memory_within_the_budget() {
        let dir = tempfile::tempdir().expect("tempdir");
        let limits = StagingLimits {
            inline_max: 100,
            memory: 150,
            segment_size: 1 << 20,
        };
        let budget = MemoryBudget::new(limits.memory);
        let stage = |id| {
            Stage::create(
                id,
                &limits,
                &budget,
                dir.path().to_owned(),
                dir.path().to_owned(),
            )
        };
        let mut a = stage(MessageId::new()).await.expect("a");
        a.write(vec![1; 80]).await.expect("write");
        assert!(matches!(a, Stage::InMemory(_)));
        // Past inline_max: into a file, with what was already there.
        a.write(vec![2; 30]).await.expect("write");
        let Stage::InFile(_) = &a else {
            panic!("a message past inline_max goes to a file");
        };
        let mut b = stage(MessageId::new()).await.expect("b");
        b.write(vec![3; 90]).await.expect("write");
        let mut c = stage(MessageId::new()).await.expect("c");
        c.write(vec![4; 90]).await.expect("write");
        assert!(matches!(b, Stage::InMemory(_)));
        assert!(
            matches!(c, Stage::InFile(_)),
            "the budget is spent by b: c goes to a file"
        );
        assert!(budget.in_use() <= limits.memory);
        drop(b);
        assert_eq!(budget.in_use(), 0, "dropping gives the memory back");
    }

    #[tokio::test]
    async fn a_staged_message_never_holds_more_than_inline_max() {
        let dir = tempfile::tempdir().expect("tempdir");
        let limits = StagingLimits {
            inline_max: 100,
            memory: 1000,
            segment_size: 1 << 20,
        };
        let budget = MemoryBudget::new(limits.memory);
        let mut stage = Stage::create(
            MessageId::new(),
            &limits,
            &budget,
            dir.path().to_owned(),
            dir.path().to_owned(),
        )
        .await
        .expect("stage");
        for _ in 0..10 {
            stage.write(vec![7; 10]).await.expect("write");
            let Stage::InMemory(memory) = &stage else {
                panic!("100 bytes fit in memory");
            };
            assert!(memory.sealed.capacity() <= limits.inline_max);
            assert!(budget.in_use() <= limits.inline_max);
            assert!(budget.in_use() >= memory.sealed.capacity());
        }
    }
}
