//! Delivering a notice: through the configured smarthost, or straight to the sender
//! domain's MX hosts (opportunistic STARTTLS). The envelope sender is always `<>`. Every
//! attempt is bounded as a whole by `attempt_timeout`, whatever the other side does.

use std::net::{IpAddr, SocketAddr};

use lettre::Address;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use super::reachable::refusal;
use crate::config::{DeliveryConfig, RelayConfig, RelayTls};
use crate::dns::Dns;
use crate::smtp_client::{self, Deadlines, Handover, StartTls, dialogue, within};

pub use crate::smtp_client::DeliveryError;

/// Where notices go.
#[derive(Clone)]
pub enum Route {
    Relay(RelayConfig),
    Direct { dns: Dns, port: u16 },
}

/// A route and the bounds every attempt on it keeps.
#[derive(Clone)]
pub struct Transport {
    pub route: Route,
    pub limits: DeliveryConfig,
}

impl Transport {
    /// Delivers one notice to `to` with the null envelope sender, within `attempt_timeout`.
    pub async fn deliver(
        &self,
        hostname: &str,
        to: &str,
        message: &[u8],
    ) -> Result<(), DeliveryError> {
        let address: Address = to.parse().map_err(|e| {
            DeliveryError::permanent(format!("recipient is not a deliverable address: {e}"))
        })?;
        let envelope = Envelope::new(None, vec![address.clone()])
            .map_err(|e| DeliveryError::permanent(e.to_string()))?;
        let hello = ClientId::Domain(hostname.to_owned());
        let attempt = async {
            match &self.route {
                Route::Relay(relay) => self.via_relay(relay, &hello, &envelope, message).await,
                Route::Direct { dns, port } => {
                    let handover = Handover {
                        hello: &hello,
                        tls: &StartTls::Never,
                        credentials: None,
                        envelope: &envelope,
                        message,
                    };
                    self.direct(dns, *port, address.domain(), handover).await
                }
            }
        };
        let conn = within(self.limits.attempt_timeout, attempt).await?;
        // The notice is accepted. Say goodbye on the side, so that a slow QUIT can neither
        // turn a delivery into a retry nor hold the worker (each step is still bounded).
        tokio::spawn(async move {
            let mut conn = conn;
            let _ = conn.quit().await;
        });
        Ok(())
    }

    async fn via_relay(
        &self,
        relay: &RelayConfig,
        hello: &ClientId,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<AsyncSmtpConnection, DeliveryError> {
        let tls = match relay.tls {
            RelayTls::None => StartTls::Never,
            RelayTls::Opportunistic => StartTls::Offered(relay_tls_parameters(relay)?),
            RelayTls::Required => StartTls::Required(relay_tls_parameters(relay)?),
        };
        let credentials = match (&relay.username, &relay.password) {
            (Some(user), Some(source)) => Some(Credentials::new(
                user.clone(),
                source
                    .read()
                    .map_err(|e| DeliveryError::temporary(format!("relay {e}")))?,
            )),
            _ => None,
        };
        let handover = Handover {
            hello,
            tls: &tls,
            credentials: credentials.as_ref(),
            envelope,
            message,
        };
        let mut addrs = smtp_client::relay_addresses(&relay.host, relay.port).await?;
        addrs.truncate(self.limits.max_mx_addresses);
        smtp_client::hand_to_first(&addrs, self.deadlines(), &handover)
            .await
            .map(|accepted| accepted.conn)
    }

    /// Tries the domain's mail exchangers by preference: at most `max_mx_hosts` of them and
    /// `max_mx_addresses` connections in all, skipping addresses that are not public
    /// unicast unless `allow_private_mx`. `handover.tls` is replaced per host.
    async fn direct(
        &self,
        dns: &Dns,
        port: u16,
        domain: &str,
        handover: Handover<'_>,
    ) -> Result<AsyncSmtpConnection, DeliveryError> {
        let hosts = dns
            .mx_hosts(domain)
            .await
            .map_err(|e| DeliveryError::temporary(e.to_string()))?;
        if hosts.iter().all(|host| host.is_empty()) {
            return Err(DeliveryError::permanent(
                "the sender's domain accepts no mail (null MX, RFC 7505)",
            ));
        }
        let mut last = DeliveryError::temporary("no mail exchanger answered");
        let (mut tried, mut refused) = (0, 0);
        'hosts: for host in hosts
            .iter()
            .filter(|h| !h.is_empty())
            .take(self.limits.max_mx_hosts)
        {
            let ips: Vec<IpAddr> = match dns.host_ips(host).await {
                Ok(ips) => ips,
                Err(e) => {
                    last = DeliveryError::temporary(e.to_string());
                    continue;
                }
            };
            // Opportunistic TLS to MX hosts: encrypt when offered, as MTAs do without
            // DANE or MTA-STS; certificates of MX hosts are commonly not checkable.
            let tls = TlsParameters::builder(host.clone())
                .dangerous_accept_invalid_certs(true)
                .build()
                .map(StartTls::Offered)
                .map_err(|e| DeliveryError::temporary(e.to_string()))?;
            let handover = Handover {
                tls: &tls,
                ..handover
            };
            for ip in ips {
                if tried >= self.limits.max_mx_addresses {
                    break 'hosts;
                }
                if !self.limits.allow_private_mx
                    && let Some(why) = refusal(ip)
                {
                    tracing::debug!(%host, %ip, why, "mail exchanger address refused");
                    refused += 1;
                    continue;
                }
                tried += 1;
                let deadlines = self.deadlines();
                let addr = SocketAddr::new(ip, port);
                match dialogue::deliver_to(addr, deadlines.connect, deadlines.reply, &handover)
                    .await
                {
                    Ok(accepted) => return Ok(accepted.conn),
                    Err(permanent @ DeliveryError::Permanent { .. }) => return Err(permanent),
                    Err(temporary) => last = temporary,
                }
            }
        }
        if tried == 0 && refused > 0 {
            // The sender's own DNS names only addresses off the Internet: retrying will
            // not change that, and it may be an attempt to aim the gateway inwards.
            return Err(DeliveryError::permanent(format!(
                "every address of the mail exchangers tried ({refused}) is not public; \
                 allow_private_mx is off"
            )));
        }
        Err(last)
    }

    fn deadlines(&self) -> Deadlines {
        Deadlines {
            connect: self.limits.connect_timeout,
            reply: self.limits.reply_timeout,
            attempt: self.limits.attempt_timeout,
        }
    }
}

fn relay_tls_parameters(relay: &RelayConfig) -> Result<TlsParameters, DeliveryError> {
    TlsParameters::new(relay.host.clone()).map_err(|e| DeliveryError::temporary(e.to_string()))
}
