//! Room left for new mail: the quarantine's size against `[store] max_size` and its disk's
//! free space against `[store] min_free` (consulted before a message is taken), and the
//! gateway-wide memory budget for the plaintext copies kept for DKIM. Both are shared,
//! lock-free counters, cheap enough to read on every `MAIL` command.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::telemetry;

/// `[store] max_size` and `min_free`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StorageLimits {
    /// Sealed bytes the quarantine may hold; `None` for no quota.
    pub max_size: Option<u64>,
    /// Free bytes the store's filesystem must keep for others; 0 for no floor.
    pub min_free: u64,
}

/// Why there is no room for a new message. Both are answered `452 4.3.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortage {
    /// The quarantine holds `max_size` or more (or a declared `SIZE=` would cross it).
    Quota,
    /// The filesystem's free space is below `min_free`.
    DiskFloor,
}

impl Shortage {
    /// The config key that was reached, for logs and metrics.
    pub fn key(self) -> &'static str {
        match self {
            Shortage::Quota => "max_size",
            Shortage::DiskFloor => "min_free",
        }
    }
}

/// How full the store is, as the store last reported it. Shared by the store (which
/// updates it on commit, delete and purge) and every session (which reads it).
#[derive(Debug)]
pub struct StorageState {
    limits: StorageLimits,
    /// Sealed bytes of the messages in the quarantine.
    used: AtomicU64,
    /// Bytes available on the store's filesystem when last measured.
    free: AtomicU64,
}

impl StorageState {
    /// A state for a store holding `used` sealed bytes; free space is unknown (ample)
    /// until [`Self::refresh_free`] measures it.
    pub fn new(limits: StorageLimits, used: u64) -> Self {
        Self {
            limits,
            used: AtomicU64::new(used),
            free: AtomicU64::new(u64::MAX),
        }
    }

    pub fn limits(&self) -> StorageLimits {
        self.limits
    }

    /// Sealed bytes in the quarantine.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Free bytes on the store's filesystem when last measured.
    pub fn free(&self) -> u64 {
        self.free.load(Ordering::Relaxed)
    }

    /// A message of `bytes` sealed bytes was committed. The free space is lowered by as
    /// much until it is next measured.
    pub fn added(&self, bytes: u64) {
        let _ = self
            .free
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |free| {
                Some(free.saturating_sub(bytes))
            });
        let used = self.used.fetch_add(bytes, Ordering::Relaxed) + bytes;
        metrics::gauge!(telemetry::STORE_SEALED_BYTES).set(used as f64);
    }

    /// Messages of `bytes` sealed bytes in total were deleted.
    pub fn removed(&self, bytes: u64) {
        // Never below zero, even if a size in the index was wrong.
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                Some(used.saturating_sub(bytes))
            });
        metrics::gauge!(telemetry::STORE_SEALED_BYTES).set(self.used() as f64);
    }

    /// Records the quarantine's size as measured elsewhere (a shared database, where other
    /// nodes add and delete too).
    pub fn set_used(&self, bytes: u64) {
        self.used.store(bytes, Ordering::Relaxed);
        metrics::gauge!(telemetry::STORE_SEALED_BYTES).set(bytes as f64);
    }

    /// Records a measured amount of free space.
    pub fn set_free(&self, bytes: u64) {
        self.free.store(bytes, Ordering::Relaxed);
    }

    /// Measures the free space (for unprivileged users, as `df` shows it) of the
    /// filesystem holding `path`. A blocking system call, but a cheap one.
    pub fn refresh_free(&self, path: &Path) -> std::io::Result<()> {
        let stat = rustix::fs::statvfs(path).map_err(std::io::Error::from)?;
        self.set_free(stat.f_bavail.saturating_mul(stat.f_frsize));
        Ok(())
    }

    /// Whether a message may be taken now; `declared` is its `SIZE=` (0 when unknown).
    /// A refusal is counted in `reclaim_storage_refusals_total{reason}`.
    pub fn room_for(&self, declared: u64) -> Result<(), Shortage> {
        let shortage = if self
            .limits
            .max_size
            .is_some_and(|max| self.used().saturating_add(declared) >= max)
        {
            Some(Shortage::Quota)
        } else if self.free() < self.limits.min_free.saturating_add(declared) {
            Some(Shortage::DiskFloor)
        } else {
            None
        };
        match shortage {
            None => Ok(()),
            Some(shortage) => {
                metrics::counter!(telemetry::STORAGE_REFUSALS, "reason" => shortage.key())
                    .increment(1);
                Err(shortage)
            }
        }
    }
}

