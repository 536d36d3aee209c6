//! The audit trail as the reviewer reads it: every record fetched through the admin API and
//! its hash chain checked on this side, from the anchor left by pruning to the stored head.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{ReviewContext, ReviewError};
use crate::admin::MAX_PAGE;
use crate::store::AuditPage;
use crate::store::audit::{Anchor, AuditRecord, ChainVerifier, hash_hex};
use crate::witness::{self, Witnessing};

/// The audit trail as read and checked on this side.
pub struct Trail {
    /// Records since the asked time, oldest first (past a break, as stored).
    pub records: Vec<AuditRecord>,
    /// How many records the chain verified, or where and why it breaks.
    pub checked: Result<u64, String>,
    /// Where the stored chain starts, when it was pruned.
    pub anchor: Option<Anchor>,
    /// The hash of every stored record (whatever `since` kept), by sequence number, to
    /// check against witnessed heads.
    pub hashes: BTreeMap<u64, String>,
}

impl Trail {
    /// How many records the chain verified; a break is [`ReviewError::AuditBroken`].
    pub fn verified(&self) -> Result<u64, ReviewError> {
        self.checked.clone().map_err(ReviewError::AuditBroken)
    }

    /// Checks the chain against `heads` ([`read_heads`]); a rewritten or shortened chain is
    /// [`ReviewError::AuditBroken`].
    pub fn witnessed(&self, heads: &BTreeMap<u64, String>) -> Result<Witnessing, ReviewError> {
        witness::check(heads, self.anchor.as_ref(), &self.hashes).map_err(ReviewError::AuditBroken)
    }
}

/// The heads witnessed in `files` (`[audit] head_file`, or a log the head command fed).
/// Read them before [`fetch`]ing the trail: every request is witnessed before it is
/// answered, so heads read afterwards would name records the fetched chain cannot have.
pub fn read_heads(files: &[PathBuf]) -> Result<BTreeMap<u64, String>, ReviewError> {
    let mut heads = BTreeMap::new();
    for path in files {
        let text = std::fs::read_to_string(path).map_err(|source| ReviewError::Io {
            what: "read the witnessed heads",
            path: path.clone(),
            source,
        })?;
        let found = witness::parse_heads(&text)
            .map_err(|e| ReviewError::AuditBroken(format!("{}: {e}", path.display())))?;
        for (seq, hash) in found {
            if heads
                .insert(seq, hash.clone())
                .is_some_and(|other| other != hash)
            {
                return Err(ReviewError::AuditBroken(format!(
                    "record #{seq} was witnessed with two different hashes"
                )));
            }
        }
    }
    Ok(heads)
}

/// Reads the whole trail through the admin API and checks its hash chain from the anchor
/// to the head; keeps the records at or after `since`.
pub fn fetch(context: &ReviewContext, since: Option<i64>) -> Result<Trail, ReviewError> {
    let mut records = Vec::new();
    let mut after = 0;
    let mut verifier: Option<ChainVerifier> = None;
    let mut broken: Option<String> = None;
    let mut head: Option<String>;
    let mut anchor = None;
    let mut hashes = BTreeMap::new();
    loop {
        let page: AuditPage = context
            .client
            .get_json(&format!("/v1/audit?after={after}&limit={MAX_PAGE}"))?;
        if verifier.is_none() {
            anchor.clone_from(&page.anchor);
        }
        let v = verifier.get_or_insert_with(|| ChainVerifier::new(page.anchor.as_ref()));
        head = page.head.clone();
        for raw in &page.records {
            let checked = match &broken {
                None => v.push(raw.as_bytes()).map_err(|e| broken = Some(e)).ok(),
                Some(_) => None,
            };
            // Past a break, records are still listed as stored.
            let record = checked.or_else(|| serde_json::from_str::<AuditRecord>(raw).ok());
            if let Some(record) = &record {
                hashes.insert(record.seq, hash_hex(raw.as_bytes()));
            }
            if let Some(record) = record
                && since.is_none_or(|s| record.entry.time >= s)
            {
                records.push(record);
            }
        }
        match page.next_after {
            Some(next) if next > after => after = next,
            _ => break,
        }
    }
    let checked = match (broken, verifier) {
        (Some(e), _) => Err(e),
        (None, Some(v)) => v.finish(head.as_deref()),
        (None, None) => Ok(0),
    };
    Ok(Trail {
        records,
        checked,
        anchor,
        hashes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::exit;

    #[test]
    fn a_broken_chain_is_its_own_failure() {
        let intact = Trail {
            records: Vec::new(),
            checked: Ok(3),
            anchor: None,
            hashes: BTreeMap::new(),
        };
        assert_eq!(intact.verified().expect("intact"), 3);
        let broken = Trail {
            records: Vec::new(),
            checked: Err("record 2 does not follow record 1".into()),
            anchor: None,
            hashes: BTreeMap::new(),
        };
        let error = broken.verified().expect_err("broken");
        assert_eq!(
            error.to_string(),
            "audit chain broken: record 2 does not follow record 1"
        );
        assert_eq!(error.exit_code(), exit::AUDIT_BROKEN);
    }
}
