//! The tokio driver of one IMAP connection: reads each command whole (line and literals)
//! within the limits, times out idle clients, hands commands to the [`Session`] off the
//! async threads and writes what it answers, carries out IDLE (RFC 2177); on shutdown
//! says BYE.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::parser::{self, Command, Tagged};
use super::session::{Reply, Session, capability};
use super::{Limits, Server};

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 8 * 1024;
/// Bytes of an over-long line kept to find its tag.
const KEPT_PREFIX: usize = 80;

/// Serves one connection until the client logs out, goes quiet or the server stops.
pub async fn run(
    stream: TcpStream,
    peer: SocketAddr,
    server: Arc<Server>,
    permit: Option<OwnedSemaphorePermit>,
    shutdown: CancellationToken,
) {
    let span = tracing::info_span!("imap", %peer);
    async move {
        let (read, mut write) = stream.into_split();
        if permit.is_none() {
            let _ = write.write_all(b"* BYE too many connections\r\n").await;
            return;
        }
        let limits = server.limits;
        let greeting = format!(
            "* OK [CAPABILITY {}] reclaim imap ready\r\n",
            capability(&limits)
        );
        if send(&mut write, greeting.as_bytes(), &limits).await.is_err() {
            return;
        }
        let mut reader = Reader {
            inner: read,
            buf: Vec::new(),
        };
        let mut session = Session::new(server.clone());
        loop {
            let wait = if session.authenticated() {
                limits.idle
            } else {
                limits.login
            };
            let frame = tokio::select! {
                frame = tokio::time::timeout(wait, reader.command(&mut write, &limits)) => frame,
                () = shutdown.cancelled() => {
                    let _ = send(&mut write, b"* BYE reclaim imap is stopping\r\n", &limits).await;
                    break;
                }
            };
            let bytes = match frame {
                Err(_) => {
                    let _ = send(&mut write, b"* BYE idle for too long\r\n", &limits).await;
                    break;
                }
                Ok(Err(_)) | Ok(Ok(Frame::Eof)) => break,
                Ok(Ok(Frame::TooLong(tag))) => {
                    let tag = tag.unwrap_or_else(|| "*".into());
                    let text = format!(
                        "{tag} BAD command longer than {} bytes (lines) or {} bytes (with literals)\r\n",
                        limits.line_bytes, limits.command_bytes
                    );
                    if send(&mut write, text.as_bytes(), &limits).await.is_err() {
                        break;
                    }
                    continue;
                }
                Ok(Ok(Frame::LiteralTooBig { tag, sync })) => {
                    let tag = tag.unwrap_or_else(|| "*".into());
                    let text = format!("{tag} BAD literal larger than {} bytes\r\n", limits.literal_bytes);
                    // The client of a synchronising literal waits for "+" and sends
                    // nothing; one of a non-synchronising literal is already sending it.
                    if send(&mut write, text.as_bytes(), &limits).await.is_err() || !sync {
                        break;
                    }
                    continue;
                }
                Ok(Ok(Frame::Command(bytes))) => bytes,
            };
            let parsed = match parser::parse(&bytes) {
                Ok(parsed) => parsed,
                Err(e) => {
                    let tag = e.tag.unwrap_or_else(|| "*".into());
                    let reason = e.reason.replace(['\r', '\n'], " ");
                    if send(&mut write, format!("{tag} BAD {reason}\r\n").as_bytes(), &limits)
                        .await
                        .is_err()
                    {
                        break;
                    }
                    continue;
                }
            };
            if parsed.command == Command::Idle && session.authenticated() {
                match idle(session, &parsed.tag, &mut reader, &mut write, &limits, &shutdown).await
                {
                    Some(back) => {
                        session = back;
                        continue;
                    }
                    None => break,
                }
            }
            let sasl = match &parsed.command {
                Command::Authenticate {
                    mechanism,
                    initial: None,
                } if mechanism == "PLAIN" && !session.authenticated() => {
                    if send(&mut write, b"+ \r\n", &limits).await.is_err() {
                        break;
                    }
                    match tokio::time::timeout(limits.login, reader.line(limits.line_bytes)).await {
                        Ok(Ok(Line::Complete(line))) => Some(line),
                        _ => break,
                    }
                }
                _ => None,
            };
            let Some((back, reply)) = answer(session, parsed, sasl, &mut write, &limits).await
            else {
                let _ = send(&mut write, b"* BYE internal error\r\n", &limits).await;
                break;
            };
            session = back;
            if send(&mut write, &reply.bytes, &limits).await.is_err() || reply.close {
                break;
            }
        }
        let _ = write.shutdown().await;
    }
    .instrument(span)
    .await;
}

