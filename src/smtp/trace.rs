//! The trace header fields the gateway prepends to each message (RFC 5321 4.4):
//! `Return-Path` and `Received`.

use std::time::SystemTime;

use super::session::Envelope;

/// Builds `Return-Path:` and `Received:` for a message, CRLF-terminated.
pub fn trace_fields(envelope: &Envelope, hostname: &str, id: &str, at: SystemTime) -> Vec<u8> {
    let mut out = format!("Return-Path: <{}>\r\n", clean(&envelope.mail_from));
    out.push_str(&format!(
        "Received: from {} ([{}])\r\n",
        clean_helo(&envelope.helo),
        envelope.client_ip
    ));
    if let Some(tls) = &envelope.tls {
        out.push_str(&format!(
            "\t(using {} with cipher {})\r\n",
            clean(&tls.version),
            clean(&tls.cipher)
        ));
    }
    out.push_str(&format!(
        "\tby {hostname} (reclaim) with {} id {id}",
        envelope.protocol
    ));
    // Name the recipient only when there is one: a list would disclose Bcc recipients.
    if let [only] = envelope.recipients.as_slice() {
        out.push_str(&format!("\r\n\tfor <{}>", clean(&only.address)));
    }
    out.push_str(&format!("; {}\r\n", rfc5322_date(at)));
    out.into_bytes()
}

/// RFC 5322 date-time in UTC, e.g. `Sun, 29 Nov 2026 06:00:00 +0000`.
pub fn rfc5322_date(at: SystemTime) -> String {
    let t = time::OffsetDateTime::from(at);
    let format = time::macros::format_description!(
        "[weekday repr:short], [day padding:none] [month repr:short] [year] [hour]:[minute]:[second] +0000"
    );
    t.format(&format)
        .unwrap_or_else(|_| "Thu, 1 Jan 1970 00:00:00 +0000".to_owned())
}

/// Removes anything that could break the header syntax (line breaks, controls).
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// A HELO name is client-chosen: keep host-name and address-literal characters only, so it
/// cannot open a comment or fake another clause.
fn clean_helo(helo: &str) -> String {
    if helo.is_empty() {
        return "unknown".to_owned();
    }
    helo.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._:[]".contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domains::Recipient;
    use crate::summary::TlsInfo;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn fields_are_well_formed() {
        let envelope = Envelope {
            helo: "evil (fake) by x\r\nX-Injected: 1".into(),
            client_ip: "192.0.2.7".parse().expect("ip"),
            mail_from: "sender@partner.example".into(),
            recipients: vec![Recipient {
                address: "jan@old.example".into(),
                disposition: None,
            }],
            protocol: "ESMTPS",
            tls: Some(TlsInfo {
                version: "TLSv1.3".into(),
                cipher: "TLS13_AES_256_GCM_SHA384".into(),
            }),
        };
        let at = UNIX_EPOCH + Duration::from_secs(1_795_932_000);
        let text =
            String::from_utf8(trace_fields(&envelope, "mx.old.example", "ID1", at)).expect("utf8");
        assert_eq!(
            text,
            "Return-Path: <sender@partner.example>\r\n\
             Received: from evil??fake??by?x??X-Injected:?1 ([192.0.2.7])\r\n\
             \t(using TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384)\r\n\
             \tby mx.old.example (reclaim) with ESMTPS id ID1\r\n\
             \tfor <jan@old.example>; Sun, 29 Nov 2026 06:00:00 +0000\r\n"
        );
    }
}
