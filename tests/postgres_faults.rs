//! Nodes of a shared PostgreSQL store that die or freeze: a node killed mid-message leaves
//! no visible half message (the purge removes what it staged), and a node stopped while it
//! holds a notice's lease loses the notice to another node, its late finish changing
//! nothing. The nodes that fail are the real binary, so that signals reach them.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::postgres::{self, Postgres};
use common::process::{Serving, free_port, serve};
use common::recorder::{Recorder, silent_listener};
use common::{Client, Extra, TestGateway, split_trace};

/// Writes a config for a child node with `store` lines, SMTP on 127.0.0.1:`port`,
/// sealing to `recipient`; `rest` holds `[dns]`, `[[domain]]` and `[notify]`.
fn child_config(
    dir: &Path,
    store: &str,
    port: u16,
    recipient: &str,
    rest: &str,
) -> std::path::PathBuf {
    let text = format!(
        r#"
[server]
hostname = "mx.old.example"
listen = ["127.0.0.1:{port}"]

[store]
path = {path:?}
{store}

[seal]
recipients = ["{recipient}"]

[admin]
socket = {socket:?}

{rest}
"#,
        path = dir.join("store"),
        socket = dir.join("admin.sock"),
    );
    let path = dir.join("reclaim.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// Waits until `sql` (one number) reaches `at_least`.
async fn wait_for_count(pg: &Postgres, sql: &str, at_least: u64) {
    let started = Instant::now();
    loop {
        let n: u64 = pg.psql(sql).trim().parse().expect("a count");
        if n >= at_least {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{sql} stayed at {n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn signal(child: &Serving, name: &str) {
    let pid = child.0.as_ref().expect("child").id().to_string();
    let status = Command::new("kill")
        .args([name, &pid])
        .status()
        .expect("kill");
    assert!(status.success());
}

const REST: &str = "[dns]\nresolver = \"off\"\n[[domain]]\nname = \"old.example\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_message_leaves_no_visible_half_message() {
    if !postgres::available() {
        return;
    }
    let pg = tokio::task::spawn_blocking(Postgres::start_new)
        .await
        .expect("cluster");
    let dir = tempfile::tempdir().expect("tempdir");
    let (identity, recipient) = common::new_identity(dir.path(), "reviewer.key");
    let port = free_port();
    let smtp = format!("127.0.0.1:{port}").parse().expect("addr");
    let config = child_config(dir.path(), &pg.store_lines(), port, &recipient, REST);
    let mut child = serve(&config, smtp, &dir.path().join("a.log"), None).await;

    let acknowledged = b"Subject: kept\r\n\r\nacknowledged before the kill\r\n";
    let (mut c, _) = Client::connect(smtp).await;
    let reply = c
        .send_message("p@partner.example", &["x@old.example"], acknowledged)
        .await;
    assert!(reply.starts_with("250"), "{reply}");
    let kept = common::queued_id(&reply);

    // A large message, cut off before its final dot: chunks of it reach the database.
    let (mut c, _) = Client::connect(smtp).await;
    assert!(c.cmd("EHLO client.example").await.starts_with("250"));
    assert!(
        c.cmd("MAIL FROM:<p@partner.example>")
            .await
            .starts_with("250")
    );
    assert!(c.cmd("RCPT TO:<x@old.example>").await.starts_with("250"));
    assert!(c.cmd("DATA").await.starts_with("354"));
    let line = "HALF-MESSAGE-MARKER ".repeat(50) + "\r\n";
    for _ in 0..1000 {
        c.send(line.as_bytes()).await;
    }
    wait_for_count(&pg, "SELECT count(*) FROM sealed_chunks", 3).await;
    signal(&child, "-KILL");
    let _ = child.0.take().expect("child").wait();

    assert_eq!(
        pg.psql("SELECT count(*) FROM messages WHERE visible")
            .trim(),
        "1"
    );
    assert_eq!(
        pg.psql("SELECT count(*) FROM messages WHERE NOT visible")
            .trim(),
        "1",
        "the half message stays staged, invisible"
    );
    let keys = (identity.as_path(), recipient.as_str());
    let gw = TestGateway::start_custom(Extra {
        store: &pg.store_lines(),
        reviewer: Some(keys),
        rest: Some(REST),
        ..Extra::default()
    })
    .await;
    let listed = gw.list().await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], kept.as_str());
    let (_, original) = split_trace(&gw.export(&kept).await);
    assert_eq!(original, acknowledged);

    // Once stale, the purge removes what the dead node staged, chunks and all.
    pg.psql("UPDATE messages SET staged_at = staged_at - 2 * 86400 WHERE NOT visible");
    gw.cli_ok(&["purge", "--older-than", "3650d", "--reason", "test"])
        .await;
    assert_eq!(
        pg.psql("SELECT count(*) FROM messages WHERE NOT visible")
            .trim(),
        "0"
    );
    assert_eq!(
        pg.psql("SELECT count(*) FROM sealed_chunks c JOIN messages m USING (id) WHERE m.visible")
            .trim(),
        pg.psql("SELECT count(*) FROM sealed_chunks").trim(),
        "no chunk is left without its message"
    );
    assert_eq!(gw.list().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_node_loses_its_notice_lease_and_its_late_finish_changes_nothing() {
    if !postgres::available() {
        return;
    }
    let pg = tokio::task::spawn_blocking(Postgres::start_new)
        .await
        .expect("cluster");
    let dir = tempfile::tempdir().expect("tempdir");
    let (identity, recipient) = common::new_identity(dir.path(), "reviewer.key");
    let notify = |relay: std::net::SocketAddr| {
        format!(
            r#"
[dns]
resolver = "off"
[[domain]]
name = "old.example"
new_domain = "new.example"
[notify]
from = "postmaster@new.example"
require = "none"
relay = "{relay}"
relay_tls = "none"
connect_timeout = "2s"
reply_timeout = "2s"
attempt_timeout = "3s"
templates = "{}"
"#,
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/notices"),
        )
    };
    // Node A's relay never greets: A claims the notice and hangs in its attempt.
    let (silent, mut accepted) = silent_listener().await;
    let port = free_port();
    let smtp = format!("127.0.0.1:{port}").parse().expect("addr");
    // Leases just longer than an attempt, so that the test waits seconds, not minutes.
    let store = format!("{}outbox_lease = \"4s\"\n", pg.store_lines());
    let config = child_config(dir.path(), &store, port, &recipient, &notify(silent));
    let log = dir.path().join("a.log");
    let mut child = serve(&config, smtp, &log, None).await;

    let (mut c, _) = Client::connect(smtp).await;
    let reply = c
        .send_message(
            "alice@partner.example",
            &["jan@old.example"],
            b"Subject: s\r\n\r\nb\r\n",
        )
        .await;
    assert!(reply.starts_with("250"), "{reply}");
    tokio::time::timeout(Duration::from_secs(20), accepted.recv())
        .await
        .expect("node A starts its attempt")
        .expect("accepted");
    assert_eq!(
        pg.psql("SELECT count(*) FROM outbox WHERE lease IS NOT NULL")
            .trim(),
        "1",
        "A holds the lease"
    );
    signal(&child, "-STOP");

    // Node B starts, waits out A's lease, and delivers.
    let relay = Recorder::start(0).await;
    let mut b = TestGateway::start_custom(Extra {
        store: &store,
        reviewer: Some((identity.as_path(), recipient.as_str())),
        rest: Some(&notify(relay.addr)),
        ..Extra::default()
    })
    .await;
    let got = relay.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(got[0].rcpt_to, ["alice@partner.example"]);
    b.stop().await;
    assert_eq!(pg.psql("SELECT count(*) FROM outbox").trim(), "0");

    // A wakes: its attempt times out, and it finds its lease gone.
    signal(&child, "-CONT");
    let started = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("notice lease was lost to another node")
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "A never finished"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        pg.psql("SELECT count(*) FROM outbox").trim(),
        "0",
        "not queued again"
    );
    assert_eq!(
        pg.psql("SELECT string_agg(name || '=' || n, ',' ORDER BY name) FROM notice_counts")
            .trim(),
        "queued=1,sent=1",
        "A's failed attempt is not counted"
    );
    signal(&child, "-KILL");
    let _ = child.0.take().expect("child").wait();
}
