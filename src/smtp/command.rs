//! A command line as the client sent it: refused before parsing when it holds what no
//! command may, and the path of MAIL and RCPT exactly as written.
//!
//! smtp-proto drops every CR inside a line (also inside a quoted local part), replaces
//! invalid UTF-8 with U+FFFD, takes NUL and DEL as address characters and strips the quotes
//! of a quoted local part. Each of those would store, trace and notify an address other than
//! the one sent, so the line is checked here first and the parser's address compared with it.

use super::reply::Reply;

/// Why a command line is refused before it is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("invalid UTF-8 in command")]
    InvalidUtf8,
    #[error("control character in command")]
    Control,
}

/// The command line without its line end, as text.
///
/// LF ends a command line with or without the CR before it (the session splits there, and
/// the parser stops there too), so both endings are one and the same line. A CR anywhere
/// else, any other C0 or C1 control, DEL or invalid UTF-8 refuses the whole line: it can
/// neither vanish from an address nor pass for a line end.
pub fn text(line: &[u8]) -> Result<&str, LineError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = std::str::from_utf8(line).map_err(|_| LineError::InvalidUtf8)?;
    if text.chars().any(char::is_control) {
        return Err(LineError::Control);
    }
    Ok(text)
}

/// The reply to a line [`text`] refused: the syntax error of the command it names.
pub fn refusal(line: &[u8], error: LineError) -> Reply {
    let verb: Vec<u8> = line
        .iter()
        .take_while(|b| b.is_ascii_alphabetic())
        .map(u8::to_ascii_uppercase)
        .collect();
    match verb.as_slice() {
        b"MAIL" => Reply::new(501, "5.1.7", format!("Bad sender address syntax: {error}")),
        b"RCPT" => Reply::new(
            501,
            "5.1.3",
            format!("Bad recipient address syntax: {error}"),
        ),
        b"EHLO" | b"HELO" => Reply::new(501, "5.5.4", format!("Syntax: {error}")),
        _ => Reply::new(500, "5.5.2", format!("Syntax error: {error}")),
    }
}

/// The address of a MAIL or RCPT line to keep, given the one the parser made of `text`.
///
/// The parser's address is kept when it is the path as written (without a source route).
/// A quoted local part must hold the address the parser read out of it; it is kept as
/// written, quotes and backslashes included, when it needs them: unquoted,
/// `"jan de vries"@x` would be `jan de vries@x`, which is no address at all. One that does
/// not (`"jan"@x`) is the same mailbox as its dot-string (RFC 5321 4.1.2) and is kept in
/// that form, so that rules on local parts (`MAILER-DAEMON`, `owner-`) see it as one. Any
/// other difference (`<postmaster>` read as `<>`, a stray quote inside a local part) gives
/// `None`: the address is refused, never altered.
pub fn as_sent(parsed: &str, text: &str) -> Option<String> {
    let written = written_path(text)?;
    if written == parsed {
        return Some(parsed.to_owned());
    }
    let (quoted, domain) = split_quoted(written)?;
    let local = unquote(quoted);
    if format!("{local}@{domain}") != parsed {
        return None;
    }
    Some(match is_dot_string(&local) {
        true => parsed.to_owned(),
        false => written.to_owned(),
    })
}

/// Whether a local part can be written without quotes: atoms of atext (RFC 5321 4.1.2,
/// with UTF-8 as RFC 6531 allows) joined by single dots.
fn is_dot_string(local: &str) -> bool {
    local.split('.').all(|atom| {
        !atom.is_empty()
            && atom.chars().all(|c| {
                c.is_ascii_alphanumeric() || !c.is_ascii() || "!#$%&'*+-/=?^_`{|}~".contains(c)
            })
    })
}

