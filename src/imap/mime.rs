//! A message's MIME structure as byte ranges of its plaintext (headers, bodies, nested
//! parts), for BODY[section] fetches, and the ENVELOPE and BODYSTRUCTURE built from it.
//! Header fields are read with mail-parser; the tree is split here so that every section
//! is an exact slice of what was received.

use mail_parser::{Address, MessageParser, MimeHeaders};

use super::response::{nstring, string};

/// Deepest nesting of multiparts and attached messages followed.
const MAX_DEPTH: usize = 16;
/// Most parts split out of one message; the rest stays inside its parent's body.
const MAX_PARTS: usize = 500;

/// One entity: its header (with the blank line ending it) and its body.
#[derive(Debug)]
pub struct Part<'a> {
    pub header: &'a [u8],
    pub body: &'a [u8],
    pub content: Content<'a>,
}

/// What the body holds.
#[derive(Debug)]
pub enum Content<'a> {
    Leaf,
    Multipart(Vec<Part<'a>>),
    /// An attached message (message/rfc822).
    Message(Box<Part<'a>>),
}

impl<'a> Part<'a> {
    /// The tree of a whole message.
    pub fn parse(raw: &'a [u8]) -> Self {
        let mut budget = MAX_PARTS;
        entity(raw, 0, &mut budget, false)
    }

    /// The part a section's part numbers name, as RFC 3501 6.4.5 counts them.
    pub fn find(&self, path: &[u32]) -> Option<&Part<'a>> {
        let mut current = self;
        for &n in path {
            let index = usize::try_from(n).ok()?.checked_sub(1)?;
            if let Content::Message(inner) = &current.content {
                current = inner;
            }
            current = match &current.content {
                Content::Multipart(parts) => parts.get(index)?,
                _ if index == 0 => current,
                _ => return None,
            };
        }
        Some(current)
    }
}

fn entity<'a>(raw: &'a [u8], depth: usize, budget: &mut usize, digest: bool) -> Part<'a> {
    let (header, body) = split_header(raw);
    let (ctype, subtype, boundary) = content_type(header, digest);
    let content = if depth >= MAX_DEPTH {
        Content::Leaf
    } else if ctype == "multipart" {
        match boundary {
            Some(b) => {
                let pieces = split_multipart(body, b.as_bytes());
                let mut parts = Vec::new();
                for piece in pieces {
                    if *budget == 0 {
                        break;
                    }
                    *budget -= 1;
                    parts.push(entity(piece, depth + 1, budget, subtype == "digest"));
                }
                if parts.is_empty() {
                    Content::Leaf
                } else {
                    Content::Multipart(parts)
                }
            }
            None => Content::Leaf,
        }
    } else if ctype == "message" && subtype == "rfc822" && *budget > 0 {
        *budget -= 1;
        Content::Message(Box::new(entity(body, depth + 1, budget, false)))
    } else {
        Content::Leaf
    };
    Part {
        header,
        body,
        content,
    }
}

/// Header (up to and with the empty line) and body; a message without an empty line is
/// all header.
pub fn split_header(raw: &[u8]) -> (&[u8], &[u8]) {
    if raw.starts_with(b"\r\n") {
        return raw.split_at(2);
    }
    if raw.starts_with(b"\n") {
        return raw.split_at(1);
    }
    let mut i = 0;
    while let Some(p) = raw[i..].iter().position(|&b| b == b'\n') {
        let next = i + p + 1;
        if raw[next..].starts_with(b"\r\n") {
            return raw.split_at(next + 2);
        }
        if raw[next..].starts_with(b"\n") {
            return raw.split_at(next + 1);
        }
        i = next;
    }
    (raw, &raw[raw.len()..])
}

/// Lower-case type and subtype, and the boundary of a multipart.
fn content_type(header: &[u8], digest: bool) -> (String, String, Option<String>) {
    let default = if digest {
        ("message".into(), "rfc822".into(), None)
    } else {
        ("text".into(), "plain".into(), None)
    };
    let Some(parsed) = MessageParser::new().parse_headers(header) else {
        return default;
    };
    let Some(ct) = parsed.content_type() else {
        return default;
    };
    let boundary = ct.attribute("boundary").map(str::to_owned);
    (
        ct.ctype().to_ascii_lowercase(),
        ct.subtype().unwrap_or_default().to_ascii_lowercase(),
        boundary,
    )
}

