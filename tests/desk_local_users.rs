//! The desk against another user of the same machine (uid `nobody`, started with
//! `runuser`) and the pages that user serves, in a real Chromium: a server on another
//! loopback port the reviewer's browser visits is sent no session, and its page gets no
//! answer from the desk; a stolen cookie is worth nothing; `desk --open` shows the one-time
//! secret in no process's arguments and in no file that user can read; a session ends.

mod common;

use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::TestGateway;
use common::browser::Browser;
use common::desk::{get, start_desk, start_desk_with};
use fantoccini::Locator;
use reclaim::desk::{Lifetimes, Limits};

/// Debian's Python (the one `nobody` can run: a per-user install lives under /root).
const PYTHON: &str = "/usr/bin/python3";

/// A program run as `nobody`, its stdout lines (JSON, one event each) read as they come.
struct AsNobody {
    child: Child,
    lines: mpsc::Receiver<serde_json::Value>,
}

impl AsNobody {
    fn python(script: &str, args: &[&str]) -> Self {
        assert!(
            std::path::Path::new(PYTHON).exists(),
            "{PYTHON} is missing (apt-get install python3)"
        );
        let mut child = Command::new("runuser")
            .args(["-u", "nobody", "--", PYTHON, "-c", script])
            .args(args)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // Its own process group, so that the script (a child of runuser, which does not
            // pass signals on when killed) ends with it.
            .process_group(0)
            .spawn()
            .expect("runuser -u nobody");
        let stdout = child.stdout.take().expect("stdout");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Ok(event) = serde_json::from_str(&line)
                    && send.send(event).is_err()
                {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The events up to and including the first that `done` accepts.
    fn until(
        &self,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut events = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("waiting for {what}: {e}; saw {} events", events.len()));
            let last = done(&event);
            events.push(event);
            if last {
                return events;
            }
        }
    }
}

