//! Envelope addresses and HELO names through a real gateway: what the parser would alter is
//! refused with a 5xx, and nothing of it is stored or notified.

mod common;

use std::time::Duration;

use common::recorder::Recorder;
use common::{Client, TestGateway, queued_id};

fn sections(relay: std::net::SocketAddr) -> String {
    format!(
        r#"
[dns]
resolver = "static"
[dns.static]
"partner.example TXT" = ["v=spf1 ip4:127.0.0.1 -all"]

[[domain]]
name = "old.example"
new_domain = "new.example"
language = "en"

[notify]
from = "postmaster@new.example"
organisation = "Gemeente Voorbeeld"
require = "none"
relay = "{relay}"
relay_tls = "none"
retry_base = "1s"
templates = "{templates}"
"#,
        templates = concat!(env!("CARGO_MANIFEST_DIR"), "/config/notices"),
    )
}

/// Sends raw bytes as one command and returns the reply.
async fn raw(c: &mut Client, line: &[u8]) -> String {
    c.send(line).await;
    c.reply().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_in_the_envelope_are_refused_and_nothing_of_them_is_kept() {
    let relay = Recorder::start(0).await;
    let mut gw = TestGateway::start_sections("", &sections(relay.addr)).await;
    let (mut c, _) = Client::connect(gw.addr).await;
    for hello in [&b"EHLO client\x00.example\r\n"[..], b"EHLO \xff\r\n"] {
        let reply = raw(&mut c, hello).await;
        let shown = String::from_utf8_lossy(hello);
        assert!(reply.starts_with("501 5.5.4"), "{shown:?}: {reply}");
    }
    assert!(c.cmd("EHLO client.example").await.starts_with("250"));
    // The parser would drop the CR and make this partner@partner.example, which the
    // notice would then be sent to.
    let reply = raw(&mut c, b"MAIL FROM:<\"part\rner\"@partner.example>\r\n").await;
    assert!(reply.starts_with("501 5.1.7"), "{reply}");
    let reply = raw(&mut c, b"MAIL FROM:<part\xffner@partner.example>\r\n").await;
    assert!(reply.starts_with("501 5.1.7"), "{reply}");
    assert!(
        c.cmd("RCPT TO:<piet@old.example>").await.starts_with("503"),
        "no transaction was opened"
    );

    assert!(
        c.cmd("MAIL FROM:<partner@partner.example>")
            .await
            .starts_with("250")
    );
    for rcpt in [
        &b"RCPT TO:<\"j\ran\"@old.example>\r\n"[..],
        b"RCPT TO:<j\x00an@old.example>\r\n",
        b"RCPT TO:<jan@old.exa\rmple>\r\n",
    ] {
        let reply = raw(&mut c, rcpt).await;
        let shown = String::from_utf8_lossy(rcpt);
        assert!(reply.starts_with("501 5.1.3"), "{shown:?}: {reply}");
    }
    assert!(c.cmd("RCPT TO:<piet@old.example>").await.starts_with("250"));
    assert!(c.cmd("DATA").await.starts_with("354"));
    c.send(b"Subject: x\r\n\r\nbody\r\n.\r\n").await;
    let id = queued_id(&c.reply().await);
    assert!(c.cmd("QUIT").await.starts_with("221"));

    let listed = gw.list().await;
    assert_eq!(
        listed.len(),
        1,
        "only the clean message is stored: {listed:?}"
    );
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["mail_from"], "partner@partner.example");
    assert_eq!(
        listed[0]["rcpt_to"],
        serde_json::json!(["piet@old.example"])
    );
    assert_eq!(listed[0]["helo"], "client.example");
    // One stored message, one notice at most: the refused sender and recipients got none.
    let got = relay.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].rcpt_to, ["partner@partner.example"]);
    assert!(got[0].data.contains("piet@old.example"), "{}", got[0].data);
    assert!(!got[0].data.contains("jan"), "{}", got[0].data);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utf8_and_quoted_addresses_are_stored_as_sent() {
    let mut gw = TestGateway::start("").await;
    let (mut c, _) = Client::connect(gw.addr).await;
    assert!(c.cmd("EHLO client.example").await.starts_with("250"));
    assert!(
        c.cmd("MAIL FROM:<\"jürgen müller\"@bücher.example> SMTPUTF8")
            .await
            .starts_with("250")
    );
    assert!(
        c.cmd("RCPT TO:<jöran@old.example>")
            .await
            .starts_with("250")
    );
    assert!(c.cmd("DATA").await.starts_with("354"));
    c.send(b"Subject: x\r\n\r\nbody\r\n.\r\n").await;
    queued_id(&c.reply().await);
    let listed = gw.list().await;
    assert_eq!(listed[0]["mail_from"], "\"jürgen müller\"@bücher.example");
    assert_eq!(
        listed[0]["rcpt_to"],
        serde_json::json!(["jöran@old.example"])
    );
    gw.stop().await;
}
