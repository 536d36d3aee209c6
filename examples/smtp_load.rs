//! SMTP load client for the benchmarks: sends N messages of a given size over S concurrent
//! sessions and records, for every message, the time from handing the end-of-data dot to
//! the kernel to reading the server's 2xx reply. Each session connects once, sends `EHLO`,
//! then `MAIL`/`RCPT`/`DATA` per message (no pipelining), then `QUIT`.
//!
//! ```sh
//! cargo run --release --example smtp_load -- --addr 127.0.0.1:2525 --sessions 32 \
//!     --messages 2000 --size 4096
//! ```
//!
//! Prints one line of `key=value` pairs: messages, failures, seconds, msgs_per_s,
//! p50_ms, p99_ms, max_ms.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long any single reply may take before the client gives up on a session.
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Parser, Debug, Clone)]
struct Args {
    /// Server address (loopback).
    #[arg(long)]
    addr: SocketAddr,
    /// Concurrent sessions.
    #[arg(long, default_value_t = 1)]
    sessions: usize,
    /// Messages in total, shared among the sessions.
    #[arg(long, default_value_t = 100)]
    messages: usize,
    /// Message size in bytes (headers included).
    #[arg(long, default_value_t = 4096)]
    size: usize,
    #[arg(long, default_value = "bench@sender.example")]
    from: String,
    #[arg(long, default_value = "inbox@old.example")]
    to: String,
}

#[derive(Default)]
struct SessionResult {
    latencies: Vec<Duration>,
    failures: usize,
}

fn message(size: usize, from: &str, to: &str) -> Vec<u8> {
    let mut body = format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: benchmark\r\nMessage-ID: <bench@sender.example>\r\n\r\n"
    )
    .into_bytes();
    // 76 letters plus CRLF per line: no dot-stuffing needed.
    let line = [b'x'; 76];
    while body.len() + 78 <= size {
        body.extend_from_slice(&line);
        body.extend_from_slice(b"\r\n");
    }
    let rest = size.saturating_sub(body.len() + 2);
    body.extend(std::iter::repeat_n(b'y', rest));
    body.extend_from_slice(b"\r\n");
    body
}

struct Conn {
    reader: BufReader<TcpStream>,
    line: String,
}

impl Conn {
    /// Reads one (possibly multi-line) reply and returns its code.
    async fn reply(&mut self) -> std::io::Result<u16> {
        loop {
            self.line.clear();
            let n = tokio::time::timeout(REPLY_TIMEOUT, self.reader.read_line(&mut self.line))
                .await
                .map_err(|_| std::io::Error::other("reply timed out"))??;
            if n == 0 {
                return Err(std::io::Error::other("server closed the connection"));
            }
            if self.line.as_bytes().get(3) != Some(&b'-') {
                return self
                    .line
                    .get(..3)
                    .and_then(|c| c.parse().ok())
                    .ok_or_else(|| std::io::Error::other(format!("bad reply {:?}", self.line)));
            }
        }
    }

    async fn cmd(&mut self, line: &str) -> std::io::Result<u16> {
        self.reader.get_mut().write_all(line.as_bytes()).await?;
        self.reply().await
    }
}

fn expect(code: u16, want: u16, what: &str) -> std::io::Result<()> {
    if code == want {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("{what}: got {code}")))
    }
}

async fn session(args: Arc<Args>, body: Arc<Vec<u8>>, next: Arc<AtomicUsize>) -> SessionResult {
    let mut result = SessionResult::default();
    if let Err(error) = session_inner(&args, &body, &next, &mut result).await {
        eprintln!("session failed: {error}");
        result.failures += 1;
    }
    result
}

async fn session_inner(
    args: &Args,
    body: &[u8],
    next: &AtomicUsize,
    result: &mut SessionResult,
) -> std::io::Result<()> {
    let stream = TcpStream::connect(args.addr).await?;
    stream.set_nodelay(true)?;
    let mut conn = Conn {
        reader: BufReader::new(stream),
        line: String::new(),
    };
    expect(conn.reply().await?, 220, "greeting")?;
    expect(conn.cmd("EHLO load.sender.example\r\n").await?, 250, "EHLO")?;
    let mail = format!("MAIL FROM:<{}>\r\n", args.from);
    let rcpt = format!("RCPT TO:<{}>\r\n", args.to);
    while next.fetch_add(1, Ordering::Relaxed) < args.messages {
        expect(conn.cmd(&mail).await?, 250, "MAIL")?;
        expect(conn.cmd(&rcpt).await?, 250, "RCPT")?;
        expect(conn.cmd("DATA\r\n").await?, 354, "DATA")?;
        conn.reader.get_mut().write_all(body).await?;
        let started = Instant::now();
        let code = conn.cmd(".\r\n").await?;
        let elapsed = started.elapsed();
        if code == 250 {
            result.latencies.push(elapsed);
        } else {
            result.failures += 1;
        }
    }
    let _ = conn.cmd("QUIT\r\n").await;
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let args = Arc::new(Args::parse());
    let body = Arc::new(message(args.size, &args.from, &args.to));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.sessions)
        .map(|_| tokio::spawn(session(args.clone(), body.clone(), next.clone())))
        .collect();
    let mut latencies = Vec::with_capacity(args.messages);
    let mut failures = 0;
    for task in tasks {
        let result = task.await.expect("session task");
        latencies.extend(result.latencies);
        failures += result.failures;
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "messages={} failures={} seconds={:.3} msgs_per_s={:.1} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        latencies.len(),
        failures,
        seconds,
        latencies.len() as f64 / seconds,
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies
            .last()
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0),
    );
    if failures > 0 {
        std::process::exit(1);
    }
}
