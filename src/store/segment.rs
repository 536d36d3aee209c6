//! Segment files: sealed messages that fit in memory are appended to a few large files, so
//! that storing one creates no file and one `fdatasync` covers a whole group commit. Each
//! message is a byte range that is a complete age file on its own; the index records where.
//!
//! Space comes back three ways: a deleted message's range is overwritten with zeros at
//! once (the ciphertext is gone, the length stays), a segment whose messages are all gone
//! is unlinked, and a segment less than half live is compacted: its live ranges copied to
//! a new segment, the index pointed at the copies, the old file unlinked.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::{StoreError, sync_dir};

/// A sealed message inside a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRef {
    pub segment: u64,
    pub offset: u64,
    pub len: u64,
}

/// No segment is being appended to.
const NO_SEGMENT: u64 = u64::MAX;

/// Zeros written per call when a range is wiped.
const WIPE_CHUNK: usize = 64 * 1024;

/// The segment directory and what is known about each file in it.
pub(super) struct Segments {
    dir: PathBuf,
    /// A segment that reaches this size is closed and a new one started.
    max_size: u64,
    /// The next segment number.
    next: AtomicU64,
    /// The segment the committer appends to ([`NO_SEGMENT`] when none).
    active: AtomicU64,
    /// Live (indexed) sealed bytes per segment.
    live: Mutex<BTreeMap<u64, u64>>,
    /// Held by deletes and compaction, so that a compaction never copies a range that a
    /// delete is wiping.
    pub(super) maintenance: Mutex<()>,
}

pub(super) fn file_name(segment: u64) -> String {
    format!("{segment:016x}.seg")
}

fn parse_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".seg")?;
    (stem.len() == 16)
        .then(|| u64::from_str_radix(stem, 16).ok())
        .flatten()
}