/// The body parts between `--boundary` lines, without the line break before each.
fn split_multipart<'a>(body: &'a [u8], boundary: &[u8]) -> Vec<&'a [u8]> {
    let mut delimiter = b"--".to_vec();
    delimiter.extend_from_slice(boundary);
    let mut starts = Vec::new(); // (line start, content start, closing)
    let mut line = 0;
    while line < body.len() {
        let end = body[line..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(body.len(), |p| line + p + 1);
        let text = &body[line..end];
        if text.starts_with(&delimiter) {
            let rest = &text[delimiter.len()..];
            let closing = rest.starts_with(b"--");
            let tail = if closing { &rest[2..] } else { rest };
            if tail
                .iter()
                .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            {
                starts.push((line, end, closing));
                if closing {
                    break;
                }
            }
        }
        line = end;
    }
    let mut parts = Vec::new();
    for pair in starts.windows(2) {
        let (_, content, closing) = pair[0];
        if closing {
            break;
        }
        let mut stop = pair[1].0;
        if body[..stop].ends_with(b"\r\n") {
            stop -= 2;
        } else if body[..stop].ends_with(b"\n") {
            stop -= 1;
        }
        parts.push(&body[content..stop.max(content)]);
    }
    parts
}

/// Each header field (its lines with their breaks) and its name.
pub fn fields(header: &[u8]) -> Vec<(&str, &[u8])> {
    let mut out: Vec<(&str, &[u8])> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < header.len() {
        let end = header[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(header.len(), |p| i + p + 1);
        let continuation = matches!(header.get(end), Some(b' ' | b'\t'));
        if !continuation {
            let field = &header[start..end];
            if let Some(colon) = field.iter().position(|&b| b == b':')
                && let Ok(name) = std::str::from_utf8(&field[..colon])
            {
                out.push((name.trim(), field));
            }
            start = end;
        }
        i = end;
    }
    out
}

/// The first field called `name`, unfolded and trimmed.
fn raw_value(header: &[u8], name: &str) -> Option<Vec<u8>> {
    let (_, field) = fields(header)
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))?;
    let colon = field.iter().position(|&b| b == b':')?;
    let value: Vec<u8> = field[colon + 1..]
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    let trimmed = value.trim_ascii();
    Some(trimmed.to_vec())
}

/// The ENVELOPE of an entity's header.
pub fn envelope(out: &mut Vec<u8>, header: &[u8]) {
    let parsed = MessageParser::new().parse_headers(header);
    let addresses =
        |out: &mut Vec<u8>,
         pick: for<'a> fn(&'a mail_parser::Message<'a>) -> Option<&'a Address<'a>>| {
            match parsed.as_ref().and_then(|p| pick(p)) {
                Some(a) => address_list(out, a),
                None => out.extend_from_slice(b"NIL"),
            }
        };
    out.push(b'(');
    nstring(out, raw_value(header, "Date").as_deref());
    out.push(b' ');
    nstring(out, raw_value(header, "Subject").as_deref());
    out.push(b' ');
    addresses(out, |p| p.from());
    out.push(b' ');
    // Sender and Reply-To default to From (RFC 3501 7.4.2).
    addresses(out, |p| p.sender().or_else(|| p.from()));
    out.push(b' ');
    addresses(out, |p| p.reply_to().or_else(|| p.from()));
    out.push(b' ');
    addresses(out, |p| p.to());
    out.push(b' ');
    addresses(out, |p| p.cc());
    out.push(b' ');
    addresses(out, |p| p.bcc());
    out.push(b' ');
    nstring(out, raw_value(header, "In-Reply-To").as_deref());
    out.push(b' ');
    nstring(out, raw_value(header, "Message-ID").as_deref());
    out.push(b')');
}

