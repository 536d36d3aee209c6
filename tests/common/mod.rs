//! Test support: an in-process gateway on 127.0.0.1:0 with a temp store, a raw SMTP
//! client, and a runner for the real `reclaim` binary.
#![allow(dead_code)]

pub mod browser;
pub mod desk;
pub mod pki;
pub mod postgres;
pub mod process;
pub mod rdap;
pub mod recorder;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use reclaim::config::Config;
use reclaim::launch::{Running, launch};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

pub const HOSTNAME: &str = "mx.old.example";

/// The sections after `[admin]` in the default test config.
pub const DEFAULT_REST: &str = r#"
[dns]
resolver = "off"

[[domain]]
name = "old.example"

[[domain]]
name = "*.retired.example"

[[domain]]
name = "bücher.example"
"#;
/// Extra config lines for [`TestGateway::start_custom`]; `tail` goes at the end (more
/// `[[domain]]` entries, `[release]`).
#[derive(Default)]
pub struct Extra<'a> {
    pub server: &'a str,
    pub tls: bool,
    pub store: &'a str,
    pub admin: &'a str,
    pub tail: &'a str,
    /// Replaces the default `[dns]` and `[[domain]]` sections ([`DEFAULT_REST`]).
    pub rest: Option<&'a str>,
    /// Replaces the SMTP listen address (`127.0.0.1:0`).
    pub listen: Option<&'a str>,
    /// A reviewer identity file and its public key to use instead of a fresh one (nodes
    /// that share one quarantine seal to the same reviewers).
    pub reviewer: Option<(&'a Path, &'a str)>,
}

/// A running gateway and everything needed to review what it stored.
pub struct TestGateway {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub config_path: PathBuf,
    pub identity: PathBuf,
    pub socket: PathBuf,
    pub store: PathBuf,
    pub shutdown: CancellationToken,
    pub running: Option<Running>,
}

/// The uid this test runs as: the one the admin socket sees.
pub fn my_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
        .expect("a Uid line")
}

/// Writes a fresh identity file into `dir`; returns its path and public key.
pub fn new_identity(dir: &Path, name: &str) -> (PathBuf, String) {
    let identity = reclaim::seal::keygen::generate("2026-11-29T00:00:00Z");
    let path = dir.join(name);
    std::fs::write(&path, identity.file_text).expect("write identity");
    (path, identity.recipient)
}

impl TestGateway {
    /// Starts a gateway; `extra_server` lines go into `[server]`.
    pub async fn start(extra_server: &str) -> Self {
        Self::start_with(extra_server, true).await
    }

    pub async fn start_with(extra_server: &str, tls: bool) -> Self {
        Self::start_custom(Extra {
            server: extra_server,
            tls,
            ..Extra::default()
        })
        .await
    }

    /// Starts a gateway whose `[dns]`, `[[domain]]`, `[notify]` and `[relocated]` sections
    /// are `rest`.
    pub async fn start_sections(extra_server: &str, rest: &str) -> Self {
        Self::start_custom(Extra {
            server: extra_server,
            rest: Some(rest),
            ..Extra::default()
        })
        .await
    }

    /// Starts a gateway whose `[release]` relay is `relay` (plain SMTP, from
    /// quarantine@new.example).
    pub async fn start_releasing_to(relay: SocketAddr) -> Self {
        let tail = format!(
            "[release]\nrelay = \"{relay}\"\ntls = \"none\"\nfrom = \"quarantine@new.example\"\n"
        );
        Self::start_custom(Extra {
            tail: &tail,
            ..Extra::default()
        })
        .await
    }

