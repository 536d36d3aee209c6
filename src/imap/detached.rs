//! One session driven without a socket, for the fuzzer: a byte stream framed into
//! commands exactly as the connection frames it (lines, then literals within the limits),
//! each parsed and answered by the same [`Session`]. IDLE and an AUTHENTICATE waiting for
//! its response are answered as the connection would begin them, with nothing to wait for.

use std::path::Path;
use std::sync::Arc;

use super::connection::literal_at_end;
use super::parser::{self, Command};
use super::session::Session;
use super::{ImapError, Limits, Quarantine, Server, mailbox, state};

#[doc(hidden)]
pub struct Detached {
    session: Session,
    limits: Limits,
}

impl Detached {
    /// A session over `quarantine` with its state in `state_dir`; `password` logs in.
    pub fn new(
        quarantine: Box<dyn Quarantine>,
        state_dir: &Path,
        password: &str,
        limits: Limits,
    ) -> Result<Self, ImapError> {
        let state = state::State::load(state_dir)?;
        let server = Arc::new(Server {
            store: mailbox::Store::new(quarantine, state, limits.listing_fresh),
            password: password.to_owned(),
            limits,
        });
        Ok(Self {
            session: Session::new(server),
            limits,
        })
    }

    /// Answers every command in `input`; the bytes the client would read, and whether
    /// the session ended (LOGOUT, too many failed logins).
    pub fn feed(&mut self, mut input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        while !input.is_empty() {
            let (command, rest) = frame(input, &self.limits);
            input = rest;
            let parsed = match parser::parse(command) {
                Ok(parsed) => parsed,
                Err(e) => {
                    let tag = e.tag.unwrap_or_else(|| "*".into());
                    let reason = e.reason.replace(['\r', '\n'], " ");
                    out.extend_from_slice(format!("{tag} BAD {reason}\r\n").as_bytes());
                    continue;
                }
            };
            let waits = match &parsed.command {
                Command::Idle => self.session.authenticated(),
                Command::Authenticate { initial: None, .. } => !self.session.authenticated(),
                _ => false,
            };
            if waits {
                out.extend_from_slice(b"+ \r\n");
                continue;
            }
            let reply = self.session.handle(parsed, &mut |piece| out.extend(piece));
            out.extend_from_slice(&reply.bytes);
            if reply.close {
                return (out, true);
            }
        }
        (out, false)
    }
}

/// The first command of `input` (its line and the literals it announces, as far as they
/// fit the limits and the input), and the rest.
fn frame<'a>(input: &'a [u8], limits: &Limits) -> (&'a [u8], &'a [u8]) {
    let mut end = 0;
    loop {
        let line_end = match input[end..].iter().position(|&b| b == b'\n') {
            Some(p) => end + p + 1,
            None => return (input, &[]),
        };
        match literal_at_end(&input[end..line_end]) {
            Some((n, _))
                if n <= limits.literal_bytes
                    && line_end.saturating_add(n) <= limits.command_bytes.min(input.len()) =>
            {
                end = line_end + n;
            }
            _ => return input.split_at(line_end),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::ReviewError;
    use crate::review::listed::Listed;

    struct One;

    impl Quarantine for One {
        fn list(&self) -> Result<Vec<Listed>, ReviewError> {
            Ok(vec![Listed {
                id: "m1".into(),
                domains: vec!["old.example".into()],
                size: 24,
                ..Listed::default()
            }])
        }
        fn read(&self, _: &str) -> Result<Vec<u8>, ReviewError> {
            Ok(b"Subject: hi\r\n\r\nbody\r\n".to_vec())
        }
        fn domains(&self) -> Vec<String> {
            vec!["old.example".into()]
        }
    }

    #[test]
    fn a_stream_is_framed_as_the_connection_frames_it() {
        let dir = tempfile::tempdir().expect("dir");
        let mut d =
            Detached::new(Box::new(One), dir.path(), "pw", Limits::default()).expect("session");
        let (out, closed) = d.feed(
            b"a LOGIN {2}\r\nme {2}\r\npw\r\nb IDLE\r\nc SELECT INBOX\r\n\
              d FETCH 1 BODY.PEEK[TEXT]\r\ne LOGIN {99}\r\nf LOGOUT\r\ng NOOP\r\n",
        );
        let out = String::from_utf8(out).expect("utf8");
        assert!(out.contains("a OK [CAPABILITY"), "{out}");
        assert!(out.contains("+ \r\n* FLAGS"), "IDLE begins: {out}");
        assert!(out.contains("BODY[TEXT] {6}\r\nbody\r\n"), "{out}");
        assert!(out.contains("e BAD"), "a literal that never came: {out}");
        assert!(
            closed && out.ends_with("f OK LOGOUT completed\r\n"),
            "{out}"
        );
    }
}
