//! Releasing a message: decrypted here and submitted to the organisation's submission
//! server with `Resent-*` fields (RFC 5322 3.6.6). The plaintext goes from this machine to
//! the relay, never back to the gateway; the gateway only gets the audit record. Every step
//! of the submission is bounded by the `[release]` deadlines, so a relay that stalls ends
//! the release with an error instead of hanging it.

use lettre::address::{Address, Envelope};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use serde_json::json;

use super::export::fetch_for_release;
use super::{ReviewContext, ReviewError};
use crate::config::{ReleaseConfig, ReleaseTls};
use crate::smtp_client::{self, DeliveryError, Handover, StartTls};
use crate::store::MessageId;

/// What a release did: the recipients and the new message's Message-ID.
#[derive(Debug, Clone)]
pub struct Released {
    pub to: String,
    pub message_id: String,
}

/// Decrypts message `id` here, submits it to the `[release]` relay for `to`, and records
/// the release with `reason` in the audit trail.
pub fn release(
    context: &ReviewContext,
    id: MessageId,
    to: &[String],
    reason: &str,
) -> Result<Released, ReviewError> {
    let release = context
        .config
        .as_ref()
        .and_then(|c| c.release.clone())
        .ok_or_else(|| {
            ReviewError::Missing(
                "no [release] section in the config: name the submission server there".into(),
            )
        })?;
    let from: Address = release
        .from
        .parse()
        .map_err(|source| ReviewError::Address {
            what: format!("[release] from {:?} is not an address", release.from),
            source,
        })?;
    let recipients = to
        .iter()
        .map(|a| {
            a.parse::<Address>().map_err(|source| ReviewError::Address {
                what: format!("--to {a:?} is not an address"),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let credentials = match (&release.username, &release.password) {
        (Some(user), Some(source)) => Some(Credentials::new(
            user.clone(),
            source.read().map_err(ReviewError::Password)?,
        )),
        _ => None,
    };
    // Read before anything is fetched: a bad CA file should not cost an audit record.
    let tls = start_tls(&release)?;

    let plain = fetch_for_release(context, id, to, reason)?;
    let now = time::OffsetDateTime::now_utc();
    let message_id = format!("<{}.release@{}>", MessageId::new(), from.domain());
    let resent = resent_fields(&from, &recipients, now, &message_id);
    let mut outgoing = resent.into_bytes();
    // Stored as sent: a bare CR or LF would let the relay see a line end where the SMTP
    // client's dot-stuffing does not, so `LF . CRLF` could end DATA early and smuggle
    // commands. Every line end leaves here as CRLF, as Postfix's cleanup would make it.
    outgoing.extend_from_slice(&crlf_line_ends(strip_return_path(&plain)));

    let envelope = Envelope::new(Some(from), recipients.clone()).map_err(ReviewError::Envelope)?;
    let handover = Handover {
        hello: &ClientId::default(),
        tls: &tls,
        credentials: credentials.as_ref(),
        envelope: &envelope,
        message: &outgoing,
    };
    let answer = submit(&release, &handover).map_err(|refusal| ReviewError::ReleaseRefused {
        relay: format!("{}:{}", release.host, release.port),
        id,
        refusal: Box::new(refusal),
        deadlines: release.deadlines,
    })?;

    let to_list = to.join(", ");
    let note = json!({
        "action": "release",
        "ids": [id.to_string()],
        "reason": reason,
        "detail": format!(
            "to {to_list} via {}:{} as {message_id}: {answer}",
            release.host, release.port
        ),
    });
    let _: serde_json::Value = context
        .client
        .send_json("POST", "/v1/audit", &note)
        .map_err(ReviewError::Unrecorded)?;
    Ok(Released {
        to: to_list,
        message_id,
    })
}

/// The `Resent-*` block prepended to a released message.
pub fn resent_fields(
    from: &Address,
    to: &[Address],
    now: time::OffsetDateTime,
    message_id: &str,
) -> String {
    let date = now
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default();
    let to = to
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "Resent-Date: {date}\r\nResent-From: {from}\r\nResent-To: {to}\r\nResent-Message-ID: {message_id}\r\n"
    )
}

/// Drops the `Return-Path` the gateway put first: the relay sets its own on delivery.
/// The gateway's `Received` field stays as the trace of how the message arrived.
pub fn strip_return_path(message: &[u8]) -> &[u8] {
    if !message.starts_with(b"Return-Path:") {
        return message;
    }
    let mut pos = 0;
    while let Some(nl) = message[pos..].iter().position(|&b| b == b'\n') {
        pos += nl + 1;
        if !matches!(message.get(pos), Some(b' ' | b'\t')) {
            return &message[pos..];
        }
    }
    message
}

/// Turns every bare CR and bare LF into CRLF; CRLF stays as it is. After this, every
/// line end is one the submission client sees and dot-stuffs after, so the relay reads
/// exactly one message.
pub fn crlf_line_ends(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64);
    let mut bytes = message.iter().copied().peekable();
    while let Some(b) = bytes.next() {
        match b {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                bytes.next_if_eq(&b'\n');
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
    }
    out
}

/// STARTTLS as `[release] tls` asks, trusting `[release] ca` besides the public roots.
fn start_tls(release: &ReleaseConfig) -> Result<StartTls, ReviewError> {
    let parameters = || -> Result<TlsParameters, ReviewError> {
        let mut builder = TlsParameters::builder(release.host.clone());
        if let Some(ca) = &release.ca {
            let pem = std::fs::read(ca).map_err(|source| ReviewError::Io {
                what: "[release] ca",
                path: ca.clone(),
                source,
            })?;
            let certificate =
                Certificate::from_pem(&pem).map_err(|source| ReviewError::Certificate {
                    path: ca.clone(),
                    source,
                })?;
            builder = builder.add_root_certificate(certificate);
        }
        builder.build().map_err(ReviewError::Tls)
    };
    Ok(match release.tls {
        ReleaseTls::None => StartTls::Never,
        ReleaseTls::Opportunistic => StartTls::Offered(parameters()?),
        ReleaseTls::Required => StartTls::Required(parameters()?),
    })
}

/// Submits on a small runtime of its own, within `[release] attempt_timeout` from the
/// lookup of the relay to its last reply; returns that reply.
fn submit(release: &ReleaseConfig, handover: &Handover<'_>) -> Result<String, DeliveryError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| DeliveryError::temporary(format!("starting the submission runtime: {e}")))?;
    let deadlines = release.deadlines;
    runtime.block_on(async {
        let started = tokio::time::Instant::now();
        let attempt = async {
            // The relay's addresses are all tried: attempt_timeout bounds them together.
            let addrs = smtp_client::relay_addresses(&release.host, release.port).await?;
            smtp_client::hand_to_first(&addrs, deadlines, handover).await
        };
        let mut accepted = smtp_client::within(deadlines.attempt, attempt).await?;
        let reply = format!(
            "{} {}",
            accepted.reply.code(),
            accepted.reply.message().collect::<Vec<_>>().join(" ")
        );
        // The message is taken; a goodbye the relay does not answer only uses up what is
        // left of the attempt, and changes nothing.
        let left = deadlines.attempt.saturating_sub(started.elapsed());
        let _ = tokio::time::timeout(left, accepted.conn.quit()).await;
        Ok(reply)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resent_block_and_trace() {
        let from: Address = "quarantine@new.example".parse().expect("addr");
        let to: Vec<Address> = vec!["a@new.example".parse().expect("addr")];
        let now = time::macros::datetime!(2026-11-29 06:00:00 UTC);
        let block = resent_fields(&from, &to, now, "<x@new.example>");
        assert_eq!(
            block,
            "Resent-Date: Sun, 29 Nov 2026 06:00:00 +0000\r\nResent-From: quarantine@new.example\r\nResent-To: a@new.example\r\nResent-Message-ID: <x@new.example>\r\n"
        );
        assert_eq!(
            strip_return_path(b"Return-Path: <a@b>\r\nReceived: x\r\n y\r\n\r\nbody"),
            b"Received: x\r\n y\r\n\r\nbody"
        );
        assert_eq!(
            strip_return_path(b"Return-Path: <a\r\n @b>\r\nSubject: s\r\n"),
            b"Subject: s\r\n"
        );
        assert_eq!(strip_return_path(b"Subject: s\r\n"), b"Subject: s\r\n");
    }

    #[test]
    fn bare_line_ends_become_crlf() {
        for (input, expected) in [
            (&b"a\r\nb\r\n"[..], &b"a\r\nb\r\n"[..]),
            (b"a\nb\n", b"a\r\nb\r\n"),
            (b"a\rb\r", b"a\r\nb\r\n"),
            (b"a\r\r\n\n\rb", b"a\r\n\r\n\r\n\r\nb"),
            (
                b"x\n.\r\nMAIL FROM:<e@evil.example>",
                b"x\r\n.\r\nMAIL FROM:<e@evil.example>",
            ),
            (b"", b""),
        ] {
            assert_eq!(
                crlf_line_ends(input),
                expected,
                "{}",
                String::from_utf8_lossy(input).escape_debug()
            );
        }
    }
}
