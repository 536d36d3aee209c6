//! `reclaim show ID --reason TEXT`: one message, decrypted here and printed safely.

use std::io::Write;

use super::terminal::{sanitize_block, write_json};
use super::verified;
use crate::review::show::{Shown, load};
use crate::review::{ReviewContext, parse_id};
use crate::sanitize::sanitize;

pub fn run(context: &ReviewContext, id: &str, reason: &str, json: bool) -> anyhow::Result<()> {
    let shown = load(context, parse_id(id)?, reason)?;
    let mut out = super::stdout::lock();
    if json {
        write_json(&mut out, &shown)?;
    } else {
        write_text(&mut out, &shown)?;
    }
    out.flush()?;
    Ok(())
}

fn write_text(out: &mut impl Write, s: &Shown) -> anyhow::Result<()> {
    let sender = if s.mail_from.is_empty() {
        "<>"
    } else {
        &s.mail_from
    };
    writeln!(out, "Message     {}", s.id)?;
    writeln!(
        out,
        "Received    {}{}",
        s.received_at,
        if s.held { "  (held)" } else { "" }
    )?;
    writeln!(out, "Envelope    from {}", sanitize(sender))?;
    writeln!(out, "            to {}", sanitize(&s.rcpt_to.join(", ")))?;
    writeln!(
        out,
        "Client      {} (HELO {}), {}",
        sanitize(&s.client_ip),
        sanitize(&s.helo),
        s.tls.as_deref().map_or("no TLS".into(), sanitize)
    )?;
    verified::write_text(out, s.gateway_auth.as_ref())?;
    writeln!(out)?;
    for (name, value) in &s.message.headers {
        writeln!(out, "{:<11} {}", format!("{name}:"), sanitize(value))?;
    }
    if !s.message.sender_claims.is_empty() {
        writeln!(out)?;
        writeln!(out, "Claimed by the sender (not verified by reclaim):")?;
        for claim in &s.message.sender_claims {
            writeln!(out, "  {}: {}", claim.field, sanitize(&claim.value))?;
        }
    }
    writeln!(out)?;
    match s.message.body_source.as_str() {
        "none" => writeln!(out, "[no text body]")?,
        "text/html" => writeln!(out, "[HTML body, shown as text]")?,
        _ => {}
    }
    writeln!(out, "{}", sanitize_block(&s.message.body))?;
    if s.message.body_truncated {
        writeln!(out, "[body cut short; use `reclaim export` for all of it]")?;
    }
    if !s.message.attachments.is_empty() {
        writeln!(out)?;
        writeln!(out, "Attachments:")?;
        for a in &s.message.attachments {
            writeln!(
                out,
                "  {}  {}  {} bytes",
                sanitize(a.name.as_deref().unwrap_or("(no name)")),
                sanitize(&a.content_type),
                a.size
            )?;
        }
    }
    Ok(())
}
