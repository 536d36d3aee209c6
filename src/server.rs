//! The accept loop: connection limits (total and per client IP), one task per connection,
//! and graceful shutdown. `run` takes listeners that are already bound, so tests can bind
//! `127.0.0.1:0` and `main` can bind port 25.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::seal::Sealer;
use crate::smtp::Reply;
use crate::smtp::SessionConfig;
use crate::smtp::connection::{self, REFUSAL_WRITE_TIMEOUT, Shutdown};
use crate::smtp::tls::TlsReloader;
use crate::store::Store;
use crate::telemetry;

/// Everything a connection needs, shared by all of them.
pub struct Gateway {
    pub session: Arc<SessionConfig>,
    pub store: Arc<Store>,
    pub sealer: Sealer,
    pub tls: Option<Arc<TlsReloader>>,
    pub tls_handshake_timeout: Duration,
    /// How long sessions in a transaction may go on after shutdown starts.
    pub shutdown_grace: Duration,
    pub dns: crate::dns::Dns,
    pub notify: Arc<crate::config::NotifyConfig>,
    pub templates: crate::notice::Templates,
    /// Per-domain retention, for what notices say about keeping the copy.
    pub retention: crate::retention::RetentionPolicy,
    /// Wakes the notice worker when a commit queued notices.
    pub notices_queued: Arc<tokio::sync::Notify>,
}

/// Counts connections, in total and per client address.
struct Admission {
    total: Arc<Semaphore>,
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max_per_ip: usize,
}

/// A connection's place; released on drop.
struct Admitted {
    _total: OwnedSemaphorePermit,
    ip: IpAddr,
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut map = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = map.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

impl Admission {
    fn admit(&self, ip: IpAddr) -> Result<Admitted, Reply> {
        let Ok(total) = self.total.clone().try_acquire_owned() else {
            return Err(Reply::new(
                421,
                "4.3.2",
                "Too many connections, try again later",
            ));
        };
        let mut map = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        let count = map.entry(ip).or_insert(0);
        if *count >= self.max_per_ip {
            return Err(Reply::new(
                421,
                "4.7.0",
                "Too many connections from your address, try again later",
            ));
        }
        *count += 1;
        Ok(Admitted {
            _total: total,
            ip,
            per_ip: self.per_ip.clone(),
        })
    }
}

/// Serves SMTP on `listeners` until `shutdown` is cancelled, then lets transactions in
/// progress finish for up to the grace period, closes the rest with `421 4.3.0`, and
/// returns once every connection task has ended.
pub async fn run(listeners: Vec<TcpListener>, gateway: Arc<Gateway>, shutdown: CancellationToken) {
    let limits = &gateway.session.limits;
    let admission = Arc::new(Admission {
        total: Arc::new(Semaphore::new(limits.max_connections)),
        per_ip: Arc::default(),
        max_per_ip: limits.max_connections_per_ip,
    });
    let signals = Shutdown {
        graceful: shutdown.clone(),
        force: CancellationToken::new(),
    };
    let tracker = TaskTracker::new();
    for listener in listeners {
        tracker.spawn(accept_loop(
            listener,
            gateway.clone(),
            admission.clone(),
            signals.clone(),
            tracker.clone(),
        ));
    }
    shutdown.cancelled().await;
    tracker.close();
    if tokio::time::timeout(gateway.shutdown_grace, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("grace period over; closing sessions still in a transaction");
        signals.force.cancel();
        tracker.wait().await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    admission: Arc<Admission>,
    signals: Shutdown,
    tracker: TaskTracker,
) {
    let mut conn_id: u64 = 0;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = signals.graceful.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        conn_id += 1;
        let _ = stream.set_nodelay(true);
        match admission.admit(peer.ip()) {
            Ok(admitted) => {
                let gateway = gateway.clone();
                let signals = signals.clone();
                let span = tracing::info_span!("conn", id = conn_id, peer = %peer.ip());
                metrics::counter!(telemetry::CONNECTIONS).increment(1);
                tracker.spawn(tracing::Instrument::instrument(
                    async move {
                        metrics::gauge!(telemetry::CONNECTIONS_ACTIVE).increment(1.0);
                        connection::handle(stream, peer, gateway, signals).await;
                        metrics::gauge!(telemetry::CONNECTIONS_ACTIVE).decrement(1.0);
                        drop(admitted);
                    },
                    span,
                ));
            }
            Err(reply) => {
                tracing::info!(peer = %peer.ip(), code = reply.code, "connection refused by limit");
                let reason = if reply.enhanced == "4.3.2" {
                    "max_connections"
                } else {
                    "max_connections_per_ip"
                };
                metrics::counter!(telemetry::CONNECTIONS_REFUSED, "reason" => reason).increment(1);
                tracker.spawn(refuse(stream, peer, reply));
            }
        }
    }
}

async fn refuse(mut stream: TcpStream, _peer: SocketAddr, reply: Reply) {
    let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, async {
        stream.write_all(&reply.to_wire()).await?;
        stream.shutdown().await
    })
    .await;
}