impl Drop for AsNobody {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A web server of another local user: logs each request (path and any Cookie) and serves
/// a page that tries to use the reviewer's desk session from the reviewer's own browser.
const HOSTILE_SERVER: &str = r#"
import http.server, json, sys
desk = sys.argv[1]
PAGE = """<!doctype html><html><body>
<img src="http://DESK/inbox"><img src="http://DESK/audit">
<iframe src="http://DESK/inbox"></iframe>
<form id="f" method="post" action="http://DESK/selection" target="sink">
<input name="do" value="delete"><input name="reason" value="x"></form>
<iframe name="sink"></iframe>
<script>
const d = "http://DESK";
const tries = [
  fetch(d + "/inbox", {credentials: "include", mode: "no-cors"}),
  fetch(d + "/report.csv", {credentials: "include", mode: "no-cors"}),
  fetch(d + "/", {credentials: "include", mode: "no-cors"}),
];
document.getElementById("f").submit();
window.addEventListener("load", () => {
  Promise.allSettled(tries).then(() => { new Image().src = "/done"; });
});
</script></body></html>""".replace("DESK", desk)
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        print(json.dumps({"path": self.path, "cookie": self.headers.get("Cookie", "")}), flush=True)
        if self.path == "/go":
            self.send_response(302)
            self.send_header("Location", "http://" + desk + "/inbox")
            self.end_headers()
            return
        body = PAGE.encode() if self.path == "/" else b""
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
print(json.dumps({"port": server.server_address[1]}), flush=True)
server.serve_forever()
"#;

/// Waits until the browser's page is at a path ending in `suffix`.
async fn at_path(browser: &Browser, suffix: &str) -> String {
    let started = Instant::now();
    loop {
        let here = browser.client.current_url().await.expect("url");
        if here.path().ends_with(suffix) {
            return here.path().to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "still at {here}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn page_text(browser: &Browser) -> String {
    browser
        .client
        .find(Locator::Css("body"))
        .await
        .expect("body")
        .text()
        .await
        .expect("text")
}

async fn audit_records(gw: &TestGateway) -> usize {
    let json = gw.cli_ok(&["audit", "--json"]).await;
    let trail: serde_json::Value = serde_json::from_str(&json).expect("audit JSON");
    // Reading the trail is itself recorded; what counts here is everything else.
    trail["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter(|r| r["action"] != "audit")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_server_and_page_get_nothing_of_the_session() {
    let mut gw = TestGateway::start("").await;
    let id = gw
        .send(
            "a@partner.example",
            &["jan@old.example"],
            b"Subject: case file\r\n\r\nconfidential\r\n",
        )
        .await;
    let desk = start_desk(&gw).await;
    let desk_host = desk.addr.to_string();
    let hostile = AsNobody::python(HOSTILE_SERVER, &[&desk_host]);
    let port = hostile.until("the hostile server's port", |e| e.get("port").is_some())[0]["port"]
        .as_u64()
        .expect("port");
    let browser = Browser::start().await;
    let c = &browser.client;

    c.goto(&desk.url).await.expect("log in");
    let inbox = at_path(&browser, "/inbox").await;
    let root = inbox.strip_suffix("/inbox").expect("root").to_owned();
    assert!(page_text(&browser).await.contains("case file"), "logged in");
    let cookies = c.get_all_cookies().await.expect("cookies");
    let session = cookies
        .iter()
        .find(|k| k.name() == format!("reclaim_desk_{}", desk.addr.port()))
        .expect("the session cookie");
    let (name, value) = (session.name().to_owned(), session.value().to_owned());
    let before = audit_records(&gw).await;

    // The reviewer's browser visits the other user's server, whose page then tries the
    // desk with the browser's credentials.
    c.goto(&format!("http://127.0.0.1:{port}/"))
        .await
        .expect("visit");
    let seen = hostile.until("the hostile page to finish", |e| e["path"] == "/done");
    for request in &seen {
        let cookie = request["cookie"].as_str().unwrap_or_default();
        assert!(
            !cookie.contains(&value) && !cookie.contains(&name),
            "the session went to another server: {request}"
        );
    }
    // And a redirect from there into the desk is refused.
    c.goto(&format!("http://127.0.0.1:{port}/go"))
        .await
        .expect("redirect");
    at_path(&browser, "/inbox").await;
    let refused = page_text(&browser).await;
    assert!(
        refused.contains("another site") || refused.contains("No desk session"),
        "{refused}"
    );
    assert_eq!(
        audit_records(&gw).await,
        before,
        "the hostile page made the desk do nothing in the reviewer's name"
    );
    assert!(
        gw.list().await.iter().any(|m| m["id"] == id.as_str()),
        "nothing was deleted"
    );

    // Even with the cookie, stolen some other way, that user gets nothing: it needs the
    // path's capability too.
    let stolen = format!("Cookie: {name}={value}");
    for path in [
        "/inbox",
        "/report.csv",
        &format!("/d/{}/inbox", "0".repeat(64)),
    ] {
        let out = Command::new("runuser")
            .args([
                "-u",
                "nobody",
                "--",
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
            ])
            .args(["-H", &stolen])
            .arg(format!("http://{desk_host}{path}"))
            .output()
            .expect("curl as nobody");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "403", "{path}");
    }
    // The reviewer's own session still works after all that.
    c.goto(&format!("http://{desk_host}{root}/inbox"))
        .await
        .expect("back to the desk");
    assert!(page_text(&browser).await.contains("case file"));
    browser.close().await;
    drop(desk);
    gw.stop().await;
}

/// Watches every process's arguments as another user can, and tries to read any login
/// file it sees named there.
const PROCESS_WATCHER: &str = r#"
import json, os, time
seen = set()
while True:
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
        except OSError:
            continue
        mine = "os.listdir" in cmd  # this watcher (and runuser starting it)
        watched = "open.html" in cmd or "secret=" in cmd or cmd.endswith(" desk --open")
        watched = watched and not mine
        if watched and (pid, cmd) not in seen:
            seen.add((pid, cmd))
            print(json.dumps({"cmdline": cmd}), flush=True)
            for word in cmd.split():
                if word.endswith("open.html"):
                    try:
                        with open(word) as f:
                            result = "read: " + f.read()
                    except OSError as e:
                        result = "refused: " + e.strerror
                    print(json.dumps({"file": word, "result": result}), flush=True)
    time.sleep(0.002)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desk_open_shows_the_secret_to_no_other_user() {
    let mut gw = TestGateway::start("").await;
    gw.send(
        "a@partner.example",
        &["jan@old.example"],
        b"Subject: opened by file\r\n\r\nhello\r\n",
    )
    .await;
    let temp = tempfile::tempdir().expect("tempdir");
    // The desktop's opener: records what it was given and stays a moment, as a browser
    // starting up would, so the watcher has every chance to see its arguments.
    let given = temp.path().join("given");
    let opener = temp.path().join("opener");
    std::fs::write(
        &opener,
        format!(
            "#!/bin/sh\nprintf '%s' \"$1\" > {}.tmp\nmv {0}.tmp {0}\nsleep 3\n",
            given.display()
        ),
    )
    .expect("opener");
    std::fs::set_permissions(&opener, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let watcher = AsNobody::python(PROCESS_WATCHER, &[]);
    let mut desk = Command::new(env!("CARGO_BIN_EXE_reclaim"))
        .arg("-c")
        .arg(&gw.config_path)
        .arg("-i")
        .arg(&gw.identity)
        .args(["desk", "--open"])
        .env_remove("RECLAIM_IDENTITY")
        .env_remove("RECLAIM_CONFIG")
        .env_remove("XDG_RUNTIME_DIR")
        .env("RECLAIM_DESK_OPENER", &opener)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("reclaim desk --open");
    let stdout = desk.stdout.take().expect("stdout");
    let (url_sender, printed) = mpsc::channel();
    std::thread::spawn(move || {
        // Reads to the end, so the desk's terminal stays open while it runs.
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(url) = line.trim().strip_prefix("http://") {
                let _ = url_sender.send(url.to_owned());
            }
        }
    });
    let login_file = {
        let started = Instant::now();
        while !given.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the opener never ran"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        std::fs::read_to_string(&given).expect("given")
    };
    assert!(
        login_file.ends_with("open.html"),
        "a file, not the URL: {login_file}"
    );
    let events = watcher.until("the watcher to see the opener", |e| {
        e["file"].as_str() == Some(login_file.as_str())
    });
    let printed = printed
        .recv_timeout(Duration::from_secs(30))
        .expect("the printed URL");
    let secret = printed.rsplit('=').next().expect("secret").to_owned();
    for event in &events {
        assert!(
            !event.to_string().contains(&secret) && !event.to_string().contains("secret="),
            "another user saw the secret: {event}"
        );
    }
    let tried = events.last().expect("the file event");
    assert!(
        tried["result"]
            .as_str()
            .is_some_and(|r| r.starts_with("refused")),
        "another user read the login file: {tried}"
    );

    // The reviewer's browser, given the file, ends up in the desk; then the file goes.
    let browser = Browser::start().await;
    browser
        .client
        .goto(&format!("file://{login_file}"))
        .await
        .expect("open the login file");
    at_path(&browser, "/inbox").await;
    assert!(page_text(&browser).await.contains("opened by file"));
    let started = Instant::now();
    while std::path::Path::new(&login_file).exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the login file outlived its use"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    browser.close().await;
    let _ = desk.kill();
    let _ = desk.wait();
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_ends_and_a_new_url_is_made() {
    let mut gw = TestGateway::start("").await;
    gw.send(
        "a@partner.example",
        &["jan@old.example"],
        b"Subject: s\r\n\r\nx\r\n",
    )
    .await;
    let limits = Limits {
        sessions: Lifetimes {
            idle: Duration::from_secs(2),
            absolute: Duration::from_secs(3600),
        },
        ..Limits::default()
    };
    let desk = start_desk_with(&gw, limits).await;
    let mut urls = desk.urls.clone();
    urls.mark_unchanged();
    let browser = Browser::start().await;
    let c = &browser.client;
    c.goto(&desk.url).await.expect("log in");
    let inbox = at_path(&browser, "/inbox").await;
    // Nothing is asked of the desk now: its own sweep ends the session and makes a new URL.
    tokio::time::timeout(Duration::from_secs(30), urls.changed())
        .await
        .expect("the session ended in time")
        .expect("the desk runs");
    let fresh = urls.borrow_and_update().clone();
    assert_ne!(fresh, desk.url);
    c.refresh().await.expect("reload");
    let text = page_text(&browser).await;
    assert!(
        text.contains("No desk session") || text.contains("has ended"),
        "{text}"
    );
    let host = desk.addr.to_string();
    let (status, _, _) = get(desk.addr, &inbox, &host, None).await;
    assert_eq!(status, 403);
    // The new URL starts a new session.
    c.goto(&fresh).await.expect("log in again");
    let again = at_path(&browser, "/inbox").await;
    assert_ne!(again, inbox, "a new capability");
    browser.close().await;
    drop(desk);
    gw.stop().await;
}
