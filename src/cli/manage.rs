//! `reclaim delete`, `hold`, `unhold` and `purge`: changes to the quarantine, each
//! recorded by the server in the audit trail, and what they did.

use std::io::Write;

use super::terminal::write_json;
use crate::review::{ReviewContext, manage, parse_id};
use crate::store::MessageId;

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
    let ids = ids
        .iter()
        .map(|id| parse_id(id))
        .collect::<Result<Vec<MessageId>, _>>()?;
    let result = manage::delete(context, &ids, reason)?;
    if json {
        print_json(&result)?;
    } else {
        for id in &result.deleted {
            writeln!(super::stdout::lock(), "deleted {id}")?;
        }
    }
    // What was deleted is said first; an id that named nothing still ends with exit 4.
    manage::found_all(&result)?;
    Ok(())
}

pub fn hold(
    context: &ReviewContext,
    id: &str,
    held: bool,
    reason: Option<&str>,
) -> anyhow::Result<()> {
    let id = parse_id(id)?;
    manage::set_hold(context, id, held, reason)?;
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
    let report = manage::purge(context, older_than, reason)?;
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
