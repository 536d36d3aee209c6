//! `reclaim imap` against another local user (`nobody`, through `runuser`), as the desk is
//! tested: the port on loopback is reachable by every local user, so everything rests on the
//! run's password and on the reviewer's own files. Another user who connects gets nothing
//! without the password, is dropped after three guesses, and can read neither the state
//! directory nor the file of UIDs and flags in it.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use clap::Parser;
use common::TestGateway;
use reclaim::cli::Args;
use reclaim::imap::{Bound, Limits, Review};
use reclaim::review::ReviewContext;
use tokio_util::sync::CancellationToken;

const PYTHON: &str = "/usr/bin/python3";

/// Run as `nobody`: guesses the password on the port and tries to read the state.
const INTRUDER: &str = r#"
import imaplib, json, os, sys
port, state_dir = int(sys.argv[1]), sys.argv[2]
out = {}
conn = imaplib.IMAP4("127.0.0.1", port, timeout=30)
out["greeting"] = conn.welcome.decode()
guesses = []
for guess in ["reviewer", "password", "secret"]:
    try:
        conn.login("reviewer", guess)
        guesses.append("accepted: " + guess)
        break
    except imaplib.IMAP4.error as e:
        guesses.append("refused: " + str(e))
out["guesses"] = guesses
try:
    conn.noop()
    out["after"] = "still connected"
except (imaplib.IMAP4.abort, imaplib.IMAP4.error, OSError) as e:
    out["after"] = "dropped: " + str(e)
import socket
raw = socket.create_connection(("127.0.0.1", port), timeout=30)
raw.recv(4096)
raw.sendall(b"a1 SELECT INBOX\r\na2 FETCH 1 BODY[]\r\n")
answer = b""
while answer.count(b"\r\n") < 2:
    chunk = raw.recv(4096)
    if not chunk:
        break
    answer += chunk
out["without_login"] = answer.decode(errors="replace")
for name, path in [("dir", state_dir), ("file", os.path.join(state_dir, "imap-state.json"))]:
    try:
        if name == "dir":
            os.listdir(path)
        else:
            open(path).read()
        out[name] = "read"
    except OSError as e:
        out[name] = "refused: " + e.strerror
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_local_user_gets_nothing_from_the_imap_port_or_its_state() {
    assert!(
        std::path::Path::new(PYTHON).exists(),
        "{PYTHON} is missing (apt-get install python3)"
    );
    let mut gw = TestGateway::start("").await;
    gw.send(
        "a@partner.example",
        &["jan@old.example"],
        b"Subject: for the reviewer only\r\n\r\nconfidential\r\n",
    )
    .await;
    // The state directory sits in a directory every user may enter, so that only its own
    // mode keeps others out.
    let open_parent = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(open_parent.path(), PermissionsExt::from_mode(0o755)).expect("chmod");
    let state = open_parent.path().join("state");
    let args = Args::parse_from([
        "reclaim".to_owned(),
        "-c".to_owned(),
        gw.config_path.display().to_string(),
        "-i".to_owned(),
        gw.identity.display().to_string(),
        "imap".to_owned(),
        "--reason".to_owned(),
        "local users test".to_owned(),
    ]);
    let context = ReviewContext::new(&args.access()).expect("review context");
    let quarantine = Box::new(Review::new(context, "local users test"));
    let bound = Bound::bind(
        quarantine,
        &state,
        "127.0.0.1:0".parse().expect("addr"),
        Limits::default(),
    )
    .await
    .expect("imap binds");
    let (addr, password) = (bound.addr, bound.password().to_owned());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(bound.serve(shutdown.clone()));

    // The reviewer's own client selects INBOX, so the state file exists.
    let reviewer = format!(
        "import imaplib\nc = imaplib.IMAP4('127.0.0.1', {port})\nc.login('me', {password:?})\n\
         typ, data = c.select('INBOX')\nprint(typ, data[0].decode())\nc.logout()\n",
        port = addr.port()
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new(PYTHON)
            .args(["-c", &reviewer])
            .output()
            .expect("python")
    })
    .await
    .expect("reviewer client");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK 1");
    let file = state.join("imap-state.json");
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&file), 0o600);

    let port = addr.port().to_string();
    let state_arg = state.display().to_string();
    let intruder = tokio::task::spawn_blocking(move || {
        Command::new("runuser")
            .args([
                "-u", "nobody", "--", PYTHON, "-c", INTRUDER, &port, &state_arg,
            ])
            .current_dir("/")
            .output()
            .expect("runuser -u nobody")
    });
    let out = tokio::time::timeout(Duration::from_secs(120), intruder)
        .await
        .expect("the intruder ends")
        .expect("intruder task");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).expect("intruder JSON");
    let guesses: Vec<&str> = seen["guesses"]
        .as_array()
        .expect("guesses")
        .iter()
        .map(|g| g.as_str().expect("text"))
        .collect();
    assert_eq!(guesses.len(), 3, "{seen:#}");
    assert!(guesses.iter().all(|g| g.starts_with("refused")), "{seen:#}");
    assert!(guesses[2].contains("too many failed logins"), "{seen:#}");
    assert!(
        seen["after"]
            .as_str()
            .is_some_and(|s| s.starts_with("dropped")),
        "three guesses and the connection is gone: {seen:#}"
    );
    assert!(!seen.to_string().contains(&password), "{seen:#}");
    let without = seen["without_login"].as_str().expect("answer");
    let lines: Vec<&str> = without.lines().collect();
    assert!(
        lines.len() == 2 && lines[0].starts_with("a1 BAD") && lines[1].starts_with("a2 BAD"),
        "{seen:#}"
    );
    assert_eq!(seen["dir"], "refused: Permission denied", "{seen:#}");
    assert_eq!(seen["file"], "refused: Permission denied", "{seen:#}");
    assert!(
        !seen.to_string().contains("for the reviewer only"),
        "{seen:#}"
    );

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("stops in time")
        .expect("server task");
    gw.stop().await;
}
