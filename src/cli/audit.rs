//! `reclaim audit [--since …] [--verify]`: lists the audit trail and checks its hash chain
//! on this side, from the anchor left by pruning to the stored head.

use std::io::Write;

use super::terminal::write_json;
use super::{Exit, exit};
use crate::admin::MAX_PAGE;
use crate::clock::format_time;
use crate::review::ReviewContext;
use crate::sanitize::sanitize;
use crate::store::AuditPage;
use crate::store::audit::{AuditRecord, ChainVerifier};

/// The audit trail as read and checked on this side.
pub struct Trail {
    /// Records since the asked time, oldest first (past a break, as stored).
    pub records: Vec<AuditRecord>,
    /// How many records the chain verified, or where and why it breaks.
    pub checked: Result<u64, String>,
}

/// Reads the whole trail through the admin API and checks its hash chain from the anchor
/// to the head; keeps the records at or after `since`.
pub fn fetch(context: &ReviewContext, since: Option<i64>) -> anyhow::Result<Trail> {
    let mut records = Vec::new();
    let mut after = 0;
    let mut verifier: Option<ChainVerifier> = None;
    let mut broken: Option<String> = None;
    let mut head: Option<String>;
    loop {
        let page: AuditPage = context
            .client
            .get_json(&format!("/v1/audit?after={after}&limit={MAX_PAGE}"))?;
        let v = verifier.get_or_insert_with(|| ChainVerifier::new(page.anchor.as_ref()));
        head = page.head.clone();
        for raw in &page.records {
            let checked = match &broken {
                None => v.push(raw.as_bytes()).map_err(|e| broken = Some(e)).ok(),
                Some(_) => None,
            };
            // Past a break, records are still listed as stored.
            let record = checked.or_else(|| serde_json::from_str::<AuditRecord>(raw).ok());
            if let Some(record) = record
                && since.is_none_or(|s| record.entry.time >= s)
            {
                records.push(record);
            }
        }
        match page.next_after {
            Some(next) if next > after => after = next,
            _ => break,
        }
    }
    let checked = match (broken, verifier) {
        (Some(e), _) => Err(e),
        (None, Some(v)) => v.finish(head.as_deref()),
        (None, None) => Ok(0),
    };
    Ok(Trail { records, checked })
}

pub fn run(
    context: &ReviewContext,
    since: Option<i64>,
    verify: bool,
    json: bool,
) -> anyhow::Result<()> {
    let Trail { records, checked } = fetch(context, since)?;
    let mut out = super::stdout::lock();
    if json {
        let value = serde_json::json!({
            "records": records,
            "verified": verify.then(|| checked.is_ok()),
        });
        write_json(&mut out, &value)?;
    } else {
        let mut table = comfy_table::Table::new();
        table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
        table.set_header([
            "#",
            "Time (UTC)",
            "Who",
            "Action",
            "Messages",
            "Status",
            "Reason",
        ]);
        for r in &records {
            table.add_row([
                r.seq.to_string(),
                format_time(r.entry.time)
                    .replace('T', " ")
                    .trim_end_matches('Z')
                    .to_owned(),
                sanitize(&r.entry.who),
                sanitize(&r.entry.action),
                sanitize(&r.entry.ids.join(" ")),
                r.entry.status.to_string(),
                sanitize(r.entry.reason.as_deref().unwrap_or("")),
            ]);
        }
        writeln!(out, "{table}")?;
    }
    out.flush()?;
    if verify {
        match checked {
            Ok(n) => eprintln!("audit chain verified: {n} record(s) intact"),
            Err(e) => {
                return Err(Exit {
                    code: exit::AUDIT_BROKEN,
                    message: format!("audit chain broken: {e}"),
                }
                .into());
            }
        }
    }
    Ok(())
}
