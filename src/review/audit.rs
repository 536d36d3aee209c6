//! The audit trail as the reviewer reads it: every record fetched through the admin API and
//! its hash chain checked on this side, from the anchor left by pruning to the stored head.

use super::{ReviewContext, ReviewError};
use crate::admin::MAX_PAGE;
use crate::store::AuditPage;
use crate::store::audit::{AuditRecord, ChainVerifier};

/// The audit trail as read and checked on this side.
pub struct Trail {
    /// Records since the asked time, oldest first (past a break, as stored).
    pub records: Vec<AuditRecord>,
    /// How many records the chain verified, or where and why it breaks.
    pub checked: Result<u64, String>,
}

impl Trail {
    /// How many records the chain verified; a break is [`ReviewError::AuditBroken`].
    pub fn verified(&self) -> Result<u64, ReviewError> {
        self.checked.clone().map_err(ReviewError::AuditBroken)
    }
}

/// Reads the whole trail through the admin API and checks its hash chain from the anchor
/// to the head; keeps the records at or after `since`.
pub fn fetch(context: &ReviewContext, since: Option<i64>) -> Result<Trail, ReviewError> {
    let mut records = Vec::new();
    let mut after = 0;
    let mut verifier: Option<ChainVerifier> = None;
    let mut broken: Option<String> = None;
    let mut head: Option<String>;
    loop {
        let page: AuditPage = context
            .client
            .get_json(&format!("/v1/audit?after={after}&limit={MAX_PAGE}"))?;
        let v = verifier.get_or_insert_with(|| ChainVerifier::new(page.anchor.as_ref()));
        head = page.head.clone();
        for raw in &page.records {
            let checked = match &broken {
                None => v.push(raw.as_bytes()).map_err(|e| broken = Some(e)).ok(),
                Some(_) => None,
            };
            // Past a break, records are still listed as stored.
            let record = checked.or_else(|| serde_json::from_str::<AuditRecord>(raw).ok());
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
    Ok(Trail { records, checked })
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
        };
        assert_eq!(intact.verified().expect("intact"), 3);
        let broken = Trail {
            records: Vec::new(),
            checked: Err("record 2 does not follow record 1".into()),
        };
        let error = broken.verified().expect_err("broken");
        assert_eq!(
            error.to_string(),
            "audit chain broken: record 2 does not follow record 1"
        );
        assert_eq!(error.exit_code(), exit::AUDIT_BROKEN);
    }
}
