//! The audit chain's witness: every append's head goes to an append-only file and to a
//! command, and `audit --verify --heads` catches a chain rewritten consistently by someone
//! with write access to the store (which `--verify` alone cannot), on both stores.

mod common;

use std::path::Path;

use common::postgres::{self, Postgres};
use common::{Extra, TestGateway};
use reclaim::store::audit::hash_hex;
use redb::{ReadableTable, TableDefinition};

const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
const AUDIT_STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("audit_state");

/// How a test reaches into the store behind the gateway's back.
enum Backdoor<'a> {
    Embedded,
    Postgres(&'a Postgres),
}

impl Backdoor<'_> {
    /// Rewrites the newest record's reason and moves the head along, so that the chain
    /// alone still verifies.
    fn rewrite_newest(&self, store: &Path) {
        match self {
            Backdoor::Embedded => {
                let db = redb::Database::create(store.join("index.redb")).expect("index");
                let txn = db.begin_write().expect("write");
                {
                    let mut audit = txn.open_table(AUDIT).expect("audit");
                    let (seq, record) = {
                        let (k, v) = audit.last().expect("last").expect("a record");
                        (k.value(), String::from_utf8_lossy(v.value()).into_owned())
                    };
                    let forged = record.replace("\"action\":\"list\"", "\"action\":\"stats\"");
                    assert_ne!(forged, record, "the newest record is a list");
                    audit.insert(seq, forged.as_bytes()).expect("forge");
                    let mut state = txn.open_table(AUDIT_STATE).expect("state");
                    state
                        .insert("head", hash_hex(forged.as_bytes()).as_bytes())
                        .expect("head");
                }
                txn.commit().expect("commit");
            }
            Backdoor::Postgres(pg) => {
                pg.psql(
                    "UPDATE audit SET record = convert_to(replace(convert_from(record, 'UTF8'), \
                     '\"action\":\"list\"', '\"action\":\"stats\"'), 'UTF8') \
                     WHERE seq = (SELECT max(seq) FROM audit); \
                     UPDATE audit_chain SET head = encode(sha256((SELECT record FROM audit \
                     WHERE seq = (SELECT max(seq) FROM audit))), 'hex')",
                );
            }
        }
    }

    /// Removes the newest `n` records and moves the head back.
    fn drop_newest(&self, store: &Path, n: u64) {
        match self {
            Backdoor::Embedded => {
                let db = redb::Database::create(store.join("index.redb")).expect("index");
                let txn = db.begin_write().expect("write");
                {
                    let mut audit = txn.open_table(AUDIT).expect("audit");
                    for _ in 0..n {
                        audit.pop_last().expect("pop");
                    }
                    let head = {
                        let (_, v) = audit.last().expect("last").expect("a record left");
                        hash_hex(v.value())
                    };
                    let mut state = txn.open_table(AUDIT_STATE).expect("state");
                    state.insert("head", head.as_bytes()).expect("head");
                }
                txn.commit().expect("commit");
            }
            Backdoor::Postgres(pg) => {
                pg.psql(&format!(
                    "DELETE FROM audit WHERE seq > (SELECT max(seq) - {n} FROM audit); \
                     UPDATE audit_chain SET seq = (SELECT max(seq) FROM audit), \
                     head = encode(sha256((SELECT record FROM audit \
                     WHERE seq = (SELECT max(seq) FROM audit))), 'hex')"
                ));
            }
        }
    }
}

