//! The reviewer's desk over plain HTTP: without the secret, with a foreign Host, without the
//! CSRF token or from another site it refuses; its pages follow the admin API's cursor; the
//! real binary prints a one-time URL and listens on loopback only. The browser tests are in
//! `desk_browser.rs`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use common::TestGateway;
use common::desk::{get, granted, header, http, post, session, start_desk, start_desk_with};
use reclaim::cli::Args;
use reclaim::desk::{Bound, DeskError, Limits};
use reclaim::review::ReviewContext;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desk_refuses_without_the_secret_or_with_a_foreign_host() {
    let mut gw = TestGateway::start("").await;
    let id = gw
        .send(
            "a@partner.example",
            &["jan@old.example"],
            b"Subject: hi\r\n\r\nhello\r\n",
        )
        .await;
    for n in 1..=4 {
        let body = format!("Subject: page test {n}\r\n\r\nx\r\n");
        gw.send("p@pages.example", &["jan@old.example"], body.as_bytes())
            .await;
    }
    let desk = start_desk_with(
        &gw,
        Limits {
            page_size: 2,
            ..Limits::default()
        },
    )
    .await;
    let host = desk.addr.to_string();
    let login = desk
        .url
        .strip_prefix(&format!("http://{host}"))
        .expect("url on the desk");
    assert!(login.starts_with("/login?secret="), "{login}");

    let (status, _, _) = get(desk.addr, "/inbox", &host, None).await;
    assert_eq!(status, 403, "no cookie, no inbox");
    let (status, _, _) = get(desk.addr, "/login?secret=guess", &host, None).await;
    assert_eq!(status, 403, "a wrong secret");
    let (status, _, _) = get(desk.addr, login, "rebound.example:80", None).await;
    assert_eq!(
        status, 421,
        "a foreign Host is refused before the secret is looked at"
    );
    let (status, head, body) = get(desk.addr, login, &host, None).await;
    assert_eq!(status, 200, "{head}");
    let s = granted(&head);
    let cookie = s.cookie.clone();
    let body = String::from_utf8_lossy(&body).into_owned();
    assert!(
        body.contains(&format!("url={}/inbox\"", s.root)) && !body.contains("secret"),
        "moves on to the inbox, without the secret: {body}"
    );
    let (status, _, _) = get(desk.addr, login, &host, None).await;
    assert_eq!(status, 403, "the secret works once");
    let (status, _, _) = get(desk.addr, "/inbox", &host, Some(&cookie)).await;
    assert_eq!(status, 403, "the cookie alone is no session");
    let (status, _, _) = get(desk.addr, &s.at("/inbox"), &host, None).await;
    assert_eq!(status, 403, "nor is the capability alone");
    let (status, _, _) = get(
        desk.addr,
        &format!("/d/{}/inbox", "0".repeat(64)),
        &host,
        Some(&cookie),
    )
    .await;
    assert_eq!(status, 403, "nor the cookie with another capability");

    let (status, head, body) = get(desk.addr, &s.at("/inbox"), &host, Some(&cookie)).await;
    assert_eq!(status, 200, "{head}");
    let csp = header(&head, "content-security-policy").expect("CSP");
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    assert_eq!(header(&head, "cache-control"), Some("no-store"));
    assert_eq!(header(&head, "x-frame-options"), Some("DENY"));
    let page = String::from_utf8(body).expect("utf8");
    assert!(!page.contains(&id), "two per page, newest first");
    assert_eq!(page.matches("name=\"id\"").count(), 2);
    // The next pages follow the admin API's cursor, filters kept.
    let mut next = page;
    let mut seen = Vec::new();
    let next_link = format!("href=\"{}/inbox?", s.root);
    while let Some(link) = next
        .split(next_link.as_str())
        .filter_map(|rest| rest.split('"').next())
        .find(|q| q.contains("before="))
        .map(|q| s.at(&format!("/inbox?{}", q.replace("&amp;", "&"))))
    {
        let (status, _, body) = get(desk.addr, &link, &host, Some(&cookie)).await;
        assert_eq!(status, 200);
        next = String::from_utf8(body).expect("utf8");
        seen.push(next.matches("name=\"id\"").count());
    }
    assert_eq!(seen, [2, 1], "5 messages: 2, then 2, then 1");
    assert!(next.contains(&id), "the oldest is on the last page");
    let (status, _, body) = get(
        desk.addr,
        &s.at("/inbox?from=pages.example&subject=test+3"),
        &host,
        Some(&cookie),
    )
    .await;
    assert_eq!(status, 200);
    let page = String::from_utf8(body).expect("utf8");
    assert!(page.contains("page test 3") && page.matches("name=\"id\"").count() == 1);
    assert!(!page.contains("<script"), "the desk has no script");
    let localhost = format!("localhost:{}", desk.addr.port());
    let (status, _, _) = get(desk.addr, &s.at("/inbox"), &localhost, Some(&cookie)).await;
    assert_eq!(status, 200, "localhost:PORT is the desk too");
    for foreign in ["evil.example", "127.0.0.1", "evil.example:80"] {
        let (status, _, _) = get(desk.addr, &s.at("/inbox"), foreign, Some(&cookie)).await;
        assert_eq!(status, 421, "Host {foreign}");
    }
    let (status, _, body) = get(desk.addr, &s.at("/desk.css"), &host, None).await;
    assert_eq!(
        status, 403,
        "even the stylesheet needs the session: {body:?}"
    );

    // Changes need the CSRF token, and a form from another site is refused even with it.
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF token in the page")
        .to_owned();
    let hold = s.at(&format!("/message/{id}/hold"));
    let (status, _, _) = post(desk.addr, &hold, &host, &cookie, "", "held=1&reason=x").await;
    assert_eq!(status, 403, "no CSRF token");
    let (status, _, _) = post(
        desk.addr,
        &hold,
        &host,
        &cookie,
        "",
        "held=1&reason=x&csrf=wrong",
    )
    .await;
    assert_eq!(status, 403, "a wrong CSRF token");
    let body = format!("held=1&reason=x&csrf={csrf}");
    let (status, _, _) = post(
        desk.addr,
        &hold,
        &host,
        &cookie,
        "Origin: http://evil.example\r\n",
        &body,
    )
    .await;
    assert_eq!(status, 403, "a foreign Origin");
    let (status, _, _) = post(
        desk.addr,
        &hold,
        &host,
        &cookie,
        "Sec-Fetch-Site: cross-site\r\n",
        &body,
    )
    .await;
    assert_eq!(status, 403, "a cross-site form");
    for site in ["same-site", "cross-site"] {
        let (status, _, _) = http(
            desk.addr,
            "GET",
            &s.at("/inbox"),
            &host,
            Some(&cookie),
            &format!("Sec-Fetch-Site: {site}\r\n"),
            "",
        )
        .await;
        assert_eq!(
            status, 403,
            "a {site} GET (another port on 127.0.0.1 is same-site)"
        );
    }
    let held = |list: Vec<serde_json::Value>| {
        list.iter()
            .find(|m| m["id"] == id.as_str())
            .and_then(|m| m["held"].as_bool())
            .expect("held")
    };
    assert!(!held(gw.list().await), "nothing was held");
    let (status, _, _) = post(desk.addr, &hold, &host, &cookie, "", &body).await;
    assert_eq!(status, 200, "with the token it works");
    assert!(held(gw.list().await));

    // The browser's language decides when the switch was not used.
    let dutch = "Accept-Language: nl-NL,nl;q=0.9,en;q=0.5\r\n";
    let (_, _, body) = http(
        desk.addr,
        "GET",
        &s.at("/inbox"),
        &host,
        Some(&cookie),
        dutch,
        "",
    )
    .await;
    assert!(String::from_utf8_lossy(&body).contains("<h1>Postvak</h1>"));

    // A message's HTML frame carries its own policy: nothing loads, nothing runs.
    let html = gw
        .send(
            "h@html.example",
            &["jan@old.example"],
            b"Subject: html\r\nContent-Type: text/html\r\n\r\n<p onclick=\"x()\">Hi</p><img src=\"http://t.example/p.gif\"><script>x()</script>\r\n",
        )
        .await;
    let form = format!("csrf={csrf}&reason=frame+check");
    let path = s.at(&format!("/message/{html}"));
    let (status, _, body) = post(desk.addr, &path, &host, &cookie, "", &form).await;
    assert_eq!(status, 200);
    let page = String::from_utf8_lossy(&body).into_owned();
    let frame = page
        .split(&format!("src=\"{}/frame/", s.root))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(|token| s.at(&format!("/frame/{token}")))
        .expect("a frame in the message page");
    assert!(
        page.contains("<iframe sandbox src="),
        "sandboxed without allowances"
    );
    let (status, head, body) = get(desk.addr, &frame, &host, Some(&cookie)).await;
    assert_eq!(status, 200, "{head}");
    let csp = header(&head, "content-security-policy").expect("frame CSP");
    for part in [
        "default-src 'none'",
        "img-src data:",
        "style-src 'unsafe-inline'",
        "sandbox",
    ] {
        assert!(csp.contains(part), "{part} missing from {csp}");
    }
    assert!(!csp.contains("script-src"), "{csp}");
    assert_eq!(header(&head, "x-frame-options"), Some("SAMEORIGIN"));
    assert_eq!(header(&head, "cache-control"), Some("no-store"));
    let body = String::from_utf8_lossy(&body).into_owned();
    assert!(
        body.contains("<p>Hi</p>") && !body.contains("<script") && !body.contains("t.example"),
        "{body}"
    );
    let (status, _, _) = get(desk.addr, &frame, &host, None).await;
    assert_eq!(status, 403, "the frame needs the session too");
    let (status, _, _) = get(
        desk.addr,
        &s.at("/frame/0123456789abcdef"),
        &host,
        Some(&cookie),
    )
    .await;
    assert_eq!(status, 404);

    let not_loopback = Bound::bind(
        ReviewContext::new(
            &Args::parse_from([
                "reclaim",
                "-c",
                &gw.config_path.display().to_string(),
                "desk",
            ])
            .access(),
        )
        .expect("context"),
        "0.0.0.0:0".parse().expect("addr"),
        Limits::default(),
    )
    .await;
    assert!(matches!(not_loopback, Err(DeskError::NotLoopback(_))));
    drop(desk);
    gw.stop().await;
}

