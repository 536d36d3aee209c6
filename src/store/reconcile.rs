//! Start-up check of the store: stale temp files go, and index and blobs are compared.
//! Nothing indexed or sealed is ever deleted here: mismatches are reported for a person.

use std::collections::BTreeSet;
use std::path::Path;

use super::index::Index;
use super::segment::Segments;
use super::{MessageId, StoreError};

/// What reconciliation found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reconciliation {
    /// Temp files of messages never acknowledged (a crash mid-transfer); removed.
    pub stale_temp_removed: usize,
    /// Segment files holding no indexed message (only messages never acknowledged, or
    /// deleted); removed.
    pub stale_segments_removed: usize,
    /// Sealed files with no index entry (a crash between rename and index commit, or a
    /// file put there by hand). Kept.
    pub orphan_blobs: Vec<String>,
    /// Index entries whose sealed file is missing. Kept in the index.
    pub missing_blobs: Vec<MessageId>,
    /// Messages indexed and present.
    pub messages: usize,
}

impl Reconciliation {
    pub fn is_clean(&self) -> bool {
        self.orphan_blobs.is_empty() && self.missing_blobs.is_empty()
    }
}

pub(super) fn reconcile(
    index: &Index,
    messages_dir: &Path,
    tmp_dir: &Path,
    segments: &Segments,
    stale_segments_removed: usize,
) -> Result<Reconciliation, StoreError> {
    let mut report = Reconciliation {
        stale_segments_removed,
        ..Reconciliation::default()
    };
    for entry in std::fs::read_dir(tmp_dir).map_err(|e| StoreError::io(tmp_dir, e))? {
        let entry = entry.map_err(|e| StoreError::io(tmp_dir, e))?;
        let path = entry.path();
        if path.is_file() {
            std::fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
            report.stale_temp_removed += 1;
        }
    }

    let indexed: BTreeSet<MessageId> = index.ids()?.into_iter().collect();
    let mut on_disk = BTreeSet::new();
    let mut open = std::collections::BTreeMap::new();
    for (key, r) in index.all_segment_refs()? {
        if segments.holds(&r, &mut open) {
            on_disk.insert(MessageId::from_key(key));
        }
    }
    for entry in std::fs::read_dir(messages_dir).map_err(|e| StoreError::io(messages_dir, e))? {
        let entry = entry.map_err(|e| StoreError::io(messages_dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        match name
            .strip_suffix(".age")
            .and_then(|stem| stem.parse::<MessageId>().ok())
        {
            Some(id) if indexed.contains(&id) => {
                on_disk.insert(id);
            }
            _ => report.orphan_blobs.push(name),
        }
    }
    report.orphan_blobs.sort();
    report.missing_blobs = indexed.difference(&on_disk).copied().collect();
    report.messages = on_disk.len();
    Ok(report)
}
