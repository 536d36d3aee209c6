//! Table tests for the session: scripted input, fed whole and in awkward chunks.

use super::*;
use crate::capacity::StorageState;
use crate::config::Limits;

fn config(limits: Limits, tls: bool) -> Arc<SessionConfig> {
    Arc::new(SessionConfig {
        hostname: "mx.old.example".into(),
        limits,
        domains: RetiredDomains::new(["old.example", "*.retired.example"]).expect("domains"),
        tls_available: tls,
        storage: Arc::default(),
    })
}

/// Plays the driver: feeds input, answers store requests, records what happened.
struct Run {
    wire: String,
    stored: Vec<(Summary, Vec<u8>)>,
    /// The envelope of every message start.
    envelopes: Vec<Envelope>,
    aborted: usize,
    closed: bool,
    starttls: bool,
}

fn run_with(cfg: Arc<SessionConfig>, input: &[u8], chunk: usize) -> Run {
    let mut session = Session::new(cfg, "192.0.2.1".parse().expect("ip"), None);
    let mut run = Run {
        wire: String::new(),
        stored: Vec::new(),
        envelopes: Vec::new(),
        aborted: 0,
        closed: false,
        starttls: false,
    };
    let mut current: Option<Vec<u8>> = None;
    let mut chunks = input.chunks(chunk.max(1));
    loop {
        match session.poll() {
            Action::Reply(r) => run.wire.push_str(&String::from_utf8_lossy(&r.to_wire())),
            Action::NeedInput { .. } => match chunks.next() {
                Some(piece) => session.receive(piece),
                None => return run,
            },
            Action::StartTls => {
                run.starttls = true;
                session.tls_established(TlsInfo {
                    version: "TLSv1.3".into(),
                    cipher: "X".into(),
                });
            }
            Action::MessageStart(envelope) => {
                run.envelopes.push(*envelope);
                current = Some(Vec::new());
            }
            Action::MessageData(bytes) => current.as_mut().expect("message started").extend(bytes),
            Action::MessageAbort => {
                run.aborted += 1;
                current = None;
            }
            Action::MessageEnd(summary) => {
                let body = current.take().expect("message started");
                run.stored.push((*summary, body));
                session.message_stored(StoreOutcome::Stored {
                    id: format!("ID{}", run.stored.len()),
                });
            }
            Action::Close => {
                run.closed = true;
                return run;
            }
        }
    }
}

/// Runs `input` whole and in chunks of 1, 2, 3 and 7 bytes; all must behave the same.
fn run(input: &[u8]) -> Run {
    run_limits(input, Limits::default())
}

fn run_limits(input: &[u8], limits: Limits) -> Run {
    let cfg = config(limits, false);
    let whole = run_with(cfg.clone(), input, input.len());
    for chunk in [1, 2, 3, 7] {
        let other = run_with(cfg.clone(), input, chunk);
        assert_eq!(
            other.wire, whole.wire,
            "chunks of {chunk} changed the replies"
        );
        assert_eq!(
            other.stored, whole.stored,
            "chunks of {chunk} changed what was stored"
        );
    }
    whole
}

fn codes(wire: &str) -> Vec<&str> {
    wire.lines()
        .filter(|l| l.as_bytes().get(3) == Some(&b' '))
        .map(|l| &l[..3])
        .collect()
}

const HELLO: &str = "EHLO client.example\r\n";