/// Slow (fills a store): `cargo test --release --test desk -- --ignored`. The inbox asks the
/// admin API for one page at a time, so its first and next pages cost the same at 10,000
/// messages as at 10; a filter that only works after decryption is bounded by
/// `Limits::scan`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn desk_pages_stay_fast_at_ten_thousand_messages() {
    const MESSAGES: usize = 10_000;
    const SESSIONS: usize = 8;
    let mut gw = TestGateway::start("").await;
    let filled = std::time::Instant::now();
    let mut sessions = Vec::new();
    for s in 0..SESSIONS {
        let addr = gw.addr;
        sessions.push(tokio::spawn(async move {
            let (mut client, _) = common::Client::connect(addr).await;
            for n in (s..MESSAGES).step_by(SESSIONS) {
                let body = format!(
                    "From: s{s}@bulk{}.example\r\nSubject: message {n}\r\n\r\nbody {n}\r\n",
                    n % 40
                );
                let reply = client
                    .send_message(
                        &format!("s{s}@bulk{}.example", n % 40),
                        &["jan@old.example"],
                        body.as_bytes(),
                    )
                    .await;
                assert!(reply.starts_with("250"), "{reply}");
            }
        }));
    }
    for session in sessions {
        session.await.expect("session");
    }
    eprintln!("stored {MESSAGES} messages in {:?}", filled.elapsed());
    let desk = start_desk(&gw).await;
    let host = desk.addr.to_string();
    let s = session(&desk).await;
    let cookie = s.cookie.clone();
    let next_link = format!("href=\"{}/inbox?", s.root);
    let mut timed = Vec::new();
    let mut path = s.at("/inbox");
    for page in ["first page", "second page"] {
        let started = std::time::Instant::now();
        let (status, _, body) = get(desk.addr, &path, &host, Some(&cookie)).await;
        timed.push((page, started.elapsed()));
        assert_eq!(status, 200);
        let body = String::from_utf8(body).expect("utf8");
        assert_eq!(body.matches("name=\"id\"").count(), 50);
        path = body
            .split(next_link.as_str())
            .filter_map(|rest| rest.split('"').next())
            .find(|q| q.contains("before="))
            .map(|q| s.at(&format!("/inbox?{}", q.replace("&amp;", "&"))))
            .expect("a next page");
    }
    let started = std::time::Instant::now();
    let (status, _, body) = get(
        desk.addr,
        &s.at("/inbox?subject=message+9917"),
        &host,
        Some(&cookie),
    )
    .await;
    timed.push(("subject filter, a recent match", started.elapsed()));
    assert_eq!(status, 200);
    assert_eq!(
        String::from_utf8_lossy(&body)
            .matches("name=\"id\"")
            .count(),
        1
    );
    // Nothing among the newest Limits::scan summaries: the page says so and goes on.
    let started = std::time::Instant::now();
    let (status, _, body) = get(
        desk.addr,
        &s.at("/inbox?subject=message+17"),
        &host,
        Some(&cookie),
    )
    .await;
    timed.push(("subject filter, no match in 5,000", started.elapsed()));
    assert_eq!(status, 200);
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(body.matches("name=\"id\"").count(), 0);
    assert!(body.contains("id=\"next\""), "a link to look further");
    for (what, took) in &timed {
        eprintln!("{what}: {took:?}");
        assert!(*took < Duration::from_secs(10), "{what} took {took:?}");
    }
    drop(desk);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reclaim_desk_prints_a_one_time_url_and_listens_on_loopback_only() {
    let mut gw = TestGateway::start("").await;
    gw.send(
        "a@partner.example",
        &["jan@old.example"],
        b"Subject: hi\r\n\r\nhello\r\n",
    )
    .await;
    let out = gw.cli(&["desk", "--listen", "0.0.0.0:0"]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("loopback only"), "{stderr}");

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_reclaim"))
        .arg("-c")
        .arg(&gw.config_path)
        .arg("-i")
        .arg(&gw.identity)
        .args(["desk", "--page-size", "10"])
        .env_remove("RECLAIM_IDENTITY")
        .env_remove("RECLAIM_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start reclaim desk");
    let stdout = child.stdout.take().expect("stdout");
    let (sender, urls) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(url) = line.trim().strip_prefix("http://") {
                let _ = sender.send(url.to_owned());
            }
        }
    });
    let next_url = || {
        urls.recv_timeout(Duration::from_secs(30))
            .expect("a URL line")
    };
    let url = next_url();
    let (host, path) = url.split_once('/').expect("host and path");
    let addr: SocketAddr = host.parse().expect("an address");
    assert!(addr.ip().is_loopback(), "{addr}");
    let (status, head, _) = get(addr, &format!("/{path}"), host, None).await;
    assert_eq!(status, 200, "{head}");
    let s = granted(&head);
    let (status, _, _) = get(addr, &format!("/{path}"), host, None).await;
    assert_eq!(status, 403, "the printed secret works once");
    let (status, _, _) = get(addr, &s.at("/inbox"), host, Some(&s.cookie)).await;
    assert_eq!(status, 200, "the session works");

    // Enter on the desk's terminal ends the session and prints a new one-time URL.
    use std::io::Write as _;
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(b"\n")
        .and_then(|()| stdin.flush())
        .expect("Enter");
    let renewed = next_url();
    assert_ne!(renewed, url, "a new secret");
    let (status, _, _) = get(addr, &s.at("/inbox"), host, Some(&s.cookie)).await;
    assert_eq!(status, 403, "the old session has ended");
    let (_, path) = renewed.split_once('/').expect("host and path");
    let (status, head, _) = get(addr, &format!("/{path}"), host, None).await;
    assert_eq!(status, 200, "the new URL logs in: {head}");
    let _ = child.kill();
    let _ = child.wait();
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desk_pages_neutralise_bidi_and_control_characters_as_the_cli_does() {
    let mut gw = TestGateway::start("").await;
    // A sender, a From, a subject and an attachment name that each show as something
    // else when a right-to-left override (or an isolate) is left in.
    let (mut c, _) = common::Client::connect(gw.addr).await;
    assert!(c.cmd("EHLO client.example").await.starts_with("250"));
    let reply = c
        .cmd("MAIL FROM:<\"inv\u{202e}fdp.exe\"@evil.example> SMTPUTF8")
        .await;
    assert!(reply.starts_with("250"), "{reply}");
    assert!(c.cmd("RCPT TO:<jan@old.example>").await.starts_with("250"));
    assert!(c.cmd("DATA").await.starts_with("354"));
    c.send(
        "From: =?utf-8?b?QmFuayDigK5saWFtLmV4ZQ==?= <bank@evil.example>\r\n\
Subject: =?utf-8?b?cGF5IOKBp25vdyDigK5mZHAuZXhl?=\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\n\
see attached\r\n--B\r\nContent-Type: application/octet-stream\r\n\
Content-Disposition: attachment; filename*=utf-8''invoice%E2%80%AEfdp.exe\r\n\r\nAAAA\r\n--B--\r\n.\r\n"
            .as_bytes(),
    )
    .await;
    let reply = c.reply().await;
    assert!(reply.starts_with("250"), "{reply}");
    let id = common::queued_id(&reply);

    let desk = start_desk(&gw).await;
    let host = desk.addr.to_string();
    let s = session(&desk).await;
    let (status, _, inbox) = get(desk.addr, &s.at("/inbox"), &host, Some(&s.cookie)).await;
    assert_eq!(status, 200);
    let inbox = String::from_utf8(inbox).expect("utf8");
    let csrf = inbox
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF token")
        .to_owned();
    let form = format!("csrf={csrf}&reason=bidi+check");
    let (status, _, message) = post(
        desk.addr,
        &s.at(&format!("/message/{id}")),
        &host,
        &s.cookie,
        "",
        &form,
    )
    .await;
    assert_eq!(status, 200);
    let message = String::from_utf8(message).expect("utf8");
    for (page, text) in [("inbox", &inbox), ("message", &message)] {
        let bad: Vec<char> = text
            .chars()
            .filter(|&c| {
                matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
                    || (c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
            })
            .collect();
        assert!(bad.is_empty(), "{page} shows {bad:?}");
    }
    assert!(inbox.contains("Bank ?liam.exe"), "the From: {inbox}");
    assert!(inbox.contains("pay ?now ?fdp.exe"), "the subject");
    assert!(message.contains("inv?fdp.exe"), "the envelope sender");
    assert!(message.contains("invoice?fdp.exe"), "the attachment name");
    drop(desk);
    gw.stop().await;
}
