//! The admin socket and every file and folder of the store are private from the moment they
//! exist, whatever umask the gateway was started under: everything here runs under umask
//! 000, the worst an operator's shell can hand over. (The umask is per process, so every
//! test in this file sets the same one.)

mod common;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::process::{Serving, free_port};
use common::{Client, TestGateway, queued_id};
use rustix::fs::Mode;

fn open_umask() {
    rustix::process::umask(Mode::empty());
}

fn socket_mode(path: &Path) -> u32 {
    let meta = std::fs::symlink_metadata(path).expect("metadata");
    assert!(
        meta.file_type().is_socket(),
        "{} is a socket",
        path.display()
    );
    meta.permissions().mode() & 0o7777
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o7777
}

/// Every entry under `dir` with its mode; `dir` itself first.
fn modes(dir: &Path) -> Vec<(PathBuf, bool, u32)> {
    let mut out = vec![(dir.to_owned(), true, mode(dir))];
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if std::fs::symlink_metadata(&path).expect("meta").is_dir() {
            out.extend(modes(&path));
        } else {
            out.push((path.clone(), false, mode(&path)));
        }
    }
    out
}

fn assert_private(dir: &Path) {
    let found = modes(dir);
    assert!(found.iter().any(|(p, _, _)| p.ends_with("index.redb")));
    for (path, is_dir, mode) in found {
        let want = if is_dir { 0o700 } else { 0o600 };
        assert_eq!(mode, want, "{} is {mode:o}", path.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_socket_is_never_seen_wider_than_0600() {
    open_umask();
    let dir = tempfile::tempdir().expect("tempdir");
    // A fresh parent: the folder bind creates is private too.
    let path = dir.path().join("run").join("admin.sock");
    for round in 0..40 {
        // Another user's process polling for the socket sees it the moment it exists.
        let done = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (path, done) = (path.clone(), done.clone());
            std::thread::spawn(move || {
                let look = || {
                    std::fs::symlink_metadata(&path)
                        .ok()
                        .map(|meta| (meta.file_type().is_socket(), meta.permissions().mode()))
                };
                loop {
                    // Read before looking: once bind has returned, the socket is there.
                    let bound = done.load(Ordering::SeqCst);
                    if let Some(seen) = look() {
                        return Some(seen);
                    }
                    if bound {
                        return None;
                    }
                }
            })
        };
        let listener = reclaim::admin::server::bind(&path).expect("bind");
        done.store(true, Ordering::SeqCst);
        let (is_socket, seen) = watcher
            .join()
            .expect("watcher")
            .expect("the socket exists once bound");
        assert!(is_socket, "round {round}: something else at the path");
        assert_eq!(seen & 0o777, 0o600, "round {round}: first seen as {seen:o}");
        assert_eq!(socket_mode(&path), 0o600);
        assert_eq!(mode(path.parent().expect("parent")), 0o700);
        drop(listener);
        std::fs::remove_file(&path).expect("remove socket");
    }
    // Nothing is left beside it by the way it was made.
    let left: Vec<_> = std::fs::read_dir(path.parent().expect("parent"))
        .expect("ls")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_store_file_is_private_under_umask_000() {
    open_umask();
    let mut gw = TestGateway::start_custom(common::Extra {
        // Small messages in a segment, larger ones in a file of their own.
        store: "inline_max = \"1KiB\"",
        ..common::Extra::default()
    })
    .await;
    let (mut c, _) = Client::connect(gw.addr).await;
    let small = queued_id(
        &c.send_message(
            "a@p.example",
            &["b@old.example"],
            b"Subject: s\r\n\r\nsmall\r\n",
        )
        .await,
    );
    let big = format!("Subject: b\r\n\r\n{}\r\n", "x".repeat(8 * 1024));
    let big = queued_id(
        &c.send_message("a@p.example", &["b@old.example"], big.as_bytes())
            .await,
    );
    gw.cli_ok(&["hold", &small, "--reason", "case 7"]).await;
    assert_eq!(socket_mode(&gw.socket), 0o600);
    assert!(
        std::fs::read_dir(gw.store.join("messages"))
            .expect("messages")
            .count()
            > 0,
        "{big} has a file of its own"
    );
    assert_private(&gw.store);
    gw.stop().await;
    // As an older release left it.
    let index = gw.store.join("index.redb");
    std::fs::set_permissions(&index, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    gw.restart().await;
    assert_private(&gw.store);
    assert_eq!(socket_mode(&gw.socket), 0o600);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_started_under_umask_000_keeps_everything_private() {
    open_umask();
    let home = tempfile::tempdir().expect("home");
    let smtp = format!("127.0.0.1:{}", free_port());
    let (_, recipient) = common::new_identity(home.path(), "reviewer.key");
    let config = format!(
        r#"
[server]
hostname = "mx.old.example"
listen = ["{smtp}"]
[store]
path = "store"
min_free = "0"
[seal]
recipients = ["{recipient}"]
[admin]
socket = "run/admin.sock"
[dns]
resolver = "off"
[[domain]]
name = "old.example"
"#
    );
    let config_path = common::write_file(home.path(), "reclaim.toml", config.as_bytes());
    let log = home.path().join("serve.log");
    // As an operator's shell would start it by hand.
    let child = Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" serve -c \"$1\"")
        .arg(env!("CARGO_BIN_EXE_reclaim"))
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start reclaim");
    let pid = child.id();
    let serving = Serving(Some(child));
    let addr = smtp.parse().expect("addr");
    let started = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "gateway did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Whatever a library creates without naming a mode is private too.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let umask = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .map(str::trim);
    assert_eq!(umask, Some("0077"), "{status}");

    let (mut c, _) = Client::connect(addr).await;
    queued_id(
        &c.send_message(
            "a@p.example",
            &["b@old.example"],
            b"Subject: s\r\n\r\nhi\r\n",
        )
        .await,
    );
    assert_private(&home.path().join("store"));
    assert_eq!(socket_mode(&home.path().join("run/admin.sock")), 0o600);
    assert_eq!(mode(&home.path().join("run")), 0o700);
    drop(serving);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_socket_is_replaced_and_a_live_one_refused() {
    open_umask();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("admin.sock");
    drop(reclaim::admin::server::bind(&path).expect("bind"));
    assert!(path.exists(), "a crash leaves the socket file");
    let live = reclaim::admin::server::bind(&path).expect("a stale socket is replaced");
    assert_eq!(socket_mode(&path), 0o600);
    let err = reclaim::admin::server::bind(&path).expect_err("a live socket stays");
    assert!(
        matches!(err, reclaim::admin::server::AdminError::InUse { .. }),
        "{err}"
    );
    drop(live);
    assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_are_private_under_umask_000() {
    open_umask();
    let mut gw = TestGateway::start("").await;
    gw.send(
        "a@p.example",
        &["b@old.example"],
        b"Subject: e\r\n\r\nplain\r\n",
    )
    .await;
    let out = gw.dir.path().join("out");
    let (dir, mbox) = (out.join("eml"), out.join("all.mbox"));
    for target in [
        ["--dir", dir.to_str().expect("utf8")],
        ["--mbox", mbox.to_str().expect("utf8")],
    ] {
        let mut args = vec![
            "-c".to_owned(),
            gw.config_path.display().to_string(),
            "-i".to_owned(),
            gw.identity.display().to_string(),
            "export".to_owned(),
            "--reason".to_owned(),
            "case 7".to_owned(),
        ];
        args.extend(target.iter().map(|s| s.to_string()));
        let done = tokio::task::spawn_blocking(move || {
            Command::new("sh")
                .arg("-c")
                .arg("umask 000; exec \"$@\"")
                .arg("sh")
                .arg(env!("CARGO_BIN_EXE_reclaim"))
                .args(&args)
                .output()
                .expect("run reclaim")
        })
        .await
        .expect("task");
        assert!(
            done.status.success(),
            "{}",
            String::from_utf8_lossy(&done.stderr)
        );
    }
    // `out` too: export made it, with its `eml` folder.
    let found = modes(&out);
    assert_eq!(found.len(), 4, "{found:?}");
    for (path, is_dir, mode) in found {
        let want = if is_dir { 0o700 } else { 0o600 };
        assert_eq!(mode, want, "{} is {mode:o}", path.display());
    }
    gw.stop().await;
}
