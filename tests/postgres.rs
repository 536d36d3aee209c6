//! The shared store on a real PostgreSQL server started by the test: a gateway on it
//! reviews like one on the embedded store, two nodes take mail at once into one
//! quarantine, and a database outage is answered `451 4.3.0` and recovered from.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::postgres::{self, Postgres};
use common::recorder::Recorder;
use common::{Client, Extra, TestGateway, queued_id, split_trace};

/// `[dns]` off, one retired domain in notify mode, notices through `relay`.
fn notify_sections(relay: &Recorder) -> String {
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
relay = "{}"
relay_tls = "none"
templates = "{}"
"#,
        relay.addr,
        concat!(env!("CARGO_MANIFEST_DIR"), "/config/notices"),
    )
}

/// Starts a cluster off the async workers (initdb takes a second or two).
async fn cluster() -> Postgres {
    tokio::task::spawn_blocking(Postgres::start_new)
        .await
        .expect("cluster task")
}

async fn psql(pg: &Postgres, sql: &str) -> String {
    // psql is quick; running it inline keeps the helper simple.
    pg.psql(sql).trim().to_owned()
}

/// Starts a node on `pg` listening on `listen`, sealing to `reviewer`.
async fn node(pg: &Postgres, listen: &str, reviewer: (&Path, &str), rest: &str) -> TestGateway {
    let store = pg.store_lines();
    TestGateway::start_custom(Extra {
        store: &store,
        listen: Some(listen),
        reviewer: Some(reviewer),
        rest: Some(rest),
        ..Extra::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_on_postgres_reviews_like_one_on_the_embedded_store() {
    if !postgres::available() {
        return;
    }
    let pg = cluster().await;
    let relay = Recorder::start(0).await;
    let keys = tempfile::tempdir().expect("tempdir");
    let (identity, recipient) = common::new_identity(keys.path(), "reviewer.key");
    let mut gw = node(
        &pg,
        "127.0.0.1:0",
        (&identity, &recipient),
        &notify_sections(&relay),
    )
    .await;

    // Larger than one stored chunk, so that it is streamed in and read back in pieces.
    let mut body = b"Subject: on postgres\r\n\r\n".to_vec();
    for i in 0..12_000 {
        body.extend_from_slice(format!("PG-PLAINTEXT-MARKER line {i}\r\n").as_bytes());
    }
    let id = gw
        .send("alice@partner.example", &["jan@old.example"], &body)
        .await;
    let small = gw
        .send(
            "bob@partner.example",
            &["jan@old.example"],
            b"Subject: s\r\n\r\nsmall\r\n",
        )
        .await;

    let listed = gw.list().await;
    let ids: Vec<&str> = listed
        .iter()
        .map(|m| m["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, [small.as_str(), id.as_str()], "newest first");
    let (_, original) = split_trace(&gw.export(&id).await);
    assert_eq!(original, body, "the message comes back byte for byte");
    assert!(
        psql(&pg, "SELECT count(*) FROM sealed_chunks")
            .await
            .parse::<u32>()
            .expect("count")
            > 2,
        "the large message is stored in several chunks"
    );
    assert_eq!(
        psql(&pg, "SELECT count(*) FROM sealed_chunks WHERE position('PG-PLAINTEXT-MARKER'::bytea in data) > 0 OR position('alice@partner'::bytea in data) > 0").await,
        "0",
        "PostgreSQL holds sealed bytes only"
    );

    gw.cli_ok(&["hold", &id, "--reason", "legal"]).await;
    let held: Vec<bool> = gw
        .list()
        .await
        .iter()
        .map(|m| m["held"].as_bool().expect("held"))
        .collect();
    assert_eq!(held, [false, true]);

    // Both senders get their notice, each once.
    let got = relay.wait_for(2, Duration::from_secs(20)).await;
    let mut to: Vec<String> = got.iter().flat_map(|r| r.rcpt_to.clone()).collect();
    to.sort();
    assert_eq!(to, ["alice@partner.example", "bob@partner.example"]);

    gw.cli_ok(&["delete", &small, "--reason", "reviewed"]).await;
    assert_eq!(gw.list().await.len(), 1);
    assert_eq!(
        psql(
            &pg,
            &format!("SELECT count(*) FROM messages WHERE id = '{small}'")
        )
        .await,
        "0"
    );
    let stats: serde_json::Value =
        serde_json::from_str(&gw.cli_ok(&["stats", "--json"]).await).expect("JSON");
    assert_eq!(stats["messages"], 1);
    assert_eq!(stats["held"], 1);

    let audit: serde_json::Value =
        serde_json::from_str(&gw.cli_ok(&["audit", "--json", "--verify"]).await).expect("JSON");
    assert_eq!(audit["verified"], true);
    let actions: Vec<&str> = audit["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["action"].as_str().expect("action"))
        .collect();
    for action in ["export", "hold", "delete"] {
        assert!(actions.contains(&action), "{action} recorded: {actions:?}");
    }
    assert_eq!(
        psql(
            &pg,
            "SELECT seq = (SELECT max(seq) FROM audit) FROM audit_chain"
        )
        .await,
        "t",
        "the chain's head row follows the records"
    );

    // Notices settled: nothing left in the outbox, two sent.
    gw.stop().await;
    assert_eq!(psql(&pg, "SELECT count(*) FROM outbox").await, "0");
    assert_eq!(
        psql(&pg, "SELECT n FROM notice_counts WHERE name = 'sent'").await,
        "2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_take_mail_at_once_into_one_quarantine() {
    if !postgres::available() {
        return;
    }
    let pg = cluster().await;
    let keys = tempfile::tempdir().expect("tempdir");
    let (identity, recipient) = common::new_identity(keys.path(), "reviewer.key");
    let rest = "[dns]\nresolver = \"off\"\n[[domain]]\nname = \"old.example\"\n";
    let mut a = node(&pg, "127.0.0.1:0", (&identity, &recipient), rest).await;
    let mut b = node(&pg, "127.0.0.2:0", (&identity, &recipient), rest).await;

    const CLIENTS: usize = 8;
    const EACH: usize = 6;
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let addr = if c % 2 == 0 { a.addr } else { b.addr };
        tasks.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            for m in 0..EACH {
                let body = format!("Subject: c{c} m{m}\r\n\r\nclient {c} message {m}\r\n");
                let (mut client, _) = Client::connect(addr).await;
                let reply = client
                    .send_message("p@partner.example", &["x@old.example"], body.as_bytes())
                    .await;
                assert!(reply.starts_with("250"), "{reply}");
                sent.push((queued_id(&reply), body));
            }
            sent
        }));
    }
    let mut acknowledged = Vec::new();
    for task in tasks {
        acknowledged.extend(task.await.expect("client"));
    }
    let expected: BTreeSet<&str> = acknowledged.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(expected.len(), CLIENTS * EACH);

    for gw in [&a, &b] {
        let listed: Vec<String> = gw
            .list()
            .await
            .iter()
            .map(|m| m["id"].as_str().expect("id").to_owned())
            .collect();
        assert_eq!(
            listed.len(),
            CLIENTS * EACH,
            "each message listed exactly once"
        );
        let listed: BTreeSet<&str> = listed.iter().map(String::as_str).collect();
        assert_eq!(listed, expected);
    }
    // Whichever node took a message, either node hands it back byte for byte.
    for (id, body) in acknowledged.iter().step_by(7) {
        for gw in [&a, &b] {
            let (_, original) = split_trace(&gw.export(id).await);
            assert_eq!(original, body.as_bytes());
        }
    }
    let audit: serde_json::Value =
        serde_json::from_str(&b.cli_ok(&["audit", "--json", "--verify"]).await).expect("JSON");
    assert_eq!(audit["verified"], true, "one chain for both nodes");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_answered_451_and_recovered_from() {
    if !postgres::available() {
        return;
    }
    let pg = cluster().await;
    let keys = tempfile::tempdir().expect("tempdir");
    let (identity, recipient) = common::new_identity(keys.path(), "reviewer.key");
    let rest = "[dns]\nresolver = \"off\"\n[[domain]]\nname = \"old.example\"\n";
    let mut gw = node(&pg, "127.0.0.1:0", (&identity, &recipient), rest).await;
    let before = gw
        .send(
            "p@partner.example",
            &["x@old.example"],
            b"Subject: 1\r\n\r\nbefore\r\n",
        )
        .await;

    pg.stop_now();
    let (mut c, _) = Client::connect(gw.addr).await;
    let reply = c
        .send_message(
            "p@partner.example",
            &["x@old.example"],
            b"Subject: 2\r\n\r\nduring\r\n",
        )
        .await;
    assert!(reply.starts_with("451 4.3.0"), "{reply}");

    pg.start();
    // The pool finds its connections dead and opens new ones: no restart of the gateway.
    let started = Instant::now();
    let after = loop {
        let (mut c, _) = Client::connect(gw.addr).await;
        let reply = c
            .send_message(
                "p@partner.example",
                &["x@old.example"],
                b"Subject: 3\r\n\r\nafter\r\n",
            )
            .await;
        if reply.starts_with("250") {
            break queued_id(&reply);
        }
        assert!(reply.starts_with("451 4.3.0"), "{reply}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no recovery: {reply}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let listed: Vec<String> = gw
        .list()
        .await
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(
        listed,
        [after, before],
        "nothing of the refused message is visible"
    );
    gw.stop().await;

    // Down at start: a clear error, no gateway.
    pg.stop_now();
    let config = reclaim::config::Config::load(&gw.config_path).expect("config");
    let error =
        match reclaim::launch::launch(&config, tokio_util::sync::CancellationToken::new()).await {
            Ok(_) => panic!("a gateway started without its database"),
            Err(error) => error.to_string(),
        };
    assert!(
        error.contains("cannot open the store on PostgreSQL"),
        "{error}"
    );
}

/// A copy of `config` whose `[store]` is `store_lines` and whose admin socket is `socket`.
fn config_variant(
    config: &Path,
    name: &str,
    store_lines: &str,
    socket: &Path,
) -> std::path::PathBuf {
    let text = std::fs::read_to_string(config).expect("config");
    let text = text.replacen("[store]\n", &format!("[store]\n{store_lines}"), 1);
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("socket = ") {
            out.push_str(&format!("socket = {socket:?}\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    let path = config.with_file_name(name);
    std::fs::write(&path, out).expect("write config");
    path
}

/// Message ids as `list` shows them, newest first.
async fn listed_ids(gw: &TestGateway) -> Vec<String> {
    gw.list()
        .await
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_owned())
        .collect()
}

/// What a migrated gateway must show: the same list, byte-identical exports, the hold,
/// and an audit chain that verifies and records the migration.
async fn check(gw: &TestGateway, ids: &[String], exports: &[Vec<u8>], before: &[String]) {
    assert_eq!(listed_ids(gw).await, before);
    for (id, exported) in ids.iter().zip(exports) {
        assert_eq!(&gw.export(id).await, exported, "message {id}");
    }
    let held: Vec<bool> = gw
        .list()
        .await
        .iter()
        .map(|m| m["held"].as_bool().expect("held"))
        .collect();
    assert_eq!(held, [false, true, false]);
    // Who each message is sealed to travels with it: one reviewer, recorded on every one.
    let socket = reclaim::config::Config::load(&gw.config_path)
        .expect("config")
        .admin
        .socket;
    let listed = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["-fsS", "--unix-socket"])
            .arg(socket)
            .arg("http://localhost/v1/messages")
            .output()
    })
    .await
    .expect("curl task")
    .expect("curl");
    let page: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("list JSON");
    let sealed_to: Vec<&serde_json::Value> = page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| &m["sealed_to"])
        .collect();
    assert_eq!(sealed_to.len(), 3);
    assert!(
        sealed_to.iter().all(|s| *s == sealed_to[0]
            && s.as_array()
                .is_some_and(|a| a.len() == 1 && a[0].as_str().is_some_and(|f| f.len() == 16))),
        "{sealed_to:?}"
    );
    let audit: serde_json::Value =
        serde_json::from_str(&gw.cli_ok(&["audit", "--json", "--verify"]).await).expect("JSON");
    assert_eq!(audit["verified"], true);
    let records = audit["records"].as_array().expect("records");
    assert!(records.iter().any(|r| r["action"] == "store-migrate"));
    assert!(records.iter().any(|r| r["action"] == "hold"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_migrate_copies_an_embedded_store_into_postgres_and_back() {
    if !postgres::available() {
        return;
    }
    let pg = cluster().await;
    // The relay refuses the first notice for now: it stays queued, to be carried over.
    let relay = Recorder::start(1).await;
    let mut gw = TestGateway::start_sections("", &notify_sections(&relay)).await;
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    for i in 0..20_000 {
        big.extend_from_slice(format!("migrated line {i}\r\n").as_bytes());
    }
    let ids = [
        gw.send(
            "a@partner.example",
            &["jan@old.example"],
            b"Subject: 1\r\n\r\none\r\n",
        )
        .await,
        gw.send("b@partner.example", &["jan@old.example"], &big)
            .await,
        gw.send(
            "c@partner.example",
            &["jan@old.example"],
            b"Subject: 3\r\n\r\nthree\r\n",
        )
        .await,
    ];
    gw.cli_ok(&["hold", &ids[1], "--reason", "legal"]).await;
    relay.wait_ended(1, Duration::from_secs(20)).await;
    let mut exports = Vec::new();
    for id in &ids {
        exports.push(gw.export(id).await);
    }
    let before = listed_ids(&gw).await;
    gw.stop().await;

    let embedded = gw.config_path.clone();
    let on_pg = config_variant(
        &embedded,
        "pg.toml",
        &pg.store_lines(),
        &gw.dir.path().join("admin-pg.sock"),
    );
    let report: serde_json::Value = serde_json::from_str(
        &gw.cli_ok(&[
            "store",
            "migrate",
            "--to",
            on_pg.to_str().expect("utf8"),
            "--json",
        ])
        .await,
    )
    .expect("JSON report");
    assert_eq!(report["messages"], 3);
    assert_eq!(report["held"], 1);
    assert!(
        report["notices"].as_u64().expect("notices") >= 1,
        "{report}"
    );
    assert!(
        report["audit_records"].as_u64().expect("audit") >= 4,
        "{report}"
    );
    assert!(
        pg.psql("SELECT count(*) FROM outbox")
            .trim()
            .parse::<u64>()
            .expect("n")
            >= 1,
        "queued notices carried over"
    );
    let again = gw
        .cli(&["store", "migrate", "--to", on_pg.to_str().expect("utf8")])
        .await;
    assert!(
        !again.status.success(),
        "a second copy into a full store is refused"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    // The gateway on PostgreSQL has all of it, byte for byte, and an unbroken chain.
    gw.config_path = on_pg.clone();
    gw.restart().await;
    check(&gw, &ids, &exports, &before).await;
    gw.stop().await;

    // And back into a fresh embedded store.
    let back_store = gw.dir.path().join("store-back");
    let back = config_variant(
        &embedded,
        "back.toml",
        "",
        &gw.dir.path().join("admin-back.sock"),
    );
    let text = std::fs::read_to_string(&back).expect("config");
    let old_path = format!("path = {:?}", gw.store);
    std::fs::write(
        &back,
        text.replace(&old_path, &format!("path = {back_store:?}")),
    )
    .expect("config");
    gw.cli_ok(&["store", "migrate", "--to", back.to_str().expect("utf8")])
        .await;
    gw.config_path = back;
    gw.restart().await;
    check(&gw, &ids, &exports, &before).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_mail_survives_losing_the_primary_to_a_synchronous_standby() {
    if !postgres::available() {
        return;
    }
    let primary = tokio::task::spawn_blocking(|| {
        Postgres::start_with("synchronous_standby_names = '*'\nsynchronous_commit = on\n")
    })
    .await
    .expect("primary");
    let primary_port = primary.port;
    let (primary, standby) = tokio::task::spawn_blocking(move || {
        let standby = Postgres::standby_of(&primary);
        (primary, standby)
    })
    .await
    .expect("standby");
    assert_eq!(primary_port, primary.port);
    // The standby is in sync before any mail comes.
    let started = Instant::now();
    while primary
        .psql("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'")
        .trim()
        != "1"
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no synchronous standby"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let keys = tempfile::tempdir().expect("tempdir");
    let (identity, recipient) = common::new_identity(keys.path(), "reviewer.key");
    let rest = "[dns]\nresolver = \"off\"\n[[domain]]\nname = \"old.example\"\n";
    let mut gw = node(&primary, "127.0.0.1:0", (&identity, &recipient), rest).await;
    let mut acknowledged = Vec::new();
    for i in 0..10 {
        let body = format!("Subject: {i}\r\n\r\nbefore the failover {i}\r\n");
        let id = gw
            .send("p@partner.example", &["x@old.example"], body.as_bytes())
            .await;
        acknowledged.push((id, body));
    }
    gw.cli_ok(&["hold", &acknowledged[3].0, "--reason", "legal"])
        .await;

    // The primary is gone at once; the standby takes over; the gateway is pointed at it.
    primary.stop_now();
    standby.promote();
    // The standby inherited the primary's settings: with no standby of its own, it must
    // stop waiting for one, or every commit would wait for ever.
    standby.psql("ALTER SYSTEM SET synchronous_standby_names = ''");
    standby.psql("SELECT pg_reload_conf()");
    gw.stop().await;
    let text = std::fs::read_to_string(&gw.config_path).expect("config");
    std::fs::write(
        &gw.config_path,
        text.replace(&primary.url(), &standby.url()),
    )
    .expect("config");
    gw.restart().await;

    let listed: BTreeSet<String> = listed_ids(&gw).await.into_iter().collect();
    for (id, body) in &acknowledged {
        assert!(listed.contains(id), "acknowledged message {id} lost");
        let (_, original) = split_trace(&gw.export(id).await);
        assert_eq!(original, body.as_bytes());
    }
    let audit: serde_json::Value =
        serde_json::from_str(&gw.cli_ok(&["audit", "--json", "--verify"]).await).expect("JSON");
    assert_eq!(audit["verified"], true);
    assert!(
        audit["records"]
            .as_array()
            .expect("records")
            .iter()
            .any(|r| r["action"] == "hold")
    );
    // And the promoted server takes new mail.
    gw.send(
        "p@partner.example",
        &["x@old.example"],
        b"Subject: after\r\n\r\nafter\r\n",
    )
    .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_requests_end_at_the_query_timeout_when_the_database_hangs() {
    if !postgres::available() {
        return;
    }
    let pg = cluster().await;
    let keys = tempfile::tempdir().expect("tempdir");
    let (identity, recipient) = common::new_identity(keys.path(), "reviewer.key");
    let rest = "[dns]\nresolver = \"off\"\n[[domain]]\nname = \"old.example\"\n";
    let store = pg.store_lines() + "query_timeout = \"2s\"\n";
    let mut gw = TestGateway::start_custom(Extra {
        store: &store,
        listen: Some("127.0.0.1:0"),
        reviewer: Some((&identity, &recipient)),
        rest: Some(rest),
        ..Extra::default()
    })
    .await;
    gw.send(
        "p@partner.example",
        &["x@old.example"],
        b"Subject: 1\r\n\r\nx\r\n",
    )
    .await;

    // Another session holds the messages table for longer than the test lasts: without a
    // deadline the listing would wait for it and then succeed.
    let mut holder = pg.hold_lock("messages", 600);
    let out = gw.cli(&["list", "--json"]).await;
    assert!(
        !out.status.success(),
        "a listing must fail at the query timeout, not wait for the lock"
    );
    // Ending the holder's server session lets go of the lock (killing psql alone would not
    // until its backend noticed).
    pg.psql(
        "SELECT pg_terminate_backend(pid) FROM pg_locks \
         WHERE relation = 'messages'::regclass AND mode = 'AccessExclusiveLock'",
    );
    holder.wait().expect("reap the lock holder");
    assert_eq!(
        gw.list().await.len(),
        1,
        "and works again once the lock is gone"
    );

    // A download reads the sealed message chunk by chunk after its row: each chunk's query
    // ends at the timeout too, and the export fails instead of waiting for the lock.
    let mut large = b"Subject: large\r\n\r\n".to_vec();
    large.extend(
        std::iter::repeat_n(b"0123456789abcdef0123456789abcdef\r\n".as_slice(), 30_000).flatten(),
    );
    let id = gw
        .send("p@partner.example", &["x@old.example"], &large)
        .await;
    let mut holder = pg.hold_lock("sealed_chunks", 600);
    let out = gw
        .cli_within(
            &["export", &id, "--reason", "timeout test"],
            std::time::Duration::from_secs(60),
        )
        .await;
    assert!(
        !out.status.success(),
        "an export must fail at the query timeout, not wait for the lock"
    );
    pg.psql(
        "SELECT pg_terminate_backend(pid) FROM pg_locks \
         WHERE relation = 'sealed_chunks'::regclass AND mode = 'AccessExclusiveLock'",
    );
    holder.wait().expect("reap the lock holder");
    let exported = gw.export(&id).await;
    assert!(exported.ends_with(&large), "and the download works again");
    gw.stop().await;
}
