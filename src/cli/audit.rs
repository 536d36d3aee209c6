//! `reclaim audit [--since …] [--verify]`: the audit trail as a table or JSON, and whether
//! its hash chain verifies on this side.

use std::io::Write;

use super::terminal::write_json;
use crate::clock::format_time;
use crate::review::{ReviewContext, audit};
use crate::sanitize::sanitize;

pub fn run(
    context: &ReviewContext,
    since: Option<i64>,
    verify: bool,
    heads: &[std::path::PathBuf],
    json: bool,
) -> anyhow::Result<()> {
    let witnessed = audit::read_heads(heads)?;
    let trail = audit::fetch(context, since)?;
    let mut out = super::stdout::lock();
    if json {
        let value = serde_json::json!({
            "records": &trail.records,
            "verified": verify.then(|| {
                trail.checked.is_ok() && (heads.is_empty() || trail.witnessed(&witnessed).is_ok())
            }),
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
        for r in &trail.records {
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
        let intact = trail.verified()?;
        eprintln!("audit chain verified: {intact} record(s) intact");
        if !heads.is_empty() {
            let w = trail.witnessed(&witnessed)?;
            eprintln!(
                "audit heads witnessed: {} match the chain, {} of pruned records not checked, {} newer record(s) not witnessed",
                w.matched, w.pruned, w.unwitnessed
            );
        }
    }
    Ok(())
}