impl Default for StorageState {
    /// No quota, no floor, an empty store.
    fn default() -> Self {
        Self::new(StorageLimits::default(), 0)
    }
}

/// The memory all in-memory DKIM copies together may use (`[server] auth_memory_budget`).
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
}

impl MemoryBudget {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    /// Bytes reserved now, over all copies.
    pub fn in_use(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn try_take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// Bytes held from a [`MemoryBudget`]; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    bytes: usize,
}

impl Reservation {
    /// Holds nothing yet.
    pub fn empty(budget: Arc<MemoryBudget>) -> Self {
        Self { budget, bytes: 0 }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Grows the reservation to `bytes` in total; false (and unchanged) if the budget
    /// does not have that much left.
    pub fn grow_to(&mut self, bytes: usize) -> bool {
        let more = bytes.saturating_sub(self.bytes);
        if more == 0 {
            return true;
        }
        if !self.budget.try_take(more) {
            return false;
        }
        self.bytes = bytes;
        true
    }

    /// Gives everything back now.
    pub fn release(&mut self) {
        self.budget.give_back(std::mem::take(&mut self.bytes));
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_refuses_at_the_limit_and_frees_on_delete() {
        let state = StorageState::new(
            StorageLimits {
                max_size: Some(1000),
                min_free: 0,
            },
            0,
        );
        assert_eq!(state.room_for(0), Ok(()));
        assert_eq!(state.room_for(1000), Err(Shortage::Quota));
        state.added(999);
        assert_eq!(state.room_for(0), Ok(()));
        state.added(1);
        assert_eq!(state.room_for(0), Err(Shortage::Quota));
        state.removed(500);
        assert_eq!(state.used(), 500);
        assert_eq!(state.room_for(0), Ok(()));
        state.removed(10_000);
        assert_eq!(state.used(), 0);
    }

    #[test]
    fn disk_floor_refuses_below_it() {
        let state = StorageState::new(
            StorageLimits {
                max_size: None,
                min_free: 1 << 20,
            },
            0,
        );
        assert_eq!(state.room_for(0), Ok(()), "unmeasured counts as ample");
        state.set_free(1 << 20);
        assert_eq!(state.room_for(0), Ok(()));
        assert_eq!(state.room_for(1), Err(Shortage::DiskFloor));
        state.set_free((1 << 20) - 1);
        assert_eq!(state.room_for(0), Err(Shortage::DiskFloor));
    }

    #[test]
    fn free_space_is_measured() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = StorageState::default();
        state.refresh_free(dir.path()).expect("statvfs");
        assert!(state.free() < u64::MAX && state.free() > 0);
    }

    #[test]
    fn reservations_share_one_budget_and_give_back_on_drop() {
        let budget = MemoryBudget::new(100);
        let mut a = Reservation::empty(budget.clone());
        let mut b = Reservation::empty(budget.clone());
        assert!(a.grow_to(60));
        assert!(!b.grow_to(41), "only 40 left");
        assert_eq!(b.bytes(), 0);
        assert!(b.grow_to(40));
        assert!(a.grow_to(60), "no growth needs no budget");
        assert_eq!(budget.in_use(), 100);
        drop(a);
        assert_eq!(budget.in_use(), 40);
        b.release();
        assert_eq!(budget.in_use(), 0);
        drop(b);
        assert_eq!(budget.in_use(), 0);
    }
}
