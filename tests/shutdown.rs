//! Graceful shutdown: transactions in progress may finish, idle sessions get 421 4.3.0.

mod common;

use std::time::Duration;

use common::{Client, TestGateway, queued_id};
use reclaim::store::QuarantineStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_in_progress_finishes_then_421() {
    let mut gw = TestGateway::start("shutdown_grace = \"20s\"").await;
    let (mut busy, _) = Client::connect(gw.addr).await;
    let (mut idle, _) = Client::connect(gw.addr).await;
    busy.cmd("EHLO x").await;
    busy.cmd("MAIL FROM:<a@p.example>").await;
    busy.cmd("RCPT TO:<b@old.example>").await;
    assert!(busy.cmd("DATA").await.starts_with("354"));
    busy.send(b"Subject: in flight\r\n\r\nfirst half\r\n").await;

    gw.shutdown.cancel();
    let reply = idle.reply().await;
    assert!(reply.starts_with("421 4.3.0"), "idle session: {reply}");
    assert!(idle.closed().await);

    // No new connections once shutdown began.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        tokio::net::TcpStream::connect(gw.addr).await.is_err(),
        "listener must be closed"
    );

    busy.send(b"second half\r\n.\r\n").await;
    let id = queued_id(&busy.reply().await);
    let reply = busy.cmd("NOOP").await;
    assert!(
        reply.starts_with("421 4.3.0"),
        "after the transaction: {reply}"
    );
    let running = gw.running.take().expect("running");
    tokio::time::timeout(Duration::from_secs(10), running.task)
        .await
        .expect("stops")
        .expect("task");

    // The acknowledged message survived: start again on the same store and find it.
    let reopened = reclaim::store::Store::open(&gw.store).expect("reopen").0;
    assert!(
        reopened
            .get(id.parse().expect("id"))
            .await
            .expect("index")
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grace_period_ends_stalled_transactions() {
    let mut gw = TestGateway::start("shutdown_grace = \"1s\"").await;
    let (mut stalled, _) = Client::connect(gw.addr).await;
    stalled.cmd("EHLO x").await;
    stalled.cmd("MAIL FROM:<a@p.example>").await;
    stalled.cmd("RCPT TO:<b@old.example>").await;
    stalled.cmd("DATA").await;
    stalled.send(b"Subject: never finished\r\n").await;
    let started = std::time::Instant::now();
    gw.shutdown.cancel();
    let reply = stalled.reply().await;
    assert!(reply.starts_with("421 4.3.0"), "{reply}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    gw.stop().await;
    assert!(
        std::fs::read_dir(gw.store.join("tmp"))
            .expect("tmp")
            .next()
            .is_none()
    );
    let (store, report) = reclaim::store::Store::open(&gw.store).expect("reopen");
    assert_eq!(store.count().await.expect("count"), 0);
    assert!(report.is_clean());
}
