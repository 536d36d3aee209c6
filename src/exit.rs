//! The exit rule: from decrypted summaries, when each retired domain last heard from a
//! legitimate sender, the weekly trend, who was told and stopped or still writes, and
//! whether the domain's mail can end for good. Pure; the reviewer's CLI runs it, because
//! only it can read who sent what.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::ExitConfig;

const WEEK_SECONDS: i64 = 7 * 86_400;

/// What the rule needs of one stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub received_unix: i64,
    /// The retired domains it was addressed to.
    pub domains: Vec<String>,
    /// Envelope sender, lower-case; empty for `<>`.
    pub sender: String,
    /// Not automated, and not failing authentication (see [`legitimate`]).
    pub legitimate: bool,
    /// Whether the gateway queued a notice to the sender for this message; `None` for
    /// messages stored before the gateway recorded it (see [`DomainSetting::tells`]).
    pub told: Option<bool>,
}

/// Not automated, and either authenticated (SPF, DKIM or DMARC pass) or received while DNS
/// was off. Unchecked mail counts, so that an unchecked sender keeps the domain open
/// rather than letting the rule fire on a guess.
pub fn legitimate(automated: bool, auth: Option<&crate::summary::AuthResults>) -> bool {
    !automated && auth.is_none_or(|a| [&a.spf, &a.dkim, &a.dmarc].iter().any(|r| *r == "pass"))
}

/// One week of a domain's mail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Week {
    /// Unix seconds of the week's start (weeks end at `now`).
    pub start: i64,
    pub legitimate: u64,
    pub other: u64,
}

/// The rule's verdict for one domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum Verdict {
    /// Legitimate senders wrote within the quiet period.
    StillInUse,
    /// Nobody legitimate wrote for the quiet period: mail can end.
    Quiet,
    /// The stored history does not cover the quiet period, so nothing is concluded.
    CannotTell { reason: String },
}

/// Everything the rule says about one retired domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainExit {
    pub domain: String,
    pub messages: u64,
    pub legitimate: u64,
    pub last_legitimate: Option<i64>,
    pub weeks: Vec<Week>,
    /// Senders the gateway sent a notice, who sent no legitimate mail more than `grace`
    /// after their first notice.
    pub told_and_stopped: Vec<String>,
    /// Told, and wrote again more than `grace` after their first notice: the
    /// organisation's call list.
    pub told_and_still_writing: Vec<String>,
    /// Messages whose notice outcome was not recorded (stored by an older release); for
    /// them, "told" is inferred from the domain's mode.
    pub told_inferred: u64,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// The DNS records that end mail for the domain, when quiet.
    pub records: Vec<String>,
    /// What must stay in place, when quiet.
    pub keep: Vec<String>,
}

/// Per domain: whether its mode tells senders, and how long its mail is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DomainSetting {
    /// The mode notifies or bounces: used only for messages without a recorded notice
    /// outcome, where a legitimate sender is then taken to have been told.
    pub tells: bool,
    pub retention_secs: i64,
}

/// Applies the rule at `now` to `facts`, for every domain in `settings`.
pub fn evaluate(
    facts: &[Fact],
    settings: &BTreeMap<String, DomainSetting>,
    config: &ExitConfig,
    now: i64,
) -> Vec<DomainExit> {
    settings
        .iter()
        .map(|(domain, setting)| {
            let mine: Vec<&Fact> = facts
                .iter()
                .filter(|f| f.domains.iter().any(|d| d == domain))
                .collect();
            one(domain, &mine, *setting, config, now)
        })
        .collect()
}

