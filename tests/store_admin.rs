//! The store's start-up reconciliation and the admin API as curl sees it.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;

use common::{Client, TestGateway, queued_id};
use reclaim::store::QuarantineStore;

fn http(socket: &std::path::Path, request: &[u8]) -> (u16, Vec<u8>) {
    let mut stream = UnixStream::connect(socket).expect("connect admin socket");
    stream.write_all(request).expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read");
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head")
        + 4;
    let status = std::str::from_utf8(&response[9..12])
        .expect("status")
        .parse()
        .expect("code");
    (status, response[head_end..].to_vec())
}

fn get(socket: &std::path::Path, path: &str) -> (u16, serde_json::Value) {
    let (status, body) = http(
        socket,
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes(),
    );
    (status, serde_json::from_slice(&body).expect("JSON body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_hands_out_sealed_data_only() {
    let mut gw = TestGateway::start("").await;
    let mode = std::fs::metadata(&gw.socket)
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let mut ids = Vec::new();
    for i in 0..5 {
        let (mut c, _) = Client::connect(gw.addr).await;
        let body = format!("Subject: secret subject {i}\r\n\r\nADMIN-MARKER\r\n");
        ids.push(queued_id(
            &c.send_message("a@p.example", &["b@old.example"], body.as_bytes())
                .await,
        ));
    }
    let socket = gw.socket.clone();
    let ids_for_check = ids.clone();
    tokio::task::spawn_blocking(move || {
        let (status, health) = get(&socket, "/v1/health");
        assert_eq!((status, health["messages"].as_u64()), (200, Some(5)));

        // Paging: two at a time, newest first, following next_before.
        let mut seen = Vec::new();
        let mut path = "/v1/messages?limit=2".to_owned();
        loop {
            let (status, page) = get(&socket, &path);
            assert_eq!(status, 200);
            for m in page["messages"].as_array().expect("messages") {
                seen.push(m["id"].as_str().expect("id").to_owned());
                let summary = m["summary"].as_str().expect("sealed summary");
                assert!(!summary.contains("secret") && !summary.contains("p.example"));
            }
            match page["next_before"].as_str() {
                Some(next) => path = format!("/v1/messages?limit=2&before={next}"),
                None => break,
            }
        }
        let mut newest_first = ids_for_check.clone();
        newest_first.reverse();
        assert_eq!(seen, newest_first);

        let (status, sealed) = http(
            &socket,
            format!(
                "GET /v1/messages/{}/sealed?reason=check HTTP/1.1\r\n\r\n",
                ids_for_check[0]
            )
            .as_bytes(),
        );
        assert_eq!(status, 200);
        assert!(sealed.starts_with(b"age-encryption.org/v1\n"));
        assert!(!sealed.windows(12).any(|w| w == b"ADMIN-MARKER"));
        let (status, _) = http(
            &socket,
            format!(
                "GET /v1/messages/{}/sealed HTTP/1.1\r\n\r\n",
                ids_for_check[0]
            )
            .as_bytes(),
        );
        assert_eq!(status, 400, "reading a sealed message needs a reason");

        assert_eq!(
            get(&socket, "/v1/messages/0193a5c4-0000-7000-8000-000000000000").0,
            404
        );
        assert_eq!(get(&socket, "/v1/messages/not-an-id").0, 400);
        assert_eq!(get(&socket, "/v1/nothing").0, 404);
        assert_eq!(http(&socket, b"DELETE /v1/health HTTP/1.1\r\n\r\n").0, 405);
        assert_eq!(http(&socket, b"garbage\r\n\r\n").0, 400);
        assert_eq!(http(&socket, &[b'A'; 20_000]).0, 431);
    })
    .await
    .expect("admin checks");

    // curl, as an operator would use it.
    if common::have("curl") {
        let socket = gw.socket.to_str().expect("utf8").to_owned();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("curl")
                .args([
                    "-sf",
                    "--unix-socket",
                    &socket,
                    "http://localhost/v1/health",
                ])
                .output()
                .expect("curl")
        })
        .await
        .expect("curl task");
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("\"status\":\"ok\""));
    }
    gw.stop().await;
    assert!(!gw.socket.exists(), "the socket is removed at shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_reports_and_never_deletes() {
    // Every message in a file of its own, as stores written before segments have them
    // (segments have their own reconciliation test in tests/segments.rs).
    let mut gw = TestGateway::start_custom(common::Extra {
        store: "inline_max = \"0\"",
        tls: true,
        ..common::Extra::default()
    })
    .await;
    let (mut c, _) = Client::connect(gw.addr).await;
    let kept = queued_id(
        &c.send_message(
            "a@p.example",
            &["b@old.example"],
            b"Subject: kept\r\n\r\nx\r\n",
        )
        .await,
    );
    let (mut c, _) = Client::connect(gw.addr).await;
    let lost = queued_id(
        &c.send_message(
            "a@p.example",
            &["b@old.example"],
            b"Subject: lost\r\n\r\nx\r\n",
        )
        .await,
    );
    gw.stop().await;

    let messages = gw.store.join("messages");
    std::fs::remove_file(messages.join(format!("{lost}.age"))).expect("remove a blob");
    std::fs::write(
        messages.join("0193a5c4-0000-7000-8000-0000000000aa.age"),
        b"orphan",
    )
    .expect("orphan");
    std::fs::write(messages.join("notes.txt"), b"left by hand").expect("stray");
    std::fs::write(gw.store.join("tmp").join("half.age.tmp"), b"partial").expect("temp");

    let (store, report) = reclaim::store::Store::open(&gw.store).expect("reopen");
    assert_eq!(report.stale_temp_removed, 1);
    assert_eq!(
        report.orphan_blobs,
        ["0193a5c4-0000-7000-8000-0000000000aa.age", "notes.txt"]
    );
    assert_eq!(
        report
            .missing_blobs
            .iter()
            .map(|id| id.to_string())
            .collect::<Vec<_>>(),
        vec![lost.clone()]
    );
    assert_eq!(report.messages, 1);
    assert!(!report.is_clean());
    assert!(
        messages
            .join("0193a5c4-0000-7000-8000-0000000000aa.age")
            .exists(),
        "orphans are kept"
    );
    assert!(messages.join("notes.txt").exists());
    assert!(
        store
            .get(kept.parse().expect("id"))
            .await
            .expect("get")
            .is_some()
    );
    assert!(
        store
            .get(lost.parse().expect("id"))
            .await
            .expect("get")
            .is_some(),
        "the index entry is kept"
    );
}

