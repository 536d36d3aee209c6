//! Giving segment space back after deletes: a segment with nothing live is unlinked; the
//! live messages of every segment less than half live are copied together into one new
//! segment, the index pointed at the copies in one commit, and the old files unlinked. A
//! crash at any point leaves every message readable: the old range until the index
//! commit, the copy after it; a file nothing points into any more is removed at start.

use std::collections::BTreeSet;

use super::StoreError;
use super::index::Index;
use super::segment::{SegmentRef, Segments};

/// Reclaims what it can now. Holds the segments' maintenance lock throughout, so deletes
/// wait and no range is copied while it is being wiped.
pub(super) fn reclaim(index: &Index, segments: &Segments) -> Result<(), StoreError> {
    let _maintenance = segments
        .maintenance
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let mut sparse = BTreeSet::new();
    let mut freed = 0;
    for (segment, live, len) in segments.closed() {
        if live == 0 {
            segments.unlink(segment)?;
        } else if live.saturating_mul(2) < len {
            sparse.insert(segment);
            freed += len - live;
        }
    }
    if sparse.is_empty() {
        return Ok(());
    }
    let mut ranges: Vec<(u128, SegmentRef)> = index
        .all_segment_refs()?
        .into_iter()
        .filter(|(_, r)| sparse.contains(&r.segment))
        .collect();
    ranges.sort_by_key(|(_, r)| (r.segment, r.offset));
    let copied = segments.copy_out(&ranges)?;
    let moved = index.relocate(&copied)?;
    segments.moved(&moved);
    let still_used: BTreeSet<u64> = index
        .all_segment_refs()?
        .iter()
        .map(|(_, r)| r.segment)
        .collect();
    for segment in &sparse {
        if !still_used.contains(segment) {
            segments.unlink(*segment)?;
        }
    }
    tracing::info!(
        segments = sparse.len(),
        messages = moved.len(),
        freed,
        "segments compacted"
    );
    Ok(())
}
