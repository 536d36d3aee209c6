//! `reclaim list`: the matching messages, decrypted here, as a table or JSON.

use std::io::Write;

use super::terminal::write_json;
use crate::review::ReviewContext;
use crate::review::filter::Filter;
use crate::review::listed::Listed;
use crate::review::listing::{fetch, truncate};
use crate::sanitize::sanitize;

pub fn run(
    context: &ReviewContext,
    json: bool,
    limit: Option<usize>,
    filter: &Filter,
) -> anyhow::Result<()> {
    let listed = fetch(context, limit, filter)?;
    let mut out = super::stdout::lock();
    if json {
        write_json(&mut out, &listed)?;
    } else {
        write_table(&mut out, &listed)?;
    }
    out.flush()?;
    let hidden = context.hidden();
    if hidden > 0 {
        eprintln!("{hidden} message(s) sealed only to other reviewers' keys are not listed");
    }
    Ok(())
}

fn write_table(out: &mut impl Write, listed: &[Listed]) -> anyhow::Result<()> {
    if listed.is_empty() {
        writeln!(out, "No messages.")?;
        return Ok(());
    }
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header([
        "Received (UTC)",
        "ID",
        "Envelope from",
        "To",
        "Subject",
        "Size",
        "TLS",
        "Held",
    ]);
    for m in listed {
        let sender = if m.mail_from.is_empty() {
            "<>".to_owned()
        } else {
            m.mail_from.clone()
        };
        table.add_row([
            m.received_at
                .replace('T', " ")
                .trim_end_matches('Z')
                .to_owned(),
            m.id.clone(),
            sanitize(&sender),
            sanitize(&m.rcpt_to.join(", ")),
            sanitize(&truncate(m.subject.as_deref().unwrap_or(""), 60)),
            m.size.to_string(),
            if m.tls { "yes" } else { "no" }.to_owned(),
            if m.held { "held" } else { "" }.to_owned(),
        ]);
    }
    writeln!(out, "{table}")?;
    writeln!(out, "{} message(s)", listed.len())?;
    Ok(())
}
