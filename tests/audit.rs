//! The audit trail end to end: who did what and why, a chain that stops verifying when a
//! record is altered, and the mutual-TLS admin listener.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use common::{Extra, TestGateway};
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_chain_verifies_and_breaks_when_a_record_is_altered() {
    let mut gw = TestGateway::start("").await;
    let id = gw
        .send(
            "a@p.example",
            &["x@old.example"],
            b"Subject: s\r\n\r\nx\r\n",
        )
        .await;
    gw.cli_ok(&["list"]).await;
    gw.cli_ok(&["show", &id, "--reason", "ticket 9: who sent this"])
        .await;
    gw.cli_ok(&["hold", &id, "--reason", "legal"]).await;

    // A read without a reason is refused, and the refusal is recorded too.
    let socket = gw.socket.clone();
    let path = format!("/v1/messages/{id}/sealed");
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = std::os::unix::net::UnixStream::connect(socket).expect("connect");
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes())
            .expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read");
        answer
    })
    .await
    .expect("task");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    let out = gw.cli(&["audit", "--verify"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("audit chain verified"));
    let audit: serde_json::Value =
        serde_json::from_str(&gw.cli_ok(&["audit", "--json", "--verify"]).await).expect("JSON");
    assert_eq!(audit["verified"], true);
    let records = audit["records"].as_array().expect("records");
    let show = records
        .iter()
        .find(|r| r["action"] == "show")
        .expect("show recorded");
    assert_eq!(show["reason"], "ticket 9: who sent this");
    assert_eq!(show["ids"], serde_json::json!([id]));
    assert!(
        show["who"].as_str().expect("who").starts_with("uid "),
        "{show}"
    );
    assert!(records.iter().any(|r| r["action"] == "hold"));
    assert!(
        records
            .iter()
            .any(|r| r["action"] == "refused" && r["status"] == 400),
        "{records:?}"
    );
    let since = gw
        .cli_ok(&["audit", "--json", "--since", "2000-01-01"])
        .await;
    assert!(since.contains("\"show\""));

    // Someone with write access to the store rewrites the reason of the show record.
    gw.stop().await;
    {
        let db = redb::Database::create(gw.store.join("index.redb")).expect("open index");
        let txn = db.begin_write().expect("write");
        {
            let mut table = txn.open_table(AUDIT).expect("audit table");
            let (key, altered) = table
                .iter()
                .expect("iter")
                .map(|item| item.expect("item"))
                .map(|(k, v)| (k.value(), String::from_utf8_lossy(v.value()).into_owned()))
                .find(|(_, v)| v.contains("ticket 9"))
                .expect("the show record");
            let altered = altered.replace("ticket 9: who sent this", "routine check");
            table.insert(key, altered.as_bytes()).expect("alter");
        }
        txn.commit().expect("commit");
        let read = db.begin_read().expect("read");
        assert!(read.open_table(AUDIT).expect("table").len().expect("len") > 3);
    }
    gw.restart().await;
    let out = gw.cli(&["audit", "--verify"]).await;
    assert_eq!(
        out.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("audit chain broken"));
    gw.stop().await;
}

struct Pki {
    ca: rcgen::Certificate,
    params: rcgen::CertificateParams,
    ca_key: rcgen::KeyPair,
}

impl Pki {
    fn new(name: &str) -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let ca = params.self_signed(&ca_key).expect("ca");
        Self { ca, params, ca_key }
    }

    /// Writes NAME-cert.pem and NAME-key.pem signed by this CA.
    fn issue(&self, dir: &Path, name: &str, cn: &str, sans: Vec<String>, client: bool) {
        let mut params = rcgen::CertificateParams::new(sans).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.extended_key_usages = vec![if client {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        }];
        let key = rcgen::KeyPair::generate().expect("key");
        let issuer = rcgen::Issuer::from_params(&self.params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).expect("sign");
        std::fs::write(dir.join(format!("{name}-cert.pem")), cert.pem()).expect("cert");
        std::fs::write(dir.join(format!("{name}-key.pem")), key.serialize_pem()).expect("key");
    }
}

