//! Typed SMTP replies: a code, an enhanced status code (RFC 3463) and text.

use std::fmt::Write;

/// One SMTP reply, possibly multi-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// Enhanced status code such as `5.7.1`; empty where RFC 2034 exempts the reply
    /// (greeting, EHLO).
    pub enhanced: &'static str,
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply.
    pub fn new(code: u16, enhanced: &'static str, text: impl Into<String>) -> Self {
        Self {
            code,
            enhanced,
            lines: vec![text.into()],
        }
    }

    /// A multi-line reply without enhanced codes (the EHLO response).
    pub fn multiline(code: u16, lines: Vec<String>) -> Self {
        Self {
            code,
            enhanced: "",
            lines,
        }
    }

    /// `552 5.3.4`: the message is larger than `max_message_size` (RFC 3463).
    pub fn too_big() -> Self {
        Self::new(
            552,
            "5.3.4",
            "Message size exceeds fixed maximum message size",
        )
    }

    /// `501 5.1.3`: a recipient that is not an address.
    pub fn bad_recipient() -> Self {
        Self::new(501, "5.1.3", "Bad recipient address syntax")
    }

    /// `451 4.3.0`: the message could not be stored; the sender keeps it and retries.
    pub fn not_stored() -> Self {
        Self::new(
            451,
            "4.3.0",
            "Local error in processing, message not accepted; try again later",
        )
    }

    /// Whether the reply reports a failure (4xx or 5xx).
    pub fn is_error(&self) -> bool {
        self.code >= 400
    }

    /// The reply as it goes on the wire, every line ending in CRLF.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = String::new();
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            let _ = write!(out, "{}{sep}", self.code);
            if !self.enhanced.is_empty() {
                let _ = write!(out, "{} ", self.enhanced);
            }
            // Text can carry client-chosen bytes (a HELO name); never let one end the line.
            out.extend(line.chars().map(|c| if c.is_control() { '?' } else { c }));
            out.push_str("\r\n");
        }
        out.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format() {
        assert_eq!(
            Reply::new(550, "5.7.1", "Relaying denied").to_wire(),
            b"550 5.7.1 Relaying denied\r\n"
        );
        let ehlo = Reply::multiline(
            250,
            vec!["mx".into(), "PIPELINING".into(), "SIZE 10".into()],
        );
        assert_eq!(
            ehlo.to_wire(),
            b"250-mx\r\n250-PIPELINING\r\n250 SIZE 10\r\n"
        );
        assert_eq!(
            Reply::new(250, "", "a\r\nb").to_wire(),
            b"250 a??b\r\n",
            "control characters never reach the wire"
        );
    }
}