#[test]
fn pipelined_transaction_is_stored_exactly() {
    let input = format!(
        "{HELLO}MAIL FROM:<a@partner.example>\r\nRCPT TO:<Jan@OLD.example>\r\nRCPT TO:<x@a.b.retired.example>\r\nDATA\r\n\
         Subject: hi\r\n\r\n..dot line\r\nbody\r\n.\r\nQUIT\r\n"
    );
    let r = run(input.as_bytes());
    assert_eq!(
        codes(&r.wire),
        ["250", "250", "250", "250", "354", "250", "221"]
    );
    assert!(r.wire.contains("250 2.0.0 Ok: queued as ID1"));
    assert_eq!(r.stored.len(), 1);
    let (summary, body) = &r.stored[0];
    assert_eq!(body, b"Subject: hi\r\n\r\n.dot line\r\nbody\r\n");
    assert_eq!(summary.mail_from, "a@partner.example");
    assert_eq!(
        summary.rcpt_to,
        ["Jan@OLD.example", "x@a.b.retired.example"]
    );
    assert_eq!(summary.subject.as_deref(), Some("hi"));
    assert_eq!(summary.helo, "client.example");
    assert!(r.closed);
}

#[test]
fn recipients_carry_their_disposition_from_rcpt_time() {
    let input = format!(
        "{HELLO}MAIL FROM:<a@partner.example>\r\nRCPT TO:<Jan@OLD.example>\r\n\
         RCPT TO:<nobody@elsewhere.example>\r\nRCPT TO:<x@a.b.retired.example>\r\n\
         RCPT TO:<Postmaster>\r\nRCPT TO:<Jan@OLD.example>\r\nDATA\r\nx\r\n.\r\n"
    );
    let r = run(input.as_bytes());
    assert_eq!(
        codes(&r.wire),
        [
            "250", "250", "250", "550", "250", "250", "250", "354", "250"
        ],
        "{}",
        r.wire
    );
    let [envelope] = r.envelopes.as_slice() else {
        panic!("one message start, got {}", r.envelopes.len());
    };
    assert_eq!(
        envelope.client_ip,
        "192.0.2.1".parse::<IpAddr>().expect("ip")
    );
    let recorded: Vec<(&str, &str)> = envelope
        .recipients
        .iter()
        .map(|r| (r.address.as_str(), r.retired_domain()))
        .collect();
    assert_eq!(
        recorded,
        [
            ("Jan@OLD.example", "old.example"),
            ("x@a.b.retired.example", "retired.example"),
            ("postmaster", "postmaster"),
        ]
    );
    let jan = envelope.recipients[0]
        .disposition
        .as_ref()
        .expect("retired");
    assert_eq!(jan.mode, Mode::default());
    assert_eq!(
        r.stored[0].0.rcpt_to.len(),
        3,
        "the summary lists the same three"
    );
}

#[test]
fn ehlo_advertises_extensions() {
    let r = run(HELLO.as_bytes());
    for ext in [
        "PIPELINING",
        "SIZE 26214400",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "CHUNKING",
    ] {
        assert!(r.wire.contains(ext), "{ext} missing in {}", r.wire);
    }
    assert!(
        !r.wire.contains("STARTTLS"),
        "no STARTTLS without a certificate"
    );
    let with_tls = run_with(config(Limits::default(), true), HELLO.as_bytes(), 100);
    assert!(with_tls.wire.contains("250-STARTTLS"));
}

#[test]
fn empty_message_and_null_sender() {
    let r =
        run(format!("{HELLO}MAIL FROM:<>\r\nRCPT TO:<a@old.example>\r\nDATA\r\n.\r\n").as_bytes());
    assert_eq!(codes(&r.wire), ["250", "250", "250", "354", "250"]);
    assert_eq!(r.stored[0].1, b"");
    assert_eq!(r.stored[0].0.mail_from, "");
}

#[test]
fn relaying_is_refused() {
    let r = run(
        format!(
            "{HELLO}MAIL FROM:<a@b.example>\r\nRCPT TO:<victim@gmail.example>\r\nRCPT TO:<a@old.example.evil>\r\n\
             RCPT TO:<a@[127.0.0.1]>\r\nRCPT TO:<a%b@old.example@evil.example>\r\nRCPT TO:<postmaster>\r\n"
        )
        .as_bytes(),
    );
    // Address literals and source routes are not even valid syntax (501); nothing is relayed.
    assert_eq!(
        codes(&r.wire),
        ["250", "250", "550", "550", "501", "501", "250"]
    );
    assert!(r.wire.contains("550 5.7.1"));
}

