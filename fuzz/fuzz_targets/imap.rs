//! Fuzzes the IMAP command path of `reclaim imap`: arbitrary bytes framed into commands as
//! the connection frames them, parsed and answered by a logged-in session over up to four
//! messages that are themselves fuzzed (their MIME structure feeds BODYSTRUCTURE, part
//! fetches and text searches). Never a panic; every answer is whole lines; nothing is read
//! from the quarantine but the messages it holds.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use reclaim::imap::{Detached, Limits, Quarantine};
use reclaim::review::ReviewError;
use reclaim::review::listed::Listed;

struct Messages(Vec<(Listed, Vec<u8>)>);

impl Quarantine for Messages {
    fn list(&self) -> Result<Vec<Listed>, ReviewError> {
        Ok(self.0.iter().map(|(l, _)| l.clone()).collect())
    }
    fn read(&self, id: &str) -> Result<Vec<u8>, ReviewError> {
        self.0
            .iter()
            .find(|(l, _)| l.id == id)
            .map(|(_, m)| m.clone())
            .ok_or_else(|| ReviewError::NotFound(id.to_owned()))
    }
    fn domains(&self) -> Vec<String> {
        vec!["old.example".into()]
    }
}

/// One state directory for the whole run (the state is saved as the session goes).
fn state_dir() -> &'static std::path::Path {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        std::env::temp_dir().join(format!("reclaim-fuzz-imap-{}", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    // Messages first, separated by NUL NUL; the commands follow the last separator.
    let mut parts: Vec<&[u8]> = data.split(|&b| b == 0).collect();
    let commands = parts.pop().unwrap_or_default();
    let messages = parts
        .into_iter()
        .filter(|m| !m.is_empty())
        .take(4)
        .enumerate()
        .map(|(n, bytes)| {
            let listed = Listed {
                id: format!("0190000{n}-0000-7000-8000-000000000000"),
                received_unix: 1_800_000_000 + n as i64,
                domains: vec![if n % 2 == 0 { "old.example" } else { "x.example" }.into()],
                subject: Some(format!("message {n}")),
                from: Some("anna@partner.example".into()),
                size: bytes.len() as u64,
                ..Listed::default()
            };
            (listed, bytes.to_vec())
        })
        .collect();
    let limits = Limits {
        line_bytes: 512,
        literal_bytes: 256,
        command_bytes: 1024,
        search_decrypts: 4,
        ..Limits::default()
    };
    let mut session = Detached::new(Box::new(Messages(messages)), state_dir(), "pw", limits)
        .expect("a session");
    let (login, _) = session.feed(b"a LOGIN me pw\r\n");
    assert!(login.starts_with(b"a OK ") && login.ends_with(b"logged in\r\n"));
    let (answer, _) = session.feed(commands);
    assert!(answer.is_empty() || answer.ends_with(b"\r\n"));
});
