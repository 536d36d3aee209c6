//! Crash safety of the real binary: concurrent clients send mail while the gateway is
//! killed with SIGKILL at random moments and restarted, again and again. Afterwards every
//! message that got a 250 must be listed and export byte-identical, nothing half-written
//! may be listed, and every start must report what reconciliation found.
//!
//! The same runs on the embedded store and on a PostgreSQL store (a throwaway cluster the
//! test starts), where a kill can also fall between the database commit and the `250`.
//!
//! Slow (about a minute each), so ignored by default; `.ci/run` runs them with
//! `cargo test --release --test crash -- --ignored`. `RECLAIM_CRASH_SEED` replays a run.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::postgres::{self, Postgres};
use common::process::free_port;
use common::{dot_stuff, new_identity, split_trace};

/// How many times the gateway is killed.
const KILLS: usize = 24;
/// Concurrent clients sending mail while the gateway runs.
const CLIENTS: usize = 6;
/// How long a start may take before the test gives up.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A small xorshift generator: no extra dependency, and a printed seed replays a run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the clients know: messages acknowledged with 250 (by queue id), and every body
/// whose end of data was sent (acknowledged or not), by token.
#[derive(Default)]
struct Ledger {
    acked: HashMap<String, Vec<u8>>,
    sent: HashMap<String, Vec<u8>>,
}

struct Gateway {
    dir: tempfile::TempDir,
    config: PathBuf,
    identity: PathBuf,
    addr: SocketAddr,
}

impl Gateway {
    /// A gateway whose `[store]` section also has `store_lines` (the backend).
    fn new(store_lines: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (identity, recipient) = new_identity(dir.path(), "reviewer.key");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port())
            .parse()
            .expect("address");
        let text = format!(
            r#"
[server]
hostname = "mx.old.example"
listen = ["{addr}"]
max_connections_per_ip = 100

[store]
path = {store:?}
min_free = "0"
{store_lines}

[seal]
recipients = ["{recipient}"]

[admin]
socket = {socket:?}

[dns]
resolver = "off"

[[domain]]
name = "old.example"
"#,
            store = dir.path().join("store"),
            socket = dir.path().join("admin.sock"),
        );
        let config = dir.path().join("reclaim.toml");
        std::fs::write(&config, text).expect("write config");
        Self {
            dir,
            config,
            identity,
            addr,
        }
    }

    /// Starts the binary, waits until it accepts SMTP, and returns it with its log path.
    fn start(&self, run: usize) -> (Child, PathBuf) {
        let log = self.dir.path().join(format!("serve-{run}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_reclaim"))
            .args(["--log-format", "json", "serve", "-c"])
            .arg(&self.config)
            .env_remove("RECLAIM_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create log"))
            .spawn()
            .expect("start reclaim serve");
        let started = Instant::now();
        while TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_err() {
            assert!(
                started.elapsed() < START_TIMEOUT,
                "gateway did not start within {START_TIMEOUT:?}; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        (child, log)
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_reclaim"))
            .arg("-c")
            .arg(&self.config)
            .arg("-i")
            .arg(&self.identity)
            .args(args)
            .env_remove("RECLAIM_IDENTITY")
            .env_remove("RECLAIM_CONFIG")
            .output()
            .expect("run reclaim")
    }
}

/// The `store opened` line of a start: (messages, stale temp files removed), and how many
/// orphans were reported.
struct StartReport {
    messages: u64,
    stale_temp_removed: u64,
    orphans: usize,
    missing: usize,
}

fn start_report(log: &Path) -> StartReport {
    let text = std::fs::read_to_string(log).expect("read log");
    let mut opened = None;
    let mut orphans = 0;
    let mut missing = 0;
    for line in text.lines() {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let fields = &value["fields"];
        let message = fields["message"].as_str().unwrap_or_default();
        if message == "store opened" {
            opened = Some((
                fields["messages"].as_u64().expect("messages field"),
                fields["stale_temp_removed"]
                    .as_u64()
                    .expect("stale_temp_removed field"),
            ));
        } else if message.starts_with("ORPHAN") {
            orphans += 1;
        } else if message.starts_with("MISSING") {
            missing += 1;
        }
    }
    let (messages, stale_temp_removed) =
        opened.unwrap_or_else(|| panic!("no 'store opened' line in the log:\n{text}"));
    StartReport {
        messages,
        stale_temp_removed,
        orphans,
        missing,
    }
}

struct Smtp {
    reader: BufReader<TcpStream>,
}

