//! `reclaim release` never hangs on its relay: a relay that accepts and never greets,
//! stalls after the message, or trickles bytes ends the command at the configured
//! `[release]` deadline with exit 7 and an error naming that deadline.

mod common;

use std::net::SocketAddr;
use std::process::Output;
use std::time::{Duration, Instant};

use common::recorder::{Recorder, silent_listener};
use common::{Extra, TestGateway};
use tokio::io::AsyncWriteExt;

const REPLY: Duration = Duration::from_secs(1);
const ATTEMPT: Duration = Duration::from_secs(4);
/// What the error says when the relay goes quiet.
const STALLED: [&str; 2] = [
    "the server stopped answering (reply_timeout)",
    "[release] reply_timeout is 1s",
];
/// Far beyond every deadline above: a command still running then is hanging.
const HANG: Duration = Duration::from_secs(60);

/// A gateway holding one message, whose `[release]` names `relay` with short deadlines.
async fn gateway(relay: SocketAddr) -> (TestGateway, String) {
    let tail = format!(
        "[release]\nrelay = \"{relay}\"\ntls = \"none\"\nfrom = \"quarantine@new.example\"\n\
         connect_timeout = \"1s\"\nreply_timeout = \"1s\"\nattempt_timeout = \"4s\"\n"
    );
    let gw = TestGateway::start_custom(Extra {
        tail: &tail,
        ..Extra::default()
    })
    .await;
    let id = gw
        .send(
            "a@partner.example",
            &["jan@old.example"],
            b"Subject: case\r\n\r\nbody\r\n",
        )
        .await;
    (gw, id)
}

async fn release(gw: &TestGateway, id: &str) -> Output {
    gw.cli_within(
        &[
            "release",
            id,
            "--to",
            "case@new.example",
            "--reason",
            "ticket 12",
        ],
        HANG,
    )
    .await
}

/// Exit 7 with each of `expected` in the error, which names the relay and the message.
fn assert_refused(out: &Output, expected: &[&str], relay: SocketAddr, id: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    for text in expected {
        assert!(stderr.contains(text), "{text:?} not in {stderr}");
    }
    assert!(
        stderr.contains(&format!(
            "submission server {relay} did not take message {id}"
        )),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("released"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_never_greets_ends_release_at_reply_timeout() {
    let (relay, mut accepted) = silent_listener().await;
    let (mut gw, id) = gateway(relay).await;
    let out = release(&gw, &id).await;
    let exited = Instant::now();
    let connected = accepted.try_recv().expect("the CLI connected to the relay");
    assert_refused(&out, &STALLED, relay, &id);
    let waited = exited - connected;
    assert!(
        waited >= REPLY && waited < ATTEMPT,
        "waited {waited:?} for the greeting"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_stalls_after_data_ends_release_at_reply_timeout() {
    let relay = Recorder::start_stalling_after_data().await;
    let (mut gw, id) = gateway(relay.addr).await;
    let out = release(&gw, &id).await;
    assert_refused(&out, &STALLED, relay.addr, &id);
    // The whole message reached the relay before it went quiet, and the CLI hung up.
    let received = relay.wait_ended(1, Duration::from_secs(20)).await;
    assert_eq!(received.len(), 1);
    assert!(received[0].data.contains("\r\nbody\r\n"), "{received:?}");
    // Nothing was recorded as released.
    let audit = gw.cli_ok(&["audit", "--json"]).await;
    let audit: serde_json::Value = serde_json::from_str(&audit).expect("JSON");
    let records = audit["records"].as_array().expect("records");
    assert!(records.iter().any(|r| r["action"] == "release-fetch"));
    assert!(!records.iter().any(|r| r["action"] == "release"));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_relay_ends_release_at_attempt_timeout() {
    // One byte well within each reply deadline, and never a whole greeting.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let relay = listener.local_addr().expect("addr");
    let (connected_tx, mut connected) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = connected_tx.send(Instant::now()).await;
            tokio::spawn(async move {
                while stream.write_all(b"2").await.is_ok() {
                    tokio::time::sleep(REPLY / 4).await;
                }
            });
        }
    });
    let (mut gw, id) = gateway(relay).await;
    let out = release(&gw, &id).await;
    let exited = Instant::now();
    assert_refused(
        &out,
        &["the attempt took longer than attempt_timeout; [release] attempt_timeout is 4s"],
        relay,
        &id,
    );
    let waited = exited - connected.try_recv().expect("the CLI connected");
    assert!(waited < ATTEMPT + REPLY, "{waited:?}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_relay_is_exit_7() {
    // A port nothing listens on any more.
    let relay = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let (mut gw, id) = gateway(relay).await;
    let out = release(&gw, &id).await;
    assert_refused(&out, &["connect failed"], relay, &id);
    gw.stop().await;
}
