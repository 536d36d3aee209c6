//! Deleting messages (by hand or when their retention ends), legal holds, and the
//! plaintext statistics the index can give without decrypting anything.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a purge did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeReport {
    pub deleted: Vec<String>,
    /// Expired but under legal hold, so kept.
    pub held: usize,
}

/// Counts and plaintext bytes for one retired domain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainStats {
    pub messages: u64,
    pub bytes: u64,
    pub held: u64,
}

/// Counts and plaintext bytes for one UTC day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayStats {
    pub messages: u64,
    pub bytes: u64,
}

/// What is in the quarantine, by domain and by day (UTC, `YYYY-MM-DD`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub messages: u64,
    pub bytes: u64,
    pub sealed_bytes: u64,
    pub held: u64,
    pub domains: BTreeMap<String, DomainStats>,
    pub days: BTreeMap<String, DayStats>,
    /// Notice totals: `queued`, `sent`, `failed:*`, `suppressed:*`.
    #[serde(default)]
    pub notices: BTreeMap<String, u64>,
}

impl Stats {
    /// Counts one message.
    pub fn add(&mut self, meta: &super::MessageMeta, held: bool) {
        self.messages += 1;
        self.bytes += meta.size;
        self.sealed_bytes += meta.sealed_size;
        self.held += u64::from(held);
        for domain in &meta.domains {
            let d = self.domains.entry(domain.clone()).or_default();
            d.messages += 1;
            d.bytes += meta.size;
            d.held += u64::from(held);
        }
        let day = self.days.entry(utc_day(meta.received_at)).or_default();
        day.messages += 1;
        day.bytes += meta.size;
    }
}

/// `YYYY-MM-DD` of a Unix time, in UTC.
pub fn utc_day(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
        Err(_) => "invalid".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(utc_day(1_795_910_400 - 1), "2026-11-28");
        assert_eq!(utc_day(i64::MAX), "invalid");
    }
}