impl Smtp {
    fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let mut smtp = Self {
            reader: BufReader::new(stream),
        };
        smtp.expect(220)?;
        Ok(smtp)
    }

    fn reply(&mut self) -> std::io::Result<String> {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(all);
            }
        }
    }

    fn expect(&mut self, code: u16) -> std::io::Result<String> {
        let reply = self.reply()?;
        if reply.starts_with(&code.to_string()) {
            Ok(reply)
        } else {
            Err(std::io::Error::other(format!(
                "expected {code}, got {reply:?}"
            )))
        }
    }

    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.reader.get_mut().write_all(bytes)
    }

    fn cmd(&mut self, line: &str, code: u16) -> std::io::Result<String> {
        self.send(format!("{line}\r\n").as_bytes())?;
        self.expect(code)
    }

    /// MAIL, RCPT and DATA up to the 354.
    fn open_data(&mut self) -> std::io::Result<()> {
        self.cmd("MAIL FROM:<crash@sender.example>", 250)?;
        self.cmd("RCPT TO:<inbox@old.example>", 250)?;
        self.cmd("DATA", 354)?;
        Ok(())
    }
}

fn body(token: &str, size: usize) -> Vec<u8> {
    let mut body = format!(
        "From: <crash@sender.example>\r\nTo: <inbox@old.example>\r\nSubject: crash {token}\r\n\r\n"
    )
    .into_bytes();
    let mut i = 0u64;
    while body.len() < size {
        body.extend_from_slice(format!("{token} line {i:08}\r\n").as_bytes());
        i += 1;
    }
    body
}

/// Sends messages until the connection breaks or `stop` is set.
fn client(addr: SocketAddr, id: usize, seed: u64, stop: &AtomicBool, ledger: &Mutex<Ledger>) {
    let mut rng = Rng(seed | 1);
    let mut n = 0;
    let Ok(mut smtp) = Smtp::connect(addr) else {
        return;
    };
    if smtp.cmd("EHLO crash.sender.example", 250).is_err() {
        return;
    }
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let token = format!("c{id}-s{seed:x}-m{n}");
        // Mostly small, some large enough that a kill lands in the middle of the data.
        let size = if rng.below(4) == 0 {
            64 * 1024 + rng.below(256 * 1024) as usize
        } else {
            200 + rng.below(8 * 1024) as usize
        };
        let message = body(&token, size);
        if smtp.open_data().is_err() {
            return;
        }
        if smtp.send(&dot_stuff(&message)).is_err() {
            return;
        }
        ledger
            .lock()
            .expect("ledger")
            .sent
            .insert(token.clone(), message.clone());
        let Ok(()) = smtp.send(b".\r\n") else { return };
        match smtp.expect(250) {
            Ok(reply) => {
                let queued = common::queued_id(&reply);
                ledger.lock().expect("ledger").acked.insert(queued, message);
            }
            Err(_) => return,
        }
    }
}

/// Opens a transaction and sends half a message, then waits: at the kill its temp file is
/// certainly in `tmp/`, so every restart has something stale to remove. Larger than
/// `[store] inline_max`, so it streams to a file instead of waiting in memory.
fn half_sender(addr: SocketAddr) -> Option<Smtp> {
    let mut smtp = Smtp::connect(addr).ok()?;
    smtp.cmd("EHLO half.sender.example", 250).ok()?;
    smtp.open_data().ok()?;
    smtp.send(&body("half-written", 300 * 1024)).ok()?;
    Some(smtp)
}

fn token_of(message: &[u8]) -> String {
    let text = String::from_utf8_lossy(message);
    text.lines()
        .find_map(|l| l.strip_prefix("Subject: crash "))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no token in a listed message"))
}

#[test]
#[ignore = "slow: kills and restarts the real binary; run by .ci/run"]
fn acknowledged_mail_survives_sigkill() {
    survives_sigkill(None);
}

#[test]
#[ignore = "slow: kills and restarts the real binary; run by .ci/run"]
fn acknowledged_mail_survives_sigkill_on_postgres() {
    if !postgres::available() {
        return;
    }
    let pg = Postgres::start_new();
    survives_sigkill(Some(&pg));
}

/// The embedded store's report at start `run`: nothing acknowledged missing, the killed
/// half-written message's temp file removed. Returns how many temp files were removed.
fn check_start(log: &Path, run: usize, ledger: &Mutex<Ledger>) -> u64 {
    let report = start_report(log);
    let acked_so_far = ledger.lock().expect("ledger").acked.len() as u64;
    assert!(
        report.messages >= acked_so_far,
        "start {run}: the store has {} messages but {acked_so_far} were acknowledged",
        report.messages
    );
    assert_eq!(
        report.missing, 0,
        "start {run}: an indexed message is missing"
    );
    if run > 0 {
        assert!(
            report.stale_temp_removed >= 1,
            "start {run}: the half-written message killed in tmp/ was not reported removed"
        );
    }
    report.stale_temp_removed
}

