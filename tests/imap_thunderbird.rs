//! Thunderbird, a real desktop mail client rendering in a real (virtual) X display, reads
//! `reclaim imap`: it logs in with the run's password, lists the quarantine, and opens a
//! message, whose body it fetches and shows; a screenshot of the open message is kept.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::TestGateway;
use reclaim::imap::{Bound, Limits, Review};
use reclaim::review::ReviewContext;
use tokio_util::sync::CancellationToken;

const SUBJECT: &str = "Quarterly invoice";
const INVOICE: &[u8] = b"From: Anna <anna@partner.example>\r\nTo: jan@old.example\r\n\
Subject: Quarterly invoice\r\nMessage-ID: <q1@partner.example>\r\n\r\n\
Dear Jan,\r\nthe invoice for the quarter is attached in spirit.\r\n";
/// How long Thunderbird gets for each step: starting, logging in, showing the message.
const STEP_LIMIT: Duration = Duration::from_secs(90);
/// The account's name in Thunderbird; its main window's title names it.
const ACCOUNT: &str = "reclaim";

/// Thunderbird logs in to `reclaim imap` with the password of the run, given to it the
/// way Thunderbird stores passwords (an NSS key store and `logins.json`, nobody at a
/// prompt), and lists INBOX: an audited read of the message, under the run's reason, and
/// still unread on the server. Opened (the `n` key), the message's body is fetched
/// (`BODY[]`) and the server has it \Seen; opened in a window of its own (Return), that
/// window is titled with the subject, and a screenshot of the screen is written to
/// `target/imap-thunderbird.png`. No message but that one was read, and Thunderbird's
/// protocol log (`target/imap-thunderbird.imap.log.moz_log`) shows no command answered BAD.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thunderbird_opens_a_message_and_shows_it() {
    for tool in ["thunderbird", "Xvfb", "xdotool", "import", "python3"] {
        if !common::have(tool) {
            return;
        }
    }
    let mut gw = TestGateway::start("").await;
    let invoice = gw
        .send("anna@partner.example", &["jan@old.example"], INVOICE)
        .await;
    let state = tempfile::tempdir().expect("state dir");
    let bound = Bound::bind(
        Box::new(Review::new(
            gw.review_context(Some(&gw.identity)),
            "thunderbird test",
        )),
        state.path(),
        "127.0.0.1:0".parse().expect("addr"),
        Limits::default(),
    )
    .await
    .expect("imap binds");
    let (port, password) = (bound.addr.port(), bound.password().to_owned());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(bound.serve(shutdown.clone()));
    let admin = std::sync::Arc::new(gw.review_context(None));

    let home = tempfile::tempdir().expect("home");
    let profile = home.path().join("profile");
    std::fs::create_dir(&profile).expect("profile dir");
    store_password(&profile, &password).await;
    std::fs::write(profile.join("user.js"), user_js(port)).expect("user.js");
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .to_owned();
    let imap_log = out_dir.join("imap-thunderbird.imap.log");
    let screenshot = out_dir.join("imap-thunderbird.png");
    let _ = std::fs::remove_file(&screenshot);
    let _ = std::fs::remove_file(imap_log.with_extension("log.moz_log"));

    let (_xvfb, display) = start_xvfb().await;
    let _thunderbird = Group::spawn(
        Command::new("thunderbird")
            .arg("--profile")
            .arg(&profile)
            .arg("--no-remote")
            .env("DISPLAY", &display)
            .env("HOME", home.path())
            .env("MOZ_CRASHREPORTER_DISABLE", "1")
            .env("MOZ_LOG", "IMAP:5")
            .env("MOZ_LOG_FILE", &imap_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );

    // The main window shows INBOX once the account has logged in.
    let inbox = {
        let display = display.clone();
        move || find_window(&display, &format!("^Inbox - {ACCOUNT} - "))
    };
    let main_window = until(STEP_LIMIT, "Thunderbird's main window on INBOX", inbox).await;
    // Listing INBOX, Thunderbird asks for header fields a summary does not hold (Received,
    // References): reclaim decrypts the message for them, an audited read.
    let listed = {
        let (admin, invoice) = (admin.clone(), invoice.clone());
        move || (shows_of(&admin, &invoice) > 0).then_some(())
    };
    until(
        STEP_LIMIT,
        "an audited read of the message's headers",
        listed,
    )
    .await;
    let unread = {
        let password = password.clone();
        blocking(move || !seen(port, &password)).await
    };
    assert!(
        unread,
        "those fetches PEEK: the message is still unread until it is opened"
    );
    // `n` selects the next unread message and the message pane shows it: its body is
    // fetched (`BODY[]`, not PEEK), which marks it \Seen on the server.
    let opened = {
        let password = password.clone();
        move || seen(port, &password).then_some(())
    };
    press_until(
        &display,
        &main_window,
        "n",
        "\\Seen on the server after the message was opened",
        opened,
    )
    .await;
    // Return opens the selected message in a window of its own, titled by its subject.
    let titled = {
        let display = display.clone();
        move || find_window(&display, &format!("^{SUBJECT} - "))
    };
    press_until(
        &display,
        &main_window,
        "Return",
        "a window titled with the subject",
        titled,
    )
    .await;
    take_screenshot(&display, &screenshot).await;
    println!("screenshot: {}", screenshot.display());

    assert_eq!(
        reads_by_this_run(&admin),
        std::slice::from_ref(&invoice),
        "each read was of the message shown, under this run's reason"
    );
    let exchange = std::fs::read_to_string(imap_log.with_extension("log.moz_log"))
        .expect("Thunderbird's IMAP log");
    assert!(
        exchange
            .lines()
            .any(|l| l.contains(":SendData: ") && l.contains("fetch") && l.contains(" BODY[])")),
        "Thunderbird fetched the whole body"
    );
    let refused = refused_commands(&exchange);
    println!("answered NO or BAD: {refused:#?}");
    assert!(
        !exchange.is_empty() && refused.iter().all(|line| !line.contains(" BAD ")),
        "commands answered BAD: {refused:#?}"
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("stops in time")
        .expect("server task");
    gw.stop().await;
}

/// How many audited reads ("show") of message `id` the trail holds.
fn shows_of(admin: &ReviewContext, id: &str) -> usize {
    common::audit_records(admin)
        .iter()
        .filter(|r| r.contains("\"action\":\"show\"") && r.contains(id))
        .count()
}

/// The ids of every message read under this run's reason, each once.
fn reads_by_this_run(admin: &ReviewContext) -> Vec<String> {
    let mut ids: Vec<String> = common::audit_records(admin)
        .iter()
        .map(|r| serde_json::from_str::<serde_json::Value>(r).expect("a JSON record"))
        .filter(|r| r["reason"] == "thunderbird test")
        .flat_map(|r| {
            let ids = r["ids"].as_array().cloned().unwrap_or_default();
            ids.into_iter()
                .filter_map(|id| id.as_str().map(str::to_owned))
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Whether INBOX's first message is \Seen, asked of the server over a connection of our
/// own (EXAMINE changes nothing).
fn seen(port: u16, password: &str) -> bool {
    use std::io::{BufRead, Write};
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut reader = std::io::BufReader::new(stream.try_clone().expect("stream"));
    let mut response = String::new();
    reader.read_line(&mut response).expect("greeting");
    let mut flags = String::new();
    for (tag, command) in [
        ("a", format!("LOGIN reviewer {password}")),
        ("b", "EXAMINE INBOX".to_owned()),
        ("c", "FETCH 1 FLAGS".to_owned()),
        ("d", "LOGOUT".to_owned()),
    ] {
        (&stream)
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .expect("send");
        loop {
            response.clear();
            assert!(reader.read_line(&mut response).expect("read") > 0, "closed");
            if response.starts_with("* 1 FETCH") {
                flags = response.clone();
            }
            if let Some(status) = response.strip_prefix(&format!("{tag} ")) {
                assert!(status.starts_with("OK"), "{command}: {response}");
                break;
            }
        }
    }
    flags.contains("\\Seen")
}

/// Writes the profile's key store and `logins.json` with the IMAP password of the run.
async fn store_password(profile: &Path, password: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/thunderbird_logins.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(profile)
        .args(["127.0.0.1", "reviewer"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(password.as_bytes()).expect("password");
    }
    let output = blocking(move || child.wait_with_output().expect("helper")).await;
    assert!(
        output.status.success(),
        "thunderbird_logins.py: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One IMAP account on 127.0.0.1 without TLS, and everything that would talk to anyone
/// else, or ask a person something, turned off.
fn user_js(port: u16) -> String {
    let account = [
        ("mail.accountmanager.accounts", "\"account1\""),
        ("mail.accountmanager.defaultaccount", "\"account1\""),
        ("mail.account.account1.server", "\"server1\""),
        ("mail.account.account1.identities", "\"id1\""),
        ("mail.identity.id1.fullName", "\"Reviewer\""),
        (
            "mail.identity.id1.useremail",
            "\"reviewer@example.invalid\"",
        ),
        ("mail.server.server1.type", "\"imap\""),
        ("mail.server.server1.name", &format!("\"{ACCOUNT}\"")),
        ("mail.server.server1.hostname", "\"127.0.0.1\""),
        ("mail.server.server1.realhostname", "\"127.0.0.1\""),
        ("mail.server.server1.port", &port.to_string()),
        ("mail.server.server1.userName", "\"reviewer\""),
        ("mail.server.server1.realuserName", "\"reviewer\""),
        // No TLS (loopback only); a cleartext password (AUTHENTICATE PLAIN or LOGIN).
        ("mail.server.server1.socketType", "0"),
        ("mail.server.server1.authMethod", "3"),
        ("mail.server.server1.login_at_startup", "true"),
        ("mail.server.server1.check_new_mail", "true"),
        (
            "mail.server.server1.directory-rel",
            "\"[ProfD]ImapMail/127.0.0.1\"",
        ),
        // Bodies only when a message is opened: no offline copies, no junk scoring, no
        // new-mail alert (its preview text is read from the body).
        ("mail.server.server1.offline_download", "false"),
        ("mail.server.server1.autosync_offline_stores", "false"),
        ("mail.server.server1.spamLevel", "0"),
        ("mail.biff.show_alert", "false"),
        ("mail.biff.alert.show_preview", "false"),
        ("mailnews.database.global.indexer.enabled", "false"),
        // `n` with no unread message left stays in the folder, without asking.
        ("mailnews.nav_crosses_folders", "2"),
        // Opening a message (Return) gives it a window of its own.
        ("mail.openMessageBehavior", "0"),
    ];
    let quiet = [
        ("mail.shell.checkDefaultClient", "false"),
        ("mailnews.start_page.enabled", "false"),
        ("mail.provider.enabled", "false"),
        ("mail.rights.version", "1"),
        ("mail.inappnotifications.enabled", "false"),
        ("mailnews.auto_config.fetchFromISP.enabled", "false"),
        ("mailnews.auto_config.guess.enabled", "false"),
        ("mailnews.auto_config_url", "\"\""),
        ("mailnews.message_display.disable_remote_image", "true"),
        ("app.update.enabled", "false"),
        ("app.update.auto", "false"),
        ("extensions.update.enabled", "false"),
        ("toolkit.telemetry.enabled", "false"),
        ("datareporting.healthreport.uploadEnabled", "false"),
        ("datareporting.policy.dataSubmissionEnabled", "false"),
        ("browser.safebrowsing.malware.enabled", "false"),
        ("browser.safebrowsing.phishing.enabled", "false"),
        // IP literals need no resolver; no name is looked up.
        ("network.dns.disabled", "true"),
        ("network.proxy.type", "0"),
    ];
    account
        .iter()
        .chain(&quiet)
        .map(|(name, value)| format!("user_pref(\"{name}\", {value});\n"))
        .collect()
}

/// Starts Xvfb on a display number it picks itself; returns it and the display (`:N`).
async fn start_xvfb() -> (Group, String) {
    let mut command = Command::new("Xvfb");
    command
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut xvfb = Group::spawn(&mut command);
    let stdout = xvfb.0.stdout.take().expect("stdout");
    let number = tokio::time::timeout(
        Duration::from_secs(30),
        blocking(move || {
            use std::io::BufRead;
            let mut line = String::new();
            std::io::BufReader::new(stdout)
                .read_line(&mut line)
                .expect("Xvfb's display number");
            line
        }),
    )
    .await
    .expect("Xvfb is ready in time");
    let number: u32 = number
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("a display number from Xvfb, not {number:?}"));
    (xvfb, format!(":{number}"))
}

/// Runs xdotool on `display`, at most 10 s.
fn xdotool(display: &str, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg("10")
        .arg("xdotool")
        .args(args)
        .env("DISPLAY", display)
        .stdin(Stdio::null())
        .output()
        .expect("xdotool")
}

/// The id of a window on `display` whose title matches `pattern`, if one is there.
fn find_window(display: &str, pattern: &str) -> Option<String> {
    let found = xdotool(display, &["search", "--name", pattern]);
    let ids = String::from_utf8_lossy(&found.stdout).into_owned();
    ids.lines().next().map(str::to_owned)
}

/// Writes a PNG of the whole screen to `path` and checks it is a picture of something.
async fn take_screenshot(display: &str, path: &Path) {
    let (display, path) = (display.to_owned(), path.to_owned());
    blocking(move || {
        let taken = Command::new("timeout")
            .args(["30", "import", "-window", "root"])
            .arg(&path)
            .env("DISPLAY", &display)
            .output()
            .expect("import");
        assert!(
            taken.status.success(),
            "import: {}",
            String::from_utf8_lossy(&taken.stderr)
        );
        let png = std::fs::read(&path).expect("screenshot");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG file");
        let colours = Command::new("timeout")
            .args(["30", "identify", "-format", "%k"])
            .arg(&path)
            .output()
            .expect("identify");
        let colours: u32 = String::from_utf8_lossy(&colours.stdout)
            .trim()
            .parse()
            .expect("a colour count");
        assert!(
            colours >= 16,
            "a window, not a blank screen: {colours} colours"
        );
    })
    .await;
}

/// The lines of Thunderbird's IMAP log where reclaim answered a command NO or BAD, each
/// after the command it answers.
fn refused_commands(log: &str) -> Vec<String> {
    let mut sent = std::collections::HashMap::new();
    let mut refused = Vec::new();
    for line in log.lines() {
        if let Some((_, command)) = line.split_once(":SendData: ") {
            if let Some((tag, _)) = command.split_once(' ') {
                sent.insert(tag.to_owned(), command.to_owned());
            }
        } else if let Some((_, answer)) = line.split_once(":CreateNewLineFromSocket: ") {
            let mut words = answer.split(' ');
            if let (Some(tag), Some("NO" | "BAD")) = (words.next(), words.next()) {
                let command = sent.get(tag).map_or("?", String::as_str);
                refused.push(format!("{command} -> {answer}"));
            }
        }
    }
    refused
}

/// Presses `key` in `window` until `done` gives a value, waiting a few seconds after each
/// press; fails after [`STEP_LIMIT`].
async fn press_until<T: Send + 'static>(
    display: &str,
    window: &str,
    key: &str,
    what: &str,
    done: impl Fn() -> Option<T> + Send + 'static,
) -> T {
    let (display, window, key) = (display.to_owned(), window.to_owned(), key.to_owned());
    until(STEP_LIMIT, what, move || {
        xdotool(&display, &["windowfocus", "--sync", &window, "key", &key]);
        let pressed = Instant::now();
        while pressed.elapsed() < Duration::from_secs(5) {
            if let Some(value) = done() {
                return Some(value);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        None
    })
    .await
}

/// Calls `attempt` off the async threads until it gives a value; fails after `limit`.
async fn until<T: Send + 'static>(
    limit: Duration,
    what: &str,
    attempt: impl Fn() -> Option<T> + Send + 'static,
) -> T {
    let started = Instant::now();
    let found = blocking(move || {
        loop {
            if let Some(value) = attempt() {
                return Some(value);
            }
            if started.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    })
    .await;
    found.unwrap_or_else(|| panic!("gave up after {limit:?} waiting for {what}"))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

/// A child process in a process group of its own, the whole group killed when the test
/// ends, passed or failed (Thunderbird starts helper processes of its own).
struct Group(std::process::Child);

impl Group {
    fn spawn(command: &mut Command) -> Self {
        use std::os::unix::process::CommandExt;
        let program = command.get_program().to_string_lossy().into_owned();
        Self(
            command
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("{program}: {e}")),
        )
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}
