//! Who gets a notice and how many, against the real server, an in-test smarthost and a fixed
//! DNS table: forged envelope senders get none, and no sender gets notices in bulk.

mod common;

use std::time::Duration;

use common::recorder::Recorder;
use common::{Client, TestGateway, queued_id};

/// A DKIM key for `attacker.example`: its public DNS record and a signer for messages.
struct AttackerKey {
    record: String,
    pkcs8: Vec<u8>,
}

impl AttackerKey {
    fn new() -> Self {
        use base64::Engine;
        use mail_auth::common::crypto::Ed25519Key;
        let pkcs8 = Ed25519Key::generate_pkcs8().expect("key");
        let key = Ed25519Key::from_pkcs8_der(&pkcs8).expect("key");
        let public = base64::engine::general_purpose::STANDARD.encode(key.public_key());
        Self {
            record: format!("v=DKIM1; k=ed25519; p={public}"),
            pkcs8,
        }
    }

    /// `message` with a valid DKIM signature by `d=attacker.example`.
    fn sign(&self, message: &str) -> Vec<u8> {
        use mail_auth::common::crypto::Ed25519Key;
        use mail_auth::common::headers::HeaderWriter;
        use mail_auth::dkim::DkimSigner;
        let key = Ed25519Key::from_pkcs8_der(&self.pkcs8).expect("key");
        let signature = DkimSigner::from_key(key)
            .domain("attacker.example")
            .selector("s1")
            .headers(["From", "To", "Subject"])
            .sign(message.as_bytes())
            .expect("sign");
        format!("{}{message}", signature.to_header()).into_bytes()
    }
}

/// A gateway with notices through `relay` and the default `require`.
fn sections(relay: std::net::SocketAddr, dkim_record: &str, extra_notify: &str) -> String {
    format!(
        r#"
[dns]
resolver = "static"
[dns.static]
"partner.example TXT" = ["v=spf1 ip4:127.0.0.1 -all"]
"s1._domainkey.attacker.example TXT" = ["{dkim_record}"]
"_dmarc.attacker.example TXT" = ["v=DMARC1; p=none"]

[[domain]]
name = "old.example"
new_domain = "new.example"
language = "en"

[notify]
from = "postmaster@new.example"
organisation = "Gemeente Voorbeeld"
relay = "{relay}"
relay_tls = "none"
retry_base = "1s"
templates = "{templates}"
{extra_notify}
"#,
        templates = concat!(env!("CARGO_MANIFEST_DIR"), "/config/notices"),
    )
}

async fn stats(gw: &TestGateway) -> serde_json::Value {
    serde_json::from_str(&gw.cli_ok(&["stats", "--json"]).await).expect("json")
}

fn count(stats: &serde_json::Value, key: &str) -> u64 {
    stats["notices"][key].as_u64().unwrap_or(0)
}

