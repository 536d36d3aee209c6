//! `reclaim delete`, `hold`, `unhold` and `purge`: changes to the quarantine, each
//! recorded by the server in the audit trail.

use std::io::Write;

use serde_json::json;

use super::terminal::write_json;
use super::{Exit, exit};
use crate::admin::DeleteResult;
use crate::admin::http::percent_encode;
use crate::review::{ReviewContext, parse_id};
use crate::store::{MessageId, PurgeReport};

fn parse_ids(ids: &[String]) -> anyhow::Result<Vec<MessageId>> {
    ids.iter()
        .map(|id| parse_id(id).map_err(anyhow::Error::from))
        .collect()
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = super::stdout::lock();
    write_json(&mut out, value)?;
    Ok(())
}

pub fn delete(
    context: &ReviewContext,
    ids: &[String],
    reason: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let result = delete_ids(context, &parse_ids(ids)?, reason)?;
    if json {
        print_json(&result)?;
    } else {
        for id in &result.deleted {
            writeln!(super::stdout::lock(), "deleted {id}")?;
        }
    }
    if !result.missing.is_empty() {
        return Err(Exit {
            code: exit::NOT_FOUND,
            message: format!("no such message: {}", result.missing.join(", ")),
        }
        .into());
    }
    Ok(())
}

/// Deletes messages through the admin API, which records the reason.
pub fn delete_ids(
    context: &ReviewContext,
    ids: &[MessageId],
    reason: Option<&str>,
) -> anyhow::Result<DeleteResult> {
    let body = json!({
        "ids": ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "reason": reason,
    });
    Ok(context.client.send_json("POST", "/v1/delete", &body)?)
}

/// Places (`held`) or lifts a legal hold through the admin API, which records the reason.
pub fn set_hold(
    context: &ReviewContext,
    id: MessageId,
    held: bool,
    reason: Option<&str>,
) -> anyhow::Result<()> {
    let mut path = format!("/v1/messages/{id}/hold");
    if let Some(reason) = reason {
        path.push_str(&format!("?reason={}", percent_encode(reason)));
    }
    let method = if held { "POST" } else { "DELETE" };
    let _: serde_json::Value = context.client.send_json(method, &path, &json!({}))?;
    Ok(())
}

pub fn hold(
    context: &ReviewContext,
    id: &str,
    held: bool,
    reason: Option<&str>,
) -> anyhow::Result<()> {
    let id = parse_id(id)?;
    set_hold(context, id, held, reason)?;
    let mut out = super::stdout::lock();
    writeln!(
        out,
        "{} {id}",
        if held { "held" } else { "released hold on" }
    )?;
    out.flush()?;
    Ok(())
}

pub fn purge(
    context: &ReviewContext,
    older_than: &str,
    reason: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let age = crate::units::parse_duration(older_than).map_err(|m| Exit {
        code: exit::USAGE,
        message: format!("--older-than: {m}"),
    })?;
    let body = json!({ "older_than": age.as_secs(), "reason": reason });
    let report: PurgeReport = context.client.send_json("POST", "/v1/purge", &body)?;
    if json {
        print_json(&report)?;
    } else {
        writeln!(
            super::stdout::lock(),
            "deleted {} message(s); {} older but held",
            report.deleted.len(),
            report.held
        )?;
    }
    Ok(())
}
