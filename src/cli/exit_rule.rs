//! `reclaim report --exit`: the exit rule per retired domain, from summaries decrypted
//! here (the gateway cannot tell a partner from spam: it never reads senders).

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context;

use super::terminal::write_json;
use crate::clock::format_time;
use crate::dnscheck::{Finding, Status};
use crate::domains::Mode;
use crate::exit::{self, DomainSetting, Fact, Verdict};
use crate::review::ReviewContext;
use crate::review::filter::Filter;
use crate::review::listing;
use crate::sanitize::sanitize;
use crate::store::NoticeRecord;

pub fn run(context: &ReviewContext, json: bool, now: i64) -> anyhow::Result<()> {
    let config = context.config.as_ref().context(
        "report --exit needs the config (-c): it reads the domains' modes, retention and [exit]",
    )?;
    let listed = listing::fetch(context, None, &Filter::default())?;
    let facts: Vec<Fact> = listed
        .iter()
        .map(|m| Fact {
            received_unix: m.received_unix,
            domains: m.domains.clone(),
            sender: m.mail_from.to_lowercase(),
            legitimate: exit::legitimate(m.looks_automated, m.auth.as_ref()),
            told: m.notice.as_ref().map(|n| matches!(n, NoticeRecord::Queued)),
        })
        .collect();
    let settings: BTreeMap<String, DomainSetting> = config
        .domains
        .names()
        .zip(config.domains.modes())
        .map(|(name, mode)| {
            let retention = config.store.retention.for_domains(&[name.to_owned()]);
            (
                name.to_owned(),
                DomainSetting {
                    tells: matches!(mode, Mode::Notify | Mode::Bounce),
                    retention_secs: retention.as_secs() as i64,
                },
            )
        })
        .collect();
    let result = exit::evaluate(&facts, &settings, &config.exit, now);
    let mut out = super::stdout::lock();
    if json {
        write_json(&mut out, &result)?;
        out.flush()?;
        return Ok(());
    }
    for d in &result {
        let last = d
            .last_legitimate
            .map_or_else(|| "never (in the stored mail)".to_owned(), format_time);
        writeln!(
            out,
            "{}: {} message(s), {} from legitimate senders; last legitimate sender {last}",
            d.domain, d.messages, d.legitimate
        )?;
        let trend: Vec<String> = d
            .weeks
            .iter()
            .map(|w| format!("{}/{}", w.legitimate, w.legitimate + w.other))
            .collect();
        writeln!(
            out,
            "  weekly, oldest first (legitimate/all): {}",
            trend.join(" ")
        )?;
        let mut table = comfy_table::Table::new();
        table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
        table.set_header(["Told about the move", "Sender"]);
        for s in &d.told_and_still_writing {
            table.add_row(["and still writing", &sanitize(s)]);
        }
        for s in &d.told_and_stopped {
            table.add_row(["and stopped", &sanitize(s)]);
        }
        if !d.told_and_still_writing.is_empty() || !d.told_and_stopped.is_empty() {
            writeln!(out, "{table}")?;
        }
        if d.told_inferred > 0 {
            writeln!(
                out,
                "  {} message(s) were stored before reclaim recorded notices; for them a legitimate sender counts as told when the domain notifies or bounces",
                d.told_inferred
            )?;
        }
        match &d.verdict {
            Verdict::StillInUse => writeln!(
                out,
                "  still in use: legitimate senders wrote within the last {} day(s)",
                config.exit.quiet_after.as_secs() / 86_400
            )?,
            Verdict::CannotTell { reason } => writeln!(out, "  cannot tell yet: {reason}")?,
            Verdict::Quiet => {
                writeln!(
                    out,
                    "  QUIET: no legitimate sender for {} day(s). These records end its mail for good:",
                    config.exit.quiet_after.as_secs() / 86_400
                )?;
                for r in &d.records {
                    writeln!(out, "    {r}")?;
                }
                writeln!(out, "  and these stay in place:")?;
                for k in &d.keep {
                    writeln!(out, "    - {k}")?;
                }
            }
        }
        writeln!(out)?;
    }
    out.flush()?;
    Ok(())
}

/// The gateway's side of the exit rule for `check-dns`, from plaintext index fields only
/// (receive times per domain): it can only see that no mail of any kind arrived, which
/// implies that no legitimate sender wrote. Nothing when the admin socket does not answer.
pub fn gateway_findings(
    config: &crate::config::Config,
    domains: &[String],
    now: i64,
) -> Vec<Finding> {
    let client = crate::admin::client::AdminClient::new(&config.admin.socket);
    let quiet = config.exit.quiet_after.as_secs() as i64;
    let cutoff = now - quiet;
    let newest =
        |domain: &str, bound: &str| -> Result<Option<i64>, crate::admin::client::ClientError> {
            let page: crate::admin::MessagePage = client.get_json(&format!(
                "/v1/messages?limit=1&domain={}&{bound}={cutoff}",
                crate::admin::http::percent_encode(domain)
            ))?;
            Ok(page.messages.first().map(|m| m.received_at))
        };
    let mut out = Vec::new();
    for domain in domains.iter().map(String::as_str) {
        let (Ok(recent), Ok(old)) = (newest(domain, "since"), newest(domain, "until")) else {
            return Vec::new();
        };
        let retention = config.store.retention.for_domains(&[domain.to_owned()]);
        let days = quiet / 86_400;
        let (status, detail, fix) = if let Some(last) = recent {
            (
                Status::Pass,
                format!(
                    "mail still arrives (last {}); `reclaim report --exit` tells partners from spam",
                    format_time(last)
                ),
                None,
            )
        } else if (retention.as_secs() as i64) < quiet {
            (
                Status::Pass,
                format!(
                    "no mail for {days} day(s), but messages are kept only {} day(s): cannot tell",
                    retention.as_secs() / 86_400
                ),
                None,
            )
        } else if old.is_none() {
            (
                Status::Pass,
                format!("no mail stored that reaches back {days} day(s): cannot tell yet"),
                None,
            )
        } else {
            (
                Status::Warn,
                format!("no mail at all for {days} day(s): its mail can end for good"),
                Some(format!(
                    "publish {}; keep the registration",
                    exit::end_records(domain).join("; ")
                )),
            )
        };
        out.push(Finding {
            domain: domain.to_owned(),
            check: "exit-rule",
            status,
            detail,
            fix,
        });
    }
    out
}
