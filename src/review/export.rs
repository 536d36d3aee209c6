//! Getting whole messages out: each sealed file fetched with its purpose and the reviewer's
//! reason (the admin API records both in the audit trail) and decrypted on this side, into
//! memory, as a stream, or appended to an mboxrd file (every body line that matches
//! `^>*From ` quoted with one more `>`, so readers can undo it exactly).

use std::io::{self, BufRead, BufReader, Read, Write};

use super::listed::Listed;
use super::{ReviewContext, ReviewError};
use crate::admin::client::ClientError;
use crate::admin::http::percent_encode;
use crate::admin::routes::MAX_SEALED_BYTES;
use crate::store::MessageId;

/// The sealed-file path of the admin API, with purpose and reason for the audit trail.
pub fn sealed_path(id: MessageId, purpose: &str, reason: &str) -> String {
    format!(
        "/v1/messages/{id}/sealed?purpose={purpose}&reason={}",
        percent_encode(reason)
    )
}

/// Fetches and decrypts one whole message into memory.
pub fn fetch_plain(
    context: &ReviewContext,
    id: MessageId,
    purpose: &str,
    reason: &str,
) -> Result<Vec<u8>, ReviewError> {
    let mut path = sealed_path(id, purpose, reason);
    if purpose != "show" {
        path = context.guarded_path(path);
    }
    fetch_plain_at(context, id, &path)
}

/// Fetches and decrypts one message to release it to `to`: the admin API records where it
/// goes, and under a four-eyes request lets it through only for the approved recipients.
pub fn fetch_for_release(
    context: &ReviewContext,
    id: MessageId,
    to: &[String],
    reason: &str,
) -> Result<Vec<u8>, ReviewError> {
    let mut path = sealed_path(id, "release", reason);
    for address in to {
        path.push_str(&format!("&to={}", percent_encode(address)));
    }
    fetch_plain_at(context, id, &context.guarded_path(path))
}

fn fetch_plain_at(
    context: &ReviewContext,
    id: MessageId,
    path: &str,
) -> Result<Vec<u8>, ReviewError> {
    let sealed = context.client.get(path)?;
    let mut plain = Vec::new();
    context
        .identities()?
        .open_buffered(BufReader::new(sealed))
        .and_then(|mut r| Ok(r.read_to_end(&mut plain)?))
        .map_err(|e| ReviewError::decrypt(unreadable(id), e))?;
    Ok(plain)
}

/// Fetches several messages to be shown, recorded as one read of all of them with
/// `reason`, and decrypts each: in the order of `ids`, `None` for one that is not there. The
/// caller keeps the sealed total under [`MAX_SEALED_BYTES`] (the API refuses more).
pub fn show_many(
    context: &ReviewContext,
    ids: &[MessageId],
    reason: &str,
) -> Result<Vec<Option<Vec<u8>>>, ReviewError> {
    let body = serde_json::json!({
        "ids": ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "purpose": "show",
        "reason": reason,
    });
    let body = serde_json::to_vec(&body).map_err(ClientError::Encode)?;
    let mut answer = BufReader::new(context.client.request("POST", "/v1/sealed", Some(&body))?);
    let identities = context.identities()?;
    let mut out = Vec::with_capacity(ids.len());
    let received = |source| ClientError::Receive {
        endpoint: "POST /v1/sealed".into(),
        source,
    };
    for &id in ids {
        let bad = |what: &str| ClientError::Protocol(format!("POST /v1/sealed: {what}"));
        let mut line = Vec::new();
        (&mut answer)
            .take(80)
            .read_until(b'\n', &mut line)
            .map_err(received)?;
        let line = std::str::from_utf8(&line)
            .ok()
            .and_then(|l| l.strip_suffix('\n'))
            .ok_or_else(|| bad("a part's first line is missing or too long"))?;
        let (named, length) = line
            .split_once(' ')
            .ok_or_else(|| bad("a part's first line is not ID LENGTH"))?;
        if named != id.to_string() {
            return Err(bad(&format!("expected message {id}, got {named:?}")).into());
        }
        if length == "-" {
            out.push(None);
            continue;
        }
        let length: u64 = length
            .parse()
            .ok()
            .filter(|n| *n <= MAX_SEALED_BYTES)
            .ok_or_else(|| bad("a part's length is not a number within bounds"))?;
        let mut sealed = Vec::new();
        (&mut answer)
            .take(length)
            .read_to_end(&mut sealed)
            .map_err(received)?;
        if sealed.len() as u64 != length {
            return Err(bad("the answer ended inside a message").into());
        }
        let mut plain = Vec::new();
        identities
            .open_buffered(sealed.as_slice())
            .and_then(|mut r| Ok(r.read_to_end(&mut plain)?))
            .map_err(|e| ReviewError::decrypt(unreadable(id), e))?;
        out.push(Some(plain));
    }
    Ok(out)
}