fn one(
    domain: &str,
    facts: &[&Fact],
    setting: DomainSetting,
    config: &ExitConfig,
    now: i64,
) -> DomainExit {
    let quiet = config.quiet_after.as_secs() as i64;
    let grace = config.grace.as_secs() as i64;
    let weeks_shown = config.weeks as i64;
    let mut weeks: Vec<Week> = (0..weeks_shown)
        .rev()
        .map(|i| Week {
            start: now - (i + 1) * WEEK_SECONDS,
            ..Week::default()
        })
        .collect();
    // Per legitimate sender: first and last legitimate message.
    let mut senders: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    // Per sender: when they were first told.
    let mut first_told: BTreeMap<&str, i64> = BTreeMap::new();
    let (mut legit, mut inferred) = (0, 0);
    for f in facts {
        let told = match f.told {
            Some(told) => told,
            None => {
                inferred += 1;
                setting.tells && f.legitimate
            }
        };
        if told && !f.sender.is_empty() {
            let at = first_told
                .entry(f.sender.as_str())
                .or_insert(f.received_unix);
            *at = (*at).min(f.received_unix);
        }
        let age = now - f.received_unix;
        if (0..weeks_shown * WEEK_SECONDS).contains(&age) {
            let slot = (weeks_shown - 1 - age / WEEK_SECONDS) as usize;
            if f.legitimate {
                weeks[slot].legitimate += 1;
            } else {
                weeks[slot].other += 1;
            }
        }
        if f.legitimate {
            legit += 1;
            let span = senders
                .entry(f.sender.as_str())
                .or_insert((f.received_unix, f.received_unix));
            span.0 = span.0.min(f.received_unix);
            span.1 = span.1.max(f.received_unix);
        }
    }
    let last_legitimate = senders.values().map(|(_, last)| *last).max();
    let (mut stopped, mut still) = (Vec::new(), Vec::new());
    for (sender, told_at) in &first_told {
        let wrote_again = senders
            .get(sender)
            .is_some_and(|(_, last)| *last > told_at + grace);
        if wrote_again {
            still.push((*sender).to_owned());
        } else {
            stopped.push((*sender).to_owned());
        }
    }
    let oldest = facts.iter().map(|f| f.received_unix).min();
    let verdict = if last_legitimate.is_some_and(|t| now - t < quiet) {
        Verdict::StillInUse
    } else if setting.retention_secs < quiet {
        Verdict::CannotTell {
            reason: format!(
                "messages are kept {} day(s), less than the quiet period of {} day(s): raise the domain's retention to at least that",
                setting.retention_secs / 86_400,
                quiet / 86_400
            ),
        }
    } else if oldest.is_none_or(|t| now - t < quiet) {
        Verdict::CannotTell {
            reason: format!(
                "the stored mail does not reach back {} day(s) yet",
                quiet / 86_400
            ),
        }
    } else {
        Verdict::Quiet
    };
    let (records, keep) = if verdict == Verdict::Quiet {
        (end_records(domain), keep_in_place(domain))
    } else {
        (Vec::new(), Vec::new())
    };
    DomainExit {
        domain: domain.to_owned(),
        messages: facts.len() as u64,
        legitimate: legit,
        last_legitimate,
        weeks,
        told_and_stopped: stopped,
        told_and_still_writing: still,
        told_inferred: inferred,
        verdict,
        records,
        keep,
    }
}

/// The records that end mail for `domain` for good: a null MX (RFC 7505), SPF and DMARC
/// that reject everything, and no DKIM key.
pub fn end_records(domain: &str) -> Vec<String> {
    vec![
        format!("{domain}. MX 0 ."),
        format!("{domain}. TXT \"v=spf1 -all\""),
        format!("_dmarc.{domain}. TXT \"v=DMARC1; p=reject; sp=reject; adkim=s; aspf=s\""),
        format!("*._domainkey.{domain}. TXT \"v=DKIM1; p=\""),
    ]
}

