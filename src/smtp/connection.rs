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

use super::session::{Action, Session, StoreOutcome};
use super::tls::describe;
use crate::auth::{self, AuthInput};
use crate::dns::Dns;
use crate::intake::{AuthCopyLimits, Intake};
use crate::notice;
use crate::server::Gateway;
use crate::summary::Summary;
use crate::telemetry;

/// Bytes read from the socket at a time; also bounds one sealed chunk in memory.
const READ_BUFFER: usize = 64 * 1024;

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

/// Serves one client connection to the end.
pub async fn handle(
    mut stream: TcpStream,
    peer: SocketAddr,
    gateway: Arc<Gateway>,
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

async fn write_all<S: AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
    gateway: &Gateway,
) -> Result<(), ()> {
    // A client that never reads must not pin the connection forever.
    match timeout(gateway.session.limits.command_timeout, async {
        stream.write_all(bytes).await?;
        stream.flush().await
    })
    .await
    {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// Runs the session over `stream` until it closes or asks for STARTTLS.
async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    session: &mut Session,
    gateway: &Gateway,
    shutdown: &Shutdown,
    deadline: Instant,
) -> Outcome {
    let mut out: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; READ_BUFFER];
    // `Some(Err(()))` once the current message has failed: keep reading, answer 451.
    let mut intake: Option<Result<Intake, ()>> = None;
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
                tracing::debug!(mail_from = %envelope.mail_from, rcpt_to = ?envelope.rcpt_to, "message starts");
                let auth_limit = (!matches!(gateway.dns, Dns::Off)).then(|| AuthCopyLimits {
                    max_size: gateway.notify.auth_max_message_size,
                    budget: gateway.auth_budget.clone(),
                });
                let started = Intake::start(
                    &gateway.store,
                    &gateway.sealer,
                    &envelope,
                    &gateway.session.hostname,
                    auth_limit,
                )
                .await;
                intake = Some(started.map_err(|error| {
                    tracing::error!(%error, "cannot open a sealed message in the store");
                }));
            }
            Action::MessageData(bytes) => {
                if let Some(Ok(current)) = intake.as_mut()
                    && let Err(error) = current.write(&bytes).await
                {
                    tracing::error!(%error, "writing a sealed message failed");
                    intake = Some(Err(()));
                }
            }
            Action::MessageAbort => intake = None,
            Action::MessageEnd(summary) => {
                let outcome = match intake.take() {
                    Some(Ok(current)) => finish_message(gateway, current, *summary).await,
                    _ => StoreOutcome::Failed,
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

/// Authenticates the sender, plans notices, and commits message and notices together.
async fn finish_message(gateway: &Gateway, intake: Intake, mut summary: Summary) -> StoreOutcome {
    let started = std::time::Instant::now();
    if let Some(partial) = intake.auth_copy_partial() {
        metrics::counter!(telemetry::AUTH_COPY_PARTIAL, "reason" => partial.reason()).increment(1);
    }
    if let Some((message, complete)) = intake.auth_copy() {
        summary.auth = auth::check(
            &gateway.dns,
            AuthInput {
                client_ip: summary
                    .client_ip
                    .parse()
                    .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0])),
                helo: &summary.helo,
                hostname: &gateway.session.hostname,
                mail_from: &summary.mail_from,
                message,
                complete,
            },
        )
        .await;
    }
    let planner = notice::Planner {
        notify: &gateway.notify,
        domains: &gateway.session.domains,
        templates: &gateway.templates,
        store: &gateway.store,
        hostname: &gateway.session.hostname,
        retention: &gateway.retention,
    };
    let notices = planner.plan(&summary, intake.received_at());
    let size = intake.size();
    match intake
        .finish(&gateway.store, &gateway.session.domains, &summary, notices)
        .await
    {
        Ok((id, notice)) => {
            metrics::histogram!(telemetry::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
            for domain in summary
                .rcpt_to
                .iter()
                .filter_map(|r| r.rsplit_once('@'))
                .filter_map(|(_, d)| gateway.session.domains.matching(d))
            {
                metrics::counter!(telemetry::MESSAGES_ACCEPTED, "domain" => domain.to_owned())
                    .increment(1);
            }
            metrics::gauge!(telemetry::STORE_MESSAGES).increment(1.0);
            metrics::counter!(telemetry::STORED_BYTES).increment(size);
            metrics::counter!(telemetry::NOTICES_QUEUED).increment(notice.queued as u64);
            if let Some(reason) = notice.limited {
                metrics::counter!(telemetry::NOTICES_SUPPRESSED, "reason" => reason).increment(1);
            }
            tracing::info!(%id, notices = notice.queued, limited = notice.limited, elapsed_ms = started.elapsed().as_millis() as u64, "message quarantined");
            if notice.queued > 0 {
                gateway.notices_queued.notify_one();
            }
            StoreOutcome::Stored { id: id.to_string() }
        }
        Err(error) => {
            tracing::error!(%error, "storing a message failed");
            StoreOutcome::Failed
        }
    }
}

/// How long a refused client gets to read its 421 before the socket is dropped.
pub const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(5);
