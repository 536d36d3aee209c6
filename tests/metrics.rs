//! Prometheus metrics on the internal listener (its own test binary: the recorder is
//! process-wide).

mod common;

use std::time::Duration;

use common::{Client, TestGateway, queued_id};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_scraped_from_the_internal_listener() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let tail = format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n");
    // Notices with a limit of one per sender: the second message's is held back.
    let relay = common::recorder::Recorder::start(0).await;
    let rest = format!(
        "{}\n[notify]\nfrom = \"postmaster@new.example\"\nrequire = \"none\"\nrelay = \"{}\"\nrelay_tls = \"none\"\ntemplates = \"{}\"\nsender_limit = 1\n",
        common::DEFAULT_REST,
        relay.addr,
        concat!(env!("CARGO_MANIFEST_DIR"), "/config/notices"),
    );
    let mut gw = TestGateway::start_custom(common::Extra {
        tail: &tail,
        rest: Some(&rest),
        ..common::Extra::default()
    })
    .await;
    let (mut c, _) = Client::connect(gw.addr).await;
    queued_id(
        &c.send_message(
            "a@p.example",
            &["b@old.example", "c@old.example"],
            b"Subject: m\r\n\r\nx\r\n",
        )
        .await,
    );
    queued_id(
        &c.send_message(
            "a@p.example",
            &["d@old.example"],
            b"Subject: m\r\n\r\nx\r\n",
        )
        .await,
    );
    assert!(c.cmd("QUIT").await.starts_with("221"));
    let (mut c, _) = Client::connect(gw.addr).await;
    c.cmd("EHLO x").await;
    c.cmd("MAIL FROM:<a@p.example>").await;
    assert!(
        c.cmd("RCPT TO:<victim@elsewhere.example>")
            .await
            .starts_with("550 5.7.1")
    );
    assert!(c.cmd("QUIT").await.starts_with("221"));

    tokio::time::sleep(Duration::from_millis(200)).await;
    let body = common::scrape_metrics(port).await;
    for expected in [
        "reclaim_connections_total 2",
        "reclaim_messages_accepted_total{domain=\"old.example\"} 3",
        "reclaim_rejections_total{code=\"550\",status=\"5.7.1\"} 1",
        "reclaim_end_of_data_to_reply_seconds_bucket",
        "reclaim_store_messages 2",
        "reclaim_notices_queued_total 1",
        "reclaim_notices_suppressed_total{reason=\"per_message\"} 1",
        "reclaim_notices_suppressed_total{reason=\"sender_limit\"} 1",
    ] {
        assert!(body.contains(expected), "missing {expected:?} in\n{body}");
    }
    assert!(
        !body.contains("a@p.example") && !body.contains("victim"),
        "no addresses in metrics"
    );
    gw.stop().await;
}
