//! The audit trail end to end: who did what and why, a chain that stops verifying when a
//! record is altered, and the mutual-TLS admin listener.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use common::pki::Pki;
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

/// Sends a request over TLS with an optional client certificate; returns what came back.
fn tls_request(
    addr: std::net::SocketAddr,
    ca: &Path,
    client: Option<(&Path, &Path)>,
) -> Result<String, String> {
    let tcp = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tls_request_on(tcp, ca, client)
}

/// [`tls_request`] on a connection already open.
fn tls_request_on(
    tcp: std::net::TcpStream,
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

/// A gateway with the mutual-TLS admin listener and `limits` added to its `[admin]`; alice
/// holds a client certificate in `certs`.
struct MtlsGateway {
    gw: TestGateway,
    addr: SocketAddr,
    certs: tempfile::TempDir,
}

impl MtlsGateway {
    async fn start(limits: &str) -> Self {
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
        let admin = format!(
            "listen = \"127.0.0.1:0\"\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}\n{limits}",
            dir.join("server-cert.pem"),
            dir.join("server-key.pem"),
            dir.join("ca.pem")
        );
        let gw = TestGateway::start_custom(Extra {
            admin: &admin,
            ..Extra::default()
        })
        .await;
        let addr = gw
            .running
            .as_ref()
            .and_then(|r| r.admin_addr)
            .expect("admin TCP address");
        Self { gw, addr, certs }
    }

    /// Alice asks for the health check on a connection from `from`.
    async fn alice_from(&self, from: IpAddr) -> Result<String, String> {
        let tcp = connect_from(from, self.addr).await;
        let dir = self.certs.path().to_owned();
        tokio::task::spawn_blocking(move || {
            tls_request_on(
                tcp,
                &dir.join("ca.pem"),
                Some((&dir.join("alice-cert.pem"), &dir.join("alice-key.pem"))),
            )
        })
        .await
        .expect("tls task")
    }
}

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Another address of the loopback network: another client network for a `/32` count.
const LOOPBACK_2: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// A TCP connection to `addr` from the local address `from`, as a blocking socket.
async fn connect_from(from: IpAddr, addr: SocketAddr) -> std::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(from, 0)).expect("bind source");
    let tcp = socket
        .connect(addr)
        .await
        .expect("connect")
        .into_std()
        .expect("std");
    tcp.set_nonblocking(false).expect("blocking");
    tcp
}

/// `n` connections from `from` that never start a handshake.
async fn idle_connections(from: IpAddr, addr: SocketAddr, n: usize) -> Vec<std::net::TcpStream> {
    let mut idle = Vec::with_capacity(n);
    for _ in 0..n {
        idle.push(connect_from(from, addr).await);
    }
    idle
}

/// Waits until the server closes `tcp` (end of stream or a reset); false when it is still
/// open after `limit`, which fails the test rather than proving anything.
fn closed_by_server(tcp: &mut std::net::TcpStream, limit: std::time::Duration) -> bool {
    tcp.set_read_timeout(Some(limit)).expect("timeout");
    let mut byte = [0u8; 1];
    match tcp.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// Refused at the handshake: an error, or the stream closed without an answer.
fn refused(answer: &Result<String, String>) -> bool {
    answer.as_ref().is_err() || answer.as_ref().is_ok_and(|r| r.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_idle_sockets_from_one_network_leave_slots_for_reviewers() {
    // Defaults only: 40 idle sockets from one address, more than the API's 32 slots.
    let mut m = MtlsGateway::start("").await;
    let idle = idle_connections(LOOPBACK, m.addr, 40).await;
    let answer = m.alice_from(LOOPBACK_2).await;
    assert!(
        answer.as_ref().is_ok_and(|a| a.starts_with("HTTP/1.1 200")),
        "a reviewer from another network gets in: {answer:?}"
    );
    drop(idle);
    m.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_per_network_limit_closes_extra_connections_at_once() {
    // A deadline far beyond the test: every close seen here is the per-network limit's.
    let mut m =
        MtlsGateway::start("max_connections_per_ip = 4\ntls_handshake_timeout = \"5m\"\n").await;
    let idle = idle_connections(LOOPBACK, m.addr, 10).await;
    let idle = tokio::task::spawn_blocking(move || {
        let mut idle = idle;
        for (i, tcp) in idle.iter_mut().enumerate().skip(4) {
            assert!(
                closed_by_server(tcp, std::time::Duration::from_secs(30)),
                "connection {i} is over the limit and closed at once"
            );
        }
        idle
    })
    .await
    .expect("idle task");
    let same_network = m.alice_from(LOOPBACK).await;
    assert!(
        refused(&same_network),
        "the network's four places are taken: {same_network:?}"
    );
    let other = m.alice_from(LOOPBACK_2).await;
    assert!(
        other.as_ref().is_ok_and(|a| a.starts_with("HTTP/1.1 200")),
        "{other:?}"
    );
    drop(idle);
    m.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_handshake_deadline_gives_every_slot_back() {
    let mut m = MtlsGateway::start("tls_handshake_timeout = \"1s\"\n").await;
    // Four sockets start a handshake and stall inside the ClientHello's record; the rest of
    // this network's share, and far more than the API's slots, send nothing at all.
    let mut stalled = idle_connections(LOOPBACK, m.addr, 4).await;
    for tcp in &mut stalled {
        tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
            .expect("partial hello");
    }
    let idle = idle_connections(LOOPBACK, m.addr, 36).await;
    tokio::task::spawn_blocking(move || {
        for (i, mut tcp) in stalled.into_iter().chain(idle).enumerate() {
            assert!(
                closed_by_server(&mut tcp, std::time::Duration::from_secs(30)),
                "connection {i} closed by the deadline or the limit"
            );
        }
    })
    .await
    .expect("idle task");
    // The same network as the idle sockets: nothing of theirs holds a slot any more.
    let answer = m.alice_from(LOOPBACK).await;
    assert!(
        answer.as_ref().is_ok_and(|a| a.starts_with("HTTP/1.1 200")),
        "{answer:?}"
    );
    m.gw.stop().await;
}
