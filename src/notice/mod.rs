//! Notices to people who still write to retired addresses (RFC 3834 automatic responses):
//! who gets one ([`Planner`]), what it says ([`compose`]), and its delivery ([`worker`]).
//! A notice goes to the envelope sender only, never to `From:`, and never quotes the
//! original: the sender may be forged.

pub mod compose;
pub mod reachable;
pub mod template;
pub mod transport;
pub mod worker;

use std::time::SystemTime;

use crate::auth;
use crate::config::NotifyConfig;
use crate::domains::{Mode, RetiredDomains};
use crate::retention::RetentionPolicy;
use crate::store::{MessageId, NoticePlan, OutboxItem, QueuedNotice, Store};
use crate::summary::Summary;

pub use template::Templates;

/// Why a sender gets no notice (for logs and counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suppressed {
    NotNotifyMode,
    NoFromAddress,
    NullSender,
    SystemSender,
    RetiredSender,
    Automated,
    Unauthenticated,
    NoTemplate,
}

impl Suppressed {
    pub fn as_str(self) -> &'static str {
        match self {
            Suppressed::NotNotifyMode => "mode",
            Suppressed::NoFromAddress => "no_from_address",
            Suppressed::NullSender => "null_sender",
            Suppressed::SystemSender => "system_sender",
            Suppressed::RetiredSender => "retired_sender",
            Suppressed::Automated => "automated",
            Suppressed::Unauthenticated => "unauthenticated",
            Suppressed::NoTemplate => "no_template",
        }
    }
}

/// Senders that are mailing-list or system addresses by convention (RFC 3834 2).
fn is_system_sender(sender: &str) -> bool {
    let local = sender
        .rsplit_once('@')
        .map_or(sender, |(l, _)| l)
        .to_ascii_lowercase();
    local == "mailer-daemon" || local.starts_with("owner-") || local.ends_with("-request")
}

/// Whether this sender may be told about this recipient at all (before rate limits).
pub fn eligibility(
    summary: &Summary,
    recipient_mode: Mode,
    notify: &NotifyConfig,
    domains: &RetiredDomains,
) -> Result<(), Suppressed> {
    if recipient_mode != Mode::Notify {
        return Err(Suppressed::NotNotifyMode);
    }
    if notify.from.is_none() {
        return Err(Suppressed::NoFromAddress);
    }
    let sender = summary.mail_from.as_str();
    if sender.is_empty() {
        return Err(Suppressed::NullSender);
    }
    if is_system_sender(sender) {
        return Err(Suppressed::SystemSender);
    }
    if sender
        .rsplit_once('@')
        .is_some_and(|(_, domain)| domains.matching(domain).is_some())
    {
        return Err(Suppressed::RetiredSender);
    }
    if summary.looks_automated() {
        return Err(Suppressed::Automated);
    }
    if !auth::satisfies(notify.require, summary.auth.as_ref()) {
        return Err(Suppressed::Unauthenticated);
    }
    Ok(())
}

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
    /// The notices a stored message should cause, ready to queue with it. Suppressed ones
    /// are logged (without addresses), counted, and left out.
    pub fn plan(&self, summary: &Summary, received_at: SystemTime) -> NoticePlan {
        let Self {
            notify,
            domains,
            templates,
            store,
            hostname,
            retention,
        } = *self;
        let now = unix(received_at);
        let mut out = NoticePlan::default();
        for rcpt in &summary.rcpt_to {
            let Some(disposition) = domains.disposition(rcpt) else {
                continue; // <postmaster>
            };
            if let Err(reason) = eligibility(summary, disposition.mode, notify, domains) {
                if reason != Suppressed::NotNotifyMode {
                    tracing::info!(reason = reason.as_str(), domain = %disposition.domain, "notice suppressed");
                    metrics::counter!(crate::telemetry::NOTICES_SUPPRESSED, "reason" => reason.as_str()).increment(1);
                    out.suppressed.push(reason.as_str());
                }
                continue;
            }
            let Some(template) = templates.get(disposition.language) else {
                tracing::warn!(
                    reason = Suppressed::NoTemplate.as_str(),
                    "notice suppressed"
                );
                out.suppressed.push(Suppressed::NoTemplate.as_str());
                continue;
            };
            let id = MessageId::new();
            let message = compose::compose(&compose::NoticeFacts {
                template,
                language: disposition.language,
                from: notify.from.as_deref().unwrap_or_default(),
                organisation: &notify.organisation,
                to: &summary.mail_from,
                old_address: rcpt,
                new_address: disposition.forward.as_deref(),
                retention: notify.retention.unwrap_or_else(|| {
                    retention.for_domains(std::slice::from_ref(&disposition.domain))
                }),
                received_at,
                original_message_id: summary.message_id.as_deref(),
                notice_id: &id.to_string(),
                hostname,
            });
            out.queue.push(QueuedNotice {
                id,
                pair: store.pair_key(&summary.mail_from, rcpt),
                skip_if_notified_after: now - notify.interval.as_secs() as i64,
                item: OutboxItem {
                    to: summary.mail_from.clone(),
                    message,
                    created_at: now,
                    attempts: 0,
                    next_attempt_at: now,
                },
            });
        }
        out
    }
}

/// Seconds since the Unix epoch.
pub fn unix(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
