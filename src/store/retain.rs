//! Deleting messages (by hand or when their retention ends), legal holds, and the
//! plaintext statistics the index can give without decrypting anything.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{MessageId, MessageMeta, Store, StoreError, blob, sync_dir};

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

impl Store {
    /// Deletes messages now: sealed file first, then index entry, summary and hold, so a
    /// crash in between leaves an index entry whose file is gone (reported loudly at start
    /// and removed by the next delete or purge), never a sealed file nobody will delete.
    /// Returns, per id, whether it existed.
    pub fn delete(&self, ids: &[MessageId]) -> Result<Vec<bool>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        for id in ids {
            let path = blob::final_path(&self.messages_dir, *id);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(&path, e)),
            }
        }
        sync_dir(&self.messages_dir)?;
        let removed = self.index.remove_all(ids)?;
        self.storage
            .removed(removed.iter().flatten().copied().sum::<u64>());
        if let Err(error) = self.storage.refresh_free(&self.messages_dir) {
            tracing::warn!(%error, "cannot measure the store's free disk space");
        }
        Ok(removed.iter().map(Option::is_some).collect())
    }

    /// Places (`true`) or lifts a legal hold; `false` when there is no such message.
    pub fn set_hold(&self, id: MessageId, held: bool, now: i64) -> Result<bool, StoreError> {
        self.index.set_hold(id, held, now)
    }

    /// Deletes every message `expired` says has run out, except those under hold.
    pub fn purge(&self, expired: impl Fn(&MessageMeta) -> bool) -> Result<PurgeReport, StoreError> {
        let mut report = PurgeReport::default();
        let mut doomed = Vec::new();
        for (id, meta, held) in self.index.scan()? {
            if !expired(&meta) {
                continue;
            }
            if held {
                report.held += 1;
            } else {
                doomed.push(id);
            }
        }
        // Bounded batches keep each index transaction small.
        for batch in doomed.chunks(1000) {
            self.delete(batch)?;
        }
        report.deleted = doomed.iter().map(ToString::to_string).collect();
        Ok(report)
    }

    /// Counts and sizes from the plaintext index.
    pub fn stats(&self) -> Result<Stats, StoreError> {
        let mut stats = Stats::default();
        for (_, meta, held) in self.index.scan()? {
            stats.messages += 1;
            stats.bytes += meta.size;
            stats.sealed_bytes += meta.sealed_size;
            stats.held += u64::from(held);
            for domain in &meta.domains {
                let d = stats.domains.entry(domain.clone()).or_default();
                d.messages += 1;
                d.bytes += meta.size;
                d.held += u64::from(held);
            }
            let day = stats.days.entry(utc_day(meta.received_at)).or_default();
            day.messages += 1;
            day.bytes += meta.size;
        }
        stats.notices = self.notice_counts()?;
        Ok(stats)
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