fn audit_section(dir: &Path) -> String {
    format!(
        "[audit]\nhead_file = {:?}\nhead_command = [\"/bin/sh\", \"-c\", \"cat >> {}\"]\n",
        dir.join("heads"),
        dir.join("command-heads").display()
    )
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn witnessed_chain(store_lines: &str, backdoor: Backdoor<'_>) {
    let witness = tempfile::tempdir().expect("tempdir");
    let tail = audit_section(witness.path());
    let mut gw = TestGateway::start_custom(Extra {
        store: store_lines,
        tail: &tail,
        ..Extra::default()
    })
    .await;
    let id = gw
        .send(
            "a@p.example",
            &["x@old.example"],
            b"Subject: s\r\n\r\nx\r\n",
        )
        .await;
    gw.cli_ok(&["show", &id, "--reason", "ticket 7"]).await;
    gw.cli_ok(&["hold", &id, "--reason", "legal"]).await;

    // Every record so far is witnessed, in the file and through the command.
    let audit: serde_json::Value =
        serde_json::from_str(&gw.cli_ok(&["audit", "--json"]).await).expect("JSON");
    let recorded = audit["records"].as_array().expect("records").len();
    let heads = witness.path().join("heads");
    let in_file = reclaim::witness::read_heads(&heads).expect("heads file");
    let by_command =
        reclaim::witness::read_heads(&witness.path().join("command-heads")).expect("heads");
    // The audit request itself was recorded (and witnessed) after its answer was made.
    assert_eq!(in_file.len(), recorded + 1, "{in_file:?}");
    assert_eq!(in_file, by_command);
    let heads_arg = heads.display().to_string();
    let out = gw.cli(&["audit", "--verify", "--heads", &heads_arg]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("witnessed"), "{}", stderr(&out));

    // Someone with write access to the store rewrites the newest record consistently.
    gw.cli_ok(&["list"]).await;
    gw.stop().await;
    backdoor.rewrite_newest(&gw.store);
    gw.restart().await;
    let alone = gw.cli(&["audit", "--verify"]).await;
    assert!(
        alone.status.success(),
        "a consistent rewrite passes the chain check alone: {}",
        stderr(&alone)
    );
    let out = gw.cli(&["audit", "--verify", "--heads", &heads_arg]).await;
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("rewritten"), "{}", stderr(&out));

    // ... or removes the newest records.
    gw.stop().await;
    backdoor.drop_newest(&gw.store, 3);
    gw.restart().await;
    let out = gw.cli(&["audit", "--verify", "--heads", &heads_arg]).await;
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("removed from its end"),
        "{}",
        stderr(&out)
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_embedded_store_the_witness_catches_a_rewritten_chain() {
    witnessed_chain("", Backdoor::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_postgres_store_the_witness_catches_a_rewritten_chain() {
    if !postgres::available() {
        return;
    }
    let pg = Postgres::start_new();
    witnessed_chain(&pg.store_lines(), Backdoor::Postgres(&pg)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_head_cannot_be_witnessed_fails_and_stays_recorded() {
    let tail = "[audit]\nhead_command = [\"/bin/false\"]\n";
    let mut gw = TestGateway::start_custom(Extra {
        tail,
        ..Extra::default()
    })
    .await;
    let out = gw.cli(&["list"]).await;
    assert!(!out.status.success(), "answered past an unwitnessed record");
    assert!(stderr(&out).contains("internal error"), "{}", stderr(&out));
    gw.stop().await;

    // The records stayed; a gateway without the failing witness shows them.
    let config = std::fs::read_to_string(&gw.config_path).expect("config");
    std::fs::write(&gw.config_path, config.replace(tail, "")).expect("config");
    gw.restart().await;
    let audit: serde_json::Value =
        serde_json::from_str(&gw.cli_ok(&["audit", "--json"]).await).expect("JSON");
    let records = audit["records"].as_array().expect("records");
    assert!(records.iter().any(|r| r["action"] == "list"), "{records:?}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_command_that_hangs_is_killed_at_its_deadline() {
    let tail = "[audit]\nhead_command = [\"/bin/sleep\", \"600\"]\nhead_timeout = \"1s\"\n";
    let mut gw = TestGateway::start_custom(Extra {
        tail,
        ..Extra::default()
    })
    .await;
    let out = gw
        .cli_within(&["list"], std::time::Duration::from_secs(30))
        .await;
    assert!(!out.status.success(), "answered past an unwitnessed record");
    gw.stop().await;
}
