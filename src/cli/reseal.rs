//! `reclaim reseal`: rewraps what a retired key still opens, with progress on stderr.

use std::io::Write;

use super::terminal::write_json;
use crate::review::ReviewContext;
use crate::review::ReviewError;
use crate::review::reseal::{Progress, reseal_all};

pub fn run(
    context: &ReviewContext,
    reason: &str,
    domain: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut last_shown = std::time::Instant::now();
    let mut show = |p: &Progress| {
        let handled = p.resealed + p.not_ours + p.skipped + p.failed;
        // On a terminal one line that updates; in a log, a line every ten seconds and at
        // the end.
        let finished = handled == p.due;
        if tty {
            eprint!(
                "\rre-sealed {} of {} ({} left to other reviewers, {} failed)",
                p.resealed, p.due, p.not_ours, p.failed
            );
            if finished {
                eprintln!();
            }
        } else if finished || last_shown.elapsed().as_secs() >= 10 {
            eprintln!(
                "re-sealed {} of {} ({} left to other reviewers, {} failed)",
                p.resealed, p.due, p.not_ours, p.failed
            );
            last_shown = std::time::Instant::now();
        }
    };
    let mut failed = |e: &ReviewError| {
        eprintln!("{}", e.with_causes());
    };
    let done = reseal_all(context, domain, reason, &mut show, &mut failed)?;
    let mut out = super::stdout::lock();
    if json {
        write_json(
            &mut out,
            &serde_json::json!({
                "due": done.due,
                "resealed": done.resealed,
                "current": done.current,
                "not_ours": done.not_ours,
                "skipped": done.skipped,
                "failed": done.failed,
            }),
        )?;
    } else {
        writeln!(
            out,
            "re-sealed {}; {} already sealed to their readers; {} deleted or changed meanwhile",
            done.resealed, done.current, done.skipped
        )?;
    }
    out.flush()?;
    if done.not_ours > 0 {
        return Err(ReviewError::Unfinished(format!(
            "{} messages are sealed only to keys this identity does not hold: a reader of their domain has to run reseal too",
            done.not_ours
        ))
        .into());
    }
    if done.failed > 0 {
        return Err(ReviewError::Unfinished(format!(
            "{} messages could not be re-sealed (see above); run reseal again once that is fixed",
            done.failed
        ))
        .into());
    }
    Ok(())
}
