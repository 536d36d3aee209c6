//! Notice delivery that no destination can pin: a mail exchanger that accepts and never
//! greets holds one notice only, shutdown interrupts it within the grace period and leaves
//! it queued, and direct delivery tries a bounded set of public addresses only.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::process::{free_port, serve};
use common::recorder::Recorder;
use common::{Client, queued_id};
use reclaim::config::{DeliveryConfig, DnsResolver};
use reclaim::dns::Dns;
use reclaim::notice::transport::{DeliveryError, Route, Transport};
use reclaim::store::QuarantineStore;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const GRACE: Duration = Duration::from_secs(3);
/// What process exit may take beyond the grace period (store close, runtime teardown).
const EXIT_MARGIN: Duration = Duration::from_secs(2);

/// A mail exchanger that accepts connections and never says a word. Each accepted stream
/// is sent out, so the test can wait for the connection and see whether it is still open.
async fn start_silent(
    addr: &str,
) -> (
    SocketAddr,
    mpsc::Receiver<TcpStream>,
    tokio::task::JoinHandle<()>,
) {
    let listener = TcpListener::bind(addr).await.expect("bind silent MX");
    let local = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::channel(8);
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            if tx.send(stream).await.is_err() {
                return;
            }
        }
    });
    (local, rx, task)
}

fn write_config(dir: &Path, smtp_port: u16, mx_port: u16) -> std::path::PathBuf {
    let (_, recipient) = common::new_identity(dir, "reviewer.key");
    let text = format!(
        r#"
[server]
hostname = "mx.old.example"
listen = ["127.0.0.1:{smtp_port}"]
shutdown_grace = "{grace}s"

[store]
path = {store:?}
min_free = "0"

[seal]
recipients = ["{recipient}"]

[admin]
socket = {socket:?}

[dns]
resolver = "static"
[dns.static]
"stuck.example TXT" = ["v=spf1 ip4:127.0.0.1 -all"]
"stuck.example MX" = ["10 mx.stuck.example."]
"mx.stuck.example A" = ["127.0.0.2"]
"partner.example TXT" = ["v=spf1 ip4:127.0.0.1 -all"]
"partner.example MX" = ["10 mx.partner.example."]
"mx.partner.example A" = ["127.0.0.3"]

[[domain]]
name = "old.example"
new_domain = "new.example"

[notify]
from = "postmaster@new.example"
require = "spf"
templates = "{templates}"
mx_port = {mx_port}
allow_private_mx = true
"#,
        grace = GRACE.as_secs(),
        store = dir.join("store"),
        socket = dir.join("admin.sock"),
        templates = concat!(env!("CARGO_MANIFEST_DIR"), "/config/notices"),
    );
    common::write_file(dir, "reclaim.toml", text.as_bytes())
}

async fn send(smtp: SocketAddr, from: &str, to: &str) {
    let (mut c, _) = Client::connect(smtp).await;
    let body =
        format!("From: <{from}>\r\nSubject: hello\r\nMessage-ID: <m@x.example>\r\n\r\nhi\r\n");
    queued_id(&c.send_message(from, &[to], body.as_bytes()).await);
}

/// Whether a connection is still open, without waiting: no bytes and no end of stream.
fn still_open(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(stream.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_mx_pins_only_its_own_notice_and_shutdown_leaves_it_queued() {
    // Both mail exchangers listen on the one `mx_port`, on different loopback addresses.
    let (silent_addr, mut silent, silent_task) = start_silent("127.0.0.2:0").await;
    let mx_port = silent_addr.port();
    let honest = Recorder::start_on(&format!("127.0.0.3:{mx_port}"), 0).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let smtp: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let config = write_config(dir.path(), smtp.port(), mx_port);
    let log = dir.path().join("serve.log");
    let mut serving = serve(&config, smtp, &log, None).await;
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();

    send(smtp, "someone@stuck.example", "a@old.example").await;
    let pinned = tokio::time::timeout(Duration::from_secs(20), silent.recv())
        .await
        .expect("the stuck notice's attempt connects")
        .expect("listener alive");

    send(smtp, "partner@partner.example", "b@old.example").await;
    let got = honest.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(
        got.len(),
        1,
        "honest notice delivered; log:\n{}",
        log_text()
    );
    assert_eq!(got[0].rcpt_to, ["partner@partner.example"]);
    assert!(
        still_open(&pinned),
        "the honest notice went out while the other attempt still hung"
    );
    // The pass that started the honest notice came after the stuck one was in flight.
    assert!(
        matches!(silent.try_recv(), Err(mpsc::error::TryRecvError::Empty)),
        "a notice is never attempted twice at once"
    );

    let mut child = serving.0.take().expect("running");
    let pid = child.id().to_string();
    let term = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || {
        let status = child.wait().expect("wait");
        (status, term.elapsed())
    });
    let (status, took) = tokio::time::timeout(GRACE + Duration::from_secs(20), status)
        .await
        .unwrap_or_else(|_| {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            panic!("gateway did not exit; log:\n{}", log_text())
        })
        .expect("wait task");
    eprintln!("exit after SIGTERM took {took:?} (shutdown_grace {GRACE:?})");
    assert_eq!(status.code(), Some(0), "log:\n{}", log_text());
    assert!(
        took < GRACE + EXIT_MARGIN,
        "exit took {took:?}; log:\n{}",
        log_text()
    );
    assert!(
        took >= GRACE - Duration::from_millis(200),
        "the attempt in flight had its grace period: {took:?}"
    );

    // The interrupted notice is still queued, with no attempt counted; the other is gone.
    let (store, _) = reclaim::store::Store::open(&dir.path().join("store")).expect("reopen");
    let queued = store.outbox_due(i64::MAX, 10, &[]).await.expect("outbox");
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0].1.to, "someone@stuck.example");
    assert_eq!(
        queued[0].1.attempts, 0,
        "an interrupted attempt is not counted"
    );
    let notices = store.stats().await.expect("stats").notices;
    assert_eq!(notices.get("sent"), Some(&1), "{notices:?}");
    assert_eq!(notices.get("failed:temporary"), None, "{notices:?}");
    drop(store);
    drop(pinned);

    // Next start: the same mail exchanger now answers, and the notice goes out.
    drop(silent);
    silent_task.abort();
    let _ = silent_task.await;
    let recovered = Recorder::start_on(&silent_addr.to_string(), 0).await;
    let serving = serve(&config, smtp, &log, None).await;
    let got = recovered.wait_for(1, Duration::from_secs(20)).await;
    drop(serving);
    assert_eq!(got.len(), 1, "left queued, delivered after the restart");
    assert_eq!(got[0].rcpt_to, ["someone@stuck.example"]);
}

