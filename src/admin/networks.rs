//! Counts the mutual-TLS admin listener's connections per client network, so that idle or
//! slow sockets from one network can never hold every slot and lock reviewers out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::config::AdminTcpLimits;
use crate::server::client_network;

/// Open connections per client network (the address with only its prefix kept).
#[derive(Debug)]
pub(super) struct Networks {
    limits: AdminTcpLimits,
    /// Only networks with a connection open are listed, so the map is never larger than
    /// the number of open connections.
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in its network's count; given back on drop.
#[derive(Debug)]
pub(super) struct NetworkPermit {
    networks: Arc<Networks>,
    network: IpAddr,
}

impl Networks {
    pub(super) fn new(limits: AdminTcpLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            open: Mutex::default(),
        })
    }

    /// A place for a connection from `ip`, or `None` when its network already holds
    /// `max_connections_per_ip`.
    pub(super) fn try_enter(self: &Arc<Self>, ip: IpAddr) -> Option<NetworkPermit> {
        let network = client_network(ip, self.limits.prefix_v4, self.limits.prefix_v6);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(network).or_insert(0);
        if *count >= self.limits.per_network {
            return None;
        }
        *count += 1;
        Some(NetworkPermit {
            networks: self.clone(),
            network,
        })
    }

    /// Connections open from `ip`'s network.
    #[cfg(test)]
    fn open(&self, ip: IpAddr) -> usize {
        let network = client_network(ip, self.limits.prefix_v4, self.limits.prefix_v6);
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&network).copied().unwrap_or(0)
    }
}

impl Drop for NetworkPermit {
    fn drop(&mut self) {
        let mut open = self.networks.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.network) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.network);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn each_network_gets_its_share_and_gives_it_back() {
        let networks = Networks::new(AdminTcpLimits {
            per_network: 2,
            prefix_v4: 24,
            ..AdminTcpLimits::default()
        });
        let first = networks.try_enter(ip("192.0.2.1")).expect("first");
        let second = networks.try_enter(ip("192.0.2.200")).expect("same /24");
        assert!(
            networks.try_enter(ip("192.0.2.9")).is_none(),
            "the /24 is full"
        );
        assert!(
            networks.try_enter(ip("::ffff:192.0.2.9")).is_none(),
            "a mapped IPv4 address counts as IPv4"
        );
        let other = networks
            .try_enter(ip("198.51.100.1"))
            .expect("another network");
        let v6 = networks.try_enter(ip("2001:db8::1")).expect("IPv6");
        let v6_same = networks
            .try_enter(ip("2001:db8::ffff:2"))
            .expect("same /64");
        assert!(
            networks.try_enter(ip("2001:db8::3")).is_none(),
            "the /64 is full"
        );
        assert!(
            networks.try_enter(ip("2001:db8:0:1::3")).is_some(),
            "next /64"
        );
        drop(second);
        assert_eq!(networks.open(ip("192.0.2.1")), 1);
        let again = networks
            .try_enter(ip("192.0.2.50"))
            .expect("a place was given back");
        drop((first, again, other, v6, v6_same));
        let open = networks.open.lock().expect("lock");
        assert!(open.is_empty(), "no empty entries left: {open:?}");
    }
}
