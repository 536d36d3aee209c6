//! Just enough HTTP/1.1 for the admin API: a bounded request-head parser and response
//! heads. Each connection carries one request (`Connection: close`), with at most a small
//! body (JSON, announced by `Content-Length`).

use std::fmt::Write;

/// Largest request head accepted, in bytes, counting its final blank line (`\r\n\r\n`):
/// a head of exactly this many bytes is read, one byte more is refused with 431.
pub const MAX_HEAD: usize = 8 * 1024;
/// Largest request body accepted: requests carry ids and a reason, never mail.
pub const MAX_BODY: usize = 256 * 1024;

/// A parsed request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    pub path: String,
    /// Query parameters, percent-decoded.
    pub query: Vec<(String, String)>,
    /// Length of the body that follows the head (0 without `Content-Length`).
    pub content_length: usize,
}

impl RequestHead {
    /// The first value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request head was refused (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad request: {0}")]
pub struct BadRequest(pub String);

/// Finds the end of the head (`\r\n\r\n`) in what was read so far.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// What the bytes read so far say about the request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadScan {
    /// The head is complete: its length, final blank line included (at most the limit).
    Complete(usize),
    /// No end yet, and the head may still end within the limit: read on.
    Incomplete,
    /// The head cannot end within `max` bytes (answered with 431).
    TooLarge,
}

/// Looks for the end of the head within the first `max` bytes of `buf` only, so that a
/// head longer than `max` is refused however the reads happened to split it.
pub fn scan_head(buf: &[u8], max: usize) -> HeadScan {
    match head_end(&buf[..buf.len().min(max)]) {
        Some(end) => HeadScan::Complete(end),
        // The end, if it ever comes, lies past `max`.
        None if buf.len() >= max => HeadScan::TooLarge,
        None => HeadScan::Incomplete,
    }
}

/// Parses a complete request head.
pub fn parse_head(head: &[u8]) -> Result<RequestHead, BadRequest> {
    let text =
        std::str::from_utf8(head).map_err(|_| BadRequest("request head is not UTF-8".into()))?;
    // Lines end in CRLF only: a bare CR or LF is refused rather than guessed at, so that no
    // other reader of the same bytes (a proxy, a capture tool) sees other fields than this one.
    let text = text
        .strip_suffix("\r\n\r\n")
        .ok_or_else(|| BadRequest("request head does not end with an empty line".into()))?;
    if text.split("\r\n").any(|line| line.contains(['\r', '\n'])) {
        return Err(BadRequest("bare CR or LF in the request head".into()));
    }
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BadRequest("malformed request line".into()));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(BadRequest("only HTTP/1.x is spoken here".into()));
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(BadRequest("malformed method".into()));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if !path.starts_with('/') {
        return Err(BadRequest("target must be an absolute path".into()));
    }
    let query = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((percent_decode(k)?, percent_decode(v)?))
        })
        .collect::<Result<_, BadRequest>>()?;
    let (mut content_length, mut chunked) = (None, false);
    for header in lines {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| BadRequest("header line without a colon".into()))?;
        // A name with spaces ("Content-Length : 5") or an obsolete folded line is refused,
        // not skipped: another reader could take it for the field it resembles.
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(BadRequest("malformed header name".into()));
        }
        if name.eq_ignore_ascii_case("content-length") {
            // Two lengths, even equal ones, mean two readers could frame the body
            // differently (RFC 9112 section 6.3): refused, as is anything but digits.
            if content_length.is_some() {
                return Err(BadRequest("more than one Content-Length".into()));
            }
            let value = value.trim_matches([' ', '\t']);
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(BadRequest("bad Content-Length".into()));
            }
            content_length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| BadRequest("bad Content-Length".into()))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = true;
        }
    }
    if chunked {
        return Err(BadRequest(if content_length.is_some() {
            "Content-Length and Transfer-Encoding together".into()
        } else {
            "send a Content-Length, not chunks".into()
        }));
    }
    Ok(RequestHead {
        method: method.to_owned(),
        path: path.to_owned(),
        query,
        content_length: content_length.unwrap_or(0),
    })
}

