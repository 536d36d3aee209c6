//! Reviewing from the CLI against an in-process gateway: show, filters, bulk export,
//! report and stats.

mod common;

use common::{Extra, TestGateway};

fn have(tool: &str) -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found && std::env::var_os("CI").is_some() {
        panic!("{tool} is required in CI");
    }
    found
}

const HOSTILE: &[u8] = b"From: Mallory <m@evil.example>\r\nTo: jan@old.example\r\nSubject: pay \x1b]0;owned\x07now \x1b[31mred\r\nAuthentication-Results: mx.evil.example; spf=pass\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello\x1b[2J\x1b]8;;http://evil.example\x07 click\r\nsecond line \xc2\x9b31m\r\n--B\r\nContent-Type: application/pdf; name=\"case.pdf\"\r\nContent-Disposition: attachment; filename=\"case.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAwQ=\r\n--B--\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_prints_safely_and_needs_a_reason() {
    let mut gw = TestGateway::start("").await;
    let id = gw
        .send("m@evil.example", &["jan@old.example"], HOSTILE)
        .await;

    let text = gw.cli_ok(&["show", &id, "--reason", "ticket 1"]).await;
    for bad in ['\x1b', '\x07', '\u{9b}'] {
        assert!(
            !text.contains(bad),
            "{bad:?} reached the terminal: {text:?}"
        );
    }
    assert!(text.contains("Envelope    from m@evil.example"), "{text}");
    assert!(text.contains("Subject:"), "{text}");
    assert!(text.contains("spf=pass"), "{text}");
    assert!(text.contains("Hello"), "{text}");
    assert!(text.contains("second line"), "{text}");
    assert!(
        text.contains("case.pdf  application/pdf  5 bytes"),
        "{text}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&gw.cli_ok(&["show", &id, "--reason", "t", "--json"]).await)
            .expect("JSON");
    assert_eq!(json["attachments"][0]["name"], "case.pdf");
    assert_eq!(json["rcpt_to"][0], "jan@old.example");

    let out = gw.cli(&["show", &id]).await;
    assert_eq!(out.status.code(), Some(2), "no reason is a usage error");
    let out = gw
        .cli(&[
            "show",
            "0193a5c4-0000-7000-8000-000000000000",
            "--reason",
            "x",
        ])
        .await;
    assert_eq!(out.status.code(), Some(4));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_on_the_server_and_after_decryption() {
    let mut gw = TestGateway::start("").await;
    gw.send(
        "a@partner.example",
        &["x@old.example"],
        b"Subject: Invoice 1\r\n\r\nx\r\n",
    )
    .await;
    gw.send(
        "b@other.example",
        &["y@sub.retired.example"],
        b"Subject: Hello\r\n\r\nx\r\n",
    )
    .await;
    gw.send(
        "a@partner.example",
        &["z@old.example"],
        b"Subject: Report\r\n\r\nx\r\n",
    )
    .await;
    let count = |args: Vec<&'static str>| {
        let gw = &gw;
        async move {
            let mut full = vec!["list", "--json"];
            full.extend(args);
            let out = gw.cli_ok(&full).await;
            serde_json::from_str::<Vec<serde_json::Value>>(&out)
                .expect("JSON")
                .len()
        }
    };
    assert_eq!(count(vec![]).await, 3);
    assert_eq!(count(vec!["--domain", "old.example"]).await, 2);
    assert_eq!(count(vec!["--domain", "retired.example"]).await, 1);
    assert_eq!(count(vec!["--from", "PARTNER"]).await, 2);
    assert_eq!(count(vec!["--subject", "invoice"]).await, 1);
    assert_eq!(count(vec!["--to", "y@sub"]).await, 1);
    assert_eq!(count(vec!["--since", "1h"]).await, 3);
    assert_eq!(count(vec!["--until", "2020-01-01"]).await, 0);
    assert_eq!(count(vec!["--from", "partner", "--limit", "1"]).await, 1);
    let out = gw.cli(&["list", "--since", "someday"]).await;
    assert!(!out.status.success());
    gw.stop().await;
}

