//! The CLI never reports success it did not have: an admin API that closes the connection,
//! takes part of a request or never answers ends every command with a non-zero exit and a
//! message, while a reader closing the CLI's own standard output (`reclaim list | head`)
//! is still a clean exit.

mod common;

use std::io::Read;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::TestGateway;

/// What the fake admin API does with each connection.
#[derive(Clone, Copy)]
enum Fake {
    /// Accepts and closes at once.
    Close,
    /// Reads the first bytes of the request, then closes with the rest unread.
    ReadSomeThenClose,
    /// Reads the whole request head, then closes without an answer.
    ReadHeadThenClose,
    /// Reads the request and never answers.
    Silent,
}

/// A fake admin socket in `dir`, served by a thread for the rest of the test.
fn fake_admin(dir: &Path, fake: Fake) -> PathBuf {
    let path = dir.join("fake.sock");
    let listener = UnixListener::bind(&path).expect("bind fake socket");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = vec![0u8; 1024];
            match fake {
                Fake::Close => {}
                Fake::ReadSomeThenClose => {
                    let _ = stream.read(&mut buf);
                }
                Fake::ReadHeadThenClose => {
                    let mut head = Vec::new();
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                }
                Fake::Silent => held.push(stream),
            }
        }
    });
    path
}

fn reclaim(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_reclaim"));
    command
        .args(args)
        .env_remove("RECLAIM_IDENTITY")
        .env_remove("RECLAIM_CONFIG")
        .stdin(Stdio::null());
    command
}

async fn run(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().expect("run reclaim"))
        .await
        .expect("task")
}

/// Fails the test unless the command failed with `code` and said why on stderr.
fn assert_failed(out: &Output, code: i32, says: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert!(stderr.contains(says), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A reason long enough that the request does not fit the socket's send buffer: the CLI
/// is still writing it when the fake closes, so the write itself fails (a broken pipe).
fn long_reason() -> String {
    "é".repeat(60_000)
}

const ID: &str = "0193a5c4-0000-7000-8000-000000000000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_fails_when_the_api_takes_part_of_the_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = fake_admin(dir.path(), Fake::ReadSomeThenClose);
    let reason = long_reason();
    let socket = socket.to_str().expect("utf8");
    for command in ["hold", "unhold"] {
        let out = run(reclaim(&[
            "--socket", socket, command, ID, "--reason", &reason,
        ]))
        .await;
        assert_failed(&out, 3, "the reclaim server at");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_fails_when_the_api_takes_part_of_the_request() {
    let relay = common::recorder::Recorder::start(0).await;
    let mut gw = TestGateway::start_releasing_to(relay.addr).await;
    gw.stop().await;
    let socket = fake_admin(gw.dir.path(), Fake::ReadSomeThenClose);
    let reason = long_reason();
    let config = gw.config_path.to_str().expect("utf8");
    let identity = gw.identity.to_str().expect("utf8");
    let socket = socket.to_str().expect("utf8");
    let out = run(reclaim(&[
        "-c",
        config,
        "-i",
        identity,
        "--socket",
        socket,
        "release",
        ID,
        "--to",
        "case@new.example",
        "--reason",
        &reason,
    ]))
    .await;
    assert_failed(&out, 3, "the reclaim server at");
    assert!(relay.received.lock().expect("lock").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_fails_unless_the_api_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.sock");
    let out = run(reclaim(&[
        "--socket",
        missing.to_str().expect("utf8"),
        "health",
    ]))
    .await;
    assert_failed(&out, 3, "cannot reach the reclaim server");

    // A socket file nobody listens on: connection refused.
    let refused = dir.path().join("refused.sock");
    drop(UnixListener::bind(&refused).expect("bind"));
    let out = run(reclaim(&[
        "--socket",
        refused.to_str().expect("utf8"),
        "health",
    ]))
    .await;
    assert_failed(&out, 3, "cannot reach the reclaim server");

    for (name, fake) in [
        ("close", Fake::Close),
        ("some", Fake::ReadSomeThenClose),
        ("head", Fake::ReadHeadThenClose),
    ] {
        let sub = dir.path().join(name);
        std::fs::create_dir(&sub).expect("mkdir");
        let socket = fake_admin(&sub, fake);
        // The request is written before or after the fake closes, as it happens: both
        // must fail.
        for _ in 0..20 {
            let out = run(reclaim(&[
                "--socket",
                socket.to_str().expect("utf8"),
                "health",
            ]))
            .await;
            assert_failed(&out, 3, "the reclaim server at");
        }
    }

    let sub = dir.path().join("silent");
    std::fs::create_dir(&sub).expect("mkdir");
    let socket = fake_admin(&sub, Fake::Silent);
    let started = std::time::Instant::now();
    let out = run(reclaim(&[
        "--socket",
        socket.to_str().expect("utf8"),
        "health",
        "--timeout",
        "1s",
    ]))
    .await;
    assert_failed(&out, 3, "did not answer within 1s");
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// Runs `command` with its standard output a pipe whose reader is already gone.
async fn with_closed_stdout(mut command: Command) -> Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    command.stdout(writer).stderr(Stdio::piped());
    run(command).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_is_still_success() {
    let mut gw = TestGateway::start("").await;
    let id = gw
        .send(
            "a@p.example",
            &["b@old.example"],
            b"Subject: x\r\n\r\nbody\r\n",
        )
        .await;
    let config = gw.config_path.to_str().expect("utf8").to_owned();
    let identity = gw.identity.to_str().expect("utf8").to_owned();
    for args in [
        vec!["list"],
        vec!["list", "--json"],
        vec!["export", &id, "--reason", "test"],
        vec!["hold", &id, "--reason", "test"],
        vec!["health"],
        vec!["check-config"],
        vec!["delete", &id, "--reason", "test"],
    ] {
        let mut full = vec!["-c", &config, "-i", &identity];
        full.extend(args.iter().copied());
        let out = with_closed_stdout(reclaim(&full)).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // check-config warns about the test config on stderr, as it should; nothing may
        // say that the closed output was an error.
        let stderr = String::from_utf8_lossy(&out.stderr);
        let quiet = if args[0] == "check-config" {
            !stderr.contains("panicked") && !stderr.contains("reclaim: ")
        } else {
            stderr.is_empty()
        };
        assert!(quiet, "{args:?}: {stderr}");
    }
    gw.stop().await;
}