/// A byte of an HTTP token (RFC 9110 section 5.6.2), the syntax of a field name.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Decodes `%XX` escapes and `+` (a space in query strings); the result must be UTF-8.
pub fn percent_decode(text: &str) -> Result<String, BadRequest> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| BadRequest("bad percent escape in the query".into()))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| BadRequest("query is not UTF-8".into()))
}

/// Encodes a query value: everything but unreserved characters becomes `%XX`.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A response head with `Connection: close`.
pub fn response_head(status: u16, content_type: &str, length: u64) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        _ => "Error",
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_request_lines() {
        let head =
            parse_head(b"GET /v1/messages?limit=5&before=x HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .expect("valid");
        assert_eq!(head.method, "GET");
        assert_eq!(head.path, "/v1/messages");
        assert_eq!(
            head.query,
            vec![("limit".into(), "5".into()), ("before".into(), "x".into())]
        );
        assert_eq!(head.content_length, 0);
        let head = parse_head(
            b"POST /v1/x?reason=case%2042+%C3%A9 HTTP/1.1\r\nContent-Length: 12\r\n\r\n",
        )
        .expect("valid");
        assert_eq!(head.param("reason"), Some("case 42 é"));
        assert_eq!(head.content_length, 12);
        assert_eq!(
            percent_decode(&percent_encode("a b&c=d/é%")),
            Ok("a b&c=d/é%".into())
        );
        for bad in [
            &b"GET\r\n\r\n"[..],
            b"GET / HTTP/2\r\n\r\n",
            b"get / HTTP/1.1\r\n\r\n",
            b"GET x HTTP/1.1\r\n\r\n",
            b"GET /?a=%zz HTTP/1.1\r\n\r\n",
            b"GET /?a=%ff HTTP/1.1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"\xff\r\n\r\n",
            b"",
        ] {
            assert!(
                parse_head(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn content_length_is_unambiguous() {
        for bad in [
            &b"GET / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nContent-Length: 2\r\ncontent-LENGTH: 7\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: +2\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length : 2\r\n\r\n",
            b"POST / HTTP/1.1\r\nX: a\r\n Content-Length: 2\r\n\r\n",
            b"POST / HTTP/1.1\r\nno colon\r\n\r\n",
            b"POST / HTTP/1.1\r\nX: a\nContent-Length: 2\r\n\r\n",
            b"POST / HTTP/1.1\r\nX: a\rContent-Length: 2\r\n\r\n",
            b"GET / HTTP/1.1\r\n",
        ] {
            assert!(
                parse_head(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let head = parse_head(b"POST / HTTP/1.1\r\ncontent-length:\t7 \r\n\r\n").expect("valid");
        assert_eq!(head.content_length, 7);
        let head = parse_head(b"GET / HTTP/1.1\r\nX-Empty:\r\n\r\n").expect("valid");
        assert_eq!(head.content_length, 0);
    }

    #[test]
    fn head_limit_is_exact_however_reads_split_it() {
        let head = |len: usize| {
            let mut head = b"GET / HTTP/1.1\r\nX: ".to_vec();
            head.resize(len - 4, b'a');
            head.extend_from_slice(b"\r\n\r\n");
            head
        };
        let max = 64;
        let exact = head(max);
        let over = head(max + 1);
        // Every way the bytes could arrive: grow the buffer one read at a time, each read
        // of any size up to well past the limit, as the server does.
        for read in 1..=max + 16 {
            let scan = |bytes: &[u8]| {
                let mut buf = Vec::new();
                for piece in bytes.chunks(read) {
                    buf.extend_from_slice(piece);
                    match scan_head(&buf, max) {
                        HeadScan::Incomplete => {}
                        done => return done,
                    }
                }
                HeadScan::Incomplete
            };
            assert_eq!(scan(&exact), HeadScan::Complete(max), "reads of {read}");
            assert_eq!(scan(&over), HeadScan::TooLarge, "reads of {read}");
            // A body read together with the head does not count against it.
            let mut with_body = exact.clone();
            with_body.extend_from_slice(&[b'b'; 100]);
            assert_eq!(scan(&with_body), HeadScan::Complete(max), "reads of {read}");
        }
        assert!(parse_head(&exact).is_ok());
        assert_eq!(scan_head(b"GET / HTTP/1.1\r\n", max), HeadScan::Incomplete);
    }

    #[test]
    fn finds_head_end() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n"), None);
    }
}