/// Fetches one message as an export (recorded with `reason`) and opens it for decrypting
/// as it is read, so one message can be written out whole without a copy in memory.
pub fn open<'a>(
    context: &'a ReviewContext,
    id: MessageId,
    reason: &str,
) -> Result<impl Read + use<'a>, ReviewError> {
    let sealed = context
        .client
        .get(&context.guarded_path(sealed_path(id, "export", reason)))?;
    context
        .identities()?
        .open_buffered(BufReader::new(sealed))
        .map_err(|e| ReviewError::decrypt(unreadable(id), e))
}

/// Fetches one listed message (recorded as an export with `reason`), decrypts it and
/// appends it to an mbox.
pub fn append_mbox(
    context: &ReviewContext,
    m: &Listed,
    out: &mut impl Write,
    reason: &str,
) -> Result<(), ReviewError> {
    let id: MessageId = m.id.parse().map_err(ReviewError::ServerId)?;
    let plain = fetch_plain(context, id, "export", reason)?;
    let date = separator_date(m.received_unix);
    write_message(out, &m.mail_from, &date, &plain).map_err(ReviewError::Write)
}

fn unreadable(id: MessageId) -> String {
    format!("cannot decrypt message {id} (is this the right identity?)")
}

/// Appends one message in mboxrd form. Line ends are written as LF (what mbox readers
/// expect); a message that does not end in a line break gets one.
pub fn write_message(
    out: &mut impl Write,
    envelope_from: &str,
    date: &str,
    message: &[u8],
) -> io::Result<()> {
    let sender = if envelope_from.is_empty() {
        "MAILER-DAEMON"
    } else {
        envelope_from
    };
    // The separator is one line: nothing from the envelope may break it.
    let sender: String = sender
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    writeln!(out, "From {sender} {date}")?;
    let mut rest = message;
    while !rest.is_empty() {
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(p) => (&rest[..p], &rest[p + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let depth = line.iter().take_while(|&&b| b == b'>').count();
        let quoted = &line[depth..];
        if quoted.starts_with(b"From ") {
            out.write_all(b">")?;
        }
        out.write_all(line)?;
        out.write_all(b"\n")?;
        rest = next;
    }
    // A blank line ends the message before the next separator.
    out.write_all(b"\n")
}

/// The `asctime`-style date of a separator line, in UTC.
pub fn separator_date(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[weekday repr:short] [month repr:short] [day padding:space] [hour]:[minute]:[second] [year]"
            ))
            .ok()
        })
        .unwrap_or_else(|| "Thu Jan  1 00:00:00 1970".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_lines_are_quoted_one_more_level() {
        let mut out = Vec::new();
        let msg = b"Subject: x\r\n\r\nFrom here\r\n>From there\r\n>>From afar\r\nFromage\r\nlast";
        write_message(&mut out, "a b@p.example", "Sun Nov 29 06:00:00 2026", msg).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "From a_b@p.example Sun Nov 29 06:00:00 2026\nSubject: x\n\n>From here\n>>From there\n>>>From afar\nFromage\nlast\n\n"
        );
        assert_eq!(separator_date(1_795_910_400), "Sun Nov 29 00:00:00 2026");
    }
}
