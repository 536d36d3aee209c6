//! A stream whose reads and writes fail once the other side makes no progress for a set
//! time, so no greeting, reply or TLS handshake of a remote server is waited for forever.
//! The SMTP client reads through it, TLS included (STARTTLS wraps this stream).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use lettre::transport::smtp::client::AsyncTokioStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// The remote address of a stream (a trait so that tests can use in-memory pipes).
pub trait Peer {
    fn peer(&self) -> io::Result<SocketAddr>;
}

impl Peer for tokio::net::TcpStream {
    fn peer(&self) -> io::Result<SocketAddr> {
        self.peer_addr()
    }
}

/// `inner`, with every read and write bounded by `limit` of no progress. After one
/// timeout every later operation fails at once: the client's parting `QUIT` must not wait
/// a second time on a server that already stalled.
#[derive(Debug)]
pub struct DeadlineStream<S> {
    inner: S,
    limit: Duration,
    read_timer: Option<Pin<Box<Sleep>>>,
    write_timer: Option<Pin<Box<Sleep>>>,
    expired: bool,
}

impl<S> DeadlineStream<S> {
    pub fn new(inner: S, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            read_timer: None,
            write_timer: None,
            expired: false,
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "the server stopped answering")
}

/// Polls an operation that returned `Pending` against its timer, starting the timer on the
/// first wait. `Ready` means the limit passed without progress.
fn stalled(
    timer: &mut Option<Pin<Box<Sleep>>>,
    limit: Duration,
    expired: &mut bool,
    cx: &mut Context<'_>,
) -> bool {
    let sleep = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
    if sleep.as_mut().poll(cx).is_ready() {
        *expired = true;
        true
    } else {
        false
    }
}

/// Runs one poll of the inner stream under `timer`.
macro_rules! bounded {
    ($this:ident, $timer:ident, $cx:ident, $poll:expr) => {{
        if $this.expired {
            return Poll::Ready(Err(timed_out()));
        }
        match $poll {
            Poll::Ready(result) => {
                $this.$timer = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                if stalled(&mut $this.$timer, $this.limit, &mut $this.expired, $cx) {
                    Poll::Ready(Err(timed_out()))
                } else {
                    Poll::Pending
                }
            }
        }
    }};
}

impl<S: AsyncRead + Unpin> AsyncRead for DeadlineStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        bounded!(
            this,
            read_timer,
            cx,
            Pin::new(&mut this.inner).poll_read(cx, buf)
        )
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for DeadlineStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        bounded!(
            this,
            write_timer,
            cx,
            Pin::new(&mut this.inner).poll_write(cx, buf)
        )
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        bounded!(
            this,
            write_timer,
            cx,
            Pin::new(&mut this.inner).poll_flush(cx)
        )
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        bounded!(
            this,
            write_timer,
            cx,
            Pin::new(&mut this.inner).poll_shutdown(cx)
        )
    }
}

impl<S> AsyncTokioStream for DeadlineStream<S>
where
    S: AsyncRead + AsyncWrite + Peer + Send + Sync + Unpin + std::fmt::Debug,
{
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::Instant;

    const LIMIT: Duration = Duration::from_secs(60);

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_fails_the_read_after_the_limit() {
        let (ours, _theirs) = tokio::io::duplex(64);
        let mut stream = DeadlineStream::new(ours, LIMIT);
        let started = Instant::now();
        let error = stream.read(&mut [0; 8]).await.expect_err("times out");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), LIMIT);
        // Once stalled, always stalled: no second wait.
        let again = Instant::now();
        assert!(stream.write_all(b"QUIT\r\n").await.is_err());
        assert_eq!(again.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn each_byte_in_time_restarts_the_limit() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut stream = DeadlineStream::new(ours, LIMIT);
        tokio::spawn(async move {
            for _ in 0..3 {
                tokio::time::sleep(LIMIT - Duration::from_secs(1)).await;
                theirs.write_all(b"2").await.expect("write");
            }
            // Then silence, with the pipe held open.
            std::future::pending::<()>().await;
        });
        let started = Instant::now();
        let mut got = Vec::new();
        let mut byte = [0; 1];
        let error = loop {
            match stream.read(&mut byte).await {
                Ok(n) => got.extend_from_slice(&byte[..n]),
                Err(e) => break e,
            }
        };
        assert_eq!(got, b"222");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(
            started.elapsed(),
            3 * (LIMIT - Duration::from_secs(1)) + LIMIT
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_takes_nothing_fails_the_write() {
        let (ours, _theirs) = tokio::io::duplex(16);
        let mut stream = DeadlineStream::new(ours, LIMIT);
        let started = Instant::now();
        let error = stream.write_all(&[b'x'; 64]).await.expect_err("times out");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), LIMIT);
    }
}
