//! Which messages live in segments, and where: read before a delete (to wipe the ranges),
//! at start (live bytes per segment, and the reconciliation), by downloads, and rewritten
//! by compaction.

use std::collections::BTreeMap;

use redb::{ReadableDatabase, ReadableTable};

use super::index::Index;
use super::segment::SegmentRef;
use super::tables::SEGMENT_REFS;
use super::{MessageId, StoreError, index_err};

fn to_ref((segment, offset, len): (u64, u64, u64)) -> SegmentRef {
    SegmentRef {
        segment,
        offset,
        len,
    }
}

impl Index {
    /// Where each of `ids` is, if in a segment.
    pub(super) fn segment_refs(
        &self,
        ids: &[MessageId],
    ) -> Result<Vec<Option<SegmentRef>>, StoreError> {
        let txn = self.db.begin_read().map_err(index_err)?;
        let table = txn.open_table(SEGMENT_REFS).map_err(index_err)?;
        ids.iter()
            .map(|id| {
                Ok(table
                    .get(id.key())
                    .map_err(index_err)?
                    .map(|v| to_ref(v.value())))
            })
            .collect()
    }

    /// Every message in a segment, by id key.
    pub(super) fn all_segment_refs(&self) -> Result<Vec<(u128, SegmentRef)>, StoreError> {
        let txn = self.db.begin_read().map_err(index_err)?;
        let table = txn.open_table(SEGMENT_REFS).map_err(index_err)?;
        let mut out = Vec::new();
        for item in table.iter().map_err(index_err)? {
            let (key, value) = item.map_err(index_err)?;
            out.push((key.value(), to_ref(value.value())));
        }
        Ok(out)
    }

    /// Live sealed bytes per segment.
    pub(super) fn live_per_segment(&self) -> Result<BTreeMap<u64, u64>, StoreError> {
        let mut live = BTreeMap::new();
        for (_, r) in self.all_segment_refs()? {
            *live.entry(r.segment).or_default() += r.len;
        }
        Ok(live)
    }

    /// Points messages at their compacted copies, in one durable commit: each only if it
    /// is still where it was copied from (a message deleted meanwhile stays deleted).
    /// Returns the moves that were made.
    pub(super) fn relocate(
        &self,
        moves: &[(u128, SegmentRef, SegmentRef)],
    ) -> Result<Vec<(u128, SegmentRef, SegmentRef)>, StoreError> {
        let txn = self.db.begin_write().map_err(index_err)?;
        let mut done = Vec::with_capacity(moves.len());
        {
            let mut table = txn.open_table(SEGMENT_REFS).map_err(index_err)?;
            for (key, old, new) in moves {
                let current = table
                    .get(*key)
                    .map_err(index_err)?
                    .map(|v| to_ref(v.value()));
                if current == Some(*old) {
                    table
                        .insert(*key, (new.segment, new.offset, new.len))
                        .map_err(index_err)?;
                    done.push((*key, *old, *new));
                }
            }
        }
        txn.commit().map_err(index_err)?;
        Ok(done)
    }
}