#[test]
fn order_of_commands_is_enforced() {
    let r = run(b"MAIL FROM:<a@b.example>\r\nHELO x\r\nRCPT TO:<a@old.example>\r\nDATA\r\nMAIL FROM:<a@b.example>\r\nDATA\r\nMAIL FROM:<c@d.example>\r\n");
    assert_eq!(
        codes(&r.wire),
        ["503", "250", "503", "503", "250", "554", "503"]
    );
}

#[test]
fn too_many_recipients() {
    let limits = Limits {
        max_recipients: 2,
        ..Limits::default()
    };
    let input = format!(
        "{HELLO}MAIL FROM:<a@b.example>\r\nRCPT TO:<1@old.example>\r\nRCPT TO:<2@old.example>\r\nRCPT TO:<3@old.example>\r\n"
    );
    let r = run_limits(input.as_bytes(), limits);
    assert_eq!(codes(&r.wire), ["250", "250", "250", "250", "452"]);
    assert!(r.wire.contains("452 4.5.3"));
}

#[test]
fn declared_size_over_limit() {
    let limits = Limits {
        max_message_size: 4096,
        ..Limits::default()
    };
    let r = run_limits(
        format!("{HELLO}MAIL FROM:<a@b.example> SIZE=5000\r\n").as_bytes(),
        limits,
    );
    assert!(
        r.wire
            .ends_with("552 5.3.4 Message size exceeds fixed maximum message size\r\n")
    );
}

#[test]
fn oversize_data_is_discarded_then_refused_and_session_continues() {
    let limits = Limits {
        max_message_size: 4096,
        ..Limits::default()
    };
    let big = "x".repeat(100) + "\r\n";
    let input = format!(
        "{HELLO}MAIL FROM:<a@b.example> SIZE=100\r\nRCPT TO:<a@old.example>\r\nDATA\r\n{}.\r\nNOOP\r\n",
        big.repeat(60)
    );
    let r = run_limits(input.as_bytes(), limits);
    assert_eq!(codes(&r.wire), ["250", "250", "250", "354", "552", "250"]);
    assert!(r.stored.is_empty());
    assert_eq!(r.aborted, 1);
}

#[test]
fn smuggled_end_of_data_stays_in_the_message() {
    for fake_end in ["\n.\n", "\r\n.\n", "\n.\r\n", "\r.\r\n", "\r\n.\r"] {
        let input = format!(
            "{HELLO}MAIL FROM:<a@b.example>\r\nRCPT TO:<a@old.example>\r\nDATA\r\nfirst{fake_end}MAIL FROM:<evil@x.example>\r\nRCPT TO:<b@old.example>\r\nDATA\r\nsmuggled\r\n.\r\n"
        );
        let r = run(input.as_bytes());
        assert_eq!(r.stored.len(), 1, "fake end {fake_end:?} split the message");
        let body = String::from_utf8_lossy(&r.stored[0].1).into_owned();
        assert!(
            body.contains("MAIL FROM:<evil@x.example>"),
            "{fake_end:?}: {body:?}"
        );
        assert_eq!(codes(&r.wire), ["250", "250", "250", "354", "250"]);
    }
}

#[test]
fn bdat_chunks_and_pipelining() {
    let input = format!(
        "{HELLO}MAIL FROM:<a@b.example>\r\nRCPT TO:<a@old.example>\r\nBDAT 5\r\nAB\r\nCBDAT 3 LAST\r\n.\r\nNOOP\r\n"
    );
    let r = run(input.as_bytes());
    assert_eq!(codes(&r.wire), ["250", "250", "250", "250", "250", "250"]);
    assert!(r.wire.contains("250 2.0.0 5 octets received"));
    assert_eq!(
        r.stored[0].1, b"AB\r\nC.\r\n",
        "BDAT data is binary: no unstuffing"
    );
}

