//! Reader groups and scoped principals, on both stores: a message opens (with the real
//! `age` tool) only with the readers of the domains it was addressed to and records their
//! fingerprints; a principal limited to a domain lists only its messages, is told the others
//! do not exist, may not purge, and each refusal is in the audit trail.

mod common;

use std::path::{Path, PathBuf};

use common::pki::Pki;
use common::postgres::{self, Postgres};
use common::{Extra, TestGateway, my_uid, new_identity};
use sha2::Digest;

/// First 16 hex digits of the SHA-256 of a key as text, as `sha256sum` prints it.
fn fingerprint(key: &str) -> String {
    let digest = sha2::Sha256::digest(key.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// How a request reaches the admin API: on the socket as this uid, or over mutual TLS with
/// a client certificate.
enum As<'a> {
    Socket,
    Cert(&'a Path, u16, &'a str),
}

/// Calls the admin API with curl; returns the status and the body.
async fn api(gw: &TestGateway, who: &As<'_>, method: &str, path: &str) -> (u16, Vec<u8>) {
    api_with(gw, who, method, path, "{}").await
}

/// [`api`] with a request body (sent with POST only).
async fn api_with(
    gw: &TestGateway,
    who: &As<'_>,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, Vec<u8>) {
    let out_file = gw
        .dir
        .path()
        .join(format!("answer-{}", uuid::Uuid::new_v4()));
    let mut curl = std::process::Command::new("curl");
    curl.args(["-sS", "-X", method, "-o"])
        .arg(&out_file)
        .args(["-w", "%{http_code}"]);
    match who {
        As::Socket => {
            curl.arg("--unix-socket")
                .arg(&gw.socket)
                .arg(format!("http://localhost{path}"));
        }
        As::Cert(dir, port, name) => {
            curl.arg("--cacert")
                .arg(dir.join("ca.pem"))
                .arg("--cert")
                .arg(dir.join(format!("{name}-cert.pem")))
                .arg("--key")
                .arg(dir.join(format!("{name}-key.pem")))
                .arg(format!("https://127.0.0.1:{port}{path}"));
        }
    }
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
        .expect("an HTTP status");
    let body = std::fs::read(&out_file).unwrap_or_default();
    let _ = std::fs::remove_file(&out_file);
    (status, body)
}

async fn api_json(gw: &TestGateway, who: &As<'_>, path: &str) -> serde_json::Value {
    let (status, body) = api(gw, who, "GET", path).await;
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("JSON")
}

/// Whether the real `age` tool opens `sealed` with the identity file `key`.
fn age_opens(sealed: &[u8], key: &Path, dir: &Path) -> bool {
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
    out.status.success()
}

/// Every id on every page of `GET /v1/messages?limit=1`, and how many pages it took.
async fn walk(gw: &TestGateway, who: &As<'_>) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut before: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &before {
            Some(id) => format!("/v1/messages?limit=1&before={id}"),
            None => "/v1/messages?limit=1".to_owned(),
        };
        let page = api_json(gw, who, &path).await;
        pages += 1;
        for m in page["messages"].as_array().expect("messages") {
            ids.push(m["id"].as_str().expect("id").to_owned());
        }
        match page["next_before"].as_str() {
            Some(next) => before = Some(next.to_owned()),
            None => return (ids, pages),
        }
        assert!(pages < 100, "paging does not end");
    }
}

