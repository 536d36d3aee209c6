//! Just enough HTTP/1.1 for the admin API: a bounded request-head parser and response
//! heads. Each connection carries one request (`Connection: close`).

use std::fmt::Write;

/// Largest request head accepted.
pub const MAX_HEAD: usize = 8 * 1024;

/// A parsed request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
}

/// Why a request head was refused (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad request: {0}")]
pub struct BadRequest(pub String);

/// Finds the end of the head (`\r\n\r\n`) in what was read so far.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// Parses a complete request head.
pub fn parse_head(head: &[u8]) -> Result<RequestHead, BadRequest> {
    let text =
        std::str::from_utf8(head).map_err(|_| BadRequest("request head is not UTF-8".into()))?;
    let line = text.lines().next().unwrap_or_default();
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
            (k.to_owned(), v.to_owned())
        })
        .collect();
    Ok(RequestHead {
        method: method.to_owned(),
        path: path.to_owned(),
        query,
    })
}

/// A response head with `Connection: close`.
pub fn response_head(status: u16, content_type: &str, length: u64) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
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
        for bad in [
            &b"GET\r\n\r\n"[..],
            b"GET / HTTP/2\r\n\r\n",
            b"get / HTTP/1.1\r\n\r\n",
            b"GET x HTTP/1.1\r\n\r\n",
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
    fn finds_head_end() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n"), None);
    }
}
