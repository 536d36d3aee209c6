//! `reclaim show ID --reason TEXT`: one message, decrypted here and printed safely.

use std::io::Write;

use anyhow::Context;
use base64::Engine;
use serde::Serialize;

use super::export::fetch_plain;
use super::render::{Rendered, render};
use super::terminal::{sanitize, sanitize_block, write_json};
use super::verified::{self, Verified};
use crate::admin::MessageItem;
use crate::clock::format_time;
use crate::review::{ReviewContext, parse_id};
use crate::store::MessageId;
use crate::summary::Summary;

/// One message as `show` and the desk present it (and `show --json` prints it).
#[derive(Debug, Serialize)]
pub struct Shown {
    pub id: String,
    pub received_at: String,
    pub held: bool,
    pub domains: Vec<String>,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub client_ip: String,
    pub helo: String,
    pub tls: Option<String>,
    /// What the gateway itself checked on arrival; `null` when it checked nothing.
    pub gateway_auth: Option<Verified>,
    #[serde(flatten)]
    pub message: Rendered,
}

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

/// Fetches one message (the fetch recorded with `reason` as a `show`), decrypts its
/// summary and content here, and renders it.
pub fn load(context: &ReviewContext, id: MessageId, reason: &str) -> anyhow::Result<Shown> {
    let item: MessageItem = context.client.get_json(&format!("/v1/messages/{id}"))?;
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(&item.summary)
        .with_context(|| format!("message {id}: summary is not base64"))?;
    let raw: serde_json::Value = context
        .identities()?
        .open_summary(&sealed)
        .map_err(anyhow::Error::from)
        .and_then(|plain| Ok(serde_json::from_slice(&plain)?))
        .with_context(|| format!("cannot decrypt the summary of message {id}"))?;
    let summary: Summary = serde_json::from_value(raw.clone())
        .with_context(|| format!("message {id}: the summary does not parse"))?;
    // The raw form tells a summary without domain fields from one with empty ones.
    let gateway_auth = verified::from_summary(summary.auth.as_ref(), &raw["auth"]);
    let plain = fetch_plain(context, id, "show", reason)?;
    Ok(Shown {
        id: id.to_string(),
        received_at: format_time(item.received_at),
        held: item.held,
        domains: item.domains,
        mail_from: summary.mail_from,
        rcpt_to: summary.rcpt_to,
        client_ip: summary.client_ip,
        helo: summary.helo,
        tls: summary.tls.map(|t| format!("{} {}", t.version, t.cipher)),
        gateway_auth,
        message: render(&plain),
    })
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
