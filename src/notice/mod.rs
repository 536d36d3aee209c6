//! Notices to people who still write to retired addresses (RFC 3834 automatic responses):
//! who gets one ([`policy`]), what it says ([`compose`]), and its delivery ([`worker`]).
//! A notice goes to the envelope sender only, never to `From:`, and never quotes the
//! original: the sender may be forged. One message causes at most one notice.

pub mod compose;
pub mod policy;
pub mod reachable;
pub mod template;
pub mod transport;
pub mod worker;

use std::time::SystemTime;

use crate::config::NotifyConfig;
use crate::domains::{Disposition, Mode, Recipient, RetiredDomains};
use crate::retention::RetentionPolicy;
use crate::store::{MessageId, NoticePlan, OutboxItem, QuarantineStore, QueuedNotice, RateLimits};
use crate::summary::Summary;

pub use policy::{Suppressed, eligibility};
pub use template::Templates;

/// What planning notices needs to know besides the message.
pub struct Planner<'a, S: QuarantineStore> {
    pub notify: &'a NotifyConfig,
    pub domains: &'a RetiredDomains,
    pub templates: &'a Templates,
    pub store: &'a S,
    pub hostname: &'a str,
    pub retention: &'a RetentionPolicy,
}

impl<S: QuarantineStore> Planner<'_, S> {
    /// The notice a stored message should cause (at most one, answering every retired
    /// recipient in notify mode), ready to queue with it. Suppressed ones are logged
    /// (without addresses), counted, and left out; rate limits are applied by the store.
    /// `accepted` are the message's recipients with their dispositions from RCPT time.
    pub fn plan(
        &self,
        summary: &Summary,
        accepted: &[Recipient],
        received_at: SystemTime,
    ) -> NoticePlan {
        let mut out = NoticePlan::default();
        let mut recipients: Vec<(&str, &Disposition)> = Vec::new();
        for rcpt in accepted {
            // <postmaster> has no disposition; other modes send no notice by design.
            if let Some(d) = rcpt.disposition.as_ref()
                && d.mode == Mode::Notify
                && !recipients
                    .iter()
                    .any(|(r, _)| r.eq_ignore_ascii_case(&rcpt.address))
            {
                recipients.push((&rcpt.address, d));
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
            suppress(
                &mut out,
                Suppressed::PerMessage,
                recipients.len() as u64 - 1,
            );
        }
        out.notice = Some(self.notice(summary, &recipients, received_at));
        out
    }

    fn notice(
        &self,
        summary: &Summary,
        recipients: &[(&str, &Disposition)],
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
        QueuedNotice {
            id,
            pairs: recipients
                .iter()
                .map(|(rcpt, _)| self.store.pair_key(&summary.mail_from, rcpt))
                .collect(),
            sender: self.store.sender_key(&summary.mail_from),
            organisation: self
                .store
                .organisation_key(&policy::sender_organisation(&summary.mail_from)),
            limits: rate_limits(notify),
            item: OutboxItem {
                to: summary.mail_from.clone(),
                message,
                created_at: now,
                attempts: 0,
                next_attempt_at: now,
                lease: None,
            },
        }
    }
}

/// Logs and counts notices not sent for `reason` (the store keeps the total for `stats`).
/// The rate limits every notice is held to, from `[notify]`.
pub fn rate_limits(notify: &NotifyConfig) -> RateLimits {
    RateLimits {
        pair_interval: i64::try_from(notify.interval.as_secs()).unwrap_or(i64::MAX),
        sender_limit: notify.limits.sender_limit,
        sender_interval: i64::try_from(notify.limits.sender_interval.as_secs()).unwrap_or(i64::MAX),
        hourly_limit: notify.limits.hourly_limit,
        domain_limit: notify.limits.per_domain_hourly_limit,
    }
}

fn suppress(out: &mut NoticePlan, reason: Suppressed, n: u64) {
    if reason == Suppressed::NoTemplate {
        // A configuration problem, not the sender's doing.
        tracing::warn!(reason = reason.as_str(), "notice suppressed");
    } else {
        tracing::info!(reason = reason.as_str(), notices = n, "notice suppressed");
    }
    metrics::counter!(crate::telemetry::NOTICES_SUPPRESSED, "reason" => reason.as_str())
        .increment(n);
    out.suppressed.push((reason.as_str(), n));
}

