//! The audit trail: one hash-chained record per admin API request, kept in the index.
//!
//! Each record is stored as its canonical JSON bytes and holds the SHA-256 of the bytes of
//! the record before it, so changing, removing or reordering any record breaks the chain.
//! Pruning keeps an anchor (sequence number and hash of the last pruned record) so the
//! chain that remains still verifies; the hash of the newest record is kept as the head so
//! that altering the last record is noticed too.

use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::StoreError;
use super::index::{Index, index_err};
use super::tables::{AUDIT, AUDIT_STATE};

/// The `prev` of the first record ever written.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a request did, before the store gives it a place in the chain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Seconds since the Unix epoch.
    pub time: i64,
    /// Who asked: `uid 1000 (alice)` on the Unix socket, the certificate subject over TLS.
    pub who: String,
    pub uid: Option<u32>,
    pub action: String,
    pub ids: Vec<String>,
    pub reason: Option<String>,
    /// The HTTP status the request was answered with.
    pub status: u16,
    pub detail: Option<String>,
}

/// One record of the chain, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: u64,
    #[serde(flatten)]
    pub entry: AuditEntry,
    /// Hex SHA-256 of the previous record's stored bytes (or of the anchor).
    pub prev: String,
}

/// Where the remaining chain starts after pruning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// Sequence number of the last pruned record.
    pub seq: u64,
    /// Hex SHA-256 of its stored bytes.
    pub hash: String,
}

/// A page of stored records and the chain's ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub anchor: Option<Anchor>,
    pub head: Option<String>,
    /// Each record's stored bytes, as text (canonical JSON), oldest first.
    pub records: Vec<String>,
    pub next_after: Option<u64>,
}

/// Hex SHA-256 of a record's stored bytes.
pub fn hash_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks a chain record by record, oldest first. Pure, so the CLI can verify what the
/// server hands out without trusting it.
#[derive(Debug)]
pub struct ChainVerifier {
    expected_seq: u64,
    expected_prev: String,
    checked: u64,
}

impl ChainVerifier {
    pub fn new(anchor: Option<&Anchor>) -> Self {
        match anchor {
            Some(a) => Self {
                expected_seq: a.seq + 1,
                expected_prev: a.hash.clone(),
                checked: 0,
            },
            None => Self {
                expected_seq: 1,
                expected_prev: GENESIS.to_owned(),
                checked: 0,
            },
        }
    }

    /// Checks the next record's stored bytes; returns it decoded.
    pub fn push(&mut self, raw: &[u8]) -> Result<AuditRecord, String> {
        let record: AuditRecord = serde_json::from_slice(raw)
            .map_err(|e| format!("record after #{} is unreadable: {e}", self.expected_seq - 1))?;
        if record.seq != self.expected_seq {
            return Err(format!(
                "expected record #{}, found #{} (records missing or reordered)",
                self.expected_seq, record.seq
            ));
        }
        if record.prev != self.expected_prev {
            return Err(format!(
                "record #{} does not follow from the record before it (it or an earlier record was altered)",
                record.seq
            ));
        }
        self.expected_seq += 1;
        self.expected_prev = hash_hex(raw);
        self.checked += 1;
        Ok(record)
    }

    /// Checks the last record against the stored head; returns how many were checked.
    pub fn finish(self, head: Option<&str>) -> Result<u64, String> {
        match head {
            None if self.checked == 0 => Ok(0),
            None => Err("the chain has records but no head".into()),
            Some(h) if h == self.expected_prev => Ok(self.checked),
            Some(_) => Err(format!(
                "the newest record #{} does not match the stored head (it was altered, or records were removed)",
                self.expected_seq - 1
            )),
        }
    }
}

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Audit(e)
}

impl Index {
    /// Appends a record in its own durable commit; returns its sequence number.
    pub(super) fn audit_append(&self, entry: AuditEntry) -> Result<u64, StoreError> {
        let txn = self.db.begin_write().map_err(index_err)?;
        let seq;
        {
            let mut audit = txn.open_table(AUDIT).map_err(index_err)?;
            let mut state = txn.open_table(AUDIT_STATE).map_err(index_err)?;
            let last_seq = audit
                .last()
                .map_err(index_err)?
                .map(|(k, _)| k.value())
                .or(read_anchor(&state)?.map(|a| a.seq))
                .unwrap_or(0);
            let prev = match state.get("head").map_err(index_err)? {
                Some(v) => String::from_utf8_lossy(v.value()).into_owned(),
                None => GENESIS.to_owned(),
            };
            seq = last_seq + 1;
            let record = AuditRecord { seq, entry, prev };
            let bytes = serde_json::to_vec(&record).map_err(json_err)?;
            audit.insert(seq, bytes.as_slice()).map_err(index_err)?;
            state
                .insert("head", hash_hex(&bytes).as_bytes())
                .map_err(index_err)?;
        }
        txn.commit().map_err(index_err)?;
        Ok(seq)
    }

