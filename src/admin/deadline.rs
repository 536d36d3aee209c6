//! Deadlines for the admin client's blocking sockets. A socket timeout bounds one read or
//! write; a server that answers a byte at a time keeps each of them short and the whole
//! exchange endless. [`Timed`] sets each read's and write's timeout to what is left until
//! the [`Deadline`]. Once the answer's head is in, the client moves the deadline on for a
//! JSON body, or lifts it for a streamed one (an export, read for as long as it keeps
//! coming).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// When an exchange must be over, or none once lifted. Clones share it: the client holds
/// one and the socket (under TLS too) another.
#[derive(Clone)]
pub(super) struct Deadline {
    at: Arc<Mutex<Option<Instant>>>,
}

impl Deadline {
    pub(super) fn at(at: Instant) -> Self {
        Self {
            at: Arc::new(Mutex::new(Some(at))),
        }
    }

    /// From now on the exchange must be over by `at`.
    pub(super) fn move_to(&self, at: Instant) {
        *self.at.lock().unwrap_or_else(PoisonError::into_inner) = Some(at);
    }

    /// From now on only the per-operation timeout applies.
    pub(super) fn lift(&self) {
        *self.at.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// How long the next read or write may wait: `per_op`, or less if the deadline is
    /// nearer; an error once it has passed.
    fn wait(&self, per_op: Duration) -> std::io::Result<Duration> {
        let Some(at) = *self.at.lock().unwrap_or_else(PoisonError::into_inner) else {
            return Ok(per_op);
        };
        let left = at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        Ok(left.min(per_op))
    }
}

/// Whether an I/O error is a timeout: socket timeouts show as `WouldBlock` (`EAGAIN`) on a
/// blocking socket, a passed deadline as `TimedOut`.
pub(super) fn timed_out(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// A socket whose timeouts can be set.
pub(super) trait Socket {
    fn set_timeouts(&self, timeout: Duration) -> std::io::Result<()>;
}

impl Socket for UnixStream {
    fn set_timeouts(&self, timeout: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(timeout))?;
        self.set_write_timeout(Some(timeout))
    }
}

impl Socket for TcpStream {
    fn set_timeouts(&self, timeout: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(timeout))?;
        self.set_write_timeout(Some(timeout))
    }
}

/// A socket each of whose reads and writes waits at most `per_op`, and no later than the
/// deadline until it is lifted.
pub(super) struct Timed<S> {
    socket: S,
    per_op: Duration,
    deadline: Deadline,
    /// The timeout the socket has now, so that reads after the lifting make no system call
    /// of their own.
    set: Option<Duration>,
}

impl<S: Socket> Timed<S> {
    pub(super) fn new(socket: S, per_op: Duration, deadline: &Deadline) -> Self {
        Self {
            socket,
            per_op,
            deadline: deadline.clone(),
            set: None,
        }
    }

    fn arm(&mut self) -> std::io::Result<()> {
        let wait = self.deadline.wait(self.per_op)?;
        if self.set != Some(wait) {
            self.socket.set_timeouts(wait)?;
            self.set = Some(wait);
        }
        Ok(())
    }
}

impl<S: Socket + Read> Read for Timed<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.arm()?;
        self.socket.read(buf)
    }
}

impl<S: Socket + Write> Write for Timed<S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.arm()?;
        self.socket.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.socket.flush()
    }
}

/// Connects to `HOST:PORT`, trying each address it resolves to, within the deadline.
pub(super) fn connect_tcp(addr: &str, deadline: &Deadline) -> std::io::Result<TcpStream> {
    let mut last = None;
    for candidate in addr.to_socket_addrs()? {
        let wait = deadline.wait(Duration::MAX)?;
        match TcpStream::connect_timeout(&candidate, wait) {
            Ok(stream) => return Ok(stream),
            Err(error) => last = Some(error),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{addr} resolves to no address"),
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_shrinks_to_the_deadline_then_fails_until_moved_on_or_lifted() {
        let per_op = Duration::from_secs(60);
        let near = Deadline::at(Instant::now() + Duration::from_secs(5));
        let wait = near.wait(per_op).expect("before the deadline");
        assert!(
            wait <= Duration::from_secs(5) && wait > Duration::ZERO,
            "{wait:?}"
        );
        let passed = Deadline::at(Instant::now());
        let error = passed.wait(per_op).expect_err("the deadline has passed");
        assert!(timed_out(&error));
        passed
            .clone()
            .move_to(Instant::now() + Duration::from_secs(10));
        assert!(passed.wait(per_op).expect("moved on") > Duration::from_secs(5));
        passed.clone().lift();
        assert_eq!(passed.wait(per_op).expect("lifted"), per_op);
    }
}