/// More messages than one admin API page (1,000): `list` fetches the next page while it
/// decrypts the current one, and must still list every message once, newest first, stop
/// exactly at `--limit`, and apply filters that only work after decryption on every page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_through_more_than_one_api_page() {
    const MESSAGES: usize = 2_300;
    const SESSIONS: usize = 8;
    let mut gw = TestGateway::start("").await;
    let mut sessions = Vec::new();
    for s in 0..SESSIONS {
        let addr = gw.addr;
        sessions.push(tokio::spawn(async move {
            let (mut client, _) = common::Client::connect(addr).await;
            for n in (s..MESSAGES).step_by(SESSIONS) {
                let body = format!("Subject: message {n} tag{}\r\n\r\nbody\r\n", n % 7);
                let reply = client
                    .send_message("a@partner.example", &["jan@old.example"], body.as_bytes())
                    .await;
                assert!(reply.starts_with("250"), "{reply}");
            }
        }));
    }
    for session in sessions {
        session.await.expect("session");
    }
    let list = |args: Vec<&'static str>| {
        let gw = &gw;
        async move {
            let mut full = vec!["list", "--json"];
            full.extend(args);
            let out = gw.cli_ok(&full).await;
            serde_json::from_str::<Vec<serde_json::Value>>(&out)
                .expect("JSON")
                .into_iter()
                .map(|m| {
                    (
                        m["id"].as_str().expect("id").to_owned(),
                        m["subject"].as_str().expect("subject").to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let all = list(vec![]).await;
    assert_eq!(all.len(), MESSAGES);
    let ids: std::collections::BTreeSet<_> = all.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids.len(), MESSAGES, "no message listed twice");
    assert!(
        all.windows(2).all(|w| w[0].0 > w[1].0),
        "newest first across pages"
    );

    let limited = list(vec!["--limit", "1500"]).await;
    assert_eq!(limited, all[..1500]);

    let tagged: Vec<_> = all
        .iter()
        .filter(|(_, subject)| subject.ends_with("tag3"))
        .cloned()
        .collect();
    assert!(tagged.len() > 300);
    assert_eq!(list(vec!["--subject", "TAG3"]).await, tagged);
    assert_eq!(
        list(vec!["--subject", "tag3", "--limit", "200"]).await,
        tagged[..200]
    );
    assert_eq!(
        list(vec!["--domain", "old.example", "--limit", "1001"]).await,
        all[..1001]
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mbox_export_reads_back_in_python() {
    let mut gw = TestGateway::start("").await;
    let bodies: [&[u8]; 3] = [
        b"Subject: one\r\n\r\nFrom the start\r\n>From quoted\r\nplain\r\n",
        b"Subject: two\r\n\r\n>>From deep\r\nFromage\r\n",
        b"Subject: three\r\n\r\nno newline at the end",
    ];
    let mut ids = Vec::new();
    for body in bodies {
        ids.push(gw.send("a@partner.example", &["x@old.example"], body).await);
    }
    let mbox = gw.dir.path().join("out.mbox");
    gw.cli_ok(&[
        "export",
        "--mbox",
        mbox.to_str().expect("utf8"),
        "--reason",
        "hand-over",
    ])
    .await;
    let dir = gw.dir.path().join("eml");
    gw.cli_ok(&[
        "export",
        "--dir",
        dir.to_str().expect("utf8"),
        "--reason",
        "r",
    ])
    .await;
    let mut expected = Vec::new();
    for id in &ids {
        let one = gw.export(id).await;
        assert_eq!(
            std::fs::read(dir.join(format!("{id}.eml"))).expect("eml"),
            one
        );
        expected.push(one);
    }

    if have("python3") {
        let script = r#"
import base64, json, mailbox, sys
box = mailbox.mbox(sys.argv[1], create=False)
print(json.dumps([{"from": m.get_from(), "subject": m["subject"],
                   "bytes": base64.b64encode(box.get_bytes(k)).decode()}
                  for k, m in box.items()]))
"#;
        let out = std::process::Command::new("python3")
            .args(["-c", script, mbox.to_str().expect("utf8")])
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let read: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(read.len(), 3);
        for (message, original) in read.iter().zip(&expected) {
            assert!(
                message["from"]
                    .as_str()
                    .expect("from")
                    .starts_with("a@partner.example ")
            );
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(message["bytes"].as_str().expect("bytes"))
                .expect("base64");
            // mboxrd: undo one level of `>` before `From `; compare with LF line ends.
            let text = String::from_utf8(bytes).expect("utf8");
            let unquoted: Vec<String> = text
                .lines()
                .map(|l| {
                    let depth = l.chars().take_while(|&c| c == '>').count();
                    if depth > 0 && l[depth..].starts_with("From ") {
                        l[1..].to_owned()
                    } else {
                        l.to_owned()
                    }
                })
                .collect();
            let original = String::from_utf8_lossy(original).replace("\r\n", "\n");
            assert_eq!(unquoted.join("\n").trim_end(), original.trim_end());
        }
        assert_eq!(read[0]["subject"], "one");
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_and_stats() {
    let mut gw = TestGateway::start_custom(Extra::default()).await;
    gw.send(
        "a@partner.example",
        &["jan@old.example"],
        b"Subject: s\r\n\r\nx\r\n",
    )
    .await;
    gw.send(
        "a@partner.example",
        &["piet@old.example"],
        b"Subject: s\r\n\r\nx\r\n",
    )
    .await;
    gw.send(
        "noreply@bank.example",
        &["jan@old.example"],
        b"Auto-Submitted: auto-generated\r\nSubject: s\r\n\r\nx\r\n",
    )
    .await;
    gw.send(
        "",
        &["jan@sub.retired.example"],
        b"Subject: bounce\r\n\r\nx\r\n",
    )
    .await;

    let report: serde_json::Value =
        serde_json::from_str(&gw.cli_ok(&["report", "--json"]).await).expect("JSON");
    let domains = report["domains"].as_array().expect("domains");
    assert_eq!(domains[0]["sender"], "partner.example");
    assert_eq!(domains[0]["messages"], 2);
    assert_eq!(domains[0]["looks_automated"], false);
    assert_eq!(
        domains[0]["retired_addresses"],
        serde_json::json!(["jan@old.example", "piet@old.example"])
    );
    let bank = domains
        .iter()
        .find(|d| d["sender"] == "bank.example")
        .expect("bank");
    assert_eq!(bank["looks_automated"], true);
    assert!(domains.iter().any(|d| d["sender"] == "(null sender)"));

    let csv = gw.cli_ok(&["report", "--csv", "--since", "1d"]).await;
    assert!(csv.starts_with("kind,sender,messages,"), "{csv}");
    assert!(csv.contains("address,a@partner.example,2,jan@old.example piet@old.example,"));
    let table = gw.cli_ok(&["report"]).await;
    assert!(table.contains("partner.example"));

    let stats: serde_json::Value =
        serde_json::from_str(&gw.cli_ok(&["stats", "--json"]).await).expect("JSON");
    assert_eq!(stats["messages"], 4);
    assert_eq!(stats["domains"]["old.example"]["messages"], 3);
    assert_eq!(stats["domains"]["retired.example"]["messages"], 1);
    assert_eq!(stats["held"], 0);
    // No [notify] from in the test config: every notice is suppressed for that reason.
    assert_eq!(stats["notices"]["suppressed:no_from_address"], 4);
    assert!(
        gw.cli_ok(&["stats"])
            .await
            .contains("notices: 0 queued, 0 sent, 0 failed permanently, 0 expired, 4 suppressed")
    );
    gw.stop().await;
}
