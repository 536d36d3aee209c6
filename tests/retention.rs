//! Deleting on time and handing mail on: retention, holds, delete, purge and release.

mod common;

use std::time::Duration;

use common::{Extra, TestGateway};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_purges_expired_messages_but_not_held_ones() {
    let mut gw = TestGateway::start_custom(Extra {
        store: "retention = \"3s\"\npurge_interval = \"1s\"",
        tail: "[[domain]]\nname = \"keep.example\"\nretention = \"1h\"",
        ..Extra::default()
    })
    .await;
    let body = b"Subject: s\r\n\r\nx\r\n";
    let held = gw.send("a@p.example", &["x@old.example"], body).await;
    gw.cli_ok(&["hold", &held, "--reason", "legal hold 17"])
        .await;
    let expiring = gw.send("a@p.example", &["y@old.example"], body).await;
    let kept = gw.send("a@p.example", &["z@keep.example"], body).await;
    let (held_sealed, expiring_sealed, kept_sealed) = (
        gw.sealed_head(&held).await,
        gw.sealed_head(&expiring).await,
        gw.sealed_head(&kept).await,
    );
    let listed = gw.list().await;
    assert_eq!(listed.len(), 3);
    assert!(
        listed
            .iter()
            .any(|m| m["id"] == held.as_str() && m["held"] == true)
    );

    // A purge deletes the sealed data first and the index entry last: wait for the entry to
    // leave the listing, which comes after the data is gone.
    let ids = listed_until(&gw, |ids| !ids.contains(&expiring), "never purged").await;
    assert!(ids.contains(&held) && ids.contains(&kept));
    assert!(!gw.holds_sealed(&expiring_sealed));
    assert!(gw.holds_sealed(&held_sealed));

    gw.cli_ok(&["unhold", &held]).await;
    listed_until(&gw, |ids| !ids.contains(&held), "never purged after unhold").await;
    assert!(!gw.holds_sealed(&held_sealed));
    assert!(
        gw.holds_sealed(&kept_sealed),
        "the per-domain retention applies"
    );

    let audit: serde_json::Value =
        serde_json::from_str(&gw.cli_ok(&["audit", "--json"]).await).expect("JSON");
    assert!(
        audit["records"]
            .as_array()
            .expect("records")
            .iter()
            .any(|r| r["action"] == "purge" && r["who"] == "reclaim (retention)")
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_and_purge_by_hand() {
    let mut gw = TestGateway::start("").await;
    let body = b"Subject: s\r\n\r\nx\r\n";
    let a = gw.send("a@p.example", &["x@old.example"], body).await;
    let b = gw.send("a@p.example", &["x@old.example"], body).await;
    let c = gw.send("a@p.example", &["x@old.example"], body).await;
    let (a_sealed, b_sealed, c_sealed) = (
        gw.sealed_head(&a).await,
        gw.sealed_head(&b).await,
        gw.sealed_head(&c).await,
    );

    let out = gw.cli_ok(&["delete", &a, "--reason", "reviewed"]).await;
    assert!(out.contains(&format!("deleted {a}")));
    assert!(!gw.holds_sealed(&a_sealed));
    assert_eq!(gw.list().await.len(), 2);
    let again = gw.cli(&["delete", &a]).await;
    assert_eq!(again.status.code(), Some(4), "an unknown id is exit 4");
    assert_eq!(gw.cli(&["delete", "nonsense"]).await.status.code(), Some(2));
    assert_eq!(
        gw.cli(&["hold", "0193a5c4-0000-7000-8000-000000000000"])
            .await
            .status
            .code(),
        Some(4)
    );

    gw.cli_ok(&["hold", &b]).await;
    let report: serde_json::Value =
        serde_json::from_str(&gw.cli_ok(&["purge", "--older-than", "0s", "--json"]).await)
            .expect("JSON");
    assert_eq!(report["deleted"], serde_json::json!([c]));
    assert_eq!(report["held"], 1);
    assert!(!gw.holds_sealed(&c_sealed) && gw.holds_sealed(&b_sealed));
    let audit: serde_json::Value =
        serde_json::from_str(&gw.cli_ok(&["audit", "--json"]).await).expect("JSON");
    let purge = audit["records"]
        .as_array()
        .expect("records")
        .iter()
        .find(|r| r["action"] == "purge")
        .expect("purge recorded");
    assert_eq!(
        purge["ids"],
        serde_json::json!([c]),
        "a purge records what it deleted"
    );
    assert_eq!(
        gw.cli(&["purge", "--older-than", "forever"])
            .await
            .status
            .code(),
        Some(2)
    );
    gw.stop().await;
}

/// A one-connection SMTP sink that records what it was sent.
async fn smtp_sink() -> (u16, tokio::task::JoinHandle<(Vec<String>, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        let mut stream = BufReader::new(stream);
        let mut commands = Vec::new();
        let mut data = Vec::new();
        stream
            .get_mut()
            .write_all(b"220 sink.example ESMTP\r\n")
            .await
            .expect("greet");
        loop {
            let mut line = String::new();
            if stream.read_line(&mut line).await.expect("read") == 0 {
                break;
            }
            let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
            commands.push(line.trim_end().to_owned());
            let reply: &[u8] = match verb.as_str() {
                "EHLO" => b"250-sink.example\r\n250 8BITMIME\r\n",
                "DATA" => {
                    stream
                        .get_mut()
                        .write_all(b"354 go on\r\n")
                        .await
                        .expect("354");
                    loop {
                        let mut l = Vec::new();
                        stream.read_until(b'\n', &mut l).await.expect("data");
                        if l == b".\r\n" || l.is_empty() {
                            break;
                        }
                        data.extend_from_slice(&l);
                    }
                    b"250 2.0.0 queued as SINK1\r\n"
                }
                "QUIT" => {
                    let _ = stream.get_mut().write_all(b"221 bye\r\n").await;
                    break;
                }
                _ => b"250 ok\r\n",
            };
            stream.get_mut().write_all(reply).await.expect("reply");
        }
        (commands, data)
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_submits_the_original_with_resent_fields() {
    let (port, sink) = smtp_sink().await;
    let tail = format!(
        "[release]\nrelay = \"127.0.0.1:{port}\"\ntls = \"none\"\nfrom = \"quarantine@new.example\"\n"
    );
    let mut gw = TestGateway::start_custom(Extra {
        tail: &tail,
        ..Extra::default()
    })
    .await;
    let original =
        b"From: a@partner.example\r\nSubject: case file\r\n\r\nline one\r\n.leading dot\r\n";
    let id = gw
        .send("a@partner.example", &["jan@old.example"], original)
        .await;

    assert_eq!(
        gw.cli(&["release", &id, "--to", "case@new.example"])
            .await
            .status
            .code(),
        Some(2),
        "a release needs a reason"
    );
    let out = gw
        .cli_ok(&[
            "release",
            &id,
            "--to",
            "case@new.example",
            "--reason",
            "ticket 4711",
        ])
        .await;
    assert!(out.contains("released"), "{out}");
    let (commands, data) = tokio::time::timeout(Duration::from_secs(20), sink)
        .await
        .expect("sink finishes")
        .expect("sink task");
    assert!(
        commands
            .iter()
            .any(|c| c == "MAIL FROM:<quarantine@new.example>")
    );
    assert!(commands.iter().any(|c| c == "RCPT TO:<case@new.example>"));
    let text = String::from_utf8(data).expect("utf8");
    assert!(text.starts_with("Resent-Date: "), "{text}");
    assert!(text.contains("\r\nResent-From: quarantine@new.example\r\n"));
    assert!(text.contains("\r\nResent-To: case@new.example\r\n"));
    assert!(text.contains("\r\nResent-Message-ID: <"));
    assert!(!text.contains("Return-Path:"));
    assert!(text.contains("\r\nReceived: "));
    assert!(text.contains("\r\nSubject: case file\r\n\r\nline one\r\n..leading dot\r\n"));

    let audit: serde_json::Value =
        serde_json::from_str(&gw.cli_ok(&["audit", "--json"]).await).expect("JSON");
    let records = audit["records"].as_array().expect("records");
    let fetch = records
        .iter()
        .find(|r| r["action"] == "release-fetch")
        .expect("fetch recorded");
    assert_eq!(fetch["reason"], "ticket 4711");
    let release = records
        .iter()
        .find(|r| r["action"] == "release")
        .expect("release recorded");
    assert_eq!(release["ids"], serde_json::json!([id]));
    assert!(
        release["detail"]
            .as_str()
            .expect("detail")
            .contains("case@new.example")
    );

    // A relay that is not there: exit 7, and nothing recorded as released.
    gw.stop().await;
    gw.restart().await;
    let out = gw
        .cli(&[
            "release",
            &id,
            "--to",
            "case@new.example",
            "--reason",
            "again",
        ])
        .await;
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_over_required_starttls_with_an_internal_ca() {
    // The gateway itself is the relay here: it speaks STARTTLS with the dev certificate,
    // which the release config trusts as its internal CA.
    let mut gw = TestGateway::start("").await;
    let port = gw.addr.port();
    let ca = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("certs/dev-cert.pem");
    gw.stop().await;
    let tail = format!(
        "[release]\nrelay = \"localhost:{port}\"\ntls = \"required\"\nca = {ca:?}\nfrom = \"quarantine@new.example\"\n"
    );
    let text = std::fs::read_to_string(&gw.config_path)
        .expect("config")
        .replace(
            "listen = [\"127.0.0.1:0\"]",
            &format!("listen = [\"127.0.0.1:{port}\"]"),
        )
        + &tail;
    std::fs::write(&gw.config_path, text).expect("config");
    gw.restart().await;

    let id = gw
        .send(
            "a@partner.example",
            &["jan@old.example"],
            b"Subject: tls\r\n\r\nsecret\r\n",
        )
        .await;
    gw.cli_ok(&[
        "release",
        &id,
        "--to",
        "case@old.example",
        "--reason",
        "over TLS",
    ])
    .await;
    let listed = gw.list().await;
    let released = listed
        .iter()
        .find(|m| m["id"] != id.as_str())
        .expect("the released copy arrived");
    assert_eq!(released["tls"], true, "submitted over STARTTLS");
    let bytes = gw.export(released["id"].as_str().expect("id")).await;
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.contains("\r\nResent-To: case@old.example\r\n"),
        "{text}"
    );
    assert!(text.contains("secret"));
    gw.stop().await;
}

/// Lists until `done` holds for the listed ids (at most 20 s), and returns them.
async fn listed_until(
    gw: &TestGateway,
    done: impl Fn(&[String]) -> bool,
    what: &str,
) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let ids: Vec<String> = gw
            .list()
            .await
            .iter()
            .map(|m| m["id"].as_str().expect("id").to_owned())
            .collect();
        if done(&ids) {
            return ids;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
