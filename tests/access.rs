//! Roles on the admin API: each principal does only what its roles grant, on the socket and
//! on the mutual-TLS listener, on both stores, and every refusal is in the audit trail.

mod common;

use std::path::{Path, PathBuf};

use common::pki::Pki;
use common::postgres::{self, Postgres};
use common::{Extra, TestGateway, my_uid};

/// The CLI's exit code for a request the caller's roles do not allow.
const REFUSED_EXIT: i32 = 8;

/// Client certificates issued by one CA, and the `[admin]` lines of a listener that takes
/// them.
struct Certificates {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    admin: String,
}

impl Certificates {
    fn new(names: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_owned();
        let pki = Pki::new("reclaim admin CA");
        std::fs::write(path.join("ca.pem"), pki.ca.pem()).expect("ca");
        pki.issue(
            &path,
            "server",
            "reclaim admin",
            vec!["127.0.0.1".into()],
            false,
        );
        for name in names {
            pki.issue(&path, name, name, vec![], true);
        }
        let admin = format!(
            "listen = \"127.0.0.1:0\"\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}",
            path.join("server-cert.pem"),
            path.join("server-key.pem"),
            path.join("ca.pem")
        );
        Self {
            _dir: dir,
            dir: path,
            admin,
        }
    }

    /// The global flags that make the CLI talk to `gw` over mutual TLS as `name`.
    fn flags(&self, gw: &TestGateway, name: &str) -> Vec<String> {
        let port = gw
            .running
            .as_ref()
            .and_then(|r| r.admin_addr)
            .expect("admin TCP address")
            .port();
        let file = |f: String| self.dir.join(f).display().to_string();
        vec![
            "--admin".into(),
            format!("https://127.0.0.1:{port}"),
            "--cert".into(),
            file(format!("{name}-cert.pem")),
            "--key".into(),
            file(format!("{name}-key.pem")),
            "--admin-ca".into(),
            file("ca.pem".into()),
        ]
    }
}

async fn cli_as(gw: &TestGateway, flags: &[String], args: &[&str]) -> std::process::Output {
    let mut full: Vec<&str> = flags.iter().map(String::as_str).collect();
    full.extend(args);
    gw.cli(&full).await
}

