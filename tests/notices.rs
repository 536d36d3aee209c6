//! Notices to senders and the domain modes, against an in-test smarthost and a fixed DNS table.

mod common;

use std::time::Duration;

use common::recorder::Recorder;
use common::{Client, TestGateway, queued_id};

/// Sections for a gateway with notices through `relay`; `require` and domain lines vary.
fn sections(relay: std::net::SocketAddr, require: &str, extra_notify: &str) -> String {
    format!(
        r#"
[dns]
resolver = "static"
[dns.static]
"partner.example TXT" = ["v=spf1 ip4:127.0.0.1 -all"]
"forged.example TXT" = ["v=spf1 ip4:192.0.2.1 -all"]
"_dmarc.forged.example TXT" = ["v=DMARC1; p=reject"]

[[domain]]
name = "old.example"
new_domain = "new.example"
language = "en"

[[domain]]
name = "oud.example"
contact = "info@nieuw.example"
language = "nl"

[[domain]]
name = "bounce.example"
mode = "bounce"
new_domain = "new.example"

[[domain]]
name = "reject.example"
mode = "reject"
contact = "info@new.example"

[[domain]]
name = "silent.example"
mode = "silent"

[relocated]
"jan@old.example" = "j.jansen@new.example"

[notify]
from = "postmaster@new.example"
organisation = "Gemeente Voorbeeld"
require = "{require}"
relay = "{relay}"
relay_tls = "none"
retry_base = "1s"
templates = "{templates}"
{extra_notify}
"#,
        templates = concat!(env!("CARGO_MANIFEST_DIR"), "/config/notices"),
    )
}

const ORIGINAL: &[u8] = b"From: Partner <partner@partner.example>\r\nSubject: Dossier 4711 SECRET-SUBJECT\r\nMessage-ID: <orig-1@partner.example>\r\n\r\nbody\r\n";

