//! IMAP response text: strings quoted or sent as literals, NIL, and the tagged and untagged
//! status lines every command ends with.

/// Longest string sent quoted; longer ones go as literals.
const MAX_QUOTED_LEN: usize = 256;

/// `bytes` as an IMAP string: quoted when it is short printable ASCII, else a literal.
pub fn string(out: &mut Vec<u8>, bytes: &[u8]) {
    let quotable = bytes.len() <= MAX_QUOTED_LEN && bytes.iter().all(|b| (0x20..0x7f).contains(b));
    if quotable {
        out.push(b'"');
        for &b in bytes {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        literal(out, bytes);
    }
}

/// `bytes` as a literal: `{n}` CRLF and the bytes, whatever they hold.
pub fn literal(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", bytes.len()).as_bytes());
    out.extend_from_slice(bytes);
}

/// A string or `NIL`.
pub fn nstring(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => string(out, b),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// A tagged status line: `tag OK text`.
pub fn tagged(out: &mut Vec<u8>, tag: &str, status: Status, text: &str) {
    out.extend_from_slice(format!("{tag} {} {text}\r\n", status.word()).as_bytes());
}

/// An untagged line: `* text`.
pub fn untagged(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(format!("* {text}\r\n").as_bytes());
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_quoted_or_literal() {
        let mut out = Vec::new();
        string(&mut out, br#"a "b" \c"#);
        assert_eq!(out, br#""a \"b\" \\c""#);
        out.clear();
        string(&mut out, "bücher".as_bytes());
        assert_eq!(out, "{7}\r\nbücher".as_bytes());
        out.clear();
        string(&mut out, b"two\r\nlines");
        assert_eq!(out, b"{10}\r\ntwo\r\nlines");
        out.clear();
        nstring(&mut out, None);
        assert_eq!(out, b"NIL");
    }
}
