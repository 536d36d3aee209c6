//! The DATA body decoder: finds the end of data and removes dot-stuffing (RFC 5321 4.5.2).
//!
//! Only `CRLF . CRLF` ends the body. A bare LF or bare CR never starts a line, so inputs such
//! as `LF . LF` or `CRLF . LF` stay inside the message and cannot smuggle a second one.

/// Where the decoder stands relative to line boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Just after CRLF (or at the very start of the body).
    LineStart,
    /// A `.` at line start was seen and held back.
    Dot,
    /// `.` CR at line start was seen and held back.
    DotCr,
    /// Inside a line.
    Middle,
    /// A CR inside a line was seen (and emitted); an LF next makes a line end.
    Cr,
}

/// Streaming DATA decoder. Feed it the bytes after the 354 reply in pieces of any size.
#[derive(Debug, Clone)]
pub struct DataDecoder {
    position: Position,
}

impl Default for DataDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl DataDecoder {
    /// A decoder at the start of a body, which counts as a line start: `.` CRLF right away
    /// is an empty message.
    pub fn new() -> Self {
        Self {
            position: Position::LineStart,
        }
    }

    /// Decodes `input`, appending message bytes to `out`. Returns `Some(n)` when the end
    /// of data was found, `n` being how many input bytes the body used (terminator
    /// included); the rest belongs to the next command. `None` when all input was used.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        let mut i = 0;
        while i < input.len() {
            if self.position == Position::Middle {
                // Fast path: copy up to the next CR in one go.
                let rest = &input[i..];
                match rest.iter().position(|&b| b == b'\r') {
                    Some(offset) => {
                        out.extend_from_slice(&rest[..=offset]);
                        i += offset + 1;
                        self.position = Position::Cr;
                        continue;
                    }
                    None => {
                        out.extend_from_slice(rest);
                        return None;
                    }
                }
            }
            let byte = input[i];
            i += 1;
            self.position = match (self.position, byte) {
                (Position::LineStart, b'.') => Position::Dot,
                (Position::Dot, b'\r') => Position::DotCr,
                (Position::DotCr, b'\n') => {
                    self.position = Position::LineStart;
                    return Some(i);
                }
                // The held dot was stuffing; the held CR was content.
                (Position::DotCr, b) => {
                    out.push(b'\r');
                    Self::after_cr(b, out)
                }
                (Position::Cr, b) => Self::after_cr(b, out),
                (_, b'\r') => {
                    out.push(b'\r');
                    Position::Cr
                }
                (_, b) => {
                    out.push(b);
                    Position::Middle
                }
            };
        }
        None
    }

    fn after_cr(byte: u8, out: &mut Vec<u8>) -> Position {
        out.push(byte);
        match byte {
            b'\n' => Position::LineStart,
            b'\r' => Position::Cr,
            _ => Position::Middle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in chunks of `chunk` bytes; returns (body, bytes used) if it ended.
    fn decode(input: &[u8], chunk: usize) -> (Vec<u8>, Option<usize>) {
        let mut d = DataDecoder::new();
        let mut out = Vec::new();
        let mut offset = 0;
        for piece in input.chunks(chunk) {
            if let Some(n) = d.feed(piece, &mut out) {
                return (out, Some(offset + n));
            }
            offset += piece.len();
        }
        (out, None)
    }

    #[test]
    fn table() {
        let cases: &[(&[u8], &[u8], Option<usize>)] = &[
            (b".\r\n", b"", Some(3)),
            (b"hello\r\n.\r\n", b"hello\r\n", Some(10)),
            (b"..leading\r\n.\r\n", b".leading\r\n", Some(14)),
            (b"a\r\n..\r\n.\r\nMAIL", b"a\r\n.\r\n", Some(10)),
            (b"a\n.\nb\r\n.\r\n", b"a\n.\nb\r\n", Some(10)),
            (b"a\r\n.\nb\r\n.\r\n", b"a\r\n\nb\r\n", Some(11)),
            (b"a\n.\r\nb\r\n.\r\n", b"a\n.\r\nb\r\n", Some(11)),
            (b"a\r.\rb\r\n.\r\n", b"a\r.\rb\r\n", Some(10)),
            (b"a\r\n.\rb\r\n.\r\n", b"a\r\n\rb\r\n", Some(11)),
            (b"a\r\r\n.\r\n", b"a\r\r\n", Some(7)),
            (b"\x00\xff\r\n.\r\n", b"\x00\xff\r\n", Some(7)),
            (b"no end\r\n", b"no end\r\n", None),
        ];
        for (input, body, used) in cases {
            for chunk in [1, 2, 3, 7, input.len().max(1)] {
                let (out, n) = decode(input, chunk);
                assert_eq!(
                    (&out[..], n),
                    (&body[..], *used),
                    "input {:?} in chunks of {chunk}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }
}
