//! Turns a decrypted message into what `reclaim show` and the desk show: main header fields, the
//! authentication results the sender put in, the text body and the list of attachments.
//! Pure; every string here is still hostile and is sanitised where it is printed.

use mail_parser::{MessageParser, MimeHeaders};
use serde::Serialize;

/// Header fields shown, in this order.
const MAIN_FIELDS: [&str; 8] = [
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
];
/// Fields that state verification results. Inside a quarantined message they were written
/// by the sending side (or anyone before it), so they are only ever shown as its claim.
const CLAIM_FIELDS: [&str; 3] = [
    "Authentication-Results",
    "ARC-Authentication-Results",
    "Received-SPF",
];
/// Longest body shown; the whole message is one `export` away.
pub const MAX_BODY_CHARS: usize = 200_000;

/// One attachment as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment {
    pub name: Option<String>,
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: usize,
}

/// A verification result the message itself carries: the sender's claim, not reclaim's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claim {
    pub field: String,
    pub value: String,
}

/// A message ready to print.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Rendered {
    pub headers: Vec<(String, String)>,
    /// Verification results found in the message, as claimed by its sender.
    pub sender_claims: Vec<Claim>,
    /// `text/plain`, `text/html` (rendered as text) or `none`.
    pub body_source: String,
    pub body: String,
    pub body_truncated: bool,
    pub attachments: Vec<Attachment>,
    /// The HTML body as the sender wrote it, when there is one: hostile, never printed
    /// as it is (the desk sanitises it and shows it in a sandboxed frame).
    #[serde(skip)]
    pub html: Option<String>,
}

/// Renders raw message bytes (trace fields included).
pub fn render(raw: &[u8]) -> Rendered {
    let Some(message) = MessageParser::default().parse(raw) else {
        return Rendered {
            body_source: "none".into(),
            body: String::from_utf8_lossy(raw)
                .chars()
                .take(MAX_BODY_CHARS)
                .collect(),
            ..Rendered::default()
        };
    };
    let mut headers = Vec::new();
    let mut sender_claims = Vec::new();
    for header in message.headers() {
        let name = header.name();
        let start = header.offset_start as usize;
        let end = header.offset_end as usize;
        let value = message
            .raw_message()
            .get(start..end)
            .map(|v| unfold(&String::from_utf8_lossy(v)))
            .unwrap_or_default();
        if let Some(field) = CLAIM_FIELDS.iter().find(|f| f.eq_ignore_ascii_case(name)) {
            sender_claims.push(Claim {
                field: (*field).to_owned(),
                value,
            });
        } else if let Some(field) = MAIN_FIELDS.iter().find(|f| f.eq_ignore_ascii_case(name)) {
            headers.push((
                (*field).to_owned(),
                decoded(&message, name).unwrap_or(value),
            ));
        }
    }
    headers.sort_by_key(|(name, _)| MAIN_FIELDS.iter().position(|f| f == name));

    let (body_source, text) = match message.text_part(0) {
        Some(part) if part.is_text_html() => ("text/html", message.body_text(0)),
        Some(_) => ("text/plain", message.body_text(0)),
        None => ("none", None),
    };
    let text = text.map(|t| t.into_owned()).unwrap_or_default();
    let body_truncated = text.chars().count() > MAX_BODY_CHARS;
    let body = text.chars().take(MAX_BODY_CHARS).collect();

    let attachments = message
        .attachments()
        .map(|part| Attachment {
            name: part.attachment_name().map(str::to_owned),
            content_type: part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_owned(),
                })
                .unwrap_or_else(|| "application/octet-stream".into()),
            size: part.len(),
        })
        .collect();
    let html = message
        .html_part(0)
        .filter(|part| part.is_text_html())
        .and_then(|part| part.text_contents())
        .map(|html| html.chars().take(MAX_BODY_CHARS).collect());
    Rendered {
        html,
        headers,
        sender_claims,
        body_source: body_source.into(),
        body,
        body_truncated,
        attachments,
    }
}

/// The decoded text of a field mail-parser understands (encoded words, addresses).
fn decoded(message: &mail_parser::Message<'_>, name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let address = |a: Option<&mail_parser::Address<'_>>| {
        a.map(|a| {
            a.iter()
                .map(|addr| match (addr.name(), addr.address()) {
                    (Some(n), Some(e)) => format!("{n} <{e}>"),
                    (None, Some(e)) => e.to_owned(),
                    (Some(n), None) => n.to_owned(),
                    (None, None) => String::new(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
    };
    match lower.as_str() {
        "subject" => message.subject().map(str::to_owned),
        "from" => address(message.from()),
        "to" => address(message.to()),
        "cc" => address(message.cc()),
        "reply-to" => address(message.reply_to()),
        "sender" => address(message.sender()),
        _ => None,
    }
    .filter(|v| !v.is_empty())
}

fn unfold(value: &str) -> String {
    value
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_html_and_attachments() {
        let msg = b"Return-Path: <a@p.example>\r\nFrom: =?utf-8?q?Caf=C3=A9?= <a@p.example>\r\nTo: b@old.example\r\nSubject: hi\r\nAuthentication-Results: mx.p.example;\r\n spf=pass\r\nARC-Authentication-Results: i=1; dkim=pass\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\nContent-Type: text/html\r\n\r\n<p>Hello <b>there</b></p><script>x</script>\r\n--X\r\nContent-Type: application/pdf; name=\"case.pdf\"\r\nContent-Disposition: attachment; filename=\"case.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--X--\r\n";
        let r = render(msg);
        assert_eq!(r.headers[0], ("From".into(), "Café <a@p.example>".into()));
        assert!(r.headers.contains(&("Subject".into(), "hi".into())));
        assert_eq!(
            r.sender_claims,
            [
                Claim {
                    field: "Authentication-Results".into(),
                    value: "mx.p.example; spf=pass".into()
                },
                Claim {
                    field: "ARC-Authentication-Results".into(),
                    value: "i=1; dkim=pass".into()
                }
            ]
        );
        assert_eq!(r.body_source, "text/html");
        assert!(r.body.contains("Hello"), "{:?}", r.body);
        assert!(!r.body.contains("<p>"));
        assert_eq!(
            r.attachments,
            vec![Attachment {
                name: Some("case.pdf".into()),
                content_type: "application/pdf".into(),
                size: 4,
            }]
        );
    }

    #[test]
    fn garbage_does_not_panic() {
        for raw in [
            &b""[..],
            b"\xff\xfe",
            b"Subject: x\r\n",
            b"\r\n\r\nonly body",
        ] {
            let _ = render(raw);
        }
    }
}