/// RFC 2177 IDLE: `+ idling`, then what changes in the selected mailbox, looked at every
/// `idle_poll`, until the client sends DONE. The session back, or `None` when the
/// connection ends (the client went away, stayed idle past the timeout, or the server
/// stops: those two are told BYE).
async fn idle(
    mut session: Session,
    tag: &str,
    reader: &mut Reader,
    write: &mut OwnedWriteHalf,
    limits: &Limits,
    shutdown: &CancellationToken,
) -> Option<Session> {
    send(write, b"+ idling\r\n", limits).await.ok()?;
    // One read of the line, kept across the polls: it is never dropped half-way.
    let done = reader.line(limits.line_bytes);
    tokio::pin!(done);
    let timeout = tokio::time::sleep(limits.idle);
    tokio::pin!(timeout);
    let period = limits.idle_poll.max(std::time::Duration::from_millis(10));
    let mut polls = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    polls.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            line = &mut done => {
                let answer = match line {
                    Ok(Line::Complete(line)) if line.trim_ascii().eq_ignore_ascii_case(b"DONE") => {
                        format!("{tag} OK IDLE terminated\r\n")
                    }
                    Ok(Line::Complete(_) | Line::TooLong(_)) => {
                        format!("{tag} BAD IDLE ends with DONE\r\n")
                    }
                    Ok(Line::Eof) | Err(_) => return None,
                };
                send(write, answer.as_bytes(), limits).await.ok()?;
                return Some(session);
            }
            _ = polls.tick() => {
                let task = tokio::task::spawn_blocking(move || {
                    let changes = session.changes();
                    (session, changes)
                });
                // A slow look at the quarantine does not hold up the server's stop; the
                // look then finishes on its own and its answer is dropped.
                let (back, changes) = tokio::select! {
                    done = task => done
                        .map_err(|e| tracing::error!(error = %e, "imap session task failed"))
                        .ok()?,
                    () = shutdown.cancelled() => {
                        let _ = send(write, b"* BYE reclaim imap is stopping\r\n", limits).await;
                        return None;
                    }
                };
                session = back;
                match changes {
                    Ok(lines) if !lines.is_empty() => send(write, &lines, limits).await.ok()?,
                    Ok(_) => {}
                    // Said again at the next look; the client keeps what it was told.
                    Err(e) => tracing::warn!(error = %e, "imap IDLE could not look at the quarantine"),
                }
            }
            () = &mut timeout => {
                let _ = send(write, b"* BYE idle for too long\r\n", limits).await;
                return None;
            }
            () = shutdown.cancelled() => {
                let _ = send(write, b"* BYE reclaim imap is stopping\r\n", limits).await;
                return None;
            }
        }
    }
}

/// Pieces of a long answer in flight between the session's thread and the socket.
const PIECES_IN_FLIGHT: usize = 4;

/// Runs the session's answer on a blocking thread (it calls the admin API and decrypts),
/// writing the pieces of a long answer while the rest is made. `None` when the session
/// failed or the client went away.
async fn answer(
    mut session: Session,
    cmd: Tagged,
    sasl: Option<Vec<u8>>,
    write: &mut OwnedWriteHalf,
    limits: &Limits,
) -> Option<(Session, Reply)> {
    let (pieces, mut receive) = tokio::sync::mpsc::channel::<Vec<u8>>(PIECES_IN_FLIGHT);
    let task = tokio::task::spawn_blocking(move || {
        let reply = match sasl {
            Some(response) => {
                let mut reply = Reply::default();
                session.authenticate_plain(&cmd.tag, &response, &mut reply.bytes, &mut reply.close);
                reply
            }
            // A piece the client can no longer take is dropped; the session then ends.
            None => session.handle(cmd, &mut |piece| {
                let _ = pieces.blocking_send(piece);
            }),
        };
        (session, reply)
    });
    let mut gone = false;
    while let Some(piece) = receive.recv().await {
        if !gone && send(write, &piece, limits).await.is_err() {
            gone = true;
            receive.close();
        }
    }
    let done = task
        .await
        .map_err(|e| tracing::error!(error = %e, "imap session task failed"))
        .ok()?;
    (!gone).then_some(done)
}

