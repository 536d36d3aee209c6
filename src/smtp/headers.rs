//! Watches the start of a message body for its header section: collects it (bounded) so the
//! session can count `Received` fields and pick out Subject, From, Date and Message-ID.

/// Collects up to `limit` bytes of the header section.
#[derive(Debug, Clone)]
pub struct HeaderScanner {
    buf: Vec<u8>,
    limit: usize,
    complete: bool,
}

/// Header facts the session needs at the end of data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderFacts {
    pub received_count: usize,
    pub subject: Option<String>,
    pub from: Option<String>,
    pub date: Option<String>,
    pub message_id: Option<String>,
    pub auto_submitted: Option<String>,
    pub precedence: Option<String>,
    pub list_id: Option<String>,
    pub list_unsubscribe: bool,
}

impl HeaderScanner {
    pub fn new(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            limit,
            complete: false,
        }
    }

    /// Takes the next body bytes; keeps only what belongs to the header section.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        // Copied in small pieces, looking for the end after each: a message whose first
        // chunk is 64 KiB costs about its header section here, not the whole chunk, on
        // every one of hundreds of sessions.
        const PIECE: usize = 1024;
        while !self.complete && !bytes.is_empty() {
            let room = self.limit - self.buf.len();
            let take = bytes.len().min(room).min(PIECE);
            let search_from = self.buf.len().saturating_sub(3);
            self.buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if let Some(end) = find_header_end(&self.buf, search_from) {
                self.buf.truncate(end);
                self.complete = true;
            } else if self.buf.len() >= self.limit {
                self.complete = true;
            }
        }
    }

    /// Parses what was collected.
    pub fn facts(&self) -> HeaderFacts {
        let received_count = count_fields(&self.buf, b"received:");
        let Some(message) = mail_parser::MessageParser::new().parse_headers(&self.buf[..]) else {
            return HeaderFacts {
                received_count,
                ..HeaderFacts::default()
            };
        };
        HeaderFacts {
            received_count,
            subject: message.subject().map(str::to_owned),
            from: message.from().and_then(format_address),
            date: message.date().map(|d| d.to_rfc3339()),
            message_id: message.message_id().map(|id| format!("<{id}>")),
            auto_submitted: raw_field(&message, "Auto-Submitted"),
            precedence: raw_field(&message, "Precedence"),
            list_id: raw_field(&message, "List-Id"),
            list_unsubscribe: raw_field(&message, "List-Unsubscribe").is_some(),
        }
    }
}

/// A field's unfolded raw value, trimmed and bounded (these are tokens, not prose).
fn raw_field(message: &mail_parser::Message<'_>, name: &str) -> Option<String> {
    const MAX_FIELD_CHARS: usize = 200;
    let raw = message.header_raw(name)?;
    let value: String = raw
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    (!value.is_empty()).then(|| value.chars().take(MAX_FIELD_CHARS).collect())
}

fn format_address(address: &mail_parser::Address<'_>) -> Option<String> {
    let first = address.first()?;
    Some(match (first.name(), first.address()) {
        (Some(name), Some(addr)) => format!("{name} <{addr}>"),
        (None, Some(addr)) => addr.to_owned(),
        (Some(name), None) => name.to_owned(),
        (None, None) => return None,
    })
}

/// Index just past the blank line that ends the header section (CRLF CRLF or LF LF), or 0
/// when the body starts with a blank line (no headers at all).
fn find_header_end(buf: &[u8], from: usize) -> Option<usize> {
    if buf.starts_with(b"\r\n") || buf.starts_with(b"\n") {
        return Some(0);
    }
    let window = &buf[from..];
    let crlf = window
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| from + p + 4);
    let lf = window
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|p| from + p + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Counts header fields named `name` (lower-case, with the colon) at line starts.
fn count_fields(headers: &[u8], name: &[u8]) -> usize {
    headers
        .split(|&b| b == b'\n')
        .filter(|line| line.len() >= name.len() && line[..name.len()].eq_ignore_ascii_case(name))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(message: &[u8], chunk: usize) -> HeaderFacts {
        let mut s = HeaderScanner::new(64 * 1024);
        for piece in message.chunks(chunk) {
            s.feed(piece);
        }
        s.facts()
    }

    #[test]
    fn picks_out_summary_fields() {
        let msg = b"Received: from a\r\nreceived: from b\r\nSubject: =?utf-8?q?Caf=C3=A9?=\r\nFrom: Alice <alice@partner.example>\r\nDate: Sun, 29 Nov 2026 06:00:00 +0000\r\nMessage-ID: <abc@partner.example>\r\n\r\nReceived: not a header\r\n";
        for chunk in [1, 5, msg.len()] {
            let f = scan(msg, chunk);
            assert_eq!(f.received_count, 2);
            assert_eq!(f.subject.as_deref(), Some("Café"));
            assert_eq!(f.from.as_deref(), Some("Alice <alice@partner.example>"));
            assert_eq!(f.message_id.as_deref(), Some("<abc@partner.example>"));
            assert_eq!(f.date.as_deref(), Some("2026-11-29T06:00:00Z"));
            assert_eq!(f.auto_submitted, None);
        }
        let list = scan(b"Auto-Submitted: auto-generated\r\nPrecedence: bulk\r\nList-Id: <x.lists.example>\r\nList-Unsubscribe: <mailto:u@x>\r\n\r\n", 4);
        assert_eq!(list.auto_submitted.as_deref(), Some("auto-generated"));
        assert_eq!(list.precedence.as_deref(), Some("bulk"));
        assert_eq!(list.list_id.as_deref(), Some("<x.lists.example>"));
        assert!(list.list_unsubscribe);
    }

    #[test]
    fn picks_out_automation_fields() {
        let msg = b"Auto-Submitted: auto-replied\r\nList-Id: Partners\r\n <partners.example>\r\nPrecedence: bulk\r\n\r\nbody";
        let f = scan(msg, 7);
        assert_eq!(f.auto_submitted.as_deref(), Some("auto-replied"));
        assert_eq!(f.list_id.as_deref(), Some("Partners <partners.example>"));
        assert_eq!(f.precedence.as_deref(), Some("bulk"));
    }

    #[test]
    fn no_headers_and_garbage_do_not_panic() {
        assert_eq!(scan(b"\r\nbody only", 3), HeaderFacts::default());
        let f = scan(b"\x00\xff\xfe: \xc3\x28\r\n\r\n", 1);
        assert_eq!(f.received_count, 0);
    }

    #[test]
    fn collection_is_bounded() {
        let mut s = HeaderScanner::new(64 * 1024);
        let mut chunk = b"Subject: small header\r\n\r\n".to_vec();
        chunk.resize(64 * 1024, b'x');
        s.feed(&chunk);
        assert_eq!(s.buf, b"Subject: small header\r\n\r\n");
        assert!(
            s.buf.capacity() <= 2048,
            "a large first chunk is not copied whole: {}",
            s.buf.capacity()
        );

        let mut s = HeaderScanner::new(100);
        s.feed(&[b'x'; 1000]);
        s.feed(b"\r\n\r\n");
        assert_eq!(s.buf.len(), 100);
    }
}