fn keep_in_place(domain: &str) -> Vec<String> {
    vec![
        format!(
            "keep {domain} registered (automatic renewal, registry lock): a null MX protects only while the name is yours"
        ),
        "replace the MX record pointing at this gateway with the null MX; do not just delete it (mail would then go to the domain's address records)".to_owned(),
        "keep the quarantine until its retention has passed, then stop the gateway for this domain".to_owned(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::AuthResults;

    const DAY: i64 = 86_400;

    fn fact(domain: &str, sender: &str, days_ago: i64, legitimate: bool) -> Fact {
        Fact {
            received_unix: 1_000 * DAY - days_ago * DAY,
            domains: vec![domain.to_owned()],
            sender: sender.to_owned(),
            legitimate,
            told: None,
        }
    }

    fn told(mut f: Fact, told: bool) -> Fact {
        f.told = Some(told);
        f
    }

    fn settings(tells: bool, retention_days: i64) -> BTreeMap<String, DomainSetting> {
        BTreeMap::from([(
            "old.example".to_owned(),
            DomainSetting {
                tells,
                retention_secs: retention_days * DAY,
            },
        )])
    }

    #[test]
    fn who_counts_as_legitimate() {
        let pass = AuthResults {
            dkim: "pass".into(),
            spf: "fail".into(),
            dmarc: "none".into(),
            ..AuthResults::default()
        };
        let fail = AuthResults {
            dkim: "none".into(),
            spf: "softfail".into(),
            dmarc: "fail".into(),
            ..AuthResults::default()
        };
        assert!(legitimate(false, Some(&pass)));
        assert!(!legitimate(false, Some(&fail)));
        assert!(!legitimate(true, Some(&pass)));
        assert!(
            legitimate(false, None),
            "unchecked mail keeps the domain open"
        );
    }

    #[test]
    fn fires_only_after_the_quiet_period_with_history_to_show_it() {
        let c = ExitConfig::default();
        let now = 1_000 * DAY;
        let run = |facts: &[Fact], s| evaluate(facts, &s, &c, now).remove(0);
        let spam = fact("old.example", "x@spam.example", 1, false);
        let old = fact("old.example", "a@partner.example", 120, true);
        let recent = fact("old.example", "a@partner.example", 89, true);
        let q = run(&[old.clone(), spam.clone()], settings(true, 365));
        assert_eq!(q.verdict, Verdict::Quiet);
        assert_eq!(q.records[0], "old.example. MX 0 .");
        assert_eq!(q.told_and_stopped, ["a@partner.example"]);
        let busy = run(&[old.clone(), recent, spam.clone()], settings(true, 365));
        assert_eq!(busy.verdict, Verdict::StillInUse);
        assert_eq!(busy.told_and_still_writing, ["a@partner.example"]);
        assert!(busy.records.is_empty());
        assert!(matches!(
            run(std::slice::from_ref(&old), settings(true, 30)).verdict,
            Verdict::CannotTell { .. }
        ));
        assert!(matches!(
            run(std::slice::from_ref(&spam), settings(true, 365)).verdict,
            Verdict::CannotTell { .. }
        ));
        let silent = run(&[old], settings(false, 365));
        assert!(silent.told_and_stopped.is_empty());
        let weeks = run(&[spam], settings(true, 365)).weeks;
        assert_eq!(weeks.len(), 12);
        assert_eq!((weeks[11].legitimate, weeks[11].other), (0, 1));
    }

    #[test]
    fn recorded_notices_decide_who_was_told() {
        let c = ExitConfig::default();
        let now = 1_000 * DAY;
        let facts = [
            // Wrote twice without a notice (held back, say), then was told, then quiet.
            told(fact("old.example", "a@stopped.example", 60, true), false),
            told(fact("old.example", "a@stopped.example", 40, true), true),
            // Told 50 days ago and wrote again 10 days ago.
            told(fact("old.example", "b@still.example", 50, true), true),
            told(fact("old.example", "b@still.example", 10, true), false),
            // Never told (rate limit or unauthenticated), though the domain notifies.
            told(fact("old.example", "c@untold.example", 30, true), false),
            told(fact("old.example", "c@untold.example", 5, true), false),
        ];
        let d = evaluate(&facts, &settings(true, 365), &c, now).remove(0);
        assert_eq!(d.told_and_stopped, ["a@stopped.example"]);
        assert_eq!(d.told_and_still_writing, ["b@still.example"]);
        assert_eq!(d.told_inferred, 0);
        // A recorded "not told" is not overridden by a mode that tells.
        let untold = [told(
            fact("old.example", "c@untold.example", 30, true),
            false,
        )];
        let d = evaluate(&untold, &settings(true, 365), &c, now).remove(0);
        assert!(d.told_and_stopped.is_empty() && d.told_and_still_writing.is_empty());
        // Without records, the mode decides, and the report says how many were inferred.
        let old = [fact("old.example", "d@old.example", 30, true)];
        let d = evaluate(&old, &settings(true, 365), &c, now).remove(0);
        assert_eq!((d.told_and_stopped.len(), d.told_inferred), (1, 1));
    }
}
