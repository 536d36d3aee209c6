//! Delivering a notice: through the configured smarthost, or straight to the sender
//! domain's MX hosts (opportunistic STARTTLS). The envelope sender is always `<>`.

use std::net::IpAddr;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{PasswordSource, RelayConfig, RelayTls};
use crate::dns::Dns;

/// How long one SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth trying again later (4xx, connection trouble, DNS trouble).
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// Will never work (5xx, invalid recipient).
    #[error("permanent failure: {0}")]
    Permanent(String),
}

/// Where notices go.
#[derive(Clone)]
pub enum Transport {
    Relay(RelayConfig),
    Direct { dns: Dns, port: u16 },
}

impl Transport {
    /// Delivers one notice to `to` with the null envelope sender.
    pub async fn deliver(
        &self,
        hostname: &str,
        to: &str,
        message: &[u8],
    ) -> Result<(), DeliveryError> {
        let address: Address = to.parse().map_err(|e| {
            DeliveryError::Permanent(format!("recipient is not a deliverable address: {e}"))
        })?;
        let envelope = Envelope::new(None, vec![address.clone()])
            .map_err(|e| DeliveryError::Permanent(e.to_string()))?;
        match self {
            Transport::Relay(relay) => send_via_relay(relay, hostname, &envelope, message).await,
            Transport::Direct { dns, port } => {
                send_direct(dns, *port, hostname, address.domain(), &envelope, message).await
            }
        }
    }
}

fn classify(error: lettre::transport::smtp::Error) -> DeliveryError {
    if error.is_permanent() {
        DeliveryError::Permanent(error.to_string())
    } else {
        DeliveryError::Temporary(error.to_string())
    }
}

async fn send_via_relay(
    relay: &RelayConfig,
    hostname: &str,
    envelope: &Envelope,
    message: &[u8],
) -> Result<(), DeliveryError> {
    let tls = match relay.tls {
        RelayTls::None => Tls::None,
        RelayTls::Opportunistic | RelayTls::Required => {
            let params = TlsParameters::new(relay.host.clone())
                .map_err(|e| DeliveryError::Temporary(e.to_string()))?;
            if relay.tls == RelayTls::Required {
                Tls::Required(params)
            } else {
                Tls::Opportunistic(params)
            }
        }
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(relay.host.as_str())
        .port(relay.port)
        .tls(tls)
        .hello_name(ClientId::Domain(hostname.to_owned()))
        .timeout(Some(SMTP_TIMEOUT));
    if let (Some(user), Some(source)) = (&relay.username, &relay.password) {
        builder = builder.credentials(Credentials::new(user.clone(), read_password(source)?));
    }
    builder
        .build()
        .send_raw(envelope, message)
        .await
        .map(|_| ())
        .map_err(classify)
}

/// Reads the smarthost password when it is needed, so it never sits in the config.
fn read_password(source: &PasswordSource) -> Result<String, DeliveryError> {
    match source {
        PasswordSource::File(path) => std::fs::read_to_string(path)
            .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
            .map_err(|e| {
                DeliveryError::Temporary(format!("relay password file {}: {e}", path.display()))
            }),
        PasswordSource::Env(var) => std::env::var(var).map_err(|_| {
            DeliveryError::Temporary(format!("relay password variable {var} is not set"))
        }),
    }
}

async fn send_direct(
    dns: &Dns,
    port: u16,
    hostname: &str,
    domain: &str,
    envelope: &Envelope,
    message: &[u8],
) -> Result<(), DeliveryError> {
    let hosts = dns
        .mx_hosts(domain)
        .await
        .map_err(|e| DeliveryError::Temporary(e.to_string()))?;
    let mut last = DeliveryError::Temporary(format!("no mail exchanger for {domain} answered"));
    for host in hosts {
        let ips: Vec<IpAddr> = match dns.host_ips(&host).await {
            Ok(ips) => ips,
            Err(e) => {
                last = DeliveryError::Temporary(e.to_string());
                continue;
            }
        };
        for ip in ips {
            // Opportunistic TLS to MX hosts: encrypt when offered, as MTAs do without
            // DANE or MTA-STS; certificates of MX hosts are commonly not checkable.
            let params = TlsParameters::builder(host.clone())
                .dangerous_accept_invalid_certs(true)
                .build()
                .map_err(|e| DeliveryError::Temporary(e.to_string()))?;
            let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(ip.to_string())
                .port(port)
                .tls(Tls::Opportunistic(params))
                .hello_name(ClientId::Domain(hostname.to_owned()))
                .timeout(Some(SMTP_TIMEOUT))
                .build();
            match transport.send_raw(envelope, message).await {
                Ok(_) => return Ok(()),
                Err(e) => match classify(e) {
                    permanent @ DeliveryError::Permanent(_) => return Err(permanent),
                    temporary => last = temporary,
                },
            }
        }
    }
    Err(last)
}
