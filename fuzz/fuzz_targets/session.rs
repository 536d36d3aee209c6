//! Fuzzes the SMTP session state machine: arbitrary bytes, fed in arbitrary pieces, must
//! never panic, must keep memory bounded, and must never store a message unless a
//! transaction with a valid recipient was completed.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use reclaim::config::Limits;
use reclaim::domains::RetiredDomains;
use reclaim::smtp::{Action, Session, SessionConfig, StoreOutcome};
use reclaim::summary::TlsInfo;

fuzz_target!(|data: &[u8]| {
    // First byte picks the piece size, so the fuzzer explores chunk boundaries too.
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    let piece = usize::from(split % 64) + 1;
    let config = Arc::new(SessionConfig {
        hostname: "mx.old.example".into(),
        limits: Limits {
            max_message_size: 4096,
            max_recipients: 5,
            max_line_length: 512,
            ..Limits::default()
        },
        domains: RetiredDomains::new(["old.example", "*.retired.example"]).expect("domains"),
        tls_available: true,
    });
    let mut session = Session::new(config, "192.0.2.1".parse().expect("ip"), None);
    let mut pieces = input.chunks(piece);
    let mut in_message = false;
    let mut message_bytes = 0usize;
    for _ in 0..1_000_000 {
        match session.poll() {
            Action::Reply(reply) => assert!((200..600).contains(&reply.code)),
            Action::NeedInput { .. } => match pieces.next() {
                Some(p) => session.receive(p),
                None => return,
            },
            Action::StartTls => session.tls_established(TlsInfo { version: "TLSv1.3".into(), cipher: "x".into() }),
            Action::MessageStart(envelope) => {
                assert!(!envelope.rcpt_to.is_empty());
                in_message = true;
                message_bytes = 0;
            }
            Action::MessageData(bytes) => {
                assert!(in_message);
                message_bytes += bytes.len();
                assert!(message_bytes <= 4096, "size limit not enforced");
            }
            Action::MessageAbort => in_message = false,
            Action::MessageEnd(summary) => {
                assert!(in_message && !summary.rcpt_to.is_empty());
                in_message = false;
                session.message_stored(StoreOutcome::Stored { id: "x".into() });
            }
            Action::Close => return,
        }
    }
    panic!("session made no progress");
});