/// Sends a request over TLS with an optional client certificate; returns what came back.
fn tls_request(
    addr: std::net::SocketAddr,
    ca: &Path,
    client: Option<(&Path, &Path)>,
) -> Result<String, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("ca") {
        roots.add(cert.expect("cert")).expect("add");
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(cert)
                    .expect("cert")
                    .map(|c| c.expect("cert"))
                    .collect(),
                PrivateKeyDer::from_pem_file(key).expect("key"),
            )
            .expect("client auth"),
        None => builder.with_no_client_auth(),
    };
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let tcp = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    tls.read_to_end(&mut response).map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&response).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_admin_listener_refuses_clients_without_a_good_certificate() {
    let certs = tempfile::tempdir().expect("tempdir");
    let dir = certs.path();
    let pki = Pki::new("reclaim admin CA");
    std::fs::write(dir.join("ca.pem"), pki.ca.pem()).expect("ca");
    pki.issue(
        dir,
        "server",
        "reclaim admin",
        vec!["127.0.0.1".into()],
        false,
    );
    pki.issue(dir, "alice", "alice reviewer", vec![], true);
    let stranger = Pki::new("some other CA");
    stranger.issue(dir, "mallory", "mallory", vec![], true);

    let admin = format!(
        "listen = \"127.0.0.1:0\"\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}",
        dir.join("server-cert.pem"),
        dir.join("server-key.pem"),
        dir.join("ca.pem")
    );
    let mut gw = TestGateway::start_custom(Extra {
        admin: &admin,
        ..Extra::default()
    })
    .await;
    let addr = gw
        .running
        .as_ref()
        .and_then(|r| r.admin_addr)
        .expect("admin TCP address");
    let ca = dir.join("ca.pem");
    let (alice_cert, alice_key) = (dir.join("alice-cert.pem"), dir.join("alice-key.pem"));
    let (mallory_cert, mallory_key) = (dir.join("mallory-cert.pem"), dir.join("mallory-key.pem"));

    let results = tokio::task::spawn_blocking(move || {
        (
            tls_request(addr, &ca, Some((&alice_cert, &alice_key))),
            tls_request(addr, &ca, None),
            tls_request(addr, &ca, Some((&mallory_cert, &mallory_key))),
        )
    })
    .await
    .expect("tls task");
    let good = results.0.expect("alice gets in");
    assert!(good.starts_with("HTTP/1.1 200"), "{good}");
    for refused in [results.1, results.2] {
        assert!(
            refused.as_ref().is_err() || refused.as_ref().is_ok_and(|r| r.is_empty()),
            "must be refused at the handshake: {refused:?}"
        );
    }

    // The CLI over mutual TLS; the audit trail names the certificate.
    let url = format!("https://127.0.0.1:{}", addr.port());
    let paths = ["alice-cert.pem", "alice-key.pem", "ca.pem"]
        .map(|name| dir.join(name).to_str().expect("utf8").to_owned());
    let remote = [
        "--admin",
        url.as_str(),
        "--cert",
        &paths[0],
        "--key",
        &paths[1],
        "--admin-ca",
        &paths[2],
    ];
    let id = gw
        .send(
            "a@p.example",
            &["x@old.example"],
            b"Subject: s\r\n\r\nremote\r\n",
        )
        .await;
    let mut args: Vec<&str> = remote.to_vec();
    args.extend(["export", &id, "--reason", "remote review"]);
    let exported = gw.cli_ok(&args).await;
    assert!(exported.contains("remote"));
    let mut args: Vec<&str> = remote.to_vec();
    args.extend(["audit", "--json"]);
    let audit: serde_json::Value = serde_json::from_str(&gw.cli_ok(&args).await).expect("JSON");
    assert!(
        audit["records"]
            .as_array()
            .expect("records")
            .iter()
            .any(|r| r["action"] == "export" && r["who"] == "cert CN=alice reviewer"),
        "{audit}"
    );
    gw.stop().await;
}