fn address_list(out: &mut Vec<u8>, address: &Address<'_>) {
    let start = out.len();
    out.push(b'(');
    match address {
        Address::List(list) => {
            for a in list {
                one_address(out, a.name.as_deref(), a.address.as_deref());
            }
        }
        Address::Group(groups) => {
            for g in groups {
                if let Some(name) = &g.name {
                    out.extend_from_slice(b"(NIL NIL ");
                    string(out, name.as_bytes());
                    out.extend_from_slice(b" NIL)");
                }
                for a in &g.addresses {
                    one_address(out, a.name.as_deref(), a.address.as_deref());
                }
                if g.name.is_some() {
                    out.extend_from_slice(b"(NIL NIL NIL NIL)");
                }
            }
        }
    }
    if out.len() == start + 1 {
        out.truncate(start);
        out.extend_from_slice(b"NIL");
    } else {
        out.push(b')');
    }
}

fn one_address(out: &mut Vec<u8>, name: Option<&str>, address: Option<&str>) {
    let Some(address) = address else { return };
    let (mailbox, host) = address.rsplit_once('@').unwrap_or((address, ""));
    out.push(b'(');
    // A decoded name goes back as an RFC 2047 word when it is not plain ASCII.
    let name = name.map(|n| {
        if n.is_ascii() {
            n.to_owned()
        } else {
            use base64::Engine;
            format!(
                "=?utf-8?b?{}?=",
                base64::engine::general_purpose::STANDARD.encode(n)
            )
        }
    });
    nstring(out, name.as_deref().map(str::as_bytes));
    out.extend_from_slice(b" NIL ");
    string(out, mailbox.as_bytes());
    out.push(b' ');
    if host.is_empty() {
        out.extend_from_slice(b"NIL");
    } else {
        string(out, host.as_bytes());
    }
    out.push(b')');
}

