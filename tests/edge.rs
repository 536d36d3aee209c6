//! The SMTP edge under pressure: connection counts per client network, the store quota and
//! free-disk floor (452 4.3.1 before the data), and the memory budget for DKIM copies.

mod common;

use std::net::SocketAddr;
use std::path::Path;

use common::{Client, Extra, TestGateway, queued_id};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

const MESSAGE: &[u8] = b"From: <a@partner.example>\r\nSubject: hello\r\n\r\nsome text\r\n";

/// Connects from `local` (a 127.0.0.x address) and returns the stream and first reply line.
async fn connect_from(local: &str, to: SocketAddr) -> (BufReader<TcpStream>, String) {
    let socket = TcpSocket::new_v4().expect("socket");
    let local: SocketAddr = format!("{local}:0").parse().expect("local address");
    socket.bind(local).expect("bind a loopback source address");
    let stream = socket.connect(to).await.expect("connect");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(20),
        reader.read_line(&mut line),
    )
    .await
    .expect("greeting within 20 s")
    .expect("read greeting");
    (reader, line)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_are_counted_by_network() {
    // Default: every IPv4 address is its own client.
    let mut gw = TestGateway::start("max_connections_per_ip = 1").await;
    let (_one, first) = connect_from("127.0.0.1", gw.addr).await;
    let (_two, second) = connect_from("127.0.0.2", gw.addr).await;
    assert!(
        first.starts_with("220") && second.starts_with("220"),
        "{second}"
    );
    let (_three, third) = connect_from("127.0.0.2", gw.addr).await;
    assert!(third.starts_with("421 4.7.0"), "{third}");
    gw.stop().await;

    // With /24, 127.0.0.1 and 127.0.0.2 are one client.
    let mut gw = TestGateway::start("max_connections_per_ip = 1\nclient_prefix_v4 = 24").await;
    let (_one, first) = connect_from("127.0.0.1", gw.addr).await;
    assert!(first.starts_with("220"), "{first}");
    let (_two, second) = connect_from("127.0.0.2", gw.addr).await;
    assert!(second.starts_with("421 4.7.0"), "same /24: {second}");
    gw.stop().await;
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).expect("read dir").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_quarantine_answers_452_until_messages_are_deleted() {
    let mut gw = TestGateway::start_custom(Extra {
        store: "max_size = \"2KiB\"\nmin_free = \"0\"",
        ..Extra::default()
    })
    .await;
    // Checked before the data: this message fits the empty store and takes it past 2 KiB.
    let big: Vec<u8> = [MESSAGE, &[b'x'; 3000][..], b"\r\n"].concat();
    let first = gw.send("a@partner.example", &["x@old.example"], &big).await;

    let (mut c, _) = Client::connect(gw.addr).await;
    assert!(c.cmd("EHLO client.example").await.starts_with("250"));
    let refused = c.cmd("MAIL FROM:<a@partner.example>").await;
    assert!(refused.starts_with("452 4.3.1"), "{refused}");
    // The transaction was never opened: nothing can be sent.
    assert!(c.cmd("RCPT TO:<x@old.example>").await.starts_with("503"));
    assert!(c.cmd("DATA").await.starts_with("503"));
    assert_eq!(files_in(&gw.store.join("tmp")), 0, "nothing half-written");
    assert_eq!(gw.list().await.len(), 1);

    gw.cli_ok(&["delete", &first, "--reason", "make room"])
        .await;
    let reply = c
        .send_message("a@partner.example", &["x@old.example"], MESSAGE)
        .await;
    assert!(
        reply.starts_with("250 "),
        "room again after delete: {reply}"
    );
    let second = queued_id(&reply);
    assert_eq!(gw.list().await.len(), 1);
    assert!(gw.export(&second).await.ends_with(MESSAGE));
    assert_eq!(files_in(&gw.store.join("tmp")), 0);

    drop(c);
    // The quota counts what is in the store across restarts too.
    gw.restart().await;
    let (mut c, _) = Client::connect(gw.addr).await;
    assert!(c.cmd("EHLO client.example").await.starts_with("250"));
    let after_restart = c.cmd("MAIL FROM:<a@partner.example> SIZE=2000").await;
    assert!(after_restart.starts_with("452 4.3.1"), "{after_restart}");
    assert!(
        c.cmd("MAIL FROM:<a@partner.example> SIZE=100")
            .await
            .starts_with("250")
    );
    assert!(c.cmd("QUIT").await.starts_with("221"));

    // Full again; a purge makes room as a delete does.
    gw.send("a@partner.example", &["x@old.example"], &big).await;
    let (mut c, _) = Client::connect(gw.addr).await;
    assert!(c.cmd("EHLO client.example").await.starts_with("250"));
    assert!(
        c.cmd("MAIL FROM:<a@partner.example>")
            .await
            .starts_with("452 4.3.1")
    );
    gw.cli_ok(&["purge", "--older-than", "0s", "--reason", "make room"])
        .await;
    assert!(
        c.cmd("MAIL FROM:<a@partner.example>")
            .await
            .starts_with("250"),
        "room again after purge"
    );
    assert!(c.cmd("QUIT").await.starts_with("221"));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_free_disk_floor_mail_is_deferred() {
    let mut gw = TestGateway::start_custom(Extra {
        store: "min_free = \"1000000GiB\"",
        ..Extra::default()
    })
    .await;
    let (mut c, _) = Client::connect(gw.addr).await;
    assert!(c.cmd("EHLO client.example").await.starts_with("250"));
    let refused = c.cmd("MAIL FROM:<a@partner.example>").await;
    assert!(
        refused.starts_with("452 4.3.1 Insufficient system storage"),
        "{refused}"
    );
    assert_eq!(files_in(&gw.store.join("tmp")), 0);
    assert_eq!(files_in(&gw.store.join("messages")), 0);
    assert_eq!(files_in(&gw.store.join("segments")), 0);
    gw.stop().await;
}

const STATIC_DNS: &str = r#"
[dns]
resolver = "static"

[dns.static]
"partner.example TXT" = ["v=spf1 ip4:127.0.0.1 -all"]

[[domain]]
name = "old.example"
"#;

/// The DKIM verdict the gateway recorded for one small message.
async fn dkim_verdict(budget: &str) -> String {
    let mut gw = TestGateway::start_sections(budget, STATIC_DNS).await;
    gw.send("a@partner.example", &["x@old.example"], MESSAGE)
        .await;
    let listed = gw.list().await;
    gw.stop().await;
    listed[0]["auth"]["dkim"]
        .as_str()
        .expect("auth results")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_memory_budget_messages_are_checked_on_headers_only() {
    assert_eq!(dkim_verdict("").await, "none", "checked whole by default");
    assert_eq!(
        dkim_verdict("auth_memory_budget = \"0\"").await,
        "skipped",
        "no budget: headers only, as for large messages"
    );
}