    /// Starts a gateway with extra lines in several sections.
    pub async fn start_custom(extra: Extra<'_>) -> Self {
        let Extra {
            server: extra_server,
            tls,
            store: extra_store,
            admin: extra_admin,
            tail,
            rest,
            listen,
            reviewer,
        } = extra;
        let listen = listen.unwrap_or("127.0.0.1:0");
        let rest = rest.unwrap_or(DEFAULT_REST);
        // The default free-disk floor (1 GiB) would make tests depend on the host's disk.
        let floor = if extra_store.contains("min_free") {
            ""
        } else {
            "min_free = \"0\""
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let (identity, recipient) = match reviewer {
            Some((path, key)) => (path.to_owned(), key.to_owned()),
            None => new_identity(dir.path(), "reviewer.key"),
        };
        let store = dir.path().join("store");
        let socket = dir.path().join("admin.sock");
        let certs = Path::new(env!("CARGO_MANIFEST_DIR")).join("certs");
        let tls_section = if tls {
            format!(
                "[tls]\ncert = {:?}\nkey = {:?}\n",
                certs.join("dev-cert.pem"),
                certs.join("dev-key.pem")
            )
        } else {
            String::new()
        };
        let text = format!(
            r#"
[server]
hostname = "{HOSTNAME}"
listen = ["{listen}"]
{extra_server}

{tls_section}

[store]
path = {store:?}
{floor}
{extra_store}

[seal]
recipients = ["{recipient}"]

[admin]
socket = {socket:?}
{extra_admin}

{rest}

{tail}
"#
        );
        let config_path = dir.path().join("reclaim.toml");
        std::fs::write(&config_path, &text).expect("write config");
        let config = Config::load(&config_path).expect("valid test config");
        let shutdown = CancellationToken::new();
        let running = launch(&config, shutdown.clone())
            .await
            .expect("gateway starts");
        Self {
            addr: running.smtp_addrs[0],
            dir,
            config_path,
            identity,
            socket,
            store,
            shutdown,
            running: Some(running),
        }
    }

    /// Stops the gateway and waits for it.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(running) = self.running.take() {
            tokio::time::timeout(Duration::from_secs(30), running.task)
                .await
                .expect("gateway stops in time")
                .expect("gateway task");
        }
    }

    /// Stops the gateway if it runs, and starts it again on the same config and store.
    pub async fn restart(&mut self) {
        self.stop().await;
        let config = Config::load(&self.config_path).expect("valid test config");
        self.shutdown = CancellationToken::new();
        let running = launch(&config, self.shutdown.clone())
            .await
            .expect("gateway restarts");
        self.addr = running.smtp_addrs[0];
        self.running = Some(running);
    }

    /// Runs the CLI and returns stdout, failing the test with stderr if it fails.
    pub async fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args).await;
        assert!(
            out.status.success(),
            "reclaim {args:?} failed ({:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }

    /// The review context of this gateway's config, holding `identity` when one is given
    /// (without one it reaches the admin API only).
    pub fn review_context(&self, identity: Option<&Path>) -> reclaim::review::ReviewContext {
        use clap::Parser as _;
        let mut args = vec![
            "reclaim".to_owned(),
            "-c".to_owned(),
            self.config_path.display().to_string(),
        ];
        if let Some(identity) = identity {
            args.extend(["-i".to_owned(), identity.display().to_string()]);
        }
        args.push("list".to_owned());
        reclaim::review::ReviewContext::new(&reclaim::cli::Args::parse_from(args).access())
            .expect("review context")
    }

    /// Sends one message over SMTP and returns its queue id.
    pub async fn send(&self, from: &str, to: &[&str], body: &[u8]) -> String {
        let (mut c, _) = Client::connect(self.addr).await;
        queued_id(&c.send_message(from, to, body).await)
    }

    /// Runs the real CLI binary with this gateway's config and identity.
    pub async fn cli(&self, args: &[&str]) -> Output {
        let mut full: Vec<String> = vec![
            "-c".into(),
            self.config_path.display().to_string(),
            "-i".into(),
            self.identity.display().to_string(),
        ];
        full.extend(args.iter().map(|s| s.to_string()));
        run_cli(full).await
    }

    /// Runs the real CLI like [`Self::cli`], but kills it and fails the test if it is still
    /// running after `limit`: for commands that must end on their own.
    pub async fn cli_within(&self, args: &[&str], limit: Duration) -> Output {
        let mut full: Vec<String> = vec![
            "-c".into(),
            self.config_path.display().to_string(),
            "-i".into(),
            self.identity.display().to_string(),
        ];
        full.extend(args.iter().map(|s| s.to_string()));
        tokio::task::spawn_blocking(move || {
            let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_reclaim"))
                .args(&full)
                .env_remove("RECLAIM_IDENTITY")
                .env_remove("RECLAIM_CONFIG")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("run reclaim");
            let started = std::time::Instant::now();
            while child.try_wait().expect("wait for reclaim").is_none() {
                if started.elapsed() > limit {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("reclaim {full:?} was still running after {limit:?}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            child.wait_with_output().expect("reclaim output")
        })
        .await
        .expect("cli task")
    }

    /// Exports a message and returns its bytes.
    pub async fn export(&self, id: &str) -> Vec<u8> {
        let out = self.cli(&["export", id, "--reason", "test"]).await;
        assert!(
            out.status.success(),
            "export failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// `list --json`, parsed.
    pub async fn list(&self) -> Vec<serde_json::Value> {
        let out = self.cli(&["list", "--json"]).await;
        assert!(
            out.status.success(),
            "list failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("list --json prints JSON")
    }

    /// The first bytes of a message's sealed form, as the admin API hands it out: its age
    /// header, unique to the message, to look for in [`Self::store_bytes`].
    pub async fn sealed_head(&self, id: &str) -> Vec<u8> {
        let mut curl = std::process::Command::new("curl");
        curl.args(["-fsS", "--unix-socket"])
            .arg(&self.socket)
            .arg(format!(
                "http://localhost/v1/messages/{id}/sealed?reason=test"
            ));
        let out = tokio::task::spawn_blocking(move || curl.output())
            .await
            .expect("curl task")
            .expect("curl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.starts_with(b"age-encryption.org/v1\n"));
        out.stdout[..200.min(out.stdout.len())].to_vec()
    }

    /// Whether `sealed` (from [`Self::sealed_head`]) is still anywhere in the store's files.
    pub fn holds_sealed(&self, sealed: &[u8]) -> bool {
        self.store_bytes()
            .windows(sealed.len())
            .any(|w| w == sealed)
    }

    /// Every byte of every file under the store folder, concatenated.
    pub fn store_bytes(&self) -> Vec<u8> {
        let mut all = Vec::new();
        collect(&self.store, &mut all);
        all
    }
}

fn collect(dir: &Path, out: &mut Vec<u8>) {
    for entry in std::fs::read_dir(dir).expect("read store dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            collect(&path, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.extend(bytes);
        }
    }
}

/// Runs the `reclaim` binary off the async runtime's threads.
pub async fn run_cli(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_reclaim"))
            .args(&args)
            .env_remove("RECLAIM_IDENTITY")
            .env_remove("RECLAIM_CONFIG")
            .output()
            .expect("run reclaim")
    })
    .await
    .expect("cli task")
}

/// A raw SMTP client for edge cases.
pub struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    /// Connects and reads the greeting.
    pub async fn connect(addr: SocketAddr) -> (Self, String) {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut client = Self {
            reader: BufReader::new(stream),
        };
        let greeting = client.reply().await;
        (client, greeting)
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).await.expect("send");
    }

    /// Reads one complete (possibly multi-line) reply; empty if the server closed.
    pub async fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(20), self.reader.read_line(&mut line))
                .await
                .expect("reply within 20 s")
                .expect("read reply");
            if n == 0 {
                return all;
            }
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    /// Sends a command line and returns the reply.
    pub async fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// Whether the server has closed the connection (reads until EOF, bounded).
    pub async fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        matches!(
            tokio::time::timeout(Duration::from_secs(20), self.reader.read_to_end(&mut rest)).await,
            Ok(Ok(_))
        )
    }

    /// EHLO, MAIL, RCPT…, DATA, the dot-stuffed body, and the final reply.
    pub async fn send_message(&mut self, from: &str, to: &[&str], body: &[u8]) -> String {
        assert!(self.cmd("EHLO client.example").await.starts_with("250"));
        assert!(
            self.cmd(&format!("MAIL FROM:<{from}>"))
                .await
                .starts_with("250")
        );
        for rcpt in to {
            let reply = self.cmd(&format!("RCPT TO:<{rcpt}>")).await;
            assert!(reply.starts_with("250"), "RCPT {rcpt}: {reply}");
        }
        assert!(self.cmd("DATA").await.starts_with("354"));
        self.send(&dot_stuff(body)).await;
        self.send(b".\r\n").await;
        self.reply().await
    }
}

