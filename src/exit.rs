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
    /// Legitimate senders told about the move (the domain notifies or bounces), who did not
    /// write again after `grace`.
    pub told_and_stopped: Vec<String>,
    /// Told, and wrote again after `grace`: the organisation's call list.
    pub told_and_still_writing: Vec<String>,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// The DNS records that end mail for the domain, when quiet.
    pub records: Vec<String>,
    /// What must stay in place, when quiet.
    pub keep: Vec<String>,
}

/// Per domain: whether its mode tells senders (notify, bounce), and how long its mail is
/// kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DomainSetting {
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
    let mut senders: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    let mut legit = 0;
    for f in facts {
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
    if setting.tells {
        for (sender, (first, last)) in &senders {
            if sender.is_empty() {
                continue;
            }
            if *last > first + grace {
                still.push((*sender).to_owned());
            } else {
                stopped.push((*sender).to_owned());
            }
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
        }
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
}