/// The path between `<` and `>` as written: surrounding spaces and a source route
/// (`@a,@b:`, which RFC 5321 4.1.1.3 says to ignore) left out. `None` if there is none.
fn written_path(text: &str) -> Option<&str> {
    let (_, rest) = text.split_once(':')?;
    let rest = rest.trim_start_matches(' ').strip_prefix('<')?;
    let mut quoted = false;
    let mut escaped = false;
    let (end, _) = rest.char_indices().find(|&(_, c)| {
        if escaped {
            escaped = false;
            return false;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' => return !quoted,
            _ => {}
        }
        false
    })?;
    let path = rest[..end].trim_matches(' ');
    Some(match path.strip_prefix('@') {
        Some(_) => path.split_once(':').map_or(path, |(_, mailbox)| mailbox),
        None => path,
    })
}

/// A mailbox whose whole local part is one quoted string: (the quoted string, the domain).
fn split_quoted(mailbox: &str) -> Option<(&str, &str)> {
    let inner = mailbox.strip_prefix('"')?;
    let mut escaped = false;
    let (close, _) = inner.char_indices().find(|&(_, c)| {
        if escaped {
            escaped = false;
            return false;
        }
        escaped = c == '\\';
        c == '"'
    })?;
    let domain = inner[close + 1..].strip_prefix('@')?;
    if domain.is_empty() || domain.contains(['"', '\\', '@']) {
        return None;
    }
    Some((&mailbox[..close + 2], domain))
}

/// A quoted string's content: quotes removed, each quoted pair (`\x`) read as `x`.
fn unquote(quoted: &str) -> String {
    let inner = quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or(quoted);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ends_and_controls() {
        assert_eq!(text(b"NOOP\r\n"), Ok("NOOP"));
        assert_eq!(text(b"NOOP\n"), Ok("NOOP"));
        assert_eq!(
            text("EHLO bücher.example\r\n".as_bytes()),
            Ok("EHLO bücher.example")
        );
        for bad in [
            &b"NOOP\r\r\n"[..],
            b"NO\rOP\r\n",
            b"NOOP \x00\r\n",
            b"NOOP\t\r\n",
            b"NOOP \x7f\r\n",
            b"NOOP \xc2\x9b\r\n",
        ] {
            assert_eq!(text(bad), Err(LineError::Control), "{bad:?}");
        }
        assert_eq!(text(b"NOOP \xff\r\n"), Err(LineError::InvalidUtf8));
    }

    #[test]
    fn paths_as_written() {
        assert_eq!(
            as_sent("a@b.example", "MAIL FROM: < a@b.example > SIZE=10").as_deref(),
            Some("a@b.example")
        );
        assert_eq!(
            as_sent(
                "a@b.example",
                "RCPT TO:<@relay.example,@x.example:a@b.example>"
            )
            .as_deref(),
            Some("a@b.example")
        );
        assert_eq!(
            as_sent("j an@b.example", r#"MAIL FROM:<"j an"@b.example>"#).as_deref(),
            Some(r#""j an"@b.example"#)
        );
        assert_eq!(
            as_sent(r#"j"a>n@b.example"#, r#"MAIL FROM:<"j\"a>n"@b.example>"#).as_deref(),
            Some(r#""j\"a>n"@b.example"#)
        );
        assert_eq!(
            as_sent(
                "MAILER-DAEMON@b.example",
                r#"MAIL FROM:<"MAILER-DAEMON"@b.example>"#
            )
            .as_deref(),
            Some("MAILER-DAEMON@b.example"),
            "a quoted dot-string is its dot-string"
        );
        assert_eq!(
            as_sent("j..an@b.example", r#"MAIL FROM:<"j..an"@b.example>"#).as_deref(),
            Some(r#""j..an"@b.example"#)
        );
        assert_eq!(as_sent("", "MAIL FROM:<>").as_deref(), Some(""));
        assert_eq!(as_sent("", "MAIL FROM:<postmaster>"), None);
        assert_eq!(
            as_sent(
                "jde vries@b.example",
                r#"MAIL FROM:<j"de vries"@b.example>"#
            ),
            None
        );
        assert_eq!(as_sent("a@b.example", "MAIL FROM:<a@c.example>"), None);
        assert_eq!(as_sent("a@b.example", "MAIL FROM:a@b.example"), None);
    }
}
