//! How long messages and audit records are kept, and the server task that deletes them
//! when that time is up.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::clock::unix_now;
use crate::store::{AuditEntry, MessageMeta, QuarantineStore, RateLimits};
use crate::witness::{WitnessConfig, WitnessError};

/// Retention of messages: a default and per-domain overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    default: Duration,
    /// Retired domain (normalised, as the index records it) -> retention.
    per_domain: Vec<(String, Duration)>,
}

impl RetentionPolicy {
    pub fn new(default: Duration, per_domain: Vec<(String, Duration)>) -> Self {
        Self {
            default,
            per_domain,
        }
    }

    pub fn default(&self) -> Duration {
        self.default
    }

    /// A message addressed to several retired domains is kept as long as the longest of
    /// their retentions: deleting it early for one would delete it for all.
    pub fn for_domains(&self, domains: &[String]) -> Duration {
        domains
            .iter()
            .map(|d| {
                self.per_domain
                    .iter()
                    .find(|(name, _)| name == d)
                    .map_or(self.default, |(_, r)| *r)
            })
            .max()
            .unwrap_or(self.default)
    }

    /// Whether a message's retention has run out at `now` (seconds since the epoch).
    pub fn expired(&self, meta: &MessageMeta, now: i64) -> bool {
        let keep = i64::try_from(self.for_domains(&meta.domains).as_secs()).unwrap_or(i64::MAX);
        meta.received_at.saturating_add(keep) <= now
    }
}

/// Purges expired messages and audit records at start and then every `interval`, until
/// `shutdown`. Each run is recorded in the audit trail like any other deletion.
pub async fn run_purger<S: QuarantineStore>(
    store: Arc<S>,
    policy: RetentionPolicy,
    audit_retention: Duration,
    witness: WitnessConfig,
    rate_limits: RateLimits,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        match purge_once(&*store, &policy, audit_retention, &witness, unix_now()).await {
            Ok((deleted, held, audit_pruned)) => {
                if deleted + audit_pruned > 0 {
                    tracing::info!(deleted, held, audit_pruned, "retention purge");
                }
            }
            Err(error) => tracing::error!(%error, "retention purge failed"),
        }
        // The notice rate limits' memory (salted hashes of senders and addresses) is kept
        // only as long as a limit can still look at it.
        match store.prune_rate_memory(unix_now(), rate_limits).await {
            Ok(0) => {}
            Ok(forgotten) => tracing::info!(forgotten, "notice rate-limit memory pruned"),
            Err(error) => tracing::error!(%error, "pruning the notice rate-limit memory failed"),
        }
    }
}

/// One purge: messages past retention (unless held), then audit records past theirs.
/// Returns (messages deleted, expired but held, audit records pruned).
pub async fn purge_once<S: QuarantineStore>(
    store: &S,
    policy: &RetentionPolicy,
    audit_retention: Duration,
    witness: &WitnessConfig,
    now: i64,
) -> Result<(usize, usize, usize), WitnessError> {
    let policy = policy.clone();
    let report = store
        .purge(Arc::new(move |meta: &MessageMeta| {
            policy.expired(meta, now)
        }))
        .await?;
    if !report.deleted.is_empty() {
        let entry = AuditEntry {
            time: now,
            who: "reclaim (retention)".into(),
            action: "purge".into(),
            ids: report.deleted.clone(),
            reason: Some("retention period ended".into()),
            status: 200,
            ..AuditEntry::default()
        };
        crate::witness::record(store, witness, entry).await?;
    }
    let keep = i64::try_from(audit_retention.as_secs()).unwrap_or(i64::MAX);
    let pruned = store.prune_audit(now.saturating_sub(keep)).await?;
    Ok((report.deleted.len(), report.held, pruned))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(received_at: i64, domains: &[&str]) -> MessageMeta {
        MessageMeta {
            received_at,
            size: 1,
            sealed_size: 1,
            domains: domains.iter().map(|d| d.to_string()).collect(),
            notice: None,
            sealed_to: Vec::new(),
        }
    }

    #[test]
    fn longest_retention_of_the_domains_wins() {
        let day = 86_400;
        let p = RetentionPolicy::new(
            Duration::from_secs(30 * day),
            vec![("keep.example".into(), Duration::from_secs(90 * day))],
        );
        let now = 100 * day as i64;
        assert!(p.expired(&meta(now - 31 * day as i64, &["old.example"]), now));
        assert!(!p.expired(&meta(now - 29 * day as i64, &["old.example"]), now));
        assert!(!p.expired(
            &meta(now - 31 * day as i64, &["old.example", "keep.example"]),
            now
        ));
        assert!(p.expired(&meta(now - 91 * day as i64, &["keep.example"]), now));
        assert!(p.expired(&meta(0, &[]), now));
    }
}
