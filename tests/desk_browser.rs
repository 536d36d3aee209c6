//! The reviewer's desk in a real browser (Debian's Chromium over WebDriver) against an
//! in-process gateway: the inbox lists and filters, a hostile HTML message renders with
//! nothing leaving for anything but the desk and no script running, and release, export,
//! hold and delete each land in the audit trail with their reasons. Makes the screenshots
//! in docs/desk/.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::TestGateway;
use common::browser::Browser;
use common::desk::{get, header, post, start_desk};
use common::recorder::Recorder;
use fantoccini::Locator;
use tokio::io::AsyncWriteExt;

/// A loopback HTTP listener standing in for a tracker: counts every connection made to it.
async fn tracker() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind tracker");
    let addr = listener.local_addr().expect("addr");
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let _ = stream
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
        }
    });
    (addr, hits)
}

fn hostile_message(t: SocketAddr) -> Vec<u8> {
    format!(
        "From: Mallory <m@evil.example>\r\nTo: jan@old.example\r\nSubject: Invoice overdue\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=B\r\n\r\n--B\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nPlease pay the invoice.\r\n--B\r\n\
Content-Type: text/html; charset=utf-8\r\n\r\n<html><head>\r\n\
<style>body {{ background: url(http://{t}/css-background) }}</style>\r\n\
<link rel=\"stylesheet\" href=\"http://{t}/linked.css\">\r\n\
<meta http-equiv=\"refresh\" content=\"0; url=http://{t}/refresh\">\r\n\
</head><body onload=\"document.title='owned by onload'\">\r\n\
<p id=\"greeting\" style=\"color: #a00; background-image: url(http://{t}/style-attribute)\">Invoice attached &lt;b&gt;</p>\r\n\
<img src=\"http://{t}/pixel.gif\" onerror=\"document.title='owned by onerror'\">\r\n\
<img src=\"http://tracker.example/pixel.gif\" width=\"1\" height=\"1\">\r\n\
<script>document.title = 'owned by script'; new Image().src = 'http://{t}/script';</script>\r\n\
<form action=\"http://{t}/form\" method=\"post\"><input name=\"q\" value=\"x\"><button id=\"go\">Pay now</button></form>\r\n\
<iframe src=\"http://{t}/nested-frame\"></iframe>\r\n\
<a href=\"http://{t}/link\" id=\"link\">click here</a>\r\n\
<video poster=\"http://{t}/poster\"></video><object data=\"http://{t}/object\"></object>\r\n\
</body></html>\r\n--B--\r\n"
    )
    .into_bytes()
}

/// Where screenshots go: docs/desk/ when `RECLAIM_DESK_SCREENSHOTS` is set (to refresh the
/// committed ones), else a temp folder.
fn screenshot_dir(temp: &std::path::Path) -> std::path::PathBuf {
    match std::env::var_os("RECLAIM_DESK_SCREENSHOTS") {
        Some(_) => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/desk"),
        None => temp.to_owned(),
    }
}

async fn screenshot(browser: &Browser, dir: &std::path::Path, name: &str) {
    let png = browser.client.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "{name} is a PNG");
    std::fs::create_dir_all(dir).expect("screenshot dir");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
}