/// Dot-stuffs a CRLF message for DATA and makes sure it ends in CRLF.
pub fn dot_stuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 16);
    let mut line_start = true;
    for (i, &b) in body.iter().enumerate() {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = b == b'\n' && i > 0 && body[i - 1] == b'\r';
    }
    if !body.is_empty() && !body.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The queue id from a `250 2.0.0 Ok: queued as ID` reply.
pub fn queued_id(reply: &str) -> String {
    reply
        .trim_end()
        .rsplit(' ')
        .next()
        .filter(|_| reply.starts_with("250 2.0.0 Ok: queued as"))
        .unwrap_or_else(|| panic!("not a queued reply: {reply:?}"))
        .to_owned()
}

/// Splits an export into the trace fields reclaim added and the original message.
pub fn split_trace(exported: &[u8]) -> (String, Vec<u8>) {
    let text = exported;
    // The trace is Return-Path plus one Received field with its folded lines.
    let mut pos = 0;
    let mut fields = 0;
    while pos < text.len() {
        let end = text[pos..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|p| pos + p + 2)
            .unwrap_or(text.len());
        let line = &text[pos..end];
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            fields += 1;
            if fields > 2 {
                break;
            }
        }
        pos = end;
    }
    (
        String::from_utf8_lossy(&text[..pos]).into_owned(),
        text[pos..].to_vec(),
    )
}

/// Whether an outside tool is on PATH. Tests skip without it locally; in CI (which
/// installs the tools) a missing one fails the test.
pub fn have(tool: &str) -> bool {
    let found = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found || std::env::var_os("CI").is_none(),
        "{tool} is missing; .ci/run installs it"
    );
    found
}

/// Writes `bytes` to a file in `dir` and returns the path.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).expect("create");
    f.write_all(bytes).expect("write");
    path
}

/// The Prometheus page of a gateway's metrics listener on 127.0.0.1:`port`.
pub async fn scrape_metrics(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("metrics listener");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("send");
    let mut body = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut body))
        .await
        .expect("in time")
        .expect("read");
    body
}

/// The audit trail's first 1,000 records, as stored (canonical JSON).
pub fn audit_records(context: &reclaim::review::ReviewContext) -> Vec<String> {
    let page: serde_json::Value = context
        .client
        .get_json("/v1/audit?limit=1000")
        .expect("audit page");
    page["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r.as_str().map(str::to_owned))
        .collect()
}
