//! How `reclaim imap` behaves at 10,000 messages (or `RECLAIM_IMAP_SCALE_MESSAGES`): a
//! measurement that prints figures, not a timed test (ignored; run with `cargo test
//! --release --test imap_scale -- --ignored --nocapture`). It checks the answers are whole
//! and prints how long each step took, among them opening INBOX and fetching the headers of
//! its newest 500 messages as a mail client does for its message list.

mod common;

use std::time::{Duration, Instant};

use clap::Parser;
use common::TestGateway;
use reclaim::cli::Args;
use reclaim::imap::{Bound, Limits, Review};
use reclaim::review::ReviewContext;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// How many messages the quarantine holds, unless the environment says otherwise.
const MESSAGES: usize = 10_000;
/// The newest messages whose headers a client fetches for its message list.
const NEWEST: usize = 500;
const SESSIONS: usize = 8;

/// Sends `command` tagged `tag` and reads to the tagged line (literals included).
async fn command(stream: &mut BufReader<TcpStream>, tag: &str, command: &str) -> Vec<u8> {
    stream
        .get_mut()
        .write_all(format!("{tag} {command}\r\n").as_bytes())
        .await
        .expect("send");
    let mut all = Vec::new();
    loop {
        let mut line = Vec::new();
        tokio::time::timeout(
            Duration::from_secs(600),
            stream.read_until(b'\n', &mut line),
        )
        .await
        .expect("an answer in time")
        .expect("read");
        assert!(!line.is_empty(), "closed");
        all.extend_from_slice(&line);
        let text = String::from_utf8_lossy(&line);
        if let Some(n) = text
            .trim_end()
            .strip_suffix('}')
            .and_then(|t| t.rsplit('{').next())
            .and_then(|n| n.parse::<usize>().ok())
        {
            let mut literal = vec![0; n];
            stream.read_exact(&mut literal).await.expect("literal");
            all.extend_from_slice(&literal);
            continue;
        }
        if text.starts_with(&format!("{tag} ")) {
            assert!(text.starts_with(&format!("{tag} OK")), "{text}");
            return all;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --release -- --ignored --nocapture"]
async fn imap_at_scale() {
    let messages: usize = std::env::var("RECLAIM_IMAP_SCALE_MESSAGES")
        .ok()
        .map_or(MESSAGES, |n| {
            n.parse().expect("RECLAIM_IMAP_SCALE_MESSAGES is a number")
        });
    assert!(messages >= NEWEST, "at least {NEWEST} messages");
    let mut gw = TestGateway::start("").await;
    let filled = Instant::now();
    let mut sessions = Vec::new();
    for s in 0..SESSIONS {
        let addr = gw.addr;
        sessions.push(tokio::spawn(async move {
            let (mut client, _) = common::Client::connect(addr).await;
            for n in (s..messages).step_by(SESSIONS) {
                let from = format!("s{s}@bulk{}.example", n % 40);
                let body = format!("From: {from}\r\nSubject: message {n}\r\n\r\nbody {n}\r\n");
                let reply = client
                    .send_message(&from, &["jan@old.example"], body.as_bytes())
                    .await;
                assert!(reply.starts_with("250"), "{reply}");
            }
        }));
    }
    for session in sessions {
        session.await.expect("session");
    }
    eprintln!("stored {messages} messages in {:?}", filled.elapsed());

    let args = Args::parse_from([
        "reclaim".to_owned(),
        "-c".to_owned(),
        gw.config_path.display().to_string(),
        "-i".to_owned(),
        gw.identity.display().to_string(),
        "imap".to_owned(),
        "--reason".to_owned(),
        "scale".to_owned(),
    ]);
    let context = ReviewContext::new(&args.access()).expect("review context");
    let state = tempfile::tempdir().expect("tempdir");
    let bound = Bound::bind(
        Box::new(Review::new(context, "scale")),
        state.path(),
        "127.0.0.1:0".parse().expect("addr"),
        Limits::default(),
    )
    .await
    .expect("imap binds");
    let (addr, password) = (bound.addr, bound.password().to_owned());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(bound.serve(shutdown.clone()));
    let mut stream = BufReader::new(TcpStream::connect(addr).await.expect("connect"));
    let mut greeting = Vec::new();
    stream
        .read_until(b'\n', &mut greeting)
        .await
        .expect("greeting");
    command(&mut stream, "a", &format!("LOGIN me {password}")).await;

    let mut timed = Vec::new();
    let started = Instant::now();
    let selected =
        String::from_utf8(command(&mut stream, "b", "SELECT INBOX").await).expect("utf8");
    let opened = started.elapsed();
    timed.push(("SELECT INBOX (first index, UIDs given and saved)", opened));
    assert!(
        selected.contains(&format!("* {messages} EXISTS")),
        "{selected}"
    );
    let started = Instant::now();
    let headers = command(
        &mut stream,
        "h",
        &format!(
            "FETCH {}:* (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE MESSAGE-ID)])",
            messages - NEWEST + 1
        ),
    )
    .await;
    let fetched = started.elapsed();
    timed.push((
        "FETCH headers of the newest 500 (read ahead in batches: 2 audited reads)",
        fetched,
    ));
    timed.push(("SELECT INBOX and the newest 500 headers", opened + fetched));
    let text = String::from_utf8_lossy(&headers);
    assert_eq!(text.matches(" FETCH (").count(), NEWEST);
    assert_eq!(text.matches("Subject: message ").count(), NEWEST);
    let started = Instant::now();
    let listed = command(
        &mut stream,
        "c",
        "UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)",
    )
    .await;
    timed.push((
        "UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)",
        started.elapsed(),
    ));
    let lines = String::from_utf8_lossy(&listed).matches(" FETCH (").count();
    assert_eq!(lines, messages);
    let started = Instant::now();
    let search = format!("UID SEARCH SUBJECT \"message {}\"", messages - 83);
    let found = String::from_utf8(command(&mut stream, "d", &search).await).expect("utf8");
    timed.push(("UID SEARCH SUBJECT (summaries)", started.elapsed()));
    let hits = found
        .lines()
        .find_map(|l| l.strip_prefix("* SEARCH"))
        .map(|rest| rest.split_whitespace().count())
        .expect("a SEARCH line");
    assert_eq!(hits, 1, "{found}");
    let started = Instant::now();
    let body = command(
        &mut stream,
        "e",
        &format!("FETCH {} BODY.PEEK[]", messages / 2),
    )
    .await;
    timed.push((
        "FETCH one BODY.PEEK[] (one audited read)",
        started.elapsed(),
    ));
    assert!(String::from_utf8_lossy(&body).contains("body "), "a body");
    let started = Instant::now();
    command(&mut stream, "f", "NOOP").await;
    timed.push(("NOOP (index reused or fetched anew)", started.elapsed()));
    // Past the index's 10 seconds: fetched anew, the UIDs already known.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let started = Instant::now();
    command(&mut stream, "g", "SELECT INBOX").await;
    timed.push((
        "SELECT INBOX again (index fetched anew, UIDs known)",
        started.elapsed(),
    ));
    for (what, took) in timed {
        eprintln!("{what}: {took:?}");
    }
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), server).await;
    gw.stop().await;
}