impl Segments {
    /// Opens `dir` (created by the caller), given the live bytes per segment from the
    /// index. Segment files that hold nothing indexed are removed: they can hold only
    /// messages never acknowledged or already deleted. Returns how many were removed.
    pub(super) fn open(
        dir: &Path,
        max_size: u64,
        live: BTreeMap<u64, u64>,
    ) -> Result<(Self, usize), StoreError> {
        let mut highest = None;
        let mut removed = 0;
        for entry in std::fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))? {
            let entry = entry.map_err(|e| StoreError::io(dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(number) = parse_name(&name) else {
                continue;
            };
            highest = highest.max(Some(number));
            if !live.contains_key(&number) {
                let path = entry.path();
                std::fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
                removed += 1;
            }
        }
        if removed > 0 {
            sync_dir(dir)?;
        }
        let next = highest
            .max(live.keys().next_back().copied())
            .map_or(0, |n| n + 1);
        Ok((
            Self {
                dir: dir.to_owned(),
                max_size,
                next: AtomicU64::new(next),
                active: AtomicU64::new(NO_SEGMENT),
                live: Mutex::new(live),
                maintenance: Mutex::new(()),
            },
            removed,
        ))
    }

    pub(super) fn path(&self, segment: u64) -> PathBuf {
        self.dir.join(file_name(segment))
    }

    /// Whether the file of `r`'s segment holds `r` whole and it still starts as an age file
    /// (a range wiped by a delete that crashed before its index commit does not). `open`
    /// keeps each segment's file open across calls.
    pub(super) fn holds(&self, r: &SegmentRef, open: &mut BTreeMap<u64, Option<File>>) -> bool {
        const AGE_HEADER: &[u8] = b"age-encryption.org/v1";
        let Some(file) = open
            .entry(r.segment)
            .or_insert_with(|| File::open(self.path(r.segment)).ok())
        else {
            return false;
        };
        let whole = file.metadata().is_ok_and(|m| {
            r.offset
                .checked_add(r.len)
                .is_some_and(|end| end <= m.len())
        });
        let mut head = [0u8; AGE_HEADER.len()];
        whole
            && r.len >= head.len() as u64
            && file.read_exact_at(&mut head, r.offset).is_ok()
            && head == AGE_HEADER
    }

    fn live(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, u64>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates a new, empty segment file and makes its directory entry durable.
    fn create(&self) -> Result<(u64, File), StoreError> {
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        let path = self.path(number);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        sync_dir(&self.dir)?;
        Ok((number, file))
    }

    pub(super) fn added(&self, refs: impl IntoIterator<Item = SegmentRef>) {
        let mut live = self.live();
        for r in refs {
            *live.entry(r.segment).or_default() += r.len;
        }
    }

    fn removed(&self, r: &SegmentRef) {
        let mut live = self.live();
        if let Some(bytes) = live.get_mut(&r.segment) {
            *bytes = bytes.saturating_sub(r.len);
        }
    }

    /// Overwrites the ranges of messages being deleted with zeros and makes that durable,
    /// before their index entries go (the caller's order): deleted ciphertext does not
    /// linger until its segment is compacted. Call with [`Self::maintenance`] held.
    pub(super) fn wipe(&self, refs: &[SegmentRef]) -> Result<(), StoreError> {
        let mut by_segment: BTreeMap<u64, Vec<&SegmentRef>> = BTreeMap::new();
        for r in refs {
            by_segment.entry(r.segment).or_default().push(r);
        }
        let zeros = vec![0u8; WIPE_CHUNK];
        for (segment, ranges) in by_segment {
            let path = self.path(segment);
            let file = match std::fs::OpenOptions::new().write(true).open(&path) {
                Ok(file) => file,
                // Already gone: nothing left to wipe.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io(&path, e)),
            };
            for r in ranges {
                let mut done = 0;
                while done < r.len {
                    let n = (r.len - done).min(WIPE_CHUNK as u64) as usize;
                    file.write_all_at(&zeros[..n], r.offset + done)
                        .map_err(|e| StoreError::io(&path, e))?;
                    done += n as u64;
                }
            }
            file.sync_data().map_err(|e| StoreError::io(&path, e))?;
        }
        Ok(())
    }

    /// Accounts for messages whose index entries are gone.
    pub(super) fn forget(&self, refs: &[SegmentRef]) {
        for r in refs {
            self.removed(r);
        }
    }

    /// Segments other than the active one, with live bytes and file length: candidates
    /// for unlinking (nothing live) and compaction (less than half live).
    pub(super) fn closed(&self) -> Vec<(u64, u64, u64)> {
        let active = self.active.load(Ordering::Relaxed);
        let live = self.live().clone();
        live.into_iter()
            .filter(|(segment, _)| *segment != active)
            .filter_map(|(segment, bytes)| {
                let len = std::fs::metadata(self.path(segment)).ok()?.len();
                Some((segment, bytes, len))
            })
            .collect()
    }

    /// Removes a segment whose messages are all gone. Call with [`Self::maintenance`].
    pub(super) fn unlink(&self, segment: u64) -> Result<(), StoreError> {
        let path = self.path(segment);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io(&path, e)),
        }
        sync_dir(&self.dir)?;
        self.live().remove(&segment);
        Ok(())
    }

    /// Copies the given ranges of one segment into a new segment, durable when this
    /// returns; the caller then points the index at the copies. Call with
    /// [`Self::maintenance`] held.
    pub(super) fn copy_out(
        &self,
        ranges: &[(u128, SegmentRef)],
    ) -> Result<Vec<(u128, SegmentRef, SegmentRef)>, StoreError> {
        let (number, mut out) = self.create()?;
        let out_path = self.path(number);
        let mut moved = Vec::with_capacity(ranges.len());
        let mut offset = 0;
        let mut buffer = Vec::new();
        let mut source: Option<(u64, File)> = None;
        for (key, old) in ranges {
            if source.as_ref().is_none_or(|(s, _)| *s != old.segment) {
                let path = self.path(old.segment);
                let file = File::open(&path).map_err(|e| StoreError::io(&path, e))?;
                source = Some((old.segment, file));
            }
            let Some((_, file)) = source.as_ref() else {
                continue;
            };
            buffer.resize(old.len as usize, 0);
            file.read_exact_at(&mut buffer, old.offset)
                .map_err(|e| StoreError::io(&self.path(old.segment), e))?;
            out.write_all(&buffer)
                .map_err(|e| StoreError::io(&out_path, e))?;
            let new = SegmentRef {
                segment: number,
                offset,
                len: old.len,
            };
            offset += old.len;
            moved.push((*key, *old, new));
        }
        out.sync_data().map_err(|e| StoreError::io(&out_path, e))?;
        Ok(moved)
    }

    /// Accounts for ranges that now live in a compacted copy.
    pub(super) fn moved(&self, moves: &[(u128, SegmentRef, SegmentRef)]) {
        for (_, old, new) in moves {
            self.removed(old);
            self.added([*new]);
        }
    }
}

/// Appends to the active segment. Owned by the committer thread: one writer, so appends
/// need no lock and their order is the file's order.
pub(super) struct SegmentWriter {
    segments: std::sync::Arc<Segments>,
    active: Option<Active>,
}

struct Active {
    number: u64,
    file: File,
    len: u64,
    /// Bytes written since the last sync.
    dirty: bool,
}

impl SegmentWriter {
    pub(super) fn new(segments: std::sync::Arc<Segments>) -> Self {
        Self {
            segments,
            active: None,
        }
    }