/// Waits for the login page to move on to the inbox; returns its path and query.
async fn inbox_url(browser: &Browser) -> (String, Option<String>) {
    let started = std::time::Instant::now();
    loop {
        let here = browser.client.current_url().await.expect("url");
        if here.path().ends_with("/inbox") {
            return (here.path().to_owned(), here.query().map(str::to_owned));
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "still at {here}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Fills the fields of the form with id `form` and presses its button `button`.
async fn submit(browser: &Browser, form: &str, fields: &[(&str, &str)], button: &str) {
    let c = &browser.client;
    for (name, value) in fields {
        let input = c
            .find(Locator::Css(&format!("#{form} [name=\"{name}\"]")))
            .await
            .unwrap_or_else(|e| panic!("field {name} in #{form}: {e}"));
        input.clear().await.expect("clear");
        input.send_keys(value).await.expect("type");
    }
    c.find(Locator::Css(&format!("#{form} {button}")))
        .await
        .unwrap_or_else(|e| panic!("button {button} in #{form}: {e}"))
        .click()
        .await
        .expect("click");
}

async fn text_of(browser: &Browser, css: &str) -> String {
    browser
        .client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .expect("text")
}

/// Waits until the element at `css` holds `needle` (across a navigation in progress).
async fn wait_text(browser: &Browser, css: &str, needle: &str) -> String {
    let started = std::time::Instant::now();
    loop {
        if let Ok(element) = browser.client.find(Locator::Css(css)).await
            && let Ok(text) = element.text().await
            && text.contains(needle)
        {
            return text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{css} never showed {needle:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn rows(browser: &Browser) -> usize {
    browser
        .client
        .find_all(Locator::Css("table.list tbody tr"))
        .await
        .expect("rows")
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desk_in_a_browser_lists_renders_safely_and_acts_with_reasons() {
    let relay = Recorder::start(0).await;
    let mut gw = TestGateway::start_releasing_to(relay.addr).await;
    let (tracker_addr, hits) = tracker().await;
    let _hostile = gw
        .send(
            "m@evil.example",
            &["jan@old.example"],
            &hostile_message(tracker_addr),
        )
        .await;
    let hello = gw
        .send(
            "a@partner.example",
            &["piet@old.example"],
            b"From: Anna <a@partner.example>\r\nSubject: Hello from a partner\r\n\r\nStill writing to the old address.\r\n",
        )
        .await;
    let news = gw
        .send(
            "news@bulk.example",
            &["info@sub.retired.example"],
            b"From: news@bulk.example\r\nSubject: Newsletter\r\nList-Id: <news.bulk.example>\r\n\r\nNews.\r\n",
        )
        .await;
    let notes = gw
        .send(
            "b@other.example",
            &["jan@old.example"],
            b"From: b@other.example\r\nSubject: Meeting notes\r\n\r\nNotes.\r\n",
        )
        .await;
    let desk = start_desk(&gw).await;
    let temp = tempfile::tempdir().expect("tempdir");
    let shots = screenshot_dir(temp.path());
    let browser = Browser::start().await;
    let c = &browser.client;

    // The secret is exchanged for the session and gone from the address bar.
    c.goto(&desk.url).await.expect("open the desk");
    let (path, query) = inbox_url(&browser).await;
    let root = path.strip_suffix("/inbox").expect("the inbox").to_owned();
    assert!(
        root.starts_with("/d/") && query.is_none(),
        "{path} {query:?}"
    );
    let base = format!("http://{}{root}", desk.addr);
    assert_eq!(rows(&browser).await, 4, "the inbox lists every message");
    screenshot(&browser, &shots, "inbox").await;

    // Filters: subject text, sender, recipient, retired domain, date range.
    submit(&browser, "filters", &[("subject", "invoice")], "button").await;
    wait_text(&browser, "p.count", "1 messages").await;
    assert_eq!(rows(&browser).await, 1, "subject filter");
    c.goto(&format!("{base}/inbox?from=partner"))
        .await
        .expect("goto");
    assert_eq!(rows(&browser).await, 1, "sender filter");
    c.goto(&format!("{base}/inbox?to=jan%40"))
        .await
        .expect("goto");
    assert_eq!(rows(&browser).await, 2, "recipient filter");
    c.goto(&format!("{base}/inbox?domain=retired.example"))
        .await
        .expect("goto");
    assert_eq!(rows(&browser).await, 1, "domain filter");
    c.goto(&format!("{base}/inbox?until=2020-01-01"))
        .await
        .expect("goto");
    assert!(
        text_of(&browser, "main")
            .await
            .contains("No messages match")
    );
    let today = reclaim::clock::format_time(reclaim::clock::unix_now());
    c.goto(&format!(
        "{base}/inbox?since={}&until={}",
        &today[..10],
        &today[..10]
    ))
    .await
    .expect("goto");
    assert_eq!(rows(&browser).await, 4, "today's date range");

    // The hostile message: opened with a reason, its HTML shown in the sandboxed frame.
    c.goto(&format!("{base}/inbox?subject=invoice"))
        .await
        .expect("goto");
    c.find(Locator::Css("a.open"))
        .await
        .expect("subject link")
        .click()
        .await
        .expect("click");
    text_of(&browser, "#open").await;
    screenshot(&browser, &shots, "open").await;
    submit(
        &browser,
        "open",
        &[("reason", "ticket 7: desk-open")],
        "button",
    )
    .await;
    let frame = c
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("iframe#html-body"))
        .await
        .expect("the HTML frame");
    assert_eq!(
        frame.attr("sandbox").await.expect("attr").as_deref(),
        Some("")
    );
    assert_eq!(c.title().await.expect("title"), "Message · reclaim");
    let body = text_of(&browser, "pre.body").await;
    assert!(body.contains("Please pay the invoice."), "{body}");
    screenshot(&browser, &shots, "message").await;
    frame.enter_frame().await.expect("into the frame");
    let greeting = text_of(&browser, "p").await;
    assert_eq!(
        greeting, "Invoice attached <b>",
        "escaped text shows as text"
    );
    let source = c.source().await.expect("frame source");
    for gone in [
        "<script",
        "onerror",
        "onload",
        "<form",
        "<iframe",
        "http://",
        "<link",
        "http-equiv",
        "<object",
        "poster",
    ] {
        assert!(!source.contains(gone), "{gone} survived: {source}");
    }
    assert!(c.find(Locator::Id("go")).await.is_err(), "no form button");
    // The frame's own title: every script in the mail would have set it.
    let title = c
        .execute("return document.title", Vec::new())
        .await
        .expect("WebDriver reads the frame");
    assert_eq!(title, serde_json::json!(""), "a script in the mail ran");
    c.enter_parent_frame().await.expect("back out");
    // Scripts in the mail never ran: each would have renamed the page or fetched.
    assert_eq!(c.title().await.expect("title"), "Message · reclaim");
    // A later desk request, after the message page (and its frame) finished loading.
    c.goto(&format!("{base}/audit")).await.expect("audit");
    assert!(text_of(&browser, "#chain").await.contains("verifies"));
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a request left for the tracker"
    );

    // Hold, release (to the in-test relay) and delete, each with its reason.
    c.goto(&format!("{base}/message/{hello}"))
        .await
        .expect("goto");
    submit(&browser, "open", &[("reason", "ticket 7: read")], "button").await;
    text_of(&browser, "#actions").await;
    submit(
        &browser,
        "hold",
        &[("reason", "desk-hold legal 17")],
        "button",
    )
    .await;
    assert!(
        text_of(&browser, "#done")
            .await
            .contains("desk-hold legal 17")
    );
    screenshot(&browser, &shots, "done").await;
    c.goto(&format!("{base}/message/{hello}"))
        .await
        .expect("goto");
    submit(
        &browser,
        "open",
        &[("reason", "ticket 7: release")],
        "button",
    )
    .await;
    text_of(&browser, "#actions").await;
    submit(
        &browser,
        "release",
        &[
            ("to", "case@new.example"),
            ("reason", "desk-release ticket 7"),
        ],
        "button",
    )
    .await;
    let done = text_of(&browser, "#done").await;
    assert!(done.contains("case@new.example"), "{done}");
    let received = relay.wait_ended(1, Duration::from_secs(30)).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].rcpt_to, ["case@new.example"]);
    assert!(
        received[0]
            .data
            .contains("Still writing to the old address.")
    );
    assert!(received[0].data.contains("Resent-To: case@new.example"));
    c.goto(&format!("{base}/message/{notes}"))
        .await
        .expect("goto");
    submit(&browser, "open", &[("reason", "ticket 7: tidy")], "button").await;
    text_of(&browser, "#actions").await;
    submit(
        &browser,
        "delete",
        &[("reason", "desk-delete nothing to keep")],
        "button",
    )
    .await;
    assert!(text_of(&browser, "#done").await.contains("desk-delete"));
    let left: Vec<String> = gw
        .list()
        .await
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_owned())
        .collect();
    assert!(!left.contains(&notes) && left.contains(&hello));

    // Export: the selection as mbox and one message as .eml, through the same session.
    let cookies = c.get_all_cookies().await.expect("cookies");
    let session = cookies
        .iter()
        .find(|k| k.name().starts_with("reclaim_desk_") && k.name() != "reclaim_desk_lang")
        .expect("the session cookie");
    let cookie = format!("{}={}", session.name(), session.value());
    c.goto(&format!("{base}/inbox")).await.expect("goto");
    let csrf = c
        .find(Locator::Css("#selection input[name=csrf]"))
        .await
        .expect("csrf")
        .attr("value")
        .await
        .expect("attr")
        .expect("value");
    let form = format!("csrf={csrf}&id={hello}&id={news}&do=export&reason=desk-export+handover");
    let host = desk.addr.to_string();
    let (status, head, mbox) = post(
        desk.addr,
        &format!("{root}/selection"),
        &host,
        &cookie,
        "",
        &form,
    )
    .await;
    assert_eq!(status, 200, "{head}");
    assert!(header(&head, "content-disposition").is_some_and(|d| d.contains("attachment")));
    let mbox = String::from_utf8(mbox).expect("utf8");
    assert_eq!(
        mbox.matches("\nFrom ").count() + usize::from(mbox.starts_with("From ")),
        2,
        "{mbox}"
    );
    assert!(mbox.contains("Subject: Hello from a partner") && mbox.contains("Subject: Newsletter"));
    let form = format!("csrf={csrf}&reason=desk-eml");
    let path = format!("{root}/message/{news}/eml");
    let (status, _, eml) = post(desk.addr, &path, &host, &cookie, "", &form).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&eml).contains("List-Id: <news.bulk.example>"));

    // Every action is in the trail with its reason, and the chain verifies.
    c.goto(&format!("{base}/audit")).await.expect("audit");
    let trail = text_of(&browser, "#trail").await;
    for reason in [
        "ticket 7: desk-open",
        "desk-hold legal 17",
        "desk-release ticket 7",
        "desk-delete nothing to keep",
        "desk-export handover",
        "desk-eml",
    ] {
        assert!(trail.contains(reason), "{reason} missing from the trail");
    }
    assert!(trail.contains("release") && trail.contains(&hello));
    assert!(text_of(&browser, "#chain").await.contains("verifies"));
    screenshot(&browser, &shots, "audit").await;

    // Who still writes: the chart and the CSV.
    c.goto(&format!("{base}/report")).await.expect("report");
    let labels = c
        .find_all(Locator::Css("#chart text.label"))
        .await
        .expect("labels");
    assert!(labels.len() >= 2, "a row per sender domain");
    let report = text_of(&browser, "main").await;
    assert!(report.contains("partner.example") && report.contains("bulk.example"));
    screenshot(&browser, &shots, "report").await;
    let (status, head, csv) = get(
        desk.addr,
        &format!("{root}/report.csv"),
        &host,
        Some(&cookie),
    )
    .await;
    assert_eq!(status, 200);
    assert!(header(&head, "content-type").is_some_and(|t| t.starts_with("text/csv")));
    assert!(String::from_utf8_lossy(&csv).contains("domain,partner.example,1,"));
    let cli_csv = gw.cli_ok(&["report", "--csv"]).await;
    assert_eq!(
        String::from_utf8_lossy(&csv),
        cli_csv,
        "the same file as the CLI's"
    );

    // Dutch, by the switch.
    c.goto(&format!("{base}/inbox")).await.expect("goto");
    c.find(Locator::Css("form.lang button[value=nl]"))
        .await
        .expect("NL")
        .click()
        .await
        .expect("click");
    wait_text(&browser, "h1", "Postvak").await;
    assert!(text_of(&browser, "thead").await.contains("Onderwerp"));
    screenshot(&browser, &shots, "inbox-nl").await;

    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a request left for the tracker"
    );
    browser.close().await;
    drop(desk);
    gw.stop().await;
}
