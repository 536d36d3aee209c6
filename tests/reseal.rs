//! Re-seal after a reviewer leaves, on both stores: `reclaim reseal` rewraps every message
//! still sealed to the leaver's key for the readers the config names now; afterwards the
//! real `age` tool opens nothing with the retired key and everything with a current one,
//! the payload bytes are those the gateway wrote, the old header is gone from the store's
//! files, a second run finds nothing to do, messages this reviewer cannot open are left
//! (and said), a stale header is refused, and each step is in the audit trail.

mod common;

use std::path::{Path, PathBuf};

use common::postgres::{self, Postgres};
use common::{Extra, TestGateway, new_identity, run_cli};
use sha2::Digest;

fn fingerprint(key: &str) -> String {
    let digest = sha2::Sha256::digest(key.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The sealed bytes of a message as the admin API hands them out.
async fn sealed(gw: &TestGateway, id: &str) -> Vec<u8> {
    let (status, body) = api(
        gw,
        "GET",
        &format!("/v1/messages/{id}/sealed?reason=check&purpose=export"),
        "",
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    body
}

async fn api(gw: &TestGateway, method: &str, path: &str, body: &str) -> (u16, Vec<u8>) {
    let out_file = gw
        .dir
        .path()
        .join(format!("answer-{}", uuid::Uuid::new_v4()));
    let mut curl = std::process::Command::new("curl");
    curl.args(["-sS", "-X", method, "-o"])
        .arg(&out_file)
        .args(["-w", "%{http_code}", "--unix-socket"])
        .arg(&gw.socket)
        .arg(format!("http://localhost{path}"));
    if method == "POST" {
        curl.args(["-H", "content-type: application/json", "--data", body]);
    }
    let out = tokio::task::spawn_blocking(move || curl.output())
        .await
        .expect("curl task")
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("status");
    let body = std::fs::read(&out_file).unwrap_or_default();
    let _ = std::fs::remove_file(&out_file);
    (status, body)
}

/// What the real `age` tool decrypts `sealed` to with the identity file `key`, if anything.
fn age_decrypts(sealed: &[u8], key: &Path, dir: &Path) -> Option<Vec<u8>> {
    let file = dir.join(format!("sealed-{}", uuid::Uuid::new_v4()));
    std::fs::write(&file, sealed).expect("write sealed");
    let out = std::process::Command::new("/usr/bin/age")
        .arg("-d")
        .arg("-i")
        .arg(key)
        .arg(&file)
        .output()
        .expect("age runs");
    let _ = std::fs::remove_file(&file);
    out.status.success().then_some(out.stdout)
}

/// How long an age header is: up to and including the line after `---`.
fn header_len(sealed: &[u8]) -> usize {
    let at = sealed
        .windows(5)
        .position(|w| w == b"\n--- ")
        .expect("a MAC line")
        + 5;
    at + sealed[at..]
        .iter()
        .position(|&b| b == b'\n')
        .expect("its end")
        + 1
}

fn domains(readers_a: &[&str], readers_b: &[&str]) -> String {
    let list = |keys: &[&str]| {
        keys.iter()
            .map(|k| format!("{k:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "[dns]\nresolver = \"off\"\n\n\
         [[domain]]\nname = \"a.example\"\nreaders = [{}]\n\n\
         [[domain]]\nname = \"b.example\"\nreaders = [{}]\n\n\
         [[domain]]\nname = \"c.example\"\n",
        list(readers_a),
        list(readers_b)
    )
}

/// Runs the CLI with this gateway's config and another identity.
async fn cli_as(gw: &TestGateway, identity: &Path, args: &[&str]) -> std::process::Output {
    let mut full = vec![
        "-c".to_owned(),
        gw.config_path.display().to_string(),
        "-i".to_owned(),
        identity.display().to_string(),
    ];
    full.extend(args.iter().map(|a| a.to_string()));
    run_cli(full).await
}

async fn a_leaver_opens_nothing_after_reseal(store_lines: &str) {
    let keys = tempfile::tempdir().expect("tempdir");
    let (ops_key, ops) = new_identity(keys.path(), "ops.key");
    let (leaver_key, leaver) = new_identity(keys.path(), "leaver.key");
    let (newbie_key, newbie) = new_identity(keys.path(), "newbie.key");
    let before = domains(&[&ops, &leaver], &[&leaver]);
    let mut gw = TestGateway::start_custom(Extra {
        store: store_lines,
        rest: Some(&before),
        reviewer: Some((&ops_key, &ops)),
        ..Extra::default()
    })
    .await;
    let dir: PathBuf = gw.dir.path().to_owned();

    // One small message (in a segment on the embedded store), one large (a file of its
    // own there, several chunks on PostgreSQL), one the leaver alone read, one to the
    // fallback keys only.
    let large_body: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let large = [b"Subject: large\r\n\r\n".as_slice(), &large_body, b"\r\n"].concat();
    let small = gw
        .send(
            "s@p.example",
            &["x@a.example"],
            b"Subject: small\r\n\r\nfor a\r\n",
        )
        .await;
    let big = gw.send("s@p.example", &["y@a.example"], &large).await;
    let only_leaver = gw
        .send(
            "s@p.example",
            &["z@b.example"],
            b"Subject: b\r\n\r\nfor b\r\n",
        )
        .await;
    let fallback = gw
        .send(
            "s@p.example",
            &["w@c.example"],
            b"Subject: c\r\n\r\nfor c\r\n",
        )
        .await;

    let mut old = Vec::new();
    for id in [&small, &big] {
        let bytes = sealed(&gw, id).await;
        let plain = age_decrypts(&bytes, &leaver_key, &dir).expect("the leaver reads it today");
        old.push((id.clone(), bytes, plain));
    }
    let fallback_before = sealed(&gw, &fallback).await;

    // The leaver goes: the config names the newcomer instead, and the gateway takes it.
    let after = domains(&[&ops, &newbie], &[&newbie]);
    let config = std::fs::read_to_string(&gw.config_path).expect("config");
    std::fs::write(&gw.config_path, config.replace(&before, &after)).expect("config");
    gw.restart().await;

    let out = gw
        .cli(&["reseal", "--reason", "leaver left", "--json"])
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The message only the leaver could read cannot be re-sealed by ops: said, exit 1.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("1 messages are sealed only to keys this identity does not hold"),
        "{stderr}"
    );
    assert!(stderr.contains("re-sealed 2 of 3"), "progress: {stderr}");
    let totals: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(totals["due"], 3, "{totals}");
    assert_eq!(totals["resealed"], 2, "{totals}");
    assert_eq!(totals["current"], 1, "{totals}");
    assert_eq!(totals["not_ours"], 1, "{totals}");
    assert_eq!(totals["failed"], 0, "{totals}");

    let mut group = vec![fingerprint(&ops), fingerprint(&newbie)];
    group.sort();
    for (id, old_bytes, plain) in &old {
        let new_bytes = sealed(&gw, id).await;
        assert!(
            age_decrypts(&new_bytes, &leaver_key, &dir).is_none(),
            "{id}: retired key"
        );
        assert_eq!(
            age_decrypts(&new_bytes, &newbie_key, &dir).as_ref(),
            Some(plain),
            "{id}"
        );
        assert_eq!(
            age_decrypts(&new_bytes, &ops_key, &dir).as_ref(),
            Some(plain),
            "{id}"
        );
        // The payload is byte for byte what the gateway wrote.
        assert_eq!(
            &new_bytes[header_len(&new_bytes)..],
            &old_bytes[header_len(old_bytes)..],
            "{id}"
        );
        // A re-seal's fetch hands out the header and not a byte of the payload.
        let (status, head) = api(
            &gw,
            "GET",
            &format!("/v1/messages/{id}/sealed?reason=check&purpose=reseal"),
            "",
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(head, &new_bytes[..header_len(&new_bytes)], "{id}");
        // The list says whom it is sealed to now.
        let (_, item) = api(&gw, "GET", &format!("/v1/messages/{id}"), "").await;
        let item: serde_json::Value = serde_json::from_slice(&item).expect("JSON");
        assert_eq!(item["sealed_to"], serde_json::json!(group), "{id}");
        assert_eq!(item["sealed_size"], new_bytes.len(), "{id}");
        if !store_lines.contains("postgres") {
            assert!(
                !gw.holds_sealed(&old_bytes[..header_len(old_bytes)]),
                "{id}: the old header is still in the store's files"
            );
        }
    }
    // Untouched: the fallback message was already sealed to its keys.
    assert_eq!(sealed(&gw, &fallback).await, fallback_before);
    // The leaver's identity no longer opens a summary of a.example either.
    let listed = cli_as(
        &gw,
        &leaver_key,
        &["list", "--json", "--domain", "a.example"],
    )
    .await;
    assert!(!listed.status.success(), "the leaver still lists a.example");
    // The newcomer lists and reads both.
    let listed = cli_as(
        &gw,
        &newbie_key,
        &["list", "--json", "--domain", "a.example"],
    )
    .await;
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");

    // Run again: nothing left to do in a.example.
    let again = gw
        .cli_ok(&[
            "reseal",
            "--reason",
            "leaver left",
            "--domain",
            "a.example",
            "--json",
        ])
        .await;
    let again: serde_json::Value = serde_json::from_str(&again).expect("JSON");
    assert_eq!(again["due"], 0, "{again}");
    assert_eq!(again["current"], 2, "{again}");

    // A header that is no longer there is refused, and so is one that is only the start
    // of the current header; neither changes anything.
    use base64::Engine;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let old_small = &old[0].1;
    let old_header = &old_small[..header_len(old_small)];
    let current = sealed(&gw, &small).await;
    for stale_header in [old_header, b"age-encryption.org/v1\n".as_slice()] {
        let stale = serde_json::json!({
            "old_header": b64(stale_header),
            "header": b64(old_header),
            "summary": "eA==",
            "sealed_to": [fingerprint(&leaver)],
            "reason": "replay",
        });
        let (status, body) = api(
            &gw,
            "POST",
            &format!("/v1/messages/{small}/reseal"),
            &stale.to_string(),
        )
        .await;
        assert_eq!(status, 409, "{}", String::from_utf8_lossy(&body));
        assert_eq!(sealed(&gw, &small).await, current);
    }
    // A new header that is not one whole age header is bad input.
    let partial = serde_json::json!({
        "old_header": b64(&current[..header_len(&current)]),
        "header": b64(b"age-encryption.org/v1\n"),
        "summary": "eA==",
        "sealed_to": [fingerprint(&leaver)],
        "reason": "broken",
    });
    let (status, _) = api(
        &gw,
        "POST",
        &format!("/v1/messages/{small}/reseal"),
        &partial.to_string(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(sealed(&gw, &small).await, current);

    // Each message's fetch and re-seal are in the audit trail with the reason.
    let (_, trail) = api(&gw, "GET", "/v1/audit?limit=1000", "").await;
    let trail: serde_json::Value = serde_json::from_slice(&trail).expect("JSON");
    let records: Vec<serde_json::Value> = trail["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| serde_json::from_str(r.as_str().expect("text")).expect("record"))
        .collect();
    for (id, ..) in &old {
        for action in ["reseal-fetch", "reseal"] {
            assert!(
                records.iter().any(|r| r["action"] == action
                    && r["ids"][0] == id.as_str()
                    && r["status"] == 200
                    && r["reason"] == "leaver left"),
                "no {action} of {id} in {trail:#}"
            );
        }
    }
    assert!(
        records.iter().any(|r| r["action"] == "reseal"
            && r["status"] == 409
            && r["ids"][0] == small.as_str()),
        "the stale re-seal is recorded"
    );
    // The leaver's message is untouched: still readable by the leaver until a reader of
    // b.example re-seals it.
    let b_bytes = sealed(&gw, &only_leaver).await;
    assert!(age_decrypts(&b_bytes, &leaver_key, &dir).is_some());

    // After a restart the store still serves the re-sealed messages.
    gw.restart().await;
    for (id, _, plain) in &old {
        let bytes = sealed(&gw, id).await;
        assert_eq!(
            age_decrypts(&bytes, &newbie_key, &dir).as_ref(),
            Some(plain),
            "{id}"
        );
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_embedded_store_a_retired_key_opens_nothing_after_reseal() {
    a_leaver_opens_nothing_after_reseal("inline_max = \"64KiB\"").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_postgres_store_a_retired_key_opens_nothing_after_reseal() {
    if !postgres::available() {
        return;
    }
    let pg = Postgres::start_new();
    a_leaver_opens_nothing_after_reseal(&pg.store_lines()).await;
}