/// Writes within the idle timeout: a client that stops reading is dropped.
async fn send(write: &mut OwnedWriteHalf, bytes: &[u8], limits: &Limits) -> std::io::Result<()> {
    match tokio::time::timeout(limits.idle, async {
        write.write_all(bytes).await?;
        write.flush().await
    })
    .await
    {
        Ok(result) => result,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

/// One command as read.
enum Frame {
    Command(Vec<u8>),
    TooLong(Option<String>),
    LiteralTooBig { tag: Option<String>, sync: bool },
    Eof,
}

/// One line as read.
enum Line {
    Complete(Vec<u8>),
    /// Longer than allowed: discarded up to its end; its first bytes kept.
    TooLong(Vec<u8>),
    Eof,
}

struct Reader {
    inner: OwnedReadHalf,
    buf: Vec<u8>,
}

impl Reader {
    async fn fill(&mut self) -> std::io::Result<bool> {
        let mut chunk = [0u8; READ_CHUNK];
        let n = self.inner.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// One line with its LF, at most `max` bytes.
    async fn line(&mut self, max: usize) -> std::io::Result<Line> {
        loop {
            if let Some(p) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=p).collect();
                if line.len() > max {
                    return Ok(Line::TooLong(line[..KEPT_PREFIX.min(line.len())].to_vec()));
                }
                return Ok(Line::Complete(line));
            }
            if self.buf.len() > max {
                let prefix = self.buf[..KEPT_PREFIX].to_vec();
                // Discard up to the end of the line, holding no more than a chunk.
                loop {
                    if let Some(p) = self.buf.iter().position(|&b| b == b'\n') {
                        self.buf.drain(..=p);
                        return Ok(Line::TooLong(prefix));
                    }
                    self.buf.clear();
                    if !self.fill().await? {
                        return Ok(Line::Eof);
                    }
                }
            }
            if !self.fill().await? {
                return Ok(Line::Eof);
            }
        }
    }

    /// Exactly `n` bytes.
    async fn exact(&mut self, n: usize) -> std::io::Result<Option<Vec<u8>>> {
        while self.buf.len() < n {
            if !self.fill().await? {
                return Ok(None);
            }
        }
        Ok(Some(self.buf.drain(..n).collect()))
    }

    /// One whole command: its lines and the literals between them.
    async fn command(
        &mut self,
        write: &mut OwnedWriteHalf,
        limits: &Limits,
    ) -> std::io::Result<Frame> {
        let mut command = Vec::new();
        loop {
            let line = match self.line(limits.line_bytes).await? {
                Line::Eof => return Ok(Frame::Eof),
                Line::TooLong(prefix) => {
                    let start = if command.is_empty() {
                        &prefix
                    } else {
                        &command
                    };
                    return Ok(Frame::TooLong(parser::tag_of(start)));
                }
                Line::Complete(line) => line,
            };
            command.extend_from_slice(&line);
            let Some((n, sync)) = literal_at_end(&line) else {
                return Ok(Frame::Command(command));
            };
            let tag = parser::tag_of(&command);
            if n > limits.literal_bytes || command.len().saturating_add(n) > limits.command_bytes {
                return Ok(Frame::LiteralTooBig { tag, sync });
            }
            if sync && parser::refused_before_literal(&command) {
                // Answered NO instead of a continuation: the client sends no literal.
                return Ok(Frame::Command(command));
            }
            if sync {
                send(write, b"+ go ahead\r\n", limits).await?;
            }
            match self.exact(n).await? {
                Some(bytes) => command.extend_from_slice(&bytes),
                None => return Ok(Frame::Eof),
            }
        }
    }
}

/// `{n}` or `{n+}` ending a line: the size of the literal that follows and whether the
/// client waits for a continuation.
pub(super) fn literal_at_end(line: &[u8]) -> Option<(usize, bool)> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let inner = &inner[open + 1..];
    let (digits, sync) = match inner.strip_suffix(b"+") {
        Some(d) => (d, false),
        None => (inner, true),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // A number too large for usize is still a literal, and too large.
    let n = std::str::from_utf8(digits)
        .ok()?
        .parse()
        .unwrap_or(usize::MAX);
    Some((n, sync))
}

#[cfg(test)]
mod tests {
    use super::literal_at_end;

    #[test]
    fn literals_at_line_ends() {
        assert_eq!(literal_at_end(b"a LOGIN {3}\r\n"), Some((3, true)));
        assert_eq!(literal_at_end(b"a LOGIN {3+}\r\n"), Some((3, false)));
        assert_eq!(literal_at_end(b"a LOGIN {}\r\n"), None);
        assert_eq!(literal_at_end(b"a LOGIN x}\r\n"), None);
        assert_eq!(
            literal_at_end(b"a {99999999999999999}\r\n"),
            Some((99_999_999_999_999_999, true))
        );
    }
}