    /// Up to `limit` stored records with a sequence number above `after`.
    pub(super) fn audit_page(&self, after: u64, limit: usize) -> Result<AuditPage, StoreError> {
        let txn = self.db.begin_read().map_err(index_err)?;
        let audit = txn.open_table(AUDIT).map_err(index_err)?;
        let state = txn.open_table(AUDIT_STATE).map_err(index_err)?;
        let mut records = Vec::new();
        let mut last = None;
        for item in audit.range(after.saturating_add(1)..).map_err(index_err)? {
            if records.len() >= limit {
                break;
            }
            let (k, v) = item.map_err(index_err)?;
            last = Some(k.value());
            records.push(String::from_utf8_lossy(v.value()).into_owned());
        }
        let head = state
            .get("head")
            .map_err(index_err)?
            .map(|v| String::from_utf8_lossy(v.value()).into_owned());
        Ok(AuditPage {
            anchor: read_anchor(&state)?,
            head,
            next_after: if records.len() == limit { last } else { None },
            records,
        })
    }

    /// Removes records older than `cutoff` (seconds since the epoch), oldest first, and
    /// moves the anchor to the last one removed. Returns how many were removed.
    pub(super) fn audit_prune(&self, cutoff: i64) -> Result<usize, StoreError> {
        let txn = self.db.begin_write().map_err(index_err)?;
        let mut pruned = 0;
        {
            let mut audit = txn.open_table(AUDIT).map_err(index_err)?;
            let mut state = txn.open_table(AUDIT_STATE).map_err(index_err)?;
            let mut doomed = Vec::new();
            for item in audit.iter().map_err(index_err)? {
                let (k, v) = item.map_err(index_err)?;
                let record: AuditRecord = serde_json::from_slice(v.value()).map_err(json_err)?;
                if record.entry.time >= cutoff {
                    break;
                }
                doomed.push((k.value(), hash_hex(v.value())));
            }
            if let Some((seq, hash)) = doomed.last().cloned() {
                for (k, _) in &doomed {
                    audit.remove(*k).map_err(index_err)?;
                }
                let anchor = serde_json::to_vec(&Anchor { seq, hash }).map_err(json_err)?;
                state
                    .insert("anchor", anchor.as_slice())
                    .map_err(index_err)?;
                pruned = doomed.len();
            }
        }
        txn.commit().map_err(index_err)?;
        Ok(pruned)
    }
}

fn read_anchor(
    state: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Option<Anchor>, StoreError> {
    match state.get("anchor").map_err(index_err)? {
        Some(v) => Ok(Some(serde_json::from_slice(v.value()).map_err(json_err)?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(time: i64, action: &str) -> AuditEntry {
        AuditEntry {
            time,
            who: "uid 1000 (alice)".into(),
            uid: Some(1000),
            action: action.into(),
            ..AuditEntry::default()
        }
    }

    fn verify(index: &Index) -> Result<u64, String> {
        let page = index.audit_page(0, 10_000).expect("page");
        let mut v = ChainVerifier::new(page.anchor.as_ref());
        for raw in &page.records {
            v.push(raw.as_bytes())?;
        }
        v.finish(page.head.as_deref())
    }

    #[test]
    fn chain_verifies_survives_pruning_and_catches_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Index::open(&dir.path().join("index.redb")).expect("open");
        assert_eq!(verify(&index), Ok(0));
        for t in 1..=5 {
            index.audit_append(entry(t * 100, "list")).expect("append");
        }
        assert_eq!(verify(&index), Ok(5));
        assert_eq!(index.audit_prune(250).expect("prune"), 2);
        assert_eq!(verify(&index), Ok(3));
        assert_eq!(index.audit_append(entry(600, "show")).expect("append"), 6);
        assert_eq!(verify(&index), Ok(4));

        let page = index.audit_page(0, 100).expect("page");
        let mut records = page.records.clone();
        records[1] = records[1].replace("\"list\"", "\"lust\"");
        let mut v = ChainVerifier::new(page.anchor.as_ref());
        let broken = records
            .iter()
            .try_for_each(|r| v.push(r.as_bytes()).map(drop));
        assert!(broken.is_err());

        let mut v = ChainVerifier::new(page.anchor.as_ref());
        for r in &page.records[..page.records.len() - 1] {
            v.push(r.as_bytes()).expect("intact");
        }
        assert!(
            v.finish(page.head.as_deref()).is_err(),
            "a dropped tail must be noticed"
        );
    }
}