/// Kills and restarts a gateway on the embedded store, or on `pg`. The embedded store's
/// start-up report (temp files, orphans) is checked too; PostgreSQL has no local files.
fn survives_sigkill(pg: Option<&Postgres>) {
    let seed = std::env::var("RECLAIM_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_nanos() as u64
        });
    eprintln!("crash test seed: {seed} (RECLAIM_CRASH_SEED={seed} replays the kill times)");
    let mut rng = Rng(seed | 1);
    let gateway = Gateway::new(&pg.map(Postgres::store_lines).unwrap_or_default());
    let embedded = pg.is_none();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut stale_total = 0;

    for run in 0..KILLS {
        let (mut child, log) = gateway.start(run);
        if embedded {
            stale_total += check_start(&log, run, &ledger);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|id| {
                let (stop, ledger) = (stop.clone(), ledger.clone());
                let client_seed = rng.next();
                let addr = gateway.addr;
                std::thread::spawn(move || client(addr, id, client_seed, &stop, &ledger))
            })
            .collect();
        let half = half_sender(gateway.addr);
        assert!(half.is_some(), "run {run}: the half sender could not start");
        // Kill at a random moment, after the clients are well into their work.
        std::thread::sleep(Duration::from_millis(100 + rng.below(900)));
        child.kill().expect("SIGKILL the gateway");
        child.wait().expect("reap the gateway");
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().expect("client thread");
        }
        drop(half);
    }

    // A last, clean start, then review everything.
    let (mut child, log) = gateway.start(KILLS);
    let report = embedded.then(|| start_report(&log));
    stale_total += report.as_ref().map_or(0, |r| r.stale_temp_removed);
    let ledger = ledger.lock().expect("ledger");
    eprintln!(
        "{} store, {KILLS} kills: {} messages acknowledged, {} sent in full; stale temp files removed: {stale_total}; at the last start: {:?} stored, {:?} orphans (sealed, never acknowledged, kept)",
        if embedded { "embedded" } else { "PostgreSQL" },
        ledger.acked.len(),
        ledger.sent.len(),
        report.as_ref().map(|r| r.messages),
        report.as_ref().map(|r| r.orphans)
    );
    assert!(
        ledger.acked.len() >= KILLS,
        "too few messages acknowledged ({}) for the test to mean anything",
        ledger.acked.len()
    );

    let out = gateway.cli(&["list", "--json"]);
    assert!(
        out.status.success(),
        "list failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    let listed_ids: Vec<String> = listed
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_owned())
        .collect();
    eprintln!(
        "{} listed, {} of them never acknowledged (the kill came between the commit and the 250)",
        listed_ids.len(),
        listed_ids
            .iter()
            .filter(|id| !ledger.acked.contains_key(*id))
            .count()
    );
    for id in ledger.acked.keys() {
        assert!(
            listed_ids.contains(id),
            "acknowledged message {id} is not listed"
        );
    }
    // Every listed message decrypts in full and is exactly a message a client sent in
    // full; acknowledged ones are exactly what was acknowledged under that id.
    for id in &listed_ids {
        let out = gateway.cli(&["export", id, "--reason", "crash test"]);
        assert!(
            out.status.success(),
            "listed message {id} does not export (half-written?): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (_trace, message) = split_trace(&out.stdout);
        if let Some(acked) = ledger.acked.get(id) {
            assert!(
                message == *acked,
                "message {id} does not export byte-identical"
            );
        } else {
            let token = token_of(&message);
            let sent = ledger
                .sent
                .get(&token)
                .unwrap_or_else(|| panic!("listed message {id} ({token}) was never sent in full"));
            assert!(
                message == *sent,
                "unacknowledged message {id} differs from what was sent"
            );
        }
    }
    // The last start found the data of every indexed message (own file or segment range)
    // and removed segment files nothing points into; the store has no sealed files besides
    // listed ones, apart from reported orphans.
    if let Some(report) = &report {
        assert_eq!(report.messages as usize, listed_ids.len());
        let blobs = std::fs::read_dir(gateway.dir.path().join("store/messages"))
            .expect("messages dir")
            .count();
        assert!(
            blobs <= listed_ids.len() + report.orphans,
            "sealed files on disk that are neither listed nor reported as orphans"
        );
    }
    let mut rest = String::new();
    child.kill().expect("stop the gateway");
    child.wait().expect("reap");
    let _ = std::fs::File::open(&log).and_then(|mut f| f.read_to_string(&mut rest));
    assert!(!rest.contains("MISSING"), "a start reported missing files");
}
