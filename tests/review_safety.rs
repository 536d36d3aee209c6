//! Reviewing cannot be turned against the reviewer or the organisation: release never
//! smuggles a second message, `show` keeps the gateway's verdict apart from the sender's
//! claims, and exports never land on a terminal, a symbolic link or an existing file.

mod common;

use std::time::Duration;

use common::recorder::Recorder;
use common::{Extra, TestGateway};

/// A message whose body holds a bare LF before `.` CRLF and then SMTP commands: a relay
/// that takes the LF as a line end would read a second message from it.
const SMUGGLER: &[u8] = b"From: a@partner.example\r\nTo: jan@old.example\r\nSubject: please release\r\n\r\nfirst line\n.\r\nMAIL FROM:<x@evil.example>\r\nRCPT TO:<victim@new.example>\r\nDATA\r\nsmuggled\r\n.\r\nlast line\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_submits_exactly_one_message() {
    let relay = Recorder::start(0).await;
    let tail = format!(
        "[release]\nrelay = \"{}\"\ntls = \"none\"\nfrom = \"quarantine@new.example\"\n",
        relay.addr
    );
    let mut gw = TestGateway::start_custom(Extra {
        tail: &tail,
        ..Extra::default()
    })
    .await;
    let id = gw
        .send("a@partner.example", &["jan@old.example"], SMUGGLER)
        .await;
    let (_, stored) = common::split_trace(&gw.export(&id).await);
    assert_eq!(stored, SMUGGLER, "the gateway stores the bare LF as sent");

    gw.cli_ok(&[
        "release",
        &id,
        "--to",
        "case@new.example",
        "--reason",
        "ticket 9",
    ])
    .await;
    let received = relay.wait_ended(1, Duration::from_secs(20)).await;
    assert_eq!(received.len(), 1, "the relay read more than one message");
    let message = &received[0];
    assert_eq!(message.mail_from, "quarantine@new.example");
    assert_eq!(message.rcpt_to, ["case@new.example"]);
    assert!(
        message.data.contains(
            "\r\nfirst line\r\n.\r\nMAIL FROM:<x@evil.example>\r\nRCPT TO:<victim@new.example>\r\nDATA\r\nsmuggled\r\n.\r\nlast line\r\n"
        ),
        "{:?}",
        message.data
    );
    let bytes = message.data.as_bytes();
    let bare = (0..bytes.len()).any(|i| {
        (bytes[i] == b'\n' && (i == 0 || bytes[i - 1] != b'\r'))
            || (bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n'))
    });
    assert!(
        !bare,
        "a bare CR or LF reached the relay: {:?}",
        message.data
    );
    gw.stop().await;
}
