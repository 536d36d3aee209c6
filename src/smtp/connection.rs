//! The tokio driver for one SMTP connection: reads under timeouts, writes replies, and
//! carries out the session's actions (STARTTLS, intake of a message). Protocol decisions
//! all live in [`super::session`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_util::sync::CancellationToken;

use super::session::{Action, Session, SessionConfig, StoreOutcome};
use super::tls::{TlsReloader, describe};
use crate::intake::Intake;
use crate::quarantine::Quarantine;
use crate::store::QuarantineStore;
use crate::telemetry;

/// Bytes read from the socket at a time; also bounds one sealed chunk in memory.
const READ_BUFFER: usize = 64 * 1024;

/// Everything a connection needs, shared by all of them, with the store of type `S` behind
/// its quarantine.
pub struct Gateway<S: QuarantineStore> {
    pub session: Arc<SessionConfig>,
    /// Where messages go once the session hands them over.
    pub quarantine: Arc<Quarantine<S>>,
    pub tls: Option<Arc<TlsReloader>>,
    pub tls_handshake_timeout: Duration,
    /// How long sessions in a transaction may go on after shutdown starts.
    pub shutdown_grace: Duration,
}

/// Shutdown signals a connection listens to.
#[derive(Clone)]
pub struct Shutdown {
    /// Stop taking new work: idle sessions are closed with 421 now, busy ones after their
    /// transaction.
    pub graceful: CancellationToken,
    /// The grace period is over: close now, abandoning unfinished transactions.
    pub force: CancellationToken,
}

enum Outcome {
    Closed,
    StartTls,
}

/// The message being received, as far as the driver is concerned.
enum Current<S: QuarantineStore> {
    /// No message body is being received.
    Idle,
    /// Boxed: the sealing state is large and the driver holds this across awaits.
    Open(Box<Intake<S>>),
    /// Opening or writing failed: the rest of the body is read and dropped, and its end is
    /// answered `451`.
    Failed,
}

/// Serves one client connection to the end.
pub async fn handle<S: QuarantineStore>(
    mut stream: TcpStream,
    peer: SocketAddr,
    gateway: Arc<Gateway<S>>,
    shutdown: Shutdown,
) {
    let deadline = Instant::now() + gateway.session.limits.session_timeout;
    let mut session = Session::new(gateway.session.clone(), peer.ip(), None);
    let greeting = session.greeting().to_wire();
    if write_all(&mut stream, &greeting, &gateway).await.is_err() {
        return;
    }
    let outcome = drive(&mut stream, &mut session, &gateway, &shutdown, deadline).await;
    if !matches!(outcome, Outcome::StartTls) {
        return;
    }
    let Some(acceptor) = gateway.tls.as_ref().map(|tls| tls.acceptor()) else {
        return;
    };
    let handshake = timeout(gateway.tls_handshake_timeout, acceptor.accept(stream)).await;
    let mut tls_stream = match handshake {
        Ok(Ok(tls_stream)) => tls_stream,
        Ok(Err(error)) => {
            tracing::debug!(%error, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            return;
        }
    };
    session.tls_established(describe(tls_stream.get_ref().1));
    drive(&mut tls_stream, &mut session, &gateway, &shutdown, deadline).await;
    let _ = tls_stream.shutdown().await;
}

async fn write_all<T: AsyncWrite + Unpin>(
    stream: &mut T,
    bytes: &[u8],
    gateway: &Gateway<impl QuarantineStore>,
) -> std::io::Result<()> {
    // A client that never reads must not pin the connection forever.
    timeout(gateway.session.limits.command_timeout, async {
        stream.write_all(bytes).await?;
        stream.flush().await
    })
    .await
    .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// Runs the session over `stream` until it closes or asks for STARTTLS.
async fn drive<T: AsyncRead + AsyncWrite + Unpin, S: QuarantineStore>(
    stream: &mut T,
    session: &mut Session,
    gateway: &Gateway<S>,
    shutdown: &Shutdown,
    deadline: Instant,
) -> Outcome {
    let mut out: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; READ_BUFFER];
    let mut current = Current::Idle;
    loop {
        match session.poll() {
            Action::Reply(reply) => {
                if reply.is_error() {
                    telemetry::rejection(reply.code, reply.enhanced);
                }
                out.extend_from_slice(&reply.to_wire());
            }
            Action::NeedInput { timeout: idle } => {
                if write_all(stream, &out, gateway).await.is_err() {
                    return Outcome::Closed;
                }
                out.clear();
                let read_deadline = deadline.min(Instant::now() + idle);
                let idle_close = !session.in_transaction();
                if idle_close && shutdown.graceful.is_cancelled() {
                    // Shutting down: an idle session gets 421 now, even if a command is
                    // already waiting.
                    let bye = session.shutting_down().to_wire();
                    let _ = write_all(stream, &bye, gateway).await;
                    return Outcome::Closed;
                }
                let read = tokio::select! {
                    read = timeout_at(read_deadline, stream.read(&mut buf)) => read,
                    _ = shutdown.graceful.cancelled(), if idle_close => {
                        let bye = session.shutting_down().to_wire();
                        let _ = write_all(stream, &bye, gateway).await;
                        return Outcome::Closed;
                    }
                    _ = shutdown.force.cancelled() => {
                        let bye = session.shutting_down().to_wire();
                        let _ = write_all(stream, &bye, gateway).await;
                        return Outcome::Closed;
                    }
                };
                match read {
                    Ok(Ok(0)) | Ok(Err(_)) => return Outcome::Closed,
                    Ok(Ok(n)) => session.receive(&buf[..n]),
                    Err(_) => {
                        tracing::debug!("client timed out");
                        let bye = session.timed_out().to_wire();
                        let _ = write_all(stream, &bye, gateway).await;
                        return Outcome::Closed;
                    }
                }
            }
            Action::StartTls => {
                if write_all(stream, &out, gateway).await.is_err() {
                    return Outcome::Closed;
                }
                return Outcome::StartTls;
            }
            Action::MessageStart(envelope) => {
                tracing::debug!(mail_from = %envelope.mail_from, rcpt_to = ?envelope.recipients.iter().map(|r| &r.address).collect::<Vec<_>>(), "message starts");
                current = match gateway.quarantine.open(&envelope).await {
                    Ok(intake) => Current::Open(Box::new(intake)),
                    Err(error) => {
                        tracing::error!(%error, "cannot open a sealed message in the store");
                        Current::Failed
                    }
                };
            }
            Action::MessageData(bytes) => {
                if let Current::Open(intake) = &mut current
                    && let Err(error) = intake.write(&bytes).await
                {
                    tracing::error!(%error, "writing a sealed message failed");
                    current = Current::Failed;
                }
            }
            Action::MessageAbort => current = Current::Idle,
            Action::MessageEnd(summary) => {
                let outcome = match std::mem::replace(&mut current, Current::Idle) {
                    Current::Open(intake) => gateway.quarantine.commit(*intake, *summary).await,
                    Current::Idle | Current::Failed => StoreOutcome::Failed,
                };
                session.message_stored(outcome);
            }
            Action::Close => {
                let _ = write_all(stream, &out, gateway).await;
                return Outcome::Closed;
            }
        }
    }
}

/// How long a refused client gets to read its 421 before the socket is dropped.
pub const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(5);