/// A mail exchanger that turns every connection away with `421` and counts them.
async fn start_busy() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            let _ = stream.write_all(b"421 4.3.2 busy, <x@y.example>\r\n").await;
        }
    });
    (addr, count)
}

fn table(entries: &[(&str, &[&str])]) -> Dns {
    let map = entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
        .collect();
    Dns::from_config(&DnsResolver::Static(map)).expect("static DNS")
}

fn direct(dns: &Dns, port: u16, limits: DeliveryConfig) -> Transport {
    Transport {
        route: Route::Direct {
            dns: dns.clone(),
            port,
        },
        limits,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_delivery_tries_bounded_hosts_and_public_addresses_only() {
    let (busy, connections) = start_busy().await;
    let three: &[&str] = &["127.0.0.1", "127.0.0.1", "127.0.0.1"];
    let mut entries: Vec<(String, &[&str])> = vec![(
        "many.example MX".into(),
        &[
            "10 mx1.many.example",
            "20 mx2.many.example",
            "30 mx3.many.example",
            "40 mx4.many.example",
            "50 mx5.many.example",
            "60 mx6.many.example",
            "70 mx7.many.example",
        ],
    )];
    for i in 1..=7 {
        entries.push((format!("mx{i}.many.example A"), three));
    }
    entries.push(("nullmx.example MX".into(), &["0 ."]));
    let borrowed: Vec<(&str, &[&str])> = entries.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let dns = table(&borrowed);
    let lab = DeliveryConfig {
        allow_private_mx: true,
        ..DeliveryConfig::default()
    };
    let message = b"Subject: x\r\n\r\nnotice\r\n";

    let cases = [
        (lab.clone(), 10, "addresses capped at max_mx_addresses"),
        (
            DeliveryConfig {
                max_mx_hosts: 2,
                ..lab.clone()
            },
            6,
            "hosts capped at max_mx_hosts",
        ),
    ];
    for (limits, expected, what) in cases {
        connections.store(0, Ordering::SeqCst);
        let outcome = direct(&dns, busy.port(), limits)
            .deliver("mx.old.example", "p@many.example", message)
            .await;
        match outcome {
            Err(DeliveryError::Temporary { summary, .. }) => {
                assert_eq!(summary, "reply 421 4.3.2", "the server's text stays out")
            }
            other => panic!("{what}: {other:?}"),
        }
        assert_eq!(connections.load(Ordering::SeqCst), expected, "{what}");
    }

    // Without allow_private_mx none of these loopback addresses is tried, and that is final.
    connections.store(0, Ordering::SeqCst);
    let outcome = direct(&dns, busy.port(), DeliveryConfig::default())
        .deliver("mx.old.example", "p@many.example", message)
        .await;
    assert!(
        matches!(outcome, Err(DeliveryError::Permanent { .. })),
        "{outcome:?}"
    );
    assert_eq!(connections.load(Ordering::SeqCst), 0);

    let outcome = direct(&dns, busy.port(), lab)
        .deliver("mx.old.example", "p@nullmx.example", message)
        .await;
    assert!(
        matches!(&outcome, Err(DeliveryError::Permanent { summary, .. }) if summary.contains("null MX")),
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_notices_leave_no_outbox_row_and_no_address_in_the_totals() {
    let relay = Recorder::start(0).await;
    let rest = format!(
        r#"
[dns]
resolver = "off"
[[domain]]
name = "old.example"
new_domain = "new.example"
[notify]
from = "postmaster@new.example"
require = "none"
relay = "{}"
relay_tls = "none"
templates = "{}"
# All twenty senders are at partner.example: let one organisation have the whole hour.
per_domain_hourly_limit = 100
"#,
        relay.addr,
        concat!(env!("CARGO_MANIFEST_DIR"), "/config/notices"),
    );
    let mut gw = common::TestGateway::start_sections("", &rest).await;
    const SENDERS: usize = 20;
    for i in 0..SENDERS {
        let from = format!("probe{i}-trace@partner.example");
        gw.send(&from, &["jan@old.example"], b"Subject: s\r\n\r\nb\r\n")
            .await;
    }
    let got = relay.wait_for(SENDERS, Duration::from_secs(20)).await;
    assert_eq!(got.len(), SENDERS);
    // Stopping waits for the worker, which settles each attempt before it ends.
    gw.stop().await;
    let (store, _) = reclaim::store::Store::open(&gw.store).expect("reopen");
    assert_eq!(store.outbox_len().await.expect("outbox"), 0);
    let notices = store.stats().await.expect("stats").notices;
    assert_eq!(notices.get("sent"), Some(&(SENDERS as u64)));
    assert!(notices.keys().all(|k| !k.contains('@')), "{notices:?}");
}
