//! The registration watch: asks the registry over RDAP (RFC 9082/9083) whether a retired
//! domain is still registered, until when, and how well it is locked.
//!
//! [`bootstrap`] finds the registry's RDAP service, [`client`] fetches with a deadline and a
//! size cap, [`registration`] reads the answer, [`findings`] judges it and [`watch`] repeats
//! that daily in the server for the metrics.

pub mod bootstrap;
pub mod client;
pub mod findings;
pub mod registration;
pub mod watch;

use crate::config::{DnsResolver, RdapConfig};
use crate::dnscheck::Finding;

pub use client::Client;
pub use registration::Registration;

/// Why a registration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RdapError {
    /// The bootstrap file is not one (it does not parse, or names no service).
    #[error("bootstrap file {path}: {message}")]
    Bootstrap { path: String, message: String },
    /// The bootstrap file could not be read.
    #[error("bootstrap file {path}: {source}")]
    BootstrapRead {
        path: String,
        source: std::io::Error,
    },
    #[error("no RDAP service known for .{0}")]
    NoService(String),
    #[error("the registry answered 404: it does not know this domain")]
    NotFound,
    #[error("the RDAP server answered HTTP {0}")]
    Status(u16),
    #[error("no complete answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("answer larger than {0} bytes")]
    TooLarge(u64),
    #[error("redirect not followed: {0}")]
    Redirect(String),
    #[error("not an RDAP domain object: {0}")]
    Malformed(String),
    /// A base or bootstrap URL that is not one.
    #[error("request failed: {0}")]
    Url(String),
    /// The HTTP client could not be built.
    #[error("request failed: {}", client::chain(.0))]
    Client(#[source] reqwest::Error),
    /// The request or its answer failed on the way (connection, TLS, HTTP). The message
    /// spells out reqwest's causes, which is where it puts the useful part.
    #[error("request failed: {}", client::chain(.0))]
    Request(#[source] reqwest::Error),
}

/// The same failure: reqwest's errors cannot be compared, so a failed request compares by
/// what it says.
impl PartialEq for RdapError {
    fn eq(&self, other: &Self) -> bool {
        use RdapError::*;
        match (self, other) {
            (
                Bootstrap {
                    path: a,
                    message: m,
                },
                Bootstrap {
                    path: b,
                    message: n,
                },
            ) => a == b && m == n,
            (BootstrapRead { path: a, source: e }, BootstrapRead { path: b, source: f }) => {
                a == b && e.kind() == f.kind() && e.to_string() == f.to_string()
            }
            (NoService(a), NoService(b))
            | (Redirect(a), Redirect(b))
            | (Malformed(a), Malformed(b))
            | (Url(a), Url(b)) => a == b,
            (NotFound, NotFound) => true,
            (Status(a), Status(b)) => a == b,
            (Timeout(a), Timeout(b)) => a == b,
            (TooLarge(a), TooLarge(b)) => a == b,
            (Client(a), Client(b)) | (Request(a), Request(b)) => {
                client::chain(a) == client::chain(b)
            }
            _ => false,
        }
    }
}

impl Eq for RdapError {}

/// Where to look up one domain, or why it is not looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// `[rdap] enabled = false`.
    Off,
    /// DNS is off or a fixed table, and no base URL is configured for this domain: reclaim
    /// then sends nothing anywhere.
    Offline,
    /// Ask this base URL (explicit in the config).
    Url(String),
    /// Find the base URL in the bootstrap file.
    Bootstrap,
}

/// Decides how `domain` is looked up under `config` and the DNS setting.
pub fn plan(config: &RdapConfig, dns: &DnsResolver, domain: &str) -> Plan {
    if !config.enabled {
        return Plan::Off;
    }
    if let Some(url) = config.base_urls.get(domain) {
        return Plan::Url(url.clone());
    }
    match dns {
        DnsResolver::Off | DnsResolver::Static(_) => Plan::Offline,
        DnsResolver::System | DnsResolver::Server(_) => Plan::Bootstrap,
    }
}

/// Looks up `domain` as planned; `None` when it is not looked up at all.
pub async fn lookup(
    client: &Client,
    config: &RdapConfig,
    dns: &DnsResolver,
    domain: &str,
) -> Option<Result<Registration, RdapError>> {
    let base = match plan(config, dns, domain) {
        Plan::Off | Plan::Offline => return None,
        Plan::Url(url) => url,
        Plan::Bootstrap => {
            match bootstrap::Bootstrap::from_config(config.bootstrap.as_deref())
                .and_then(|b| b.base_url(domain))
            {
                Ok(url) => url,
                Err(e) => return Some(Err(e)),
            }
        }
    };
    Some(match client.domain(&base, domain).await {
        Ok(value) => registration::parse(&value, domain),
        Err(e) => Err(e),
    })
}

/// The registration findings for `check-dns`: nothing when no lookup is planned.
pub async fn check(
    client: &Client,
    config: &RdapConfig,
    dns: &DnsResolver,
    domain: &str,
) -> Vec<Finding> {
    let now = std::time::SystemTime::now();
    match lookup(client, config, dns, domain).await {
        None => Vec::new(),
        Some(result) => findings::evaluate(domain, &result, now, config),
    }
}
