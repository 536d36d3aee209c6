//! End-to-end: a real gateway on 127.0.0.1:0, real clients, the real CLI.

mod common;

use common::{Client, TestGateway, queued_id, split_trace};

const PLAIN: &[u8] = b"From: Partner <p@partner.example>\r\nTo: jan@old.example\r\nSubject: Case file 4711\r\nMessage-ID: <m1@partner.example>\r\nDate: Sun, 29 Nov 2026 06:00:00 +0000\r\n\r\nCONFIDENTIAL-PLAINTEXT-MARKER\r\n.leading dot line\r\n..two dots\r\n\r\nEnd.\r\n";

fn eight_bit() -> Vec<u8> {
    "From: a@partner.example\r\nSubject: Zoë\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGeachte heer, uw dossier is verhuisd: één, twee, drie — ✓ EIGHT-BIT-MARKER\r\n"
        .as_bytes()
        .to_vec()
}

fn with_attachment() -> Vec<u8> {
    use base64::Engine;
    let binary: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&binary);
    let wrapped: Vec<&str> = encoded
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect();
    format!(
        "From: a@partner.example\r\nSubject: scan\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nATTACHMENT-MARKER see scan\r\n--b1\r\nContent-Type: application/octet-stream; name=\"scan.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1--\r\n",
        wrapped.join("\r\n")
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_round_trip_byte_for_byte_and_store_holds_no_plaintext() {
    let mut gw = TestGateway::start("").await;
    let bodies = [PLAIN.to_vec(), eight_bit(), with_attachment()];
    let mut ids = Vec::new();
    for body in &bodies {
        let (mut c, greeting) = Client::connect(gw.addr).await;
        assert!(greeting.starts_with("220 mx.old.example"), "{greeting}");
        let reply = c
            .send_message("sender@partner.example", &["jan@old.example"], body)
            .await;
        ids.push(queued_id(&reply));
        assert!(c.cmd("QUIT").await.starts_with("221"));
    }
    for (id, body) in ids.iter().zip(&bodies) {
        let exported = gw.export(id).await;
        let (trace, original) = split_trace(&exported);
        assert_eq!(&original, body, "message {id} must come back byte for byte");
        assert!(trace.starts_with("Return-Path: <sender@partner.example>\r\nReceived: from client.example ([127.0.0.1])\r\n"), "{trace}");
        assert!(
            trace.contains(&format!("by mx.old.example (reclaim) with ESMTP id {id}")),
            "{trace}"
        );
    }
    let listed = gw.list().await;
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0]["id"], ids[2].as_str(), "newest first");
    let first = &listed[2];
    assert_eq!(first["subject"], "Case file 4711");
    assert_eq!(first["mail_from"], "sender@partner.example");
    assert_eq!(first["rcpt_to"][0], "jan@old.example");
    assert_eq!(first["message_id"], "<m1@partner.example>");
    assert_eq!(first["from"], "Partner <p@partner.example>");
    assert_eq!(first["client_ip"], "127.0.0.1");
    assert_eq!(first["tls"], false);
    assert!(
        first["received_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );

    let stored = gw.store_bytes();
    for marker in [
        &b"CONFIDENTIAL-PLAINTEXT-MARKER"[..],
        b"EIGHT-BIT-MARKER",
        b"ATTACHMENT-MARKER",
        b"sender@partner.example",
        b"Case file",
        b"jan@old.example",
    ] {
        assert!(
            !stored.windows(marker.len()).any(|w| w == marker),
            "plaintext {:?} found in the store",
            String::from_utf8_lossy(marker)
        );
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lettre_over_starttls() {
    use lettre::message::{Attachment, MultiPart, SinglePart, header::ContentType};
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    let mut gw = TestGateway::start("").await;
    let message = Message::builder()
        .from("Partner <p@partner.example>".parse().expect("from"))
        .to("Jan <jan@old.example>".parse().expect("to"))
        .subject("Over TLS — ✓")
        .multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain("TLS-BODY-MARKER héllo".to_owned()))
                .singlepart(Attachment::new("scan.pdf".into()).body(
                    vec![0u8, 1, 2, 255, 254, 13, 10, 46],
                    ContentType::parse("application/pdf").expect("ct"),
                )),
        )
        .expect("message");
    // lettre always sends CRLF "." CRLF after the formatted message, so what it sent (and
    // what must come back) is the message plus one CRLF.
    let mut raw = message.formatted();
    raw.extend_from_slice(b"\r\n");
    let tls = TlsParameters::builder("localhost".to_owned())
        .dangerous_accept_invalid_certs(true)
        .build()
        .expect("tls params");
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(gw.addr.port())
        .tls(Tls::Required(tls))
        .build();
    let response = transport
        .send(message)
        .await
        .expect("lettre sends over STARTTLS");
    let text = response.message().collect::<Vec<_>>().join(" ");
    let id = text.rsplit(' ').next().expect("queue id").to_owned();

    let exported = gw.export(&id).await;
    let (trace, original) = split_trace(&exported);
    assert_eq!(
        String::from_utf8_lossy(&original),
        String::from_utf8_lossy(&raw)
    );
    assert!(trace.contains("with ESMTPS id"), "{trace}");
    assert!(trace.contains("(using TLSv1."), "{trace}");
    let listed = gw.list().await;
    assert_eq!(listed[0]["tls"], true);
    assert_eq!(listed[0]["subject"], "Over TLS — ✓");
    assert!(
        listed[0]["tls_version"]
            .as_str()
            .is_some_and(|v| v.starts_with("TLSv1."))
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relaying_and_strangers_are_refused() {
    let mut gw = TestGateway::start("").await;
    let (mut c, _) = Client::connect(gw.addr).await;
    c.cmd("EHLO x").await;
    c.cmd("MAIL FROM:<spam@bad.example>").await;
    for rcpt in [
        "victim@example.com",
        "a@old.example.com",
        "a@notold.example",
        "a@localhost",
    ] {
        let reply = c.cmd(&format!("RCPT TO:<{rcpt}>")).await;
        assert!(reply.starts_with("550 5.7.1"), "{rcpt}: {reply}");
    }
    for rcpt in [
        "anyone@old.example",
        "x@deep.sub.retired.example",
        "y@xn--bcher-kva.example",
        "z@BÜCHER.example",
    ] {
        let reply = c.cmd(&format!("RCPT TO:<{rcpt}>")).await;
        assert!(reply.starts_with("250 2.1.5"), "{rcpt}: {reply}");
    }
    assert!(c.cmd("DATA").await.starts_with("354"));
    c.send(b"Subject: x\r\n\r\nhi\r\n.\r\n").await;
    let id = queued_id(&c.reply().await);
    let listed = gw.list().await;
    assert_eq!(listed[0]["id"], id.as_str());
    let domains: Vec<&str> = listed[0]["domains"]
        .as_array()
        .expect("domains")
        .iter()
        .filter_map(|d| d.as_str())
        .collect();
    assert_eq!(
        domains,
        ["old.example", "retired.example", "xn--bcher-kva.example"]
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelining_bdat_and_smuggling_over_tcp() {
    let mut gw = TestGateway::start("").await;
    let (mut c, _) = Client::connect(gw.addr).await;
    c.send(
        b"EHLO x\r\nMAIL FROM:<a@p.example>\r\nRCPT TO:<b@old.example>\r\nDATA\r\nSubject: one\r\n\r\nfirst\n.\nMAIL FROM:<evil@p.example>\r\nRCPT TO:<c@old.example>\r\nDATA\r\nsmuggled\r\n.\r\nMAIL FROM:<a@p.example>\r\nRCPT TO:<d@old.example>\r\nBDAT 12\r\nSubject: two",
    )
    .await;
    assert!(c.reply().await.starts_with("250-mx.old.example"));
    assert!(c.reply().await.starts_with("250 2.1.0"));
    assert!(c.reply().await.starts_with("250 2.1.5"));
    assert!(c.reply().await.starts_with("354"));
    let first = queued_id(&c.reply().await);
    assert!(c.reply().await.starts_with("250 2.1.0"));
    assert!(c.reply().await.starts_with("250 2.1.5"));
    assert!(c.reply().await.starts_with("250 2.0.0 12 octets"));
    c.send(b"BDAT 10 LAST\r\n\r\n\r\nbinary").await;
    let second = queued_id(&c.reply().await);
    let body = gw.export(&first).await;
    let (_, original) = split_trace(&body);
    assert_eq!(original, b"Subject: one\r\n\r\nfirst\n.\nMAIL FROM:<evil@p.example>\r\nRCPT TO:<c@old.example>\r\nDATA\r\nsmuggled\r\n");
    let (_, original) = split_trace(&gw.export(&second).await);
    assert_eq!(original, b"Subject: two\r\n\r\nbinary");
    assert_eq!(
        gw.list().await.len(),
        2,
        "the smuggled message must not exist on its own"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_over_tcp() {
    let mut gw = TestGateway::start("max_message_size = \"8KiB\"\nmax_recipients = 3").await;
    let (mut c, _) = Client::connect(gw.addr).await;
    c.cmd("EHLO x").await;
    assert!(
        c.cmd("MAIL FROM:<a@p.example> SIZE=100000")
            .await
            .starts_with("552 5.3.4")
    );
    assert!(
        c.cmd("MAIL FROM:<a@p.example> SIZE=100")
            .await
            .starts_with("250")
    );
    for i in 0..3 {
        assert!(
            c.cmd(&format!("RCPT TO:<r{i}@old.example>"))
                .await
                .starts_with("250")
        );
    }
    assert!(
        c.cmd("RCPT TO:<r4@old.example>")
            .await
            .starts_with("452 4.5.3")
    );
    assert!(c.cmd("DATA").await.starts_with("354"));
    let line = "y".repeat(998) + "\r\n";
    c.send(line.repeat(20).as_bytes()).await;
    c.send(b".\r\n").await;
    assert!(
        c.reply().await.starts_with("552 5.3.4"),
        "the client lied in SIZE="
    );
    assert!(
        c.cmd("NOOP").await.starts_with("250"),
        "the session goes on"
    );
    assert!(gw.list().await.is_empty());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bytes_get_replies_not_panics() {
    let mut gw = TestGateway::start("max_errors = 50").await;
    let (mut c, _) = Client::connect(gw.addr).await;
    for garbage in [
        &b"\x00\x00\x00\r\n"[..],
        b"\xff\xfe\xfd\r\n",
        b"EHLO \x1b[31m\r\n",
        b"MAIL FROM:<\x00@x>\r\n",
        b"RCPT\r\n",
        b"\r\n",
        b"BDAT x\r\n",
    ] {
        c.send(garbage).await;
        let reply = c.reply().await;
        assert!(
            reply.len() >= 4 && reply.is_ascii(),
            "{garbage:?} -> {reply:?}"
        );
    }
    assert!(c.cmd("NOOP").await.starts_with("250"));
    // Pipelined input before the greeting is read is simply processed in order.
    let stream = tokio::net::TcpStream::connect(gw.addr)
        .await
        .expect("connect");
    let mut early = tokio::io::BufReader::new(stream);
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    early
        .get_mut()
        .write_all(b"EHLO early\r\nQUIT\r\n")
        .await
        .expect("send");
    let mut all = String::new();
    while early.read_line(&mut all).await.expect("read") > 0 {}
    assert!(
        all.starts_with("220 ") && all.contains("221 2.0.0"),
        "{all}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_time_out() {
    let mut gw = TestGateway::start("command_timeout = \"1s\"\ndata_timeout = \"1s\"").await;
    let (mut c, _) = Client::connect(gw.addr).await;
    let started = std::time::Instant::now();
    let reply = c.reply().await;
    assert!(reply.starts_with("421 4.4.2"), "{reply}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    assert!(c.closed().await);

    let (mut c, _) = Client::connect(gw.addr).await;
    c.cmd("EHLO x").await;
    c.cmd("MAIL FROM:<a@p.example>").await;
    c.cmd("RCPT TO:<b@old.example>").await;
    c.cmd("DATA").await;
    c.send(b"Subject: half a message\r\n").await;
    assert!(c.reply().await.starts_with("421 4.4.2"));
    assert!(
        gw.list().await.is_empty(),
        "an unfinished message is never stored"
    );
    assert!(
        std::fs::read_dir(gw.store.join("tmp"))
            .expect("tmp")
            .next()
            .is_none(),
        "its temp file is gone"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_time_is_bounded() {
    let mut gw = TestGateway::start("session_timeout = \"2s\"").await;
    let (mut c, _) = Client::connect(gw.addr).await;
    let started = std::time::Instant::now();
    loop {
        let reply = c.cmd("NOOP").await;
        if reply.starts_with("421") {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "session outlived its limit"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limits() {
    let mut gw = TestGateway::start("max_connections = 3\nmax_connections_per_ip = 2").await;
    let (_a, ga) = Client::connect(gw.addr).await;
    let (_b, gb) = Client::connect(gw.addr).await;
    assert!(ga.starts_with("220") && gb.starts_with("220"));
    let (mut c, gc) = Client::connect(gw.addr).await;
    assert!(gc.starts_with("421 4.7.0"), "per-IP cap: {gc}");
    assert!(c.closed().await);
    drop(_a);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (_d, gd) = Client::connect(gw.addr).await;
    assert!(gd.starts_with("220"), "a freed slot is reusable: {gd}");
    gw.stop().await;

    let mut gw = TestGateway::start("max_connections = 1").await;
    let (_a, _) = Client::connect(gw.addr).await;
    let (_b, gb) = Client::connect(gw.addr).await;
    assert!(gb.starts_with("421 4.3.2"), "total cap: {gb}");
    gw.stop().await;
}
