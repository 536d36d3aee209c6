//! Listing the quarantine: pages of the index through the admin API, each summary decrypted
//! here on every core, the filters applied, newest first.

use base64::Engine;

use super::filter::Filter;
use super::listed::Listed;
use super::{ReviewContext, ReviewError};
use crate::admin::http::percent_encode;
use crate::admin::{MAX_PAGE, MessageItem, MessagePage};
use crate::summary::Summary;

/// Fetches and decrypts up to `limit` matching messages (all when `None`), newest first.
pub fn fetch(
    context: &ReviewContext,
    limit: Option<usize>,
    filter: &Filter,
) -> Result<Vec<Listed>, ReviewError> {
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
) -> Result<(Vec<Listed>, Option<String>), ReviewError> {
    let mut listed = Vec::new();
    let mut scanned = 0;
    // A listing that opens nothing and leaves something out is most likely run with the
    // wrong identity: it fails as it did before messages had reader groups.
    let mut first_skipped: Option<ReviewError> = None;
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
                f.join().map_err(|_| {
                    ReviewError::Interrupted("the page fetching thread panicked".into())
                })
            });
            (decrypted, fetched)
        });
        let (opened, skipped) = decrypted?;
        if first_skipped.is_none() {
            first_skipped = skipped;
        }
        listed.extend(opened.into_iter().filter(|m| filter.matches(m)));
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
    match first_skipped {
        Some(error) if listed.is_empty() && scanned > 0 && !filter.filters_here() => Err(error),
        _ => Ok((listed, before)),
    }
}

/// Opens a summary, or leaves it out (counted in [`ReviewContext::hidden`]) when it is
/// sealed only to keys this reviewer does not hold.
fn open_or_skip(
    context: &ReviewContext,
    item: MessageItem,
) -> Result<Result<Listed, ReviewError>, ReviewError> {
    match decrypt(context, item) {
        Ok(listed) => Ok(Ok(listed)),
        Err(error) if error.is_not_for_this_reviewer() => {
            context.hide();
            Ok(Err(error))
        }
        Err(error) => Err(error),
    }
}

/// Splits opened summaries from left-out ones, keeping the first left-out one's error.
fn gather(
    results: impl IntoIterator<Item = Result<Result<Listed, ReviewError>, ReviewError>>,
) -> Result<(Vec<Listed>, Option<ReviewError>), ReviewError> {
    let mut opened = Vec::new();
    let mut skipped = None;
    for result in results {
        match result? {
            Ok(listed) => opened.push(listed),
            Err(error) => {
                skipped.get_or_insert(error);
            }
        }
    }
    Ok((opened, skipped))
}

/// Decrypts a page of summaries on every core, keeping their order. Each summary costs
/// one X25519 key agreement, which is nearly all the time `list` takes over thousands of
/// messages (see docs/BENCHMARKS.md).
pub(super) fn decrypt_all(
    context: &ReviewContext,
    items: Vec<MessageItem>,
) -> Result<(Vec<Listed>, Option<ReviewError>), ReviewError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = items.len().div_ceil(threads).max(1);
    if threads == 1 || items.len() <= per_thread {
        return gather(items.into_iter().map(|i| open_or_skip(context, i)));
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
                scope.spawn(move || gather(chunk.into_iter().map(|i| open_or_skip(context, i))))
            })
            .collect();
        let mut out = Vec::new();
        let mut skipped = None;
        for worker in workers {
            let (part, left_out) = worker
                .join()
                .map_err(|_| ReviewError::Interrupted("a decryption thread panicked".into()))??;
            out.extend(part);
            if skipped.is_none() {
                skipped = left_out;
            }
        }
        Ok((out, skipped))
    })
}

/// Opens one index entry's sealed summary into its listing row.
pub fn decrypt(context: &ReviewContext, item: MessageItem) -> Result<Listed, ReviewError> {
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(&item.summary)
        .map_err(|source| ReviewError::NotBase64 {
            id: item.id.clone(),
            source,
        })?;
    let plain = context.identities()?.open_summary(&sealed).map_err(|e| {
        ReviewError::decrypt(
            format!(
                "cannot decrypt the summary of message {} (is this the right identity?)",
                item.id
            ),
            e,
        )
    })?;
    let summary: Summary =
        serde_json::from_slice(&plain).map_err(|source| ReviewError::BadSummary {
            what: format!("message {}: summary is not valid JSON", item.id),
            source,
        })?;
    Ok(Listed::new(item, summary))
}

/// `text` cut to at most `max_chars` characters, with `…` where it was cut.
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
        let context = ReviewContext::with_identities(Identities::from_x25519(vec![key]));
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
        let (listed, skipped) = decrypt_all(&context, items.clone()).expect("decrypts");
        assert!(skipped.is_none());
        let subjects: Vec<String> = listed.into_iter().filter_map(|l| l.subject).collect();
        let expected: Vec<String> = (0..37).map(|n| format!("message {n}")).collect();
        assert_eq!(subjects, expected);
        assert_eq!(context.hidden(), 0);

        // Messages sealed only to another reviewer's key are left out and counted.
        let other = age::x25519::Identity::generate();
        let mut theirs = Recipients::default();
        theirs.push_x25519(other.to_public());
        let theirs = Sealer::new(theirs).expect("recipient");
        let mut mixed = items.clone();
        for n in (0..37).step_by(5) {
            let sealed = theirs.seal_bytes(b"{}").expect("seal");
            mixed[n].summary = base64::engine::general_purpose::STANDARD.encode(sealed);
        }
        let (listed, skipped) = decrypt_all(&context, mixed).expect("decrypts");
        assert_eq!(listed.len(), 37 - 8);
        assert!(
            listed
                .iter()
                .all(|l| l.subject.as_deref() != Some("message 5"))
        );
        assert!(skipped.is_some_and(|e| e.is_not_for_this_reviewer()));
        assert_eq!(context.hidden(), 8);

        let mut broken = items;
        broken[30].summary = "AAAA".into();
        let error = decrypt_all(&context, broken).expect_err("a bad summary fails the list");
        let text = error.with_causes();
        assert!(text.contains("id-30"), "{text}");
    }
}