fn refused(out: &std::process::Output, needs: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(REFUSED_EXIT), "{stderr}");
    assert!(stderr.contains(needs), "{stderr}");
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A viewer on the socket, an auditor and a deleter by certificate subject, and a stranger
/// whose certificate the CA issued but no `[[principal]]` names.
async fn roles_are_enforced(store_lines: &str) {
    let certs = Certificates::new(&["auditor", "deleter", "stranger"]);
    let tail = format!(
        "[[principal]]\nname = \"reviewer\"\nuid = {}\nroles = [\"viewer\"]\n\n\
         [[principal]]\ncertificate_subject = \"CN=auditor\"\nroles = [\"auditor\"]\n\n\
         [[principal]]\ncertificate_subject = \"CN=deleter\"\nroles = [\"deleter\"]\n",
        my_uid()
    );
    let mut gw = TestGateway::start_custom(Extra {
        admin: &certs.admin,
        store: store_lines,
        tail: &tail,
        ..Extra::default()
    })
    .await;
    let id = gw
        .send(
            "a@p.example",
            &["x@old.example"],
            b"Subject: roles\r\n\r\nonly for viewers\r\n",
        )
        .await;
    let socket: Vec<String> = vec![];
    let auditor = certs.flags(&gw, "auditor");
    let deleter = certs.flags(&gw, "deleter");
    let stranger = certs.flags(&gw, "stranger");

    // The viewer lists and reads, and nothing more.
    assert!(ok(&cli_as(&gw, &socket, &["list"]).await).contains(&id));
    let shown = ok(&cli_as(&gw, &socket, &["show", &id, "--reason", "ticket 1"]).await);
    assert!(shown.contains("only for viewers"), "{shown}");
    refused(
        &cli_as(&gw, &socket, &["export", &id, "--reason", "ticket 2"]).await,
        "needs the role exporter or admin",
    );
    refused(
        &cli_as(&gw, &socket, &["delete", &id, "--reason", "ticket 3"]).await,
        "needs the role deleter or admin",
    );
    refused(
        &cli_as(&gw, &socket, &["hold", &id, "--reason", "ticket 4"]).await,
        "needs the role admin",
    );
    refused(
        &cli_as(&gw, &socket, &["audit"]).await,
        "needs the role auditor or admin",
    );

    // The auditor reads the trail and no message; the stranger gets nothing.
    refused(
        &cli_as(&gw, &auditor, &["list"]).await,
        "needs the role viewer or exporter or releaser or deleter or admin",
    );
    refused(
        &cli_as(&gw, &stranger, &["list"]).await,
        "cert CN=stranger is not a principal",
    );
    refused(
        &cli_as(&gw, &stranger, &["audit"]).await,
        "is not a principal",
    );

    // The deleter cannot open what it may delete, and deletes it.
    refused(
        &cli_as(&gw, &deleter, &["show", &id, "--reason", "curious"]).await,
        "needs the role viewer or exporter or releaser or admin",
    );
    ok(&cli_as(&gw, &deleter, &["delete", &id, "--reason", "ticket 5"]).await);
    assert!(!ok(&cli_as(&gw, &socket, &["list"]).await).contains(&id));

    let trail: serde_json::Value =
        serde_json::from_str(&ok(&cli_as(&gw, &auditor, &["audit", "--json"]).await))
            .expect("audit JSON");
    let records = trail["records"].as_array().expect("records");
    let find = |action: &str, who: &str, status: u64| {
        records.iter().find(|r| {
            r["action"] == action
                && r["who"].as_str().is_some_and(|w| w.starts_with(who))
                && r["status"] == status
        })
    };
    let viewer = format!("uid {}", my_uid());
    for (action, who) in [
        ("export", viewer.as_str()),
        ("delete", viewer.as_str()),
        ("hold", viewer.as_str()),
        ("audit", viewer.as_str()),
        ("list", "cert CN=auditor"),
        ("list", "cert CN=stranger"),
        ("audit", "cert CN=stranger"),
        ("show", "cert CN=deleter"),
    ] {
        let record = find(action, who, 403)
            .unwrap_or_else(|| panic!("no refused {action} by {who} in {trail:#}"));
        assert!(
            record["detail"]
                .as_str()
                .is_some_and(|d| d.contains("role")),
            "{record}"
        );
    }
    // The refused export named the message and kept the reason it was given.
    let export = find("export", &viewer, 403).expect("refused export");
    assert_eq!(export["ids"][0], id.as_str());
    assert_eq!(export["reason"], "ticket 2");
    assert!(
        find("delete", "cert CN=deleter", 200).is_some(),
        "{trail:#}"
    );
    assert!(find("show", &viewer, 200).is_some(), "{trail:#}");
    let verify = cli_as(&gw, &auditor, &["audit", "--verify"]).await;
    ok(&verify);
    assert!(
        String::from_utf8_lossy(&verify.stderr).contains("audit chain verified"),
        "the chain still verifies"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_embedded_store_each_principal_does_only_what_its_roles_grant() {
    roles_are_enforced("").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_postgres_store_each_principal_does_only_what_its_roles_grant() {
    if !postgres::available() {
        return;
    }
    let pg = Postgres::start_new();
    roles_are_enforced(&pg.store_lines()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_without_principals_keeps_every_client_an_admin() {
    let mut gw = TestGateway::start("").await;
    let id = gw
        .send(
            "a@p.example",
            &["x@old.example"],
            b"Subject: s\r\n\r\nx\r\n",
        )
        .await;
    gw.cli_ok(&["hold", &id, "--reason", "legal"]).await;
    gw.cli_ok(&["audit", "--verify"]).await;
    gw.stop().await;
}

#[test]
fn check_config_refuses_a_principal_without_a_credential() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path: &Path = dir.path();
    let config = path.join("reclaim.toml");
    let (_, recipient) = common::new_identity(path, "reviewer.key");
    std::fs::write(
        &config,
        format!(
            "[server]\nhostname = \"mx.old.example\"\nlisten = [\"127.0.0.1:0\"]\n\
             [store]\npath = {:?}\n[seal]\nrecipients = [{recipient:?}]\n\
             [[domain]]\nname = \"old.example\"\n[[principal]]\nroles = [\"viewer\"]\n",
            path.join("store"),
        ),
    )
    .expect("config");
    let err = reclaim::config::Config::load(&config).expect_err("refused");
    let text = err.to_string();
    assert!(text.contains("principal"), "{text}");
    assert!(text.contains("exactly one of uid"), "{text}");
}
