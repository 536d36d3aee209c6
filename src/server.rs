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

use crate::smtp::Reply;
use crate::smtp::connection::{self, Gateway, REFUSAL_WRITE_TIMEOUT, Shutdown};
use crate::store::QuarantineStore;
use crate::telemetry;

/// Which connection limit turned a client away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// `max_connections` are open.
    Total,
    /// `max_connections_per_ip` are open from the client's network.
    PerNetwork,
}

impl Refusal {
    /// The `421` the client reads before the socket closes.
    fn reply(self) -> Reply {
        match self {
            Refusal::Total => Reply::new(421, "4.3.2", "Too many connections, try again later"),
            Refusal::PerNetwork => Reply::new(
                421,
                "4.7.0",
                "Too many connections from your address, try again later",
            ),
        }
    }

    /// The `reason` label of the refusal metric: the limit's config key.
    fn reason(self) -> &'static str {
        match self {
            Refusal::Total => "max_connections",
            Refusal::PerNetwork => "max_connections_per_ip",
        }
    }
}

/// Counts connections, in total and per client network.
struct Admission {
    total: Arc<Semaphore>,
    per_net: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max_per_net: usize,
    prefix_v4: u8,
    prefix_v6: u8,
}

/// A connection's place; released on drop.
#[derive(Debug)]
struct Admitted {
    _total: OwnedSemaphorePermit,
    net: IpAddr,
    per_net: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut map = self.per_net.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = map.get_mut(&self.net) {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.net);
            }
        }
    }
}

/// The network a client address is counted in: the address with only its first `v4` (or
/// `v6`) bits kept. An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, as a dual-stack
/// listener reports IPv4 clients) counts as the IPv4 address it carries.
pub(crate) fn client_network(ip: IpAddr, v4: u8, v6: u8) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(a) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(v4.min(32)))
                .unwrap_or(0);
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(v6.min(128)))
                .unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
    }
}

impl Admission {
    fn new(limits: &crate::config::Limits) -> Self {
        Self {
            total: Arc::new(Semaphore::new(limits.max_connections)),
            per_net: Arc::default(),
            max_per_net: limits.max_connections_per_ip,
            prefix_v4: limits.client_prefix_v4,
            prefix_v6: limits.client_prefix_v6,
        }
    }

    fn admit(&self, ip: IpAddr) -> Result<Admitted, Refusal> {
        let Ok(total) = self.total.clone().try_acquire_owned() else {
            return Err(Refusal::Total);
        };
        let net = client_network(ip, self.prefix_v4, self.prefix_v6);
        let mut map = self.per_net.lock().unwrap_or_else(|p| p.into_inner());
        let count = map.entry(net).or_insert(0);
        if *count >= self.max_per_net {
            return Err(Refusal::PerNetwork);
        }
        *count += 1;
        Ok(Admitted {
            _total: total,
            net,
            per_net: self.per_net.clone(),
        })
    }
}

