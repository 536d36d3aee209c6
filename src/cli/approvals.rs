//! `reclaim request`, `requests`, `approve` and `deny`: four-eyes requests filed and decided
//! through the admin API, printed as a table for people and JSON for scripts.

use std::io::Write;

use super::terminal::write_json;
use crate::admin::approvals::RequestView;
use crate::clock::format_time;
use crate::review::approvals::{self, Asked};
use crate::review::{ReviewContext, ReviewError, parse_id};
use crate::sanitize::sanitize;
use crate::store::{GuardedAction, MessageId, RequestState};

pub fn request(
    context: &ReviewContext,
    action: &str,
    ids: &[String],
    older_than: Option<&str>,
    to: &[String],
    reason: &str,
    json: bool,
) -> anyhow::Result<()> {
    let action: GuardedAction = action.parse().map_err(ReviewError::Usage)?;
    let ids = ids
        .iter()
        .map(|id| parse_id(id))
        .collect::<Result<Vec<MessageId>, _>>()?;
    let asked = Asked {
        action,
        ids: &ids,
        older_than,
        to,
        reason,
    };
    let filed = approvals::file(context, &asked)?;
    let mut out = super::stdout::lock();
    if json {
        write_json(&mut out, &filed)?;
    } else {
        writeln!(
            out,
            "request {} filed ({action}); expires {}; another principal approves it with \
             `reclaim approve {}`",
            filed.request.number,
            format_time(filed.request.filed.expires),
            filed.request.number
        )?;
    }
    out.flush()?;
    Ok(())
}

pub fn list(context: &ReviewContext, limit: usize, json: bool) -> anyhow::Result<()> {
    let requests = approvals::list(context, limit)?.requests;
    let mut out = super::stdout::lock();
    if json {
        write_json(&mut out, &serde_json::json!({ "requests": requests }))?;
    } else {
        let mut table = comfy_table::Table::new();
        table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
        table.set_header([
            "#",
            "Action",
            "Messages",
            "Requested by",
            "Reason",
            "State",
            "Expires",
        ]);
        for view in &requests {
            let r = &view.request;
            let what = approvals::what(&r.filed);
            table.add_row([
                r.number.to_string(),
                r.filed.action.to_string(),
                sanitize(&what),
                sanitize(&r.filed.requester_who),
                sanitize(&r.filed.reason),
                state(view),
                format_time(r.filed.expires),
            ]);
        }
        writeln!(out, "{table}")?;
    }
    out.flush()?;
    Ok(())
}

pub fn decide(
    context: &ReviewContext,
    number: u64,
    approve: bool,
    reason: Option<&str>,
) -> anyhow::Result<()> {
    let view = approvals::decide(context, number, approve, reason)?;
    let mut out = super::stdout::lock();
    writeln!(out, "request {number}: {}", state(&view))?;
    out.flush()?;
    Ok(())
}

/// A request's state in words, for the table.
fn state(view: &RequestView) -> String {
    let open = matches!(
        view.request.state,
        RequestState::Pending | RequestState::Approved { .. }
    );
    let text = match &view.request.state {
        RequestState::Pending => "pending".to_owned(),
        RequestState::Approved { who, .. } => format!("approved by {who}"),
        RequestState::Denied { who, .. } => format!("denied by {who}"),
        RequestState::Used { who, .. } => format!("used (approved by {who})"),
    };
    let text = sanitize(&text);
    if view.expired && open {
        format!("{text}, expired")
    } else {
        text
    }
}