async fn send(gw: &TestGateway, from: &str, to: &[&str], body: &[u8]) -> String {
    let (mut c, _) = Client::connect(gw.addr).await;
    c.send_message(from, to, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_in_english_and_dutch() {
    let relay = Recorder::start(0).await;
    let mut gw = TestGateway::start_sections("", &sections(relay.addr, "none", "")).await;
    queued_id(
        &send(
            &gw,
            "partner@partner.example",
            &["jan@old.example"],
            ORIGINAL,
        )
        .await,
    );
    let got = relay.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(got.len(), 1, "exactly one notice");
    let notice = &got[0];
    assert_eq!(notice.mail_from, "", "notices use the null sender");
    assert_eq!(notice.rcpt_to, ["partner@partner.example"]);
    let text = &notice.data;
    for expected in [
        "From: Gemeente Voorbeeld <postmaster@new.example>\r\n",
        "To: <partner@partner.example>\r\n",
        "Subject: An address at old.example is no longer in use\r\n",
        "In-Reply-To: <orig-1@partner.example>\r\n",
        "References: <orig-1@partner.example>\r\n",
        "Auto-Submitted: auto-replied\r\n",
        "Content-Type: text/plain; charset=utf-8\r\n",
        "Gemeente Voorbeeld no longer uses jan@old.example,",
        "- jan@old.example: write to j.jansen@new.example\r\n",
        "for 30 days",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert!(
        !text.contains("SECRET-SUBJECT") && !text.contains("Dossier"),
        "the original is never quoted"
    );

    queued_id(
        &send(
            &gw,
            "partner@partner.example",
            &["piet@oud.example"],
            ORIGINAL,
        )
        .await,
    );
    let got = relay.wait_for(2, Duration::from_secs(15)).await;
    let dutch = &got[1].data;
    assert!(
        dutch.contains("Subject: Een adres bij oud.example is niet meer in gebruik\r\n"),
        "{dutch}"
    );
    assert!(
        dutch.contains("- piet@oud.example: schrijf aan info@nieuw.example\r\n"),
        "{dutch}"
    );
    assert!(dutch.contains("30 dagen"), "{dutch}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automated_forged_and_system_senders_get_no_notice() {
    let relay = Recorder::start(0).await;
    let mut gw = TestGateway::start_sections("", &sections(relay.addr, "spf", "")).await;
    let plain = |extra: &str| {
        format!("{extra}From: x@partner.example\r\nSubject: s\r\n\r\nbody\r\n").into_bytes()
    };
    let cases: [(&str, Vec<u8>); 10] = [
        ("", plain("")),
        ("MAILER-DAEMON@partner.example", plain("")),
        ("owner-list@partner.example", plain("")),
        ("list-request@partner.example", plain("")),
        ("someone@old.example", plain("")),
        (
            "partner@partner.example",
            plain("Auto-Submitted: auto-generated\r\n"),
        ),
        ("partner@partner.example", plain("Precedence: bulk\r\n")),
        (
            "partner@partner.example",
            plain("List-Id: <news.partner.example>\r\n"),
        ),
        (
            "partner@partner.example",
            plain("List-Unsubscribe: <mailto:u@partner.example>\r\n"),
        ),
        (
            "ceo@forged.example",
            b"From: CEO <ceo@forged.example>\r\nSubject: urgent\r\n\r\npay\r\n".to_vec(),
        ),
    ];
    for (i, (from, body)) in cases.iter().enumerate() {
        let to = format!("person{i}@old.example");
        let reply = send(&gw, from, &[&to], body).await;
        assert!(reply.starts_with("250 "), "{from}: {reply}");
    }
    // One that qualifies, sent last: once it arrives, the others had their chance.
    send(
        &gw,
        "partner@partner.example",
        &["last@old.example"],
        &plain("Auto-Submitted: no\r\n"),
    )
    .await;
    // Only the authenticated, human sender gets a notice: the stats below show that no
    // other was queued, and queueing happens before each 250.
    let got = relay.wait_for(1, Duration::from_secs(15)).await;
    assert!(got[0].data.contains("- last@old.example:"), "{got:?}");

    // The SPF and DMARC results reach reviewers in the summary.
    let listed = gw.list().await;
    let forged = listed
        .iter()
        .find(|m| m["mail_from"] == "ceo@forged.example")
        .expect("forged message kept");
    assert_eq!(forged["auth"]["spf"], "fail");
    assert_eq!(forged["auth"]["dmarc"], "fail");
    let partner = listed
        .iter()
        .find(|m| m["rcpt_to"][0] == "last@old.example")
        .expect("kept");
    assert_eq!(partner["auth"]["spf"], "pass");
    assert_eq!(partner["auth"]["dkim"], "none");

    // The totals reach `stats`.
    let stats: serde_json::Value =
        serde_json::from_str(&gw.cli_ok(&["stats", "--json"]).await).expect("json");
    let n = |key: &str| stats["notices"][key].as_u64().unwrap_or(0);
    assert_eq!(
        (
            n("queued"),
            n("sent"),
            n("suppressed:null_sender"),
            n("suppressed:system_sender")
        ),
        (1, 1, 1, 3),
        "{stats}"
    );
    assert_eq!(
        (
            n("suppressed:retired_sender"),
            n("suppressed:automated"),
            n("suppressed:unauthenticated")
        ),
        (1, 4, 1),
        "{stats}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_notice_per_pair_per_interval_across_restarts() {
    let relay = Recorder::start(0).await;
    let mut gw =
        TestGateway::start_sections("", &sections(relay.addr, "none", "sender_limit = 2")).await;
    for _ in 0..3 {
        send(
            &gw,
            "partner@partner.example",
            &["jan@old.example"],
            ORIGINAL,
        )
        .await;
    }
    send(
        &gw,
        "PARTNER@partner.example",
        &["jan@OLD.example"],
        ORIGINAL,
    )
    .await;
    relay.wait_for(1, Duration::from_secs(15)).await;
    gw.restart().await;
    send(
        &gw,
        "partner@partner.example",
        &["jan@old.example"],
        ORIGINAL,
    )
    .await;
    // A different retired address is a different pair.
    send(
        &gw,
        "partner@partner.example",
        &["piet@old.example"],
        ORIGINAL,
    )
    .await;
    // The sender limit (2) remembers both notices across the restart too.
    gw.restart().await;
    send(
        &gw,
        "partner@partner.example",
        &["kees@old.example"],
        ORIGINAL,
    )
    .await;
    let stats: serde_json::Value =
        serde_json::from_str(&gw.cli_ok(&["stats", "--json"]).await).expect("json");
    let n = |key: &str| stats["notices"][key].as_u64().unwrap_or(0);
    assert_eq!(
        (
            n("queued"),
            n("suppressed:pair_interval"),
            n("suppressed:sender_limit")
        ),
        (2, 4, 1),
        "{stats}"
    );
    let got = relay.wait_for(2, Duration::from_secs(15)).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().any(|n| n.data.contains("- jan@old.example:")));
    assert!(got.iter().any(|n| n.data.contains("- piet@old.example:")));
    assert_eq!(
        gw.list().await.len(),
        7,
        "every message is still quarantined"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounce_reject_and_silent_modes() {
    let relay = Recorder::start(0).await;
    let mut gw = TestGateway::start_sections("", &sections(relay.addr, "none", "")).await;

    let reply = send(
        &gw,
        "partner@partner.example",
        &["kees@bounce.example"],
        ORIGINAL,
    )
    .await;
    assert_eq!(
        reply,
        "550 5.1.6 <kees@bounce.example> has moved to <kees@new.example>\r\n"
    );

    let (mut c, _) = Client::connect(gw.addr).await;
    c.cmd("EHLO x").await;
    c.cmd("MAIL FROM:<partner@partner.example>").await;
    assert!(c.cmd("RCPT TO:<a@bounce.example>").await.starts_with("250"));
    assert_eq!(
        c.cmd("RCPT TO:<b@bounce.example>").await,
        "452 4.5.3 Too many recipients for one transaction; send to this one separately\r\n"
    );
    assert_eq!(
        c.cmd("RCPT TO:<c@old.example>").await.get(..9),
        Some("452 4.5.3")
    );
    assert_eq!(
        c.cmd("RCPT TO:<d@reject.example>").await,
        "550 5.1.6 <d@reject.example> has moved to <info@new.example>\r\n"
    );
    assert!(c.cmd("DATA").await.starts_with("354"));
    c.send(b"Subject: x\r\n\r\ny\r\n.\r\n").await;
    assert!(
        c.reply()
            .await
            .starts_with("550 5.1.6 <a@bounce.example> has moved")
    );
    assert!(
        c.cmd("MAIL FROM:<partner@partner.example>")
            .await
            .starts_with("250")
    );
    assert!(
        c.cmd("RCPT TO:<e@reject.example>")
            .await
            .starts_with("550 5.1.6")
    );
    assert!(
        c.cmd("DATA").await.starts_with("554 5.5.1"),
        "nothing accepted, nothing stored"
    );
    c.cmd("RSET").await;

    queued_id(
        &send(
            &gw,
            "partner@partner.example",
            &["s@silent.example"],
            ORIGINAL,
        )
        .await,
    );
    let listed = gw.list().await;
    let mut rcpts: Vec<String> = listed
        .iter()
        .map(|m| m["rcpt_to"][0].as_str().unwrap_or_default().to_owned())
        .collect();
    rcpts.sort();
    assert_eq!(
        rcpts,
        [
            "a@bounce.example",
            "kees@bounce.example",
            "s@silent.example"
        ],
        "bounced mail is kept, rejected is not"
    );
    // Notices are queued before the 250, so the totals are final: none was queued.
    let stats: serde_json::Value =
        serde_json::from_str(&gw.cli_ok(&["stats", "--json"]).await).expect("json");
    assert_eq!(
        stats["notices"]["queued"].as_u64().unwrap_or(0),
        0,
        "bounce, reject and silent send no notice: {stats}"
    );
    assert!(relay.received.lock().expect("lock").is_empty());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_failures_are_retried() {
    let relay = Recorder::start(2).await;
    let mut gw = TestGateway::start_sections("", &sections(relay.addr, "none", "")).await;
    send(
        &gw,
        "partner@partner.example",
        &["jan@old.example"],
        ORIGINAL,
    )
    .await;
    let got = relay.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(
        got.len(),
        1,
        "delivered after two 451s (retries after 1 s and 2 s)"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_notice_survives_a_kill_before_delivery() {
    // The smarthost is down at first: the notice waits in the outbox.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port();
    let relay_addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, recipient) = common::new_identity(dir.path(), "reviewer.key");
    let smtp_port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port();
    let config = format!(
        "[server]\nhostname = \"mx.old.example\"\nlisten = [\"127.0.0.1:{smtp_port}\"]\n[store]\npath = {:?}\nmin_free = \"0\"\n[seal]\nrecipients = [\"{recipient}\"]\n[admin]\nsocket = {:?}\n{}",
        dir.path().join("store"),
        dir.path().join("admin.sock"),
        sections(relay_addr, "none", ""),
    );
    let config_path = common::write_file(dir.path(), "reclaim.toml", config.as_bytes());
    let start = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_reclaim"))
            .args(["serve", "-c", config_path.to_str().expect("utf8")])
            .env("RECLAIM_LOG", "warn")
            .spawn()
            .expect("start reclaim")
    };
    let mut child = start();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{smtp_port}").parse().expect("addr");
    let mut connected = None;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            connected = Some(());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(connected.is_some(), "gateway did not come up");
    let (mut c, _) = Client::connect(addr).await;
    queued_id(
        &c.send_message("partner@partner.example", &["jan@old.example"], ORIGINAL)
            .await,
    );
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");

    let relay = Recorder::start_on(&relay_addr.to_string(), 0).await;
    let mut child = start();
    let got = relay.wait_for(1, Duration::from_secs(20)).await;
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    assert_eq!(
        got.len(),
        1,
        "the acknowledged message's notice was delivered after the restart"
    );
    assert_eq!(got[0].rcpt_to, ["partner@partner.example"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_delivery_to_the_senders_mx() {
    let mx = Recorder::start(0).await;
    let config = sections(mx.addr, "spf", &format!("mx_port = {}\nallow_private_mx = true", mx.addr.port()))
        .replace(&format!("relay = \"{}\"\nrelay_tls = \"none\"\n", mx.addr), "")
        .replace(
            "[dns.static]\n",
            "[dns.static]\n\"partner.example MX\" = [\"10 mx.partner.example.\"]\n\"mx.partner.example A\" = [\"127.0.0.1\"]\n",
        );
    assert!(!config.contains("relay ="), "no smarthost: {config}");
    let mut gw = TestGateway::start_sections("", &config).await;
    send(
        &gw,
        "partner@partner.example",
        &["jan@old.example"],
        ORIGINAL,
    )
    .await;
    let got = mx.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(got.len(), 1, "delivered to the MX from the DNS table");
    assert_eq!(
        (got[0].mail_from.as_str(), got[0].rcpt_to[0].as_str()),
        ("", "partner@partner.example")
    );
    gw.stop().await;
}