/// BODY (`extended` false) or BODYSTRUCTURE of an entity.
pub fn structure(out: &mut Vec<u8>, part: &Part<'_>, extended: bool) {
    let parsed = MessageParser::new().parse_headers(part.header);
    let ct = parsed.as_ref().and_then(|p| p.content_type());
    let params = |out: &mut Vec<u8>, ct: Option<&mail_parser::ContentType<'_>>| {
        let attrs: Vec<_> = ct
            .and_then(|c| c.attributes.as_ref())
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        if attrs.is_empty() {
            out.extend_from_slice(b"NIL");
            return;
        }
        out.push(b'(');
        for (i, a) in attrs.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            string(out, a.name.as_bytes());
            out.push(b' ');
            string(out, a.value.as_bytes());
        }
        out.push(b')');
    };
    out.push(b'(');
    if let Content::Multipart(parts) = &part.content {
        for p in parts {
            structure(out, p, extended);
        }
        out.push(b' ');
        let subtype = ct.and_then(|c| c.subtype()).unwrap_or("mixed");
        string(out, subtype.to_ascii_uppercase().as_bytes());
        if extended {
            out.push(b' ');
            params(out, ct);
            out.extend_from_slice(b" NIL NIL NIL");
        }
        out.push(b')');
        return;
    }
    let (ctype, subtype) = match ct {
        Some(c) => (
            c.ctype().to_ascii_uppercase(),
            c.subtype().unwrap_or("plain").to_ascii_uppercase(),
        ),
        None => ("TEXT".into(), "PLAIN".into()),
    };
    string(out, ctype.as_bytes());
    out.push(b' ');
    string(out, subtype.as_bytes());
    out.push(b' ');
    if ct.is_some_and(|c| c.attributes.as_ref().is_some_and(|a| !a.is_empty())) {
        params(out, ct);
    } else if ctype == "TEXT" {
        out.extend_from_slice(b"(\"CHARSET\" \"US-ASCII\")");
    } else {
        out.extend_from_slice(b"NIL");
    }
    let header_text = |f: for<'a> fn(&'a mail_parser::Message<'a>) -> Option<&'a str>| {
        parsed
            .as_ref()
            .and_then(|p| f(p))
            .map(|s| s.as_bytes().to_vec())
    };
    out.push(b' ');
    nstring(out, header_text(|p| p.content_id()).as_deref());
    out.push(b' ');
    nstring(out, header_text(|p| p.content_description()).as_deref());
    out.push(b' ');
    let encoding = header_text(|p| p.content_transfer_encoding())
        .map_or_else(|| b"7BIT".to_vec(), |e| e.to_ascii_uppercase());
    string(out, &encoding);
    out.extend_from_slice(format!(" {}", part.body.len()).as_bytes());
    let lines = || part.body.iter().filter(|&&b| b == b'\n').count();
    if let Content::Message(inner) = &part.content {
        out.push(b' ');
        envelope(out, inner.header);
        out.push(b' ');
        structure(out, inner, extended);
        out.extend_from_slice(format!(" {}", lines()).as_bytes());
    } else if ctype == "TEXT" {
        out.extend_from_slice(format!(" {}", lines()).as_bytes());
    }
    if extended {
        out.extend_from_slice(b" NIL ");
        match parsed.as_ref().and_then(|p| p.content_disposition()) {
            Some(d) => {
                out.push(b'(');
                string(out, d.ctype().to_ascii_uppercase().as_bytes());
                out.push(b' ');
                params(out, Some(d));
                out.push(b')');
            }
            None => out.extend_from_slice(b"NIL"),
        }
        out.extend_from_slice(b" NIL NIL");
    }
    out.push(b')');
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &[u8] = b"From: Jan <jan@partner.example>\r\nSubject: two parts\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n--b1\r\n\
Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--b1--\r\nepilogue\r\n";

    #[test]
    fn parts_are_exact_slices() {
        let tree = Part::parse(MIXED);
        assert!(tree.header.ends_with(b"\r\n\r\n"));
        let first = tree.find(&[1]).expect("part 1");
        assert_eq!(first.body, b"hello");
        assert_eq!(
            first.header,
            b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        );
        let inner = tree.find(&[2]).expect("part 2");
        assert_eq!(inner.body, b"Subject: inner\r\n\r\ninner body");
        let Content::Message(m) = &inner.content else {
            panic!("message/rfc822")
        };
        assert_eq!(m.body, b"inner body");
        assert_eq!(tree.find(&[2, 1]).expect("2.1").body, b"inner body");
        assert!(tree.find(&[3]).is_none());
        let single = Part::parse(b"Subject: x\r\n\r\nbody\r\n");
        assert_eq!(single.find(&[1]).expect("1").body, b"body\r\n");
    }

    #[test]
    fn structure_and_envelope() {
        let mut out = Vec::new();
        structure(&mut out, &Part::parse(MIXED), true);
        let text = String::from_utf8(out).expect("ascii");
        assert!(
            text.starts_with("((\"TEXT\" \"PLAIN\" (\"charset\" \"utf-8\") NIL NIL \"7BIT\" 5 0"),
            "{text}"
        );
        assert!(text.contains("\"MESSAGE\" \"RFC822\""), "{text}");
        assert!(text.contains(" \"MIXED\" (\"boundary\" \"b1\")"), "{text}");
        let mut env = Vec::new();
        envelope(&mut env, split_header(MIXED).0);
        let env = String::from_utf8(env).expect("ascii");
        assert_eq!(
            env,
            "(NIL \"two parts\" ((\"Jan\" NIL \"jan\" \"partner.example\")) ((\"Jan\" NIL \"jan\" \"partner.example\")) ((\"Jan\" NIL \"jan\" \"partner.example\")) NIL NIL NIL NIL NIL)"
        );
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for raw in [
            &b""[..],
            b"\r\n",
            b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n--x\r\n--x--",
            b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x",
            b"Content-Type: message/rfc822\r\n\r\n",
            b"no colon line\r\nContent-Type: multipart/alternative\r\n\r\n",
        ] {
            let tree = Part::parse(raw);
            let mut out = Vec::new();
            structure(&mut out, &tree, true);
            envelope(&mut out, tree.header);
            let _ = tree.find(&[1, 1, 1]);
        }
        let nested = "Content-Type: message/rfc822\r\n\r\n".repeat(100);
        let tree = Part::parse(nested.as_bytes());
        let mut out = Vec::new();
        structure(&mut out, &tree, true);
    }
}