/// Seconds since the Unix epoch.
pub fn unix(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::store::Store;
    use crate::summary::AuthResults;

    const CONFIG: &str = r#"
        [server]
        hostname = "mx.old.example"
        listen = ["127.0.0.1:2525"]
        [seal]
        recipients = ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"]
        [[domain]]
        name = "old.example"
        new_domain = "new.example"
        language = "en"
        [[domain]]
        name = "oud.example"
        new_domain = "nieuw.example"
        language = "nl"
        [[domain]]
        name = "stil.example"
        mode = "silent"
        [notify]
        from = "postmaster@new.example"
        organisation = "Gemeente Voorbeeld"
    "#;

    const EVIL: &str = "\"Mailbox locked, verify at https://evil.example/x\"";

    /// Plans for a message from an SPF-authenticated sender to `rcpt_to`.
    fn plan(rcpt_to: &[&str]) -> NoticePlan {
        let config = Config::parse(CONFIG).expect("config");
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _) = Store::open(dir.path()).expect("store");
        let templates = Templates::built_in();
        let retention = RetentionPolicy::new(std::time::Duration::from_secs(30 * 86400), vec![]);
        let summary = Summary {
            mail_from: "partner@partner.example".into(),
            rcpt_to: rcpt_to.iter().map(|r| (*r).to_owned()).collect(),
            auth: Some(AuthResults {
                spf: "pass".into(),
                spf_domain: "partner.example".into(),
                ..AuthResults::default()
            }),
            ..Summary::default()
        };
        // As the session records them at RCPT time.
        let accepted: Vec<Recipient> = rcpt_to
            .iter()
            .map(|r| Recipient {
                address: (*r).to_owned(),
                disposition: config.domains.disposition(r),
            })
            .collect();
        Planner {
            notify: &config.notify,
            domains: &config.domains,
            templates: &templates,
            store: &store,
            hostname: "mx.old.example",
            retention: &retention,
        }
        .plan(&summary, &accepted, SystemTime::UNIX_EPOCH)
    }

    fn text(plan: &NoticePlan) -> &str {
        &plan.notice.as_ref().expect("a notice").item.message
    }

    fn subject(plan: &NoticePlan) -> &str {
        text(plan)
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .expect("subject")
    }

    #[test]
    fn english_quotes_plain_addresses_only() {
        let good = plan(&["jan@old.example"]);
        assert_eq!(
            subject(&good),
            "An address at old.example is no longer in use"
        );
        assert!(text(&good).contains("Gemeente Voorbeeld no longer uses jan@old.example,"));
        assert!(text(&good).contains("- jan@old.example: write to jan@new.example\r\n"));

        let evil = format!("{EVIL}@old.example");
        let bad = plan(&[&evil]);
        assert_eq!(
            subject(&bad),
            "An address at old.example is no longer in use"
        );
        assert!(!text(&bad).contains("evil"), "{}", text(&bad));
        assert!(text(&bad).contains("no longer uses an address at old.example,"));
        assert!(text(&bad).contains(
            "- an address at old.example: write to the organisation's current address\r\n"
        ));
        let long = format!("{}@old.example", "a".repeat(65));
        assert!(!text(&plan(&[&long])).contains(&"a".repeat(65)));
    }

    #[test]
    fn dutch_quotes_plain_addresses_only() {
        let good = plan(&["piet@oud.example"]);
        assert_eq!(
            subject(&good),
            "Een adres bij oud.example is niet meer in gebruik"
        );
        assert!(text(&good).contains("Gemeente Voorbeeld gebruikt piet@oud.example niet meer."));
        assert!(text(&good).contains("- piet@oud.example: schrijf aan piet@nieuw.example\r\n"));

        let evil = format!("{EVIL}@oud.example");
        let bad = plan(&[&evil]);
        assert!(!text(&bad).contains("evil"), "{}", text(&bad));
        assert!(text(&bad).contains("gebruikt een adres bij oud.example niet meer."));
        assert!(text(&bad).contains(
            "- een adres bij oud.example: schrijf aan het huidige adres van de organisatie\r\n"
        ));
    }

    #[test]
    fn one_notice_per_message_lists_its_retired_addresses() {
        let evil = format!("{EVIL}@old.example");
        let plan = plan(&[
            "jan@old.example",
            "JAN@old.example",
            &evil,
            "piet@old.example",
            "s@stil.example",
            "postmaster",
        ]);
        let notice = plan.notice.as_ref().expect("one notice");
        assert_eq!(
            notice.pairs.len(),
            3,
            "the notify-mode recipients, once each"
        );
        assert_eq!(plan.suppressed, [("per_message", 2)]);
        let text = text(&plan);
        assert!(
            text.contains("no longer uses 3 addresses at old.example,"),
            "{text}"
        );
        for line in [
            "- jan@old.example: write to jan@new.example\r\n",
            "- an address at old.example: write to the organisation's current address\r\n",
            "- piet@old.example: write to piet@new.example\r\n",
        ] {
            assert!(text.contains(line), "{line:?} in {text}");
        }
        assert!(
            !text.contains("evil") && !text.contains("stil.example"),
            "{text}"
        );
    }

    #[test]
    fn dmarc_for_from_alone_does_not_qualify() {
        let config = Config::parse(CONFIG).expect("config");
        let summary = Summary {
            mail_from: "victim@victim.example".into(),
            rcpt_to: vec!["a@old.example".into(), "b@old.example".into()],
            auth: Some(AuthResults {
                spf: "none".into(),
                dkim: "pass".into(),
                dmarc: "pass".into(),
                spf_domain: "victim.example".into(),
                dkim_domains: vec!["attacker.example".into()],
                dmarc_domain: "attacker.example".into(),
            }),
            ..Summary::default()
        };
        assert_eq!(
            eligibility(&summary, &config.notify, &config.domains),
            Err(Suppressed::Unauthenticated)
        );
    }
}