    /// Appends one sealed message; durable only after [`Self::sync`].
    pub(super) fn append(&mut self, sealed: &[u8]) -> Result<SegmentRef, StoreError> {
        if self
            .active
            .as_ref()
            .is_none_or(|a| a.len >= self.segments.max_size)
        {
            let (number, file) = self.segments.create()?;
            self.segments.active.store(number, Ordering::Relaxed);
            self.active = Some(Active {
                number,
                file,
                len: 0,
                dirty: false,
            });
        }
        let Some(active) = self.active.as_mut() else {
            return Err(StoreError::Closed);
        };
        let offset = active.len;
        if let Err(e) = active.file.write_all(sealed) {
            // The file's end is no longer known: start a new segment next time.
            let path = self.segments.path(active.number);
            self.poison();
            return Err(StoreError::io(&path, e));
        }
        active.len += sealed.len() as u64;
        active.dirty = true;
        Ok(SegmentRef {
            segment: active.number,
            offset,
            len: sealed.len() as u64,
        })
    }

    /// Counts appended messages whose index entries are now committed as live.
    pub(super) fn committed(&self, refs: impl IntoIterator<Item = SegmentRef>) {
        self.segments.added(refs);
    }

    /// Makes every append so far durable.
    pub(super) fn sync(&mut self) -> Result<(), StoreError> {
        let Some(active) = self.active.as_mut().filter(|a| a.dirty) else {
            return Ok(());
        };
        match active.file.sync_data() {
            Ok(()) => {
                active.dirty = false;
                Ok(())
            }
            Err(e) => {
                // After a failed fsync the kernel may have dropped the dirty pages: nothing
                // more is appended to this file.
                let path = self.segments.path(active.number);
                self.poison();
                Err(StoreError::io(&path, e))
            }
        }
    }

    fn poison(&mut self) {
        self.active = None;
        self.segments.active.store(NO_SEGMENT, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn read(segments: &Segments, r: &SegmentRef) -> Vec<u8> {
        let file = File::open(segments.path(r.segment)).expect("open");
        let mut buf = vec![0; r.len as usize];
        file.read_exact_at(&mut buf, r.offset).expect("read");
        buf
    }

    #[test]
    fn appends_rotate_wipe_and_compact() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (segments, _) = Segments::open(dir.path(), 10, BTreeMap::new()).expect("open");
        let segments = Arc::new(segments);
        let mut writer = SegmentWriter::new(segments.clone());
        let a = writer.append(b"first message").expect("a");
        let b = writer.append(b"second").expect("b");
        writer.sync().expect("sync");
        assert_eq!(a.segment, 0);
        assert_ne!(b.segment, a.segment, "a full segment is closed");
        segments.added([a, b]);
        assert_eq!(read(&segments, &a), b"first message");

        let mut open = BTreeMap::new();
        let c = writer.append(b"age-encryption.org/v1\n...").expect("c");
        writer.sync().expect("sync");
        assert!(segments.holds(&c, &mut open), "a whole age file");
        assert!(!segments.holds(&a, &mut open), "not an age file");
        segments.wipe(&[c]).expect("wipe");
        assert!(
            !segments.holds(&c, &mut open),
            "a wiped range counts as missing"
        );
        segments.wipe(&[a]).expect("wipe");
        assert_eq!(read(&segments, &a), vec![0; a.len as usize]);
        segments.forget(&[a]);
        assert_eq!(segments.closed(), vec![(0, 0, 13)]);
        segments.unlink(0).expect("unlink");
        assert!(!segments.path(0).exists());

        let moved = segments.copy_out(&[(7, b)]).expect("copy");
        let (_, old, new) = moved[0];
        assert_eq!(old, b);
        assert_eq!(read(&segments, &new), b"second");
        segments.moved(&moved);
        assert_eq!(segments.live()[&new.segment], 6);
        assert_eq!(segments.live()[&b.segment], 0);
    }

    #[test]
    fn reopening_removes_segments_nothing_points_into() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(file_name(3)), b"never acknowledged").expect("w");
        std::fs::write(dir.path().join(file_name(4)), b"kept").expect("w");
        std::fs::write(dir.path().join("notes.txt"), b"not ours").expect("w");
        let live = BTreeMap::from([(4, 4)]);
        let (segments, removed) = Segments::open(dir.path(), 1 << 20, live).expect("open");
        assert_eq!(removed, 1);
        assert!(!dir.path().join(file_name(3)).exists());
        assert!(dir.path().join("notes.txt").exists());
        assert_eq!(segments.next.load(Ordering::Relaxed), 5);
    }
}