/// Serves SMTP on `listeners` until `shutdown` is cancelled, then lets transactions in
/// progress finish for up to the grace period, closes the rest with `421 4.3.0`, and
/// returns once every connection task has ended.
pub async fn run<S: QuarantineStore>(
    listeners: Vec<TcpListener>,
    gateway: Arc<Gateway<S>>,
    shutdown: CancellationToken,
) {
    let admission = Arc::new(Admission::new(&gateway.session.limits));
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

async fn accept_loop<S: QuarantineStore>(
    listener: TcpListener,
    gateway: Arc<Gateway<S>>,
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
            Err(refusal) => {
                let reply = refusal.reply();
                tracing::info!(peer = %peer.ip(), code = reply.code, "connection refused by limit");
                metrics::counter!(telemetry::CONNECTIONS_REFUSED, "reason" => refusal.reason())
                    .increment(1);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Limits;

    fn admission(max_per_net: usize, v4: u8, v6: u8) -> Admission {
        Admission::new(&Limits {
            max_connections: 100,
            max_connections_per_ip: max_per_net,
            client_prefix_v4: v4,
            client_prefix_v6: v6,
            ..Limits::default()
        })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn networks_by_prefix() {
        let net = |a, v4, v6| client_network(ip(a), v4, v6);
        assert_eq!(net("192.0.2.77", 32, 64), ip("192.0.2.77"));
        assert_eq!(net("192.0.2.77", 24, 64), ip("192.0.2.0"));
        assert_eq!(net("192.0.2.77", 16, 64), ip("192.0.0.0"));
        assert_eq!(net("2001:db8:1:2:aaaa::1", 32, 64), ip("2001:db8:1:2::"));
        assert_eq!(net("2001:db8:1:2:aaaa::1", 32, 48), ip("2001:db8:1::"));
        assert_eq!(
            net("2001:db8:1:2:aaaa::1", 32, 128),
            ip("2001:db8:1:2:aaaa::1")
        );
        assert_eq!(net("::ffff:192.0.2.77", 24, 64), ip("192.0.2.0"));
        assert_eq!(net("::ffff:192.0.2.77", 32, 64), ip("192.0.2.77"));
    }

    #[test]
    fn ipv6_clients_count_per_64_by_default() {
        let a = admission(2, 32, 64);
        let first = a.admit(ip("2001:db8:0:1::1")).expect("first");
        let _second = a
            .admit(ip("2001:db8:0:1:ffff:ffff:ffff:ffff"))
            .expect("same /64");
        let refused = a
            .admit(ip("2001:db8:0:1::99"))
            .expect_err("third in the /64");
        assert_eq!(refused, Refusal::PerNetwork);
        assert_eq!(
            (refused.reply().code, refused.reply().enhanced),
            (421, "4.7.0")
        );
        // Another /64 has its own count.
        let _other = a.admit(ip("2001:db8:0:2::1")).expect("next /64");
        drop(first);
        let _again = a.admit(ip("2001:db8:0:1::99")).expect("a place was freed");
    }

    #[test]
    fn ipv4_clients_count_per_address_by_default_and_mapped_ones_with_them() {
        let a = admission(1, 32, 64);
        let _held = a.admit(ip("192.0.2.1")).expect("first");
        let _neighbour = a.admit(ip("192.0.2.2")).expect("another /32");
        let refused = a
            .admit(ip("::ffff:192.0.2.1"))
            .expect_err("mapped is the same client");
        assert_eq!(refused.reason(), "max_connections_per_ip");
    }

    #[test]
    fn the_total_limit_is_told_apart_from_the_per_network_one() {
        let a = Admission::new(&Limits {
            max_connections: 1,
            max_connections_per_ip: 5,
            ..Limits::default()
        });
        let _held = a.admit(ip("192.0.2.1")).expect("first");
        let refused = a.admit(ip("198.51.100.1")).expect_err("over the total");
        assert_eq!(refused, Refusal::Total);
        assert_eq!(refused.reason(), "max_connections");
        let reply = refused.reply();
        assert_eq!((reply.code, reply.enhanced), (421, "4.3.2"));
    }

    #[test]
    fn wider_prefixes_group_neighbours() {
        let a = admission(2, 24, 48);
        let _one = a.admit(ip("198.51.100.1")).expect("one");
        let _two = a.admit(ip("::ffff:198.51.100.200")).expect("two");
        assert!(a.admit(ip("198.51.100.9")).is_err(), "same /24");
        let _x = a.admit(ip("2001:db8:5:1::1")).expect("v6 one");
        let _y = a.admit(ip("2001:db8:5:ffff::1")).expect("v6 two");
        assert!(a.admit(ip("2001:db8:5:7::1")).is_err(), "same /48");
        assert!(a.admit(ip("2001:db8:6::1")).is_ok(), "another /48");
    }
}