/// A request head of `len` bytes, final blank line included, asking for the health check.
fn head_of(len: usize) -> Vec<u8> {
    let start = b"GET /v1/health HTTP/1.1\r\nX-Pad: ";
    let end = b"\r\n\r\n";
    let mut head = start.to_vec();
    head.resize(len - end.len(), b'a');
    head.extend_from_slice(end);
    head
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_head_limit_is_exact_and_content_length_unambiguous() {
    let mut gw = TestGateway::start("").await;
    let socket = gw.socket.clone();
    tokio::task::spawn_blocking(move || {
        let limit = reclaim::admin::http::MAX_HEAD;
        assert_eq!(http(&socket, &head_of(limit)).0, 200, "a head of exactly the limit");
        assert_eq!(http(&socket, &head_of(limit + 1)).0, 431, "one byte over");
        assert_eq!(http(&socket, &head_of(limit + 800)).0, 431, "about 9 KB");
        for ambiguous in [
            &b"GET /v1/health HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n"[..],
            b"POST /v1/delete HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 7\r\n\r\n{}",
            b"POST /v1/delete HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}",
        ] {
            assert_eq!(
                http(&socket, ambiguous).0,
                400,
                "{}",
                String::from_utf8_lossy(ambiguous)
            );
        }
    })
    .await
    .expect("admin checks");
    gw.stop().await;
}