async fn groups_seal_and_scope(store_lines: &str) {
    let keys = tempfile::tempdir().expect("tempdir");
    let (a_key, a) = new_identity(keys.path(), "a.key");
    let (b_key, b) = new_identity(keys.path(), "b.key");
    let (ops_key, ops) = new_identity(keys.path(), "ops.key");

    let certs = tempfile::tempdir().expect("tempdir");
    let certs_dir: PathBuf = certs.path().to_owned();
    let pki = Pki::new("reclaim admin CA");
    std::fs::write(certs_dir.join("ca.pem"), pki.ca.pem()).expect("ca");
    pki.issue(
        &certs_dir,
        "server",
        "reclaim admin",
        vec!["127.0.0.1".into()],
        false,
    );
    pki.issue(&certs_dir, "alice", "alice", vec![], true);
    let admin = format!(
        "listen = \"127.0.0.1:0\"\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}",
        certs_dir.join("server-cert.pem"),
        certs_dir.join("server-key.pem"),
        certs_dir.join("ca.pem")
    );
    let rest = format!(
        "[dns]\nresolver = \"off\"\n\n\
         [[domain]]\nname = \"a.example\"\nreaders = [\"{a}\"]\n\n\
         [[domain]]\nname = \"b.example\"\nreaders = [\"{b}\"]\n\n\
         [[domain]]\nname = \"c.example\"\n"
    );
    let tail = format!(
        "[[principal]]\nuid = {}\nroles = [\"admin\"]\n\n\
         [[principal]]\ncertificate_subject = \"CN=alice\"\nroles = [\"admin\"]\n\
         domains = [\"a.example\"]\n",
        my_uid()
    );
    let mut gw = TestGateway::start_custom(Extra {
        store: store_lines,
        admin: &admin,
        rest: Some(&rest),
        tail: &tail,
        reviewer: Some((&ops_key, &ops)),
        ..Extra::default()
    })
    .await;
    let port = gw
        .running
        .as_ref()
        .and_then(|r| r.admin_addr)
        .expect("admin TCP address")
        .port();
    let alice = As::Cert(&certs_dir, port, "alice");
    let fallback = fingerprint(&ops);

    let to_a = gw
        .send(
            "s@p.example",
            &["x@a.example"],
            b"Subject: a\r\n\r\nfor a\r\n",
        )
        .await;
    let to_b = gw
        .send(
            "s@p.example",
            &["y@b.example"],
            b"Subject: b\r\n\r\nfor b\r\n",
        )
        .await;
    let to_both = gw
        .send(
            "s@p.example",
            &["x@a.example", "y@b.example"],
            b"Subject: ab\r\n\r\nfor both\r\n",
        )
        .await;
    let to_c = gw
        .send(
            "s@p.example",
            &["z@c.example"],
            b"Subject: c\r\n\r\nfor c\r\n",
        )
        .await;

    // Each message opens with exactly the readers of its domains.
    let dir = gw.dir.path().to_owned();
    for (id, a_opens, b_opens, fallback_opens) in [
        (&to_a, true, false, false),
        (&to_b, false, true, false),
        (&to_both, true, true, false),
        (&to_c, false, false, true),
    ] {
        let (status, sealed) = api(
            &gw,
            &As::Socket,
            "GET",
            &format!("/v1/messages/{id}/sealed?reason=test&purpose=export"),
        )
        .await;
        assert_eq!(status, 200);
        assert!(sealed.starts_with(b"age-encryption.org/v1\n"));
        assert_eq!(age_opens(&sealed, &a_key, &dir), a_opens, "{id} with a");
        assert_eq!(age_opens(&sealed, &b_key, &dir), b_opens, "{id} with b");
        assert_eq!(
            age_opens(&sealed, &ops_key, &dir),
            fallback_opens,
            "{id} with [seal] recipients"
        );
    }

    // The list records who each message is sealed to.
    let all = api_json(&gw, &As::Socket, "/v1/messages").await;
    let sealed_to = |id: &str| -> Vec<String> {
        let m = all["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .find(|m| m["id"] == id)
            .unwrap_or_else(|| panic!("{id} listed"));
        m["sealed_to"]
            .as_array()
            .expect("sealed_to")
            .iter()
            .map(|f| f.as_str().expect("fingerprint").to_owned())
            .collect()
    };
    let mut both = vec![fingerprint(&a), fingerprint(&b)];
    both.sort();
    assert_eq!(sealed_to(&to_a), [fingerprint(&a)]);
    assert_eq!(sealed_to(&to_b), [fingerprint(&b)]);
    assert_eq!(sealed_to(&to_both), both);
    assert_eq!(sealed_to(&to_c), [fallback]);
    let one = api_json(&gw, &As::Socket, &format!("/v1/messages/{to_both}")).await;
    assert_eq!(one["sealed_to"], serde_json::json!(both));

    // Alice, limited to a.example, lists only its messages, page by page.
    let listed = api_json(&gw, &alice, "/v1/messages").await;
    let mut ids: Vec<&str> = listed["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["id"].as_str().expect("id"))
        .collect();
    ids.sort();
    let mut expected = vec![to_a.as_str(), to_both.as_str()];
    expected.sort();
    assert_eq!(ids, expected);
    let (mut walked, pages) = walk(&gw, &alice).await;
    walked.sort();
    assert_eq!(walked, expected);
    assert!(pages >= 4, "paging stopped at a short page: {pages} pages");
    let (everything, _) = walk(&gw, &As::Socket).await;
    assert_eq!(everything.len(), 4);

    // What is outside her domains does not exist for her, answered as a made-up id is.
    let made_up = "00000000-0000-7000-8000-000000000000";
    let (_, missing_body) = api(&gw, &alice, "GET", &format!("/v1/messages/{made_up}")).await;
    let hidden_like_missing = String::from_utf8_lossy(&missing_body).replace(made_up, "ID");
    for (method, path) in [
        ("GET", format!("/v1/messages/{to_b}")),
        (
            "GET",
            format!("/v1/messages/{to_b}/sealed?reason=curious&purpose=show"),
        ),
        ("DELETE", format!("/v1/messages/{to_b}?reason=cleanup")),
        ("POST", format!("/v1/messages/{to_b}/hold?reason=legal")),
    ] {
        let (status, body) = api(&gw, &alice, method, &path).await;
        assert_eq!(status, 404, "{method} {path}");
        assert_eq!(
            String::from_utf8_lossy(&body).replace(&to_b, "ID"),
            hidden_like_missing,
            "{method} {path}"
        );
    }
    // Nor does she record a release of it.
    let note = |id: &str| format!(r#"{{"action":"release","ids":["{id}"],"reason":"sent"}}"#);
    let (status, body) = api_with(&gw, &alice, "POST", "/v1/audit", &note(&to_b)).await;
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    let (status, body) = api_with(&gw, &alice, "POST", "/v1/audit", &note(&to_a)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (status, _) = api(&gw, &alice, "GET", &format!("/v1/messages/{to_a}")).await;
    assert_eq!(status, 200);
    let (status, sealed) = api(
        &gw,
        &alice,
        "GET",
        &format!("/v1/messages/{to_both}/sealed?reason=case&purpose=show"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(age_opens(&sealed, &a_key, &dir));
    // A purge deletes across domains: refused, and nothing is gone.
    let (status, body) = api_with(
        &gw,
        &alice,
        "POST",
        "/v1/purge",
        r#"{"older_than":0,"reason":"tidy"}"#,
    )
    .await;
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    // Statistics stay whole.
    let stats = api_json(&gw, &alice, "/v1/stats").await;
    assert!(stats.to_string().contains("b.example"), "{stats}");
    let (status, _) = api(&gw, &As::Socket, "GET", &format!("/v1/messages/{to_b}")).await;
    assert_eq!(status, 200, "the hidden message is still there");

    // Each refusal is in the audit trail, with why.
    let trail = api_json(&gw, &As::Socket, "/v1/audit?limit=1000").await;
    // Each record is the chained text, as it was hashed.
    let records: Vec<serde_json::Value> = trail["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| serde_json::from_str(r.as_str().expect("record text")).expect("record JSON"))
        .collect();
    let by_alice = |action: &str, status: u64, id: Option<&str>| {
        records.iter().find(|r| {
            r["action"] == action
                && r["who"] == "cert CN=alice"
                && r["status"] == status
                && id.is_none_or(|id| r["ids"][0] == id)
        })
    };
    for action in ["summary", "show", "delete", "hold", "release"] {
        let record = by_alice(action, 404, Some(&to_b))
            .unwrap_or_else(|| panic!("no hidden {action} in {trail:#}"));
        assert!(
            record["detail"]
                .as_str()
                .is_some_and(|d| d.contains("outside the principal's domains")),
            "{record}"
        );
    }
    let made_up_record =
        by_alice("summary", 404, Some(made_up)).expect("the made-up id is recorded");
    assert!(made_up_record["detail"].is_null(), "{made_up_record}");
    let purge = by_alice("purge", 403, None).expect("refused purge recorded");
    assert!(
        purge["detail"]
            .as_str()
            .is_some_and(|d| d.contains("a.example")),
        "{purge}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_embedded_store_each_domain_is_sealed_to_its_readers_and_scoped() {
    groups_seal_and_scope("").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_postgres_store_each_domain_is_sealed_to_its_readers_and_scoped() {
    if !postgres::available() {
        return;
    }
    let pg = Postgres::start_new();
    groups_seal_and_scope(&pg.store_lines()).await;
}

/// The desk lists what the reviewer's keys open and says how many it left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_desk_says_how_many_messages_it_left_out() {
    let keys = tempfile::tempdir().expect("tempdir");
    let (ops_key, ops) = new_identity(keys.path(), "ops.key");
    let (_, other) = new_identity(keys.path(), "other.key");
    let rest = format!(
        "[dns]\nresolver = \"off\"\n\n\
         [[domain]]\nname = \"mine.example\"\n\n\
         [[domain]]\nname = \"theirs.example\"\nreaders = [\"{other}\"]\n"
    );
    let mut gw = TestGateway::start_custom(Extra {
        rest: Some(&rest),
        reviewer: Some((&ops_key, &ops)),
        ..Extra::default()
    })
    .await;
    gw.send(
        "s@p.example",
        &["a@mine.example"],
        b"Subject: mine\r\n\r\nx\r\n",
    )
    .await;
    for n in 0..2 {
        let body = format!("Subject: theirs {n}\r\n\r\nx\r\n");
        gw.send("s@p.example", &["b@theirs.example"], body.as_bytes())
            .await;
    }
    let desk = common::desk::start_desk(&gw).await;
    let s = common::desk::session(&desk).await;
    let host = desk.addr.to_string();
    let (status, _, body) =
        common::desk::get(desk.addr, &s.at("/inbox"), &host, Some(&s.cookie)).await;
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("mine"), "{body}");
    assert!(!body.contains("theirs 0"), "{body}");
    assert!(
        body.contains("<p class=\"count\" id=\"left-out\">2 left out of this page"),
        "{body}"
    );
    desk.shutdown.cancel();
    gw.stop().await;
}

#[test]
fn check_config_refuses_an_empty_group_and_an_unknown_principal_domain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, key) = new_identity(dir.path(), "k.key");
    let config = dir.path().join("reclaim.toml");
    let base = format!(
        "[server]\nhostname = \"mx.old.example\"\nlisten = [\"127.0.0.1:2525\"]\n\
         [seal]\nrecipients = [\"{key}\"]\n[[domain]]\nname = \"old.example\"\n"
    );
    for (extra, key) in [
        ("readers = []\n", "domain.readers"),
        (
            "[[principal]]\nuid = 1\nroles = [\"viewer\"]\ndomains = [\"new.example\"]\n",
            "principal.domains",
        ),
    ] {
        std::fs::write(&config, format!("{base}{extra}")).expect("config");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_reclaim"))
            .arg("-c")
            .arg(&config)
            .arg("check-config")
            .output()
            .expect("reclaim runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra}: accepted");
        assert!(stderr.contains(key), "{extra}: {stderr}");
    }
}
