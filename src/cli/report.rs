//! `reclaim report` (who still mails the retired domains, from decrypted summaries) and
//! `reclaim stats` (counts and sizes from the plaintext index), as tables, JSON or CSV.

use std::io::Write;

use super::terminal::write_json;
use crate::review::filter::Filter;
use crate::review::report::{build, stats as fetch_stats, write_csv};
use crate::review::{ReviewContext, listing};
use crate::sanitize::sanitize;

pub fn report(
    context: &ReviewContext,
    filter: &Filter,
    json: bool,
    csv: bool,
) -> anyhow::Result<()> {
    let report = build(&listing::fetch(context, None, filter)?);
    let mut out = super::stdout::lock();
    if json {
        write_json(&mut out, &report)?;
    } else if csv {
        write_csv(&mut out, &report)?;
    } else {
        for (title, rows) in [
            ("Sender domain", &report.domains),
            ("Sender address", &report.senders),
        ] {
            let mut table = comfy_table::Table::new();
            table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
            table.set_header([
                title,
                "Messages",
                "Retired addresses",
                "First seen",
                "Last seen",
                "Automated",
            ]);
            for r in rows {
                let addresses = r.retired_addresses.iter().cloned().collect::<Vec<_>>();
                table.add_row([
                    sanitize(&r.sender),
                    r.messages.to_string(),
                    sanitize(&listing::truncate(&addresses.join(", "), 80)),
                    r.first_seen.clone(),
                    r.last_seen.clone(),
                    if r.looks_automated { "yes" } else { "" }.to_owned(),
                ]);
            }
            writeln!(out, "{table}")?;
        }
    }
    out.flush()?;
    Ok(())
}

pub fn stats(context: &ReviewContext, json: bool) -> anyhow::Result<()> {
    let stats = fetch_stats(context)?;
    let mut out = super::stdout::lock();
    if json {
        let value = serde_json::to_value(&stats)?;
        write_json(&mut out, &value)?;
        return Ok(());
    }
    writeln!(
        out,
        "{} message(s), {} bytes ({} sealed), {} held",
        stats.messages, stats.bytes, stats.sealed_bytes, stats.held
    )?;
    let count = |key: &str| stats.notices.get(key).copied().unwrap_or(0);
    let suppressed: u64 = stats
        .notices
        .iter()
        .filter(|(k, _)| k.starts_with("suppressed:"))
        .map(|(_, v)| v)
        .sum();
    writeln!(
        out,
        "notices: {} queued, {} sent, {} failed permanently, {} expired, {} suppressed",
        count("queued"),
        count("sent"),
        count("failed:permanent"),
        count("failed:expired"),
        suppressed
    )?;
    for (key, n) in stats
        .notices
        .iter()
        .filter(|(k, _)| k.starts_with("suppressed:"))
    {
        writeln!(out, "  {key}: {n}")?;
    }
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(["Domain", "Messages", "Bytes", "Held"]);
    for (domain, d) in &stats.domains {
        table.add_row([
            sanitize(domain),
            d.messages.to_string(),
            d.bytes.to_string(),
            d.held.to_string(),
        ]);
    }
    writeln!(out, "{table}")?;
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(["Day (UTC)", "Messages", "Bytes"]);
    for (day, d) in &stats.days {
        table.add_row([day.clone(), d.messages.to_string(), d.bytes.to_string()]);
    }
    writeln!(out, "{table}")?;
    out.flush()?;
    Ok(())
}
