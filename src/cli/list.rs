//! `reclaim list`: pages through the index via the admin API and decrypts each summary.

use std::io::Write;

use anyhow::Context;
use base64::Engine;

use super::ReviewContext;
use super::filter::Filter;
use super::listed::Listed;
use super::terminal::{sanitize, write_json};
use crate::admin::http::percent_encode;
use crate::admin::{MAX_PAGE, MessageItem, MessagePage};
use crate::summary::Summary;

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
    Ok(())
}

/// Fetches and decrypts up to `limit` matching messages (all when `None`), newest first.
pub fn fetch(
    context: &ReviewContext,
    limit: Option<usize>,
    filter: &Filter,
) -> anyhow::Result<Vec<Listed>> {
    Ok(fetch_page(context, limit, filter, None, None)?.0)
}

/// One page of matching messages, newest first, starting after the cursor `before` (an
/// id from the admin API), and the cursor of the next page. Only as many summaries are
/// asked for as are still missing, so a page never overshoots and its cursor is exact.
/// `scan` bounds how many summaries one page may decrypt when the filters on this side
/// reject most of them; the page then ends early with a cursor to go on from.
///
/// While one page is decrypted the next is already being fetched, whenever what to ask
/// for next does not depend on how many of this page's messages match here.
pub fn fetch_page(
    context: &ReviewContext,
    limit: Option<usize>,
    filter: &Filter,
    mut before: Option<String>,
    scan: Option<usize>,
) -> anyhow::Result<(Vec<Listed>, Option<String>)> {
    let mut listed = Vec::new();
    let mut scanned = 0;
    let next_path = |listed: usize, scanned: usize, before: Option<&str>| {
        let want = limit.map_or(MAX_PAGE, |l| (l - listed).min(MAX_PAGE));
        if want == 0 || scan.is_some_and(|s| scanned >= s) {
            return None;
        }
        let mut path = format!("/v1/messages?limit={want}{}", filter.query());
        if let Some(b) = before {
            path.push_str(&format!("&before={}", percent_encode(b)));
        }
        Some(path)
    };
    let Some(first) = next_path(0, 0, before.as_deref()) else {
        return Ok((listed, before));
    };
    let mut page: MessagePage = context.client.get_json(&first)?;
    loop {
        scanned += page.messages.len();
        before = page.next_before.take();
        // With no filter on this side every message of the page will be listed; with no
        // limit, how many are listed does not matter.
        let ahead = if filter.filters_here() {
            limit.is_none().then_some(listed.len())
        } else {
            Some(listed.len() + page.messages.len())
        };
        let prefetch = match (ahead, before.as_deref()) {
            (Some(n), Some(b)) => next_path(n, scanned, Some(b)),
            _ => None,
        };
        let (decrypted, prefetched) = std::thread::scope(|scope| {
            let fetching = prefetch
                .as_deref()
                .map(|path| scope.spawn(move || context.client.get_json::<MessagePage>(path)));
            let decrypted = decrypt_all(context, page.messages);
            let fetched = fetching.map(|f| {
                f.join()
                    .map_err(|_| anyhow::anyhow!("the page fetching thread panicked"))
            });
            (decrypted, fetched)
        });
        listed.extend(decrypted?.into_iter().filter(|m| filter.matches(m)));
        page = match prefetched {
            Some(fetched) => fetched??,
            None => match before
                .as_deref()
                .and_then(|b| next_path(listed.len(), scanned, Some(b)))
            {
                Some(path) => context.client.get_json(&path)?,
                None => break,
            },
        };
    }
    Ok((listed, before))
}

/// Decrypts a page of summaries on every core, keeping their order. Each summary costs
/// one X25519 key agreement, which is nearly all the time `list` takes over thousands of
/// messages (see docs/BENCHMARKS.md).
fn decrypt_all(context: &ReviewContext, items: Vec<MessageItem>) -> anyhow::Result<Vec<Listed>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = items.len().div_ceil(threads).max(1);
    if threads == 1 || items.len() <= per_thread {
        return items.into_iter().map(|i| decrypt(context, i)).collect();
    }
    let mut chunks: Vec<Vec<MessageItem>> = Vec::with_capacity(threads);
    let mut rest = items.into_iter().peekable();
    while rest.peek().is_some() {
        chunks.push(rest.by_ref().take(per_thread).collect());
    }
    std::thread::scope(|scope| {
        let workers: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|i| decrypt(context, i))
                        .collect::<anyhow::Result<Vec<Listed>>>()
                })
            })
            .collect();
        let mut out = Vec::new();
        for worker in workers {
            let part = worker
                .join()
                .map_err(|_| anyhow::anyhow!("a decryption thread panicked"))??;
            out.extend(part);
        }
        Ok(out)
    })
}

pub fn decrypt(context: &ReviewContext, item: MessageItem) -> anyhow::Result<Listed> {
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(&item.summary)
        .with_context(|| format!("message {}: summary is not base64", item.id))?;
    let plain = context
        .identities()?
        .open_summary(&sealed)
        .with_context(|| {
            format!(
                "cannot decrypt the summary of message {} (is this the right identity?)",
                item.id
            )
        })?;
    let summary: Summary = serde_json::from_slice(&plain)
        .with_context(|| format!("message {}: summary is not valid JSON", item.id))?;
    Ok(Listed::new(item, summary))
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

pub fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max_chars - 1).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::{Identities, Recipients, Sealer};

    #[test]
    fn parallel_decryption_keeps_the_order_and_reports_failures() {
        let key = age::x25519::Identity::generate();
        let mut recipients = Recipients::default();
        recipients.push_x25519(key.to_public());
        let sealer = Sealer::new(recipients).expect("recipient");
        let context = ReviewContext {
            client: crate::admin::client::AdminClient::new(std::path::Path::new("unused.sock")),
            config: None,
            identity: None,
            identities: std::sync::OnceLock::from(Identities::from_x25519(vec![key])),
        };
        let item = |n: usize| {
            let summary = Summary {
                mail_from: format!("sender{n}@partner.example"),
                rcpt_to: vec!["jan@old.example".into()],
                client_ip: "192.0.2.1".into(),
                helo: "partner.example".into(),
                tls: None,
                subject: Some(format!("message {n}")),
                ..Summary::default()
            };
            let sealed = sealer
                .seal_bytes(&serde_json::to_vec(&summary).expect("json"))
                .expect("seal");
            MessageItem {
                id: format!("id-{n}"),
                received_at: 0,
                size: 1,
                sealed_size: sealed.len() as u64,
                domains: vec!["old.example".into()],
                summary: base64::engine::general_purpose::STANDARD.encode(sealed),
                held: false,
                notice: None,
                sealed_to: Vec::new(),
            }
        };
        let items: Vec<MessageItem> = (0..37).map(item).collect();
        let listed = decrypt_all(&context, items.clone()).expect("decrypts");
        let subjects: Vec<String> = listed.into_iter().filter_map(|l| l.subject).collect();
        let expected: Vec<String> = (0..37).map(|n| format!("message {n}")).collect();
        assert_eq!(subjects, expected);

        let mut broken = items;
        broken[30].summary = "AAAA".into();
        let error = decrypt_all(&context, broken).expect_err("a bad summary fails the list");
        assert!(format!("{error:#}").contains("id-30"), "{error:#}");
    }
}
