//! Notices to people who still write to retired addresses (RFC 3834 automatic responses):
//! who gets one ([`policy`]), what it says ([`compose`]), and its delivery ([`worker`]).
//! A notice goes to the envelope sender only, never to `From:`, and never quotes the
//! original: the sender may be forged. One message causes at most one notice.

pub mod compose;
pub mod policy;
pub mod template;
pub mod transport;
pub mod worker;

use std::time::SystemTime;

use crate::config::NotifyConfig;
use crate::domains::{Disposition, Mode, RetiredDomains};
use crate::retention::RetentionPolicy;
use crate::store::{MessageId, NoticePlan, OutboxItem, QueuedNotice, RateLimits, Store};
use crate::summary::Summary;

pub use policy::{Suppressed, eligibility};
pub use template::Templates;

/// What planning notices needs to know besides the message.
pub struct Planner<'a> {
    pub notify: &'a NotifyConfig,
    pub domains: &'a RetiredDomains,
    pub templates: &'a Templates,
    pub store: &'a Store,
    pub hostname: &'a str,
    pub retention: &'a RetentionPolicy,
}

impl Planner<'_> {
    /// The notice a stored message should cause (at most one, answering every retired
    /// recipient in notify mode), ready to queue with it. Suppressed ones are logged
    /// (without addresses), counted, and left out; rate limits are applied by the store.
    pub fn plan(&self, summary: &Summary, received_at: SystemTime) -> NoticePlan {
        let mut out = NoticePlan::default();
        let mut recipients: Vec<(&str, Disposition)> = Vec::new();
        for rcpt in &summary.rcpt_to {
            // <postmaster> has no disposition; other modes send no notice by design.
            if let Some(d) = self.domains.disposition(rcpt)
                && d.mode == Mode::Notify
                && !recipients.iter().any(|(r, _)| r.eq_ignore_ascii_case(rcpt))
            {
                recipients.push((rcpt, d));
            }
        }
        let Some((_, first)) = recipients.first() else {
            return out;
        };
        let reason = eligibility(summary, self.notify, self.domains)
            .err()
            .or_else(|| {
                self.templates
                    .get(first.language)
                    .is_none()
                    .then_some(Suppressed::NoTemplate)
            });
        if let Some(reason) = reason {
            suppress(&mut out, reason, 1);
            return out;
        }
        if recipients.len() > 1 {
            suppress(&mut out, Suppressed::PerMessage, recipients.len() as u64 - 1);
        }
        out.notice = Some(self.notice(summary, &recipients, received_at));
        out
    }

    fn notice(
        &self,
        summary: &Summary,
        recipients: &[(&str, Disposition)],
        received_at: SystemTime,
    ) -> QueuedNotice {
        let notify = self.notify;
        let first = &recipients[0].1;
        let plain = |address: &str| policy::is_plain_address(address, self.domains);
        let moves: Vec<compose::Move<'_>> = recipients
            .iter()
            .map(|(rcpt, d)| compose::Move {
                old: Some(*rcpt).filter(|a| plain(a)),
                domain: &d.domain,
                new: d.forward.as_deref().filter(|a| plain(a)),
            })
            .collect();
        let mut retired: Vec<String> = recipients.iter().map(|(_, d)| d.domain.clone()).collect();
        retired.sort();
        retired.dedup();
        let id = MessageId::new();
        let template = self
            .templates
            .get(first.language)
            .expect("plan() checked the template exists");
        let message = compose::compose(&compose::NoticeFacts {
            template,
            language: first.language,
            from: notify.from.as_deref().unwrap_or_default(),
            organisation: &notify.organisation,
            to: &summary.mail_from,
            moves: &moves,
            retention: notify
                .retention
                .unwrap_or_else(|| self.retention.for_domains(&retired)),
            received_at,
            original_message_id: summary.message_id.as_deref(),
            notice_id: &id.to_string(),
            hostname: self.hostname,
        });
        let now = unix(received_at);
        let limits = notify.limits;
        QueuedNotice {
            id,
            pairs: recipients
                .iter()
                .map(|(rcpt, _)| self.store.pair_key(&summary.mail_from, rcpt))
                .collect(),
            sender: self.store.sender_key(&summary.mail_from),
            limits: RateLimits {
                pair_interval: notify.interval.as_secs() as i64,
                sender_limit: limits.sender_limit,
                sender_interval: limits.sender_interval.as_secs() as i64,
                hourly_limit: limits.hourly_limit,
            },
            item: OutboxItem {
                to: summary.mail_from.clone(),
                message,
                created_at: now,
                attempts: 0,
                next_attempt_at: now,
            },
        }
    }
}

/// Logs and counts notices not sent for `reason` (the store keeps the total for `stats`).
fn suppress(out: &mut NoticePlan, reason: Suppressed, n: u64) {
    tracing::info!(reason = reason.as_str(), notices = n, "notice suppressed");
    metrics::counter!(crate::telemetry::NOTICES_SUPPRESSED, "reason" => reason.as_str())
        .increment(n);
    out.suppressed.push((reason.as_str(), n));
}

/// Seconds since the Unix epoch.
pub fn unix(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