const PARTNER_MESSAGE: &[u8] =
    b"From: Partner <partner@partner.example>\r\nSubject: dossier\r\n\r\nbody\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dkim_and_dmarc_for_from_do_not_aim_notices_at_the_envelope_sender() {
    let key = AttackerKey::new();
    let relay = Recorder::start(0).await;
    let mut gw = TestGateway::start_sections("", &sections(relay.addr, &key.record, "")).await;

    let quoted = "\"Mailbox locked, verify at https://evil.example/x\"@old.example";
    let mut rcpts: Vec<String> = (1..50).map(|i| format!("person{i}@old.example")).collect();
    rcpts.push(quoted.to_owned());
    let rcpts: Vec<&str> = rcpts.iter().map(String::as_str).collect();
    let forged = key.sign(
        "From: Support <support@attacker.example>\r\nTo: staff@old.example\r\nSubject: locked\r\n\r\nVerify now.\r\n",
    );
    let (mut c, _) = Client::connect(gw.addr).await;
    queued_id(
        &c.send_message("victim@victim.example", &rcpts, &forged)
            .await,
    );

    // The gateway's own results: DKIM and DMARC pass, but for attacker.example only.
    let listed = gw.list().await;
    assert_eq!(listed[0]["auth"]["dkim"], "pass", "{:?}", listed[0]);
    assert_eq!(listed[0]["auth"]["dmarc"], "pass", "{:?}", listed[0]);
    assert_eq!(listed[0]["auth"]["dkim_domains"][0], "attacker.example");

    // A legitimate message afterwards: once its notice arrives, the forged one had its chance.
    queued_id(
        &c.send_message(
            "partner@partner.example",
            &["jan@old.example"],
            PARTNER_MESSAGE,
        )
        .await,
    );
    let got = relay.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(got[0].rcpt_to, ["partner@partner.example"]);
    assert!(
        got[0]
            .data
            .contains("\r\nSubject: An address at old.example is no longer in use\r\n"),
        "{}",
        got[0].data
    );
    let stats = stats(&gw).await;
    assert_eq!(count(&stats, "queued"), 1, "only the partner's: {stats}");
    assert_eq!(count(&stats, "suppressed:unauthenticated"), 1, "{stats}");
    let got = relay.received.lock().expect("lock").clone();
    assert!(
        got.iter().all(|n| n.rcpt_to != ["victim@victim.example"]),
        "{got:?}"
    );
    // Each index entry keeps what became of its notice, for the exit rule.
    let outcomes: Vec<(String, serde_json::Value)> = gw
        .list()
        .await
        .iter()
        .map(|m| {
            (
                m["mail_from"].as_str().unwrap_or("").to_owned(),
                m["notice"].clone(),
            )
        })
        .collect();
    assert!(outcomes.contains(&(
        "partner@partner.example".to_owned(),
        serde_json::json!({"outcome": "queued"})
    )));
    assert!(outcomes.contains(&(
        "victim@victim.example".to_owned(),
        serde_json::json!({"outcome": "not_planned", "reason": "unauthenticated"})
    )));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_recipients_twenty_times_yield_the_sender_limit() {
    let key = AttackerKey::new();
    let relay = Recorder::start(0).await;
    let mut gw = TestGateway::start_sections(
        "",
        &sections(
            relay.addr,
            &key.record,
            "sender_limit = 3\nsender_interval = \"1d\"",
        ),
    )
    .await;
    let (mut c, _) = Client::connect(gw.addr).await;
    for message in 0..20 {
        let rcpts: Vec<String> = (0..100)
            .map(|i| format!("m{message}r{i}@old.example"))
            .collect();
        let rcpts: Vec<&str> = rcpts.iter().map(String::as_str).collect();
        queued_id(
            &c.send_message("partner@partner.example", &rcpts, PARTNER_MESSAGE)
                .await,
        );
    }
    // The totals are committed with each message, before its 250: nothing more can follow.
    let stats = stats(&gw).await;
    assert_eq!(count(&stats, "queued"), 3, "{stats}");
    assert_eq!(count(&stats, "suppressed:sender_limit"), 17, "{stats}");
    assert_eq!(count(&stats, "suppressed:per_message"), 20 * 99, "{stats}");
    let got = relay.wait_for(3, Duration::from_secs(15)).await;
    assert_eq!(got.len(), 3);
    for i in 0..3 {
        let line = format!("- m{i}r99@old.example: write to m{i}r99@new.example\r\n");
        assert!(
            got.iter().any(|n| n.data.contains(&line)),
            "one notice lists all of its message's addresses: {line:?}"
        );
    }
    assert!(got.iter().all(|n| n.rcpt_to == ["partner@partner.example"]));
    let listed = gw.list().await;
    let recorded =
        |outcome: serde_json::Value| listed.iter().filter(|m| m["notice"] == outcome).count();
    assert_eq!(recorded(serde_json::json!({"outcome": "queued"})), 3);
    assert_eq!(
        recorded(serde_json::json!({"outcome": "held_back", "reason": "sender_limit"})),
        17
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hourly_limit_holds_every_sender() {
    let key = AttackerKey::new();
    let relay2 = Recorder::start(0).await;
    let mut gw =
        TestGateway::start_sections("", &sections(relay2.addr, &key.record, "hourly_limit = 1"))
            .await;
    let (mut c, _) = Client::connect(gw.addr).await;
    for sender in ["a@partner.example", "b@partner.example"] {
        queued_id(
            &c.send_message(sender, &["jan@old.example"], PARTNER_MESSAGE)
                .await,
        );
    }
    let stats = stats(&gw).await;
    assert_eq!(count(&stats, "queued"), 1, "{stats}");
    assert_eq!(count(&stats, "suppressed:hourly_limit"), 1, "{stats}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_addresses_at_one_domain_leave_the_hour_to_others() {
    let key = AttackerKey::new();
    let relay = Recorder::start(0).await;
    // The defaults (hourly_limit 100, a tenth of it per organisation); `none` lets the
    // flood through authentication, as a domain with its own SPF record would be.
    let mut gw =
        TestGateway::start_sections("", &sections(relay.addr, &key.record, "require = \"none\""))
            .await;
    let (mut c, _) = Client::connect(gw.addr).await;
    for i in 0..100 {
        let from = format!("r{i}@h{}.bulk.example", i % 7);
        queued_id(
            &c.send_message(&from, &[&format!("x{i}@old.example")], PARTNER_MESSAGE)
                .await,
        );
    }
    queued_id(
        &c.send_message(
            "partner@partner.example",
            &["jan@old.example"],
            PARTNER_MESSAGE,
        )
        .await,
    );
    let stats = stats(&gw).await;
    assert_eq!(count(&stats, "queued"), 11, "{stats}");
    assert_eq!(count(&stats, "suppressed:domain_limit"), 90, "{stats}");
    let got = relay.wait_for(11, Duration::from_secs(30)).await;
    assert!(
        got.iter().any(|n| n.rcpt_to == ["partner@partner.example"]),
        "the partner is told"
    );
    let listed = gw.list().await;
    let held = listed
        .iter()
        .filter(|m| {
            m["notice"] == serde_json::json!({"outcome": "held_back", "reason": "domain_limit"})
        })
        .count();
    assert_eq!(held, 90);
    gw.stop().await;
}