#[test]
fn bdat_without_transaction_consumes_its_data() {
    let r = run(format!("{HELLO}BDAT 10 LAST\r\nQUIT\r\nQUITNOOP\r\n").as_bytes());
    assert_eq!(codes(&r.wire), ["250", "503", "250"], "{}", r.wire);
    assert!(r.stored.is_empty());
}

#[test]
fn bdat_over_limit_closes() {
    let limits = Limits {
        max_message_size: 4096,
        ..Limits::default()
    };
    let r = run_limits(
        format!(
            "{HELLO}MAIL FROM:<a@b.example>\r\nRCPT TO:<a@old.example>\r\nBDAT 999999999999\r\n"
        )
        .as_bytes(),
        limits,
    );
    assert!(
        r.wire
            .ends_with("552 5.3.4 Message size exceeds fixed maximum message size\r\n")
    );
    assert!(r.closed);
}

#[test]
fn too_many_hops() {
    let headers = "Received: from x by y; Sun, 29 Nov 2026 06:00:00 +0000\r\n".repeat(101);
    let input = format!(
        "{HELLO}MAIL FROM:<a@b.example>\r\nRCPT TO:<a@old.example>\r\nDATA\r\n{headers}\r\nbody\r\n.\r\n"
    );
    let r = run(input.as_bytes());
    assert!(
        r.wire
            .ends_with("554 5.4.6 Too many hops (Received header fields), routing loop?\r\n")
    );
    assert!(r.stored.is_empty());
    let ok = format!(
        "{HELLO}MAIL FROM:<a@b.example>\r\nRCPT TO:<a@old.example>\r\nDATA\r\n{}\r\nbody\r\n.\r\n",
        "Received: x\r\n".repeat(100)
    );
    assert_eq!(run(ok.as_bytes()).stored.len(), 1);
}

#[test]
fn errors_are_counted_and_end_the_session() {
    let limits = Limits {
        max_errors: 3,
        ..Limits::default()
    };
    let r = run_limits(
        b"FOO\r\n\x00\xff\xfe\r\nRCPT TO:<a@old.example>\r\nNOOP\r\n",
        limits,
    );
    assert_eq!(codes(&r.wire), ["500", "500", "503", "421"]);
    assert!(r.closed);
}

#[test]
fn long_lines_are_refused() {
    let limits = Limits {
        max_line_length: 512,
        ..Limits::default()
    };
    let input = format!("NOOP {}\r\nNOOP\r\n", "a".repeat(2000));
    let r = run_limits(input.as_bytes(), limits);
    assert_eq!(codes(&r.wire), ["500", "250"]);
    assert!(r.wire.starts_with("500 5.5.2 Line too long"));
}

#[test]
fn starttls_drops_plaintext_sent_after_it() {
    let cfg = config(Limits::default(), true);
    let input = format!("{HELLO}STARTTLS\r\nMAIL FROM:<injected@x.example>\r\n");
    let r = run_with(cfg.clone(), input.as_bytes(), input.len());
    assert!(r.starttls);
    assert_eq!(
        codes(&r.wire),
        ["250", "220"],
        "the injected MAIL must not be answered: {}",
        r.wire
    );
    let again = run_with(
        cfg,
        format!("{HELLO}STARTTLS\r\nEHLO again\r\nSTARTTLS\r\n").as_bytes(),
        1,
    );
    assert!(
        again.wire.ends_with("503 5.5.1 TLS already active\r\n"),
        "{}",
        again.wire
    );
}

