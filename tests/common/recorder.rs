//! A tiny SMTP server for tests that records what it receives, like a smarthost would.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One message the recorder accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: String,
}

/// A running recorder.
pub struct Recorder {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    /// Sessions that have ended (QUIT or the client closed): everything a client sent
    /// before it has been recorded.
    pub ended: Arc<AtomicUsize>,
}

impl Recorder {
    /// Starts on a free port; the first `fail_first` DATA commands get `451 4.3.0`.
    pub async fn start(fail_first: usize) -> Self {
        Self::start_on("127.0.0.1:0", fail_first).await
    }

    pub async fn start_on(addr: &str, fail_first: usize) -> Self {
        Self::start_with(addr, fail_first, false).await
    }

    /// Starts a relay that records each message and then never answers its final dot,
    /// holding the connection open until the client closes it.
    pub async fn start_stalling_after_data() -> Self {
        Self::start_with("127.0.0.1:0", 0, true).await
    }

    async fn start_with(addr: &str, fail_first: usize, stall: bool) -> Self {
        let listener = TcpListener::bind(addr).await.expect("bind recorder");
        let addr = listener.local_addr().expect("addr");
        let received = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(Mutex::new(fail_first));
        let store = received.clone();
        let ended = Arc::new(AtomicUsize::new(0));
        let ended_count = ended.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = store.clone();
                let failures = failures.clone();
                let ended = ended_count.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, store, failures, stall).await;
                    ended.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            addr,
            received,
            ended,
        }
    }

    /// Waits up to `limit` until `count` sessions have ended; returns what arrived by then.
    pub async fn wait_ended(&self, count: usize, limit: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + limit;
        while self.ended.load(Ordering::SeqCst) < count && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            self.ended.load(Ordering::SeqCst) >= count,
            "{count} session(s) did not end within {limit:?}"
        );
        self.received.lock().expect("lock").clone()
    }

    /// Waits up to `limit` for at least `count` messages; returns what arrived.
    pub async fn wait_for(&self, count: usize, limit: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let now = self.received.lock().expect("lock").clone();
            if now.len() >= count || tokio::time::Instant::now() >= deadline {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn serve(
    stream: tokio::net::TcpStream,
    store: Arc<Mutex<Vec<Received>>>,
    failures: Arc<Mutex<usize>>,
    stall: bool,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 recorder ESMTP\r\n").await?;
    let mut current = Received {
        mail_from: String::new(),
        rcpt_to: Vec::new(),
        data: String::new(),
    };
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            b"250-recorder\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            current = Received {
                mail_from: angle(&line),
                rcpt_to: Vec::new(),
                data: String::new(),
            };
            b"250 2.1.0 ok\r\n"
        } else if upper.starts_with("RCPT TO:") {
            current.rcpt_to.push(angle(&line));
            b"250 2.1.5 ok\r\n"
        } else if upper.starts_with("DATA") {
            write.write_all(b"354 go ahead\r\n").await?;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if lines.read_line(&mut l).await? == 0 {
                    return Ok(());
                }
                if l == ".\r\n" {
                    break;
                }
                data.push_str(
                    l.strip_prefix('.')
                        .filter(|_| l.starts_with(".."))
                        .unwrap_or(&l),
                );
            }
            let fail = {
                let mut left = failures.lock().expect("lock");
                if *left > 0 {
                    *left -= 1;
                    true
                } else {
                    false
                }
            };
            if stall {
                current.data = data;
                store.lock().expect("lock").push(current.clone());
                // Silence until the client gives up and closes.
                while lines.read_line(&mut String::new()).await? > 0 {}
                return Ok(());
            } else if fail {
                b"451 4.3.0 try again later\r\n"
            } else {
                current.data = data;
                store.lock().expect("lock").push(current.clone());
                b"250 2.0.0 queued\r\n"
            }
        } else if upper.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"250 ok\r\n"
        };
        write.write_all(reply).await?;
    }
}

fn angle(line: &str) -> String {
    line.split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(addr, _)| addr.to_owned())
        .unwrap_or_default()
}

/// A listener that accepts connections and never says a word on them. Returns its
/// address and a receiver that gets the moment each connection was accepted.
pub async fn silent_listener() -> (SocketAddr, tokio::sync::mpsc::Receiver<Instant>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
            let _ = tx.send(Instant::now()).await;
        }
    });
    (addr, rx)
}
