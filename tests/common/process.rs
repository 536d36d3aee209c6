//! The real `reclaim serve` as a child process, for tests that need signals, a working
//! directory of their own, or the binary exactly as operators run it.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free port on 127.0.0.1: a child cannot be told to bind port 0 and report back, so the
/// test borrows one.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port()
}

/// A running `reclaim serve`, killed if the test ends (or fails) before it takes the child.
pub struct Serving(pub Option<Child>);

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `reclaim serve -c CONFIG` in `cwd` (the test's own when `None`), logging at info to
/// `log`, and waits until it accepts SMTP on `smtp`.
pub async fn serve(config: &Path, smtp: SocketAddr, log: &Path, cwd: Option<&Path>) -> Serving {
    let mut command = Command::new(env!("CARGO_BIN_EXE_reclaim"));
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let child = command
        .args(["serve", "-c"])
        .arg(config)
        .env("RECLAIM_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("start reclaim");
    let serving = Serving(Some(child));
    let started = Instant::now();
    while tokio::net::TcpStream::connect(smtp).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "gateway did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    serving
}
