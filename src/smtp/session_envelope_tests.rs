//! Envelope addresses and HELO names are kept as sent or refused: raw bytes, awkward chunks.

use super::*;

/// A sender line, its recipient lines, then DATA: what each line was answered and what was
/// kept of the envelope.
fn envelope_of(mail: &[u8], rcpts: &[&[u8]]) -> (Vec<String>, Run) {
    let mut input = HELLO.as_bytes().to_vec();
    input.extend_from_slice(mail);
    for rcpt in rcpts {
        input.extend_from_slice(rcpt);
    }
    input.extend_from_slice(b"RCPT TO:<clean@old.example>\r\nDATA\r\nx\r\n.\r\n");
    let r = run(&input);
    let replies = r
        .wire
        .lines()
        .filter(|l| l.as_bytes().get(3) == Some(&b' '))
        .map(str::to_owned)
        .collect();
    (replies, r)
}

#[test]
fn control_characters_and_invalid_utf8_in_a_sender_are_refused() {
    for local in [
        &b"\"part\rner\""[..],
        b"\"part\x00ner\"",
        b"\"part\x01ner\"",
        b"\"part\tner\"",
        b"\"part\x7fner\"",
        b"part\x7fner",
        b"part\rner",
        b"part\xffner",
        b"\"part\xffner\"",
        b"\"part\xc2\x85ner\"",
        b"\"part\nner\"",
    ] {
        let mut mail = b"MAIL FROM:<".to_vec();
        mail.extend_from_slice(local);
        mail.extend_from_slice(b"@partner.example>\r\n");
        let (replies, r) = envelope_of(&mail, &[]);
        let shown = String::from_utf8_lossy(local);
        assert!(
            replies[1].starts_with("501 5.1.7"),
            "{shown:?}: {replies:?}"
        );
        assert!(
            r.stored.is_empty(),
            "{shown:?} was stored as {:?}",
            r.stored
        );
    }
}

#[test]
fn control_characters_and_invalid_utf8_in_a_recipient_are_refused() {
    for rcpt in [
        &b"RCPT TO:<\"j\ran\"@old.example>\r\n"[..],
        b"RCPT TO:<\"j\x00an\"@old.example>\r\n",
        b"RCPT TO:<\"j\x1ban\"@old.example>\r\n",
        b"RCPT TO:<j\x7fan@old.example>\r\n",
        b"RCPT TO:<jan@old.exa\rmple>\r\n",
        b"RCPT TO:<j\xffan@old.example>\r\n",
        b"RCPT TO:<\"j\xe2\x28an\"@old.example>\r\n",
        b"RCPT TO:<jan@old.example>\x00\r\n",
    ] {
        let (replies, r) = envelope_of(b"MAIL FROM:<a@partner.example>\r\n", &[rcpt]);
        let shown = String::from_utf8_lossy(rcpt);
        assert!(
            replies[2].starts_with("501 5.1.3"),
            "{shown:?}: {replies:?}"
        );
        assert_eq!(
            r.stored[0].0.rcpt_to,
            ["clean@old.example"],
            "{shown:?}: only the clean recipient is kept"
        );
        assert_eq!(r.envelopes[0].recipients.len(), 1, "{shown:?}");
    }
}

#[test]
fn hello_with_control_characters_or_invalid_utf8_is_refused() {
    for hello in [
        &b"EHLO client\x00.example\r\n"[..],
        b"EHLO \xff\r\n",
        b"EHLO client.example\xff\r\n",
        b"HELO client\x7f.example\r\n",
        b"EHLO client.exa\rmple\r\n",
        b"HELO client.example \x01\r\n",
    ] {
        let mut input = hello.to_vec();
        input.extend_from_slice(b"MAIL FROM:<a@partner.example>\r\n");
        let r = run(&input);
        let shown = String::from_utf8_lossy(hello);
        assert!(r.wire.starts_with("501 5.5.4"), "{shown:?}: {}", r.wire);
        assert_eq!(
            codes(&r.wire),
            ["501", "503"],
            "{shown:?}: no HELO name was taken"
        );
    }
    let r = run("EHLO bücher.example\r\nMAIL FROM:<a@partner.example>\r\n".as_bytes());
    assert_eq!(codes(&r.wire), ["250", "250"], "{}", r.wire);
}

#[test]
fn a_bare_lf_ends_a_command_line_and_a_bare_cr_refuses_it() {
    // LF ends a command line with or without its CR: both are the same session.
    let crlf = format!(
        "{HELLO}MAIL FROM:<a@partner.example>\r\nRCPT TO:<jan@old.example>\r\nDATA\r\nx\r\n.\r\n"
    );
    let lf = "EHLO client.example\nMAIL FROM:<a@partner.example>\nRCPT TO:<jan@old.example>\nDATA\nx\r\n.\r\n";
    let (a, b) = (run(crlf.as_bytes()), run(lf.as_bytes()));
    assert_eq!(a.wire, b.wire);
    assert_eq!(a.stored, b.stored);
    // A CR anywhere else does not end a line nor vanish: the whole line is refused, so
    // nothing after it can pass for a second command.
    let r = run(format!(
        "{HELLO}MAIL FROM:<a@partner.example>\rRCPT TO:<jan@old.example>\r\nNOOP\r\r\nRSET\r\n"
    )
    .as_bytes());
    assert_eq!(codes(&r.wire), ["250", "501", "500", "250"], "{}", r.wire);
    assert!(r.wire.contains("501 5.1.7"), "{}", r.wire);
}

#[test]
fn quoted_local_parts_are_kept_as_sent() {
    let (replies, r) = envelope_of(
        b"MAIL FROM:<\"jan de vries\"@partner.example>\r\n",
        &[b"RCPT TO:<\"j\\\"an\"@old.example>\r\n"],
    );
    assert!(replies[1].starts_with("250"), "{replies:?}");
    assert_eq!(r.stored[0].0.mail_from, "\"jan de vries\"@partner.example");
    assert_eq!(
        r.stored[0].0.rcpt_to,
        ["\"j\\\"an\"@old.example", "clean@old.example"]
    );
    // Quotes a local part does not need leave the same mailbox as its dot-string.
    let (_, r) = envelope_of(b"MAIL FROM:<\"MAILER-DAEMON\"@partner.example>\r\n", &[]);
    assert_eq!(r.stored[0].0.mail_from, "MAILER-DAEMON@partner.example");
    // A sender the parser would turn into another one is refused instead.
    for mail in [
        &b"MAIL FROM:<postmaster>\r\n"[..],
        b"MAIL FROM:<jan\"de vries\"@partner.example>\r\n",
    ] {
        let (replies, r) = envelope_of(mail, &[]);
        assert!(replies[1].starts_with("501"), "{replies:?}");
        assert!(r.stored.is_empty());
    }
}