#[test]
fn http_requests_are_hung_up_on() {
    let r = run(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(r.wire.starts_with("554 5.7.0"));
    assert!(r.closed);
}

#[test]
fn misc_commands() {
    let r = run(
        b"HELO x\r\nVRFY jan\r\nEXPN list\r\nHELP\r\nNOOP\r\nRSET\r\nAUTH PLAIN AAAA\r\nQUIT\r\n",
    );
    assert_eq!(
        codes(&r.wire),
        ["250", "252", "502", "214", "250", "250", "502", "221"]
    );
}

#[test]
fn utf8_addresses_are_accepted() {
    let input = format!(
        "{HELLO}MAIL FROM:<jürgen@bücher.example> SMTPUTF8\r\nRCPT TO:<jöran@old.example>\r\nDATA\r\nx\r\n.\r\n"
    );
    let r = run(input.as_bytes());
    assert_eq!(
        codes(&r.wire),
        ["250", "250", "250", "354", "250"],
        "{}",
        r.wire
    );
    assert_eq!(r.stored[0].0.rcpt_to, ["jöran@old.example"]);
}

fn full_store() -> Arc<StorageState> {
    let storage = StorageState::new(
        crate::capacity::StorageLimits {
            max_size: Some(1000),
            min_free: 0,
        },
        0,
    );
    Arc::new(storage)
}

/// Polls until the session wants input; returns the replies. No message may start.
fn replies_until_input(session: &mut Session) -> String {
    let mut wire = String::new();
    loop {
        match session.poll() {
            Action::Reply(r) => wire.push_str(&String::from_utf8_lossy(&r.to_wire())),
            Action::NeedInput { .. } | Action::Close => return wire,
            other => panic!("nothing may start without room: {other:?}"),
        }
    }
}

#[test]
fn a_full_store_refuses_at_mail_before_any_data() {
    let storage = full_store();
    storage.added(1000);
    let mut cfg = (*config(Limits::default(), false)).clone();
    cfg.storage = storage;
    let input = format!(
        "{HELLO}MAIL FROM:<a@partner.example>\r\nRCPT TO:<x@old.example>\r\nDATA\r\n\
         BDAT 3 LAST\r\nabcQUIT\r\n"
    );
    let r = run_with(Arc::new(cfg), input.as_bytes(), 5);
    assert_eq!(codes(&r.wire), ["250", "452", "503", "503", "503", "221"]);
    assert!(r.wire.contains("452 4.3.1 Quarantine full"), "{}", r.wire);
    assert!(r.stored.is_empty());
}

#[test]
fn a_declared_size_that_crosses_the_quota_is_refused() {
    let mut cfg = (*config(Limits::default(), false)).clone();
    cfg.storage = full_store();
    let input = format!(
        "{HELLO}MAIL FROM:<a@partner.example> SIZE=2000\r\nMAIL FROM:<a@partner.example> SIZE=20\r\n"
    );
    let r = run_with(Arc::new(cfg), input.as_bytes(), input.len());
    assert_eq!(codes(&r.wire), ["250", "452", "250"]);
}

#[test]
fn room_is_checked_again_when_the_body_starts() {
    for (body_command, later) in [
        ("DATA\r\n", "Subject: x\r\n\r\nhi\r\n.\r\n"),
        ("BDAT 4\r\nabcd", "BDAT 2 LAST\r\nef"),
    ] {
        let storage = full_store();
        let mut cfg = (*config(Limits::default(), false)).clone();
        cfg.storage = storage.clone();
        let mut session = Session::new(Arc::new(cfg), "192.0.2.1".parse().expect("ip"), None);
        session.receive(
            format!("{HELLO}MAIL FROM:<a@partner.example>\r\nRCPT TO:<x@old.example>\r\n")
                .as_bytes(),
        );
        assert_eq!(
            codes(&replies_until_input(&mut session)),
            ["250", "250", "250"]
        );
        // Another session filled the store in the meantime.
        storage.added(1000);
        session.receive(body_command.as_bytes());
        let wire = replies_until_input(&mut session);
        assert!(wire.starts_with("452 4.3.1"), "{body_command:?}: {wire}");
        // Room again: what follows must not become half a message.
        storage.removed(1000);
        session.receive(later.as_bytes());
        let wire = replies_until_input(&mut session);
        assert!(!wire.starts_with("250"), "{body_command:?}: {wire}");
    }
}

#[path = "session_envelope_tests.rs"]
mod envelope;
