//! DNS as reclaim uses it: off (no query at all), live (hickory, system or a given
//! server), or a fixed table for tests and labs. mail-auth consults its caches before the
//! network, so a fixed table is served as pre-filled caches in front of a resolver that
//! has no name servers.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Instant;

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts,
};
use mail_auth::hickory_resolver::net::NetError;
use mail_auth::{DnssecStatus, MX, MessageAuthenticator, RecordSet, ResolverCache, Txt};

use crate::config::DnsResolver;

/// Why a lookup failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DnsError {
    #[error("DNS is off in this configuration")]
    Off,
    #[error("no such record: {0}")]
    NotFound(String),
    /// The resolver's answer, or its silence: what hickory says went wrong.
    #[error("DNS lookup failed: {0}")]
    Lookup(#[source] NetError),
    /// The resolver could not be set up (the system configuration, or the server given).
    #[error("DNS lookup failed: {0}")]
    Resolver(#[source] NetError),
    /// A key or type of a fixed table (`[dns] static`) is not one reclaim can serve.
    #[error("DNS lookup failed: {0}")]
    Table(String),
}

/// The configured resolver.
#[derive(Clone)]
pub enum Dns {
    Off,
    Live(Arc<MessageAuthenticator>),
    Static(Arc<StaticTable>),
}

impl Dns {
    pub fn from_config(resolver: &DnsResolver) -> Result<Self, DnsError> {
        Ok(match resolver {
            DnsResolver::Off => Dns::Off,
            DnsResolver::System => Dns::Live(Arc::new(
                MessageAuthenticator::new_system_conf().map_err(DnsError::Resolver)?,
            )),
            DnsResolver::Server(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                let config = ResolverConfig::from_parts(None, vec![], vec![server]);
                Dns::Live(Arc::new(
                    MessageAuthenticator::new(config, ResolverOpts::default())
                        .map_err(DnsError::Resolver)?,
                ))
            }
            DnsResolver::Static(table) => Dns::Static(Arc::new(StaticTable::new(table.clone())?)),
        })
    }

    /// Mail exchangers of `domain` by preference; the domain itself when it has no MX
    /// (RFC 5321 5.1 implicit MX).
    pub async fn mx_hosts(&self, domain: &str) -> Result<Vec<String>, DnsError> {
        let mut records: Vec<(u16, String)> = match self {
            Dns::Off => return Err(DnsError::Off),
            Dns::Static(table) => table
                .values(domain, "MX")
                .iter()
                .filter_map(|v| {
                    let (pref, host) = v.trim().split_once(' ')?;
                    Some((
                        pref.parse().ok()?,
                        host.trim().trim_end_matches('.').to_owned(),
                    ))
                })
                .collect(),
            Dns::Live(auth) => match auth.resolver().mx_lookup(format!("{domain}.")).await {
                Ok(lookup) => lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        mail_auth::hickory_resolver::proto::rr::RData::MX(mx) => Some((
                            mx.preference,
                            mx.exchange.to_ascii().trim_end_matches('.').to_owned(),
                        )),
                        _ => None,
                    })
                    .collect(),
                Err(e) if e.is_no_records_found() => Vec::new(),
                Err(e) => return Err(DnsError::Lookup(e)),
            },
        };
        records.sort();
        if records.is_empty() {
            return Ok(vec![domain.to_owned()]);
        }
        Ok(records.into_iter().map(|(_, host)| host).collect())
    }

    /// TXT strings at `name` (each record's strings joined). Empty when there are none.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        match self {
            Dns::Off => Err(DnsError::Off),
            Dns::Static(table) => Ok(table.values(name, "TXT").to_vec()),
            Dns::Live(auth) => match auth.resolver().txt_lookup(format!("{name}.")).await {
                Ok(lookup) => Ok(lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        mail_auth::hickory_resolver::proto::rr::RData::TXT(txt) => Some(
                            txt.txt_data
                                .iter()
                                .map(|part| String::from_utf8_lossy(part).into_owned())
                                .collect::<String>(),
                        ),
                        _ => None,
                    })
                    .collect()),
                Err(e) if e.is_no_records_found() => Ok(Vec::new()),
                Err(e) => Err(DnsError::Lookup(e)),
            },
        }
    }

    /// MX records of `domain` as (preference, host), without the implicit-MX fallback.
    pub async fn mx_records(&self, domain: &str) -> Result<Vec<(u16, String)>, DnsError> {
        let hosts = self.mx_hosts(domain).await?;
        // mx_hosts falls back to the domain itself when there is no MX; undo that here.
        if hosts == [domain.to_owned()] && !self.has_mx(domain).await? {
            return Ok(Vec::new());
        }
        Ok(hosts
            .into_iter()
            .enumerate()
            .map(|(i, h)| (i as u16, h))
            .collect())
    }

    async fn has_mx(&self, domain: &str) -> Result<bool, DnsError> {
        match self {
            Dns::Off => Err(DnsError::Off),
            Dns::Static(table) => Ok(!table.values(domain, "MX").is_empty()),
            Dns::Live(auth) => match auth.resolver().mx_lookup(format!("{domain}.")).await {
                Ok(lookup) => Ok(!lookup.answers().is_empty()),
                Err(e) if e.is_no_records_found() => Ok(false),
                Err(e) => Err(DnsError::Lookup(e)),
            },
        }
    }

    /// The target of a CNAME at `name` (lower-case, no trailing dot), if there is one.
    pub async fn cname(&self, name: &str) -> Result<Option<String>, DnsError> {
        let clean = |t: &str| t.trim().trim_end_matches('.').to_ascii_lowercase();
        match self {
            Dns::Off => Err(DnsError::Off),
            Dns::Static(table) => Ok(table.values(name, "CNAME").first().map(|t| clean(t))),
            Dns::Live(auth) => {
                let kind = mail_auth::hickory_resolver::proto::rr::RecordType::CNAME;
                match auth.resolver().lookup(format!("{name}."), kind).await {
                    Ok(lookup) => Ok(lookup.answers().iter().find_map(|r| match &r.data {
                        mail_auth::hickory_resolver::proto::rr::RData::CNAME(target) => {
                            Some(clean(&target.0.to_ascii()))
                        }
                        _ => None,
                    })),
                    Err(e) if e.is_no_records_found() => Ok(None),
                    Err(e) => Err(DnsError::Lookup(e)),
                }
            }
        }
    }

    /// Addresses of a host (A then AAAA).
    pub async fn host_ips(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        match self {
            Dns::Off => Err(DnsError::Off),
            Dns::Static(table) => {
                let ips: Vec<IpAddr> = ["A", "AAAA"]
                    .iter()
                    .flat_map(|t| table.values(host, t))
                    .filter_map(|v| v.trim().parse().ok())
                    .collect();
                if ips.is_empty() {
                    Err(DnsError::NotFound(host.to_owned()))
                } else {
                    Ok(ips)
                }
            }
            Dns::Live(auth) => auth
                .resolver()
                .lookup_ip(format!("{host}."))
                .await
                .map(|l| l.iter().collect())
                .map_err(DnsError::Lookup),
        }
    }
}

/// Fixed DNS answers, keyed `"name TYPE"` with the name lower-case and without trailing dot,
/// plus the same answers pre-parsed as mail-auth caches.
pub struct StaticTable {
    records: BTreeMap<String, Vec<String>>,
    pub txt: MapCache<Box<str>, Txt>,
    pub mx: MapCache<Box<str>, RecordSet<MX>>,
    pub ipv4: MapCache<Box<str>, RecordSet<Ipv4Addr>>,
    pub ipv6: MapCache<Box<str>, RecordSet<Ipv6Addr>>,
    pub ptr: MapCache<IpAddr, RecordSet<Box<str>>>,
    /// A resolver with no name servers: what the caches do not answer fails at once,
    /// without a packet leaving the machine.
    pub nowhere: MessageAuthenticator,
}

impl std::fmt::Debug for StaticTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticTable")
            .field("records", &self.records)
            .finish()
    }
}

/// A read-only map served as a mail-auth cache. `miss` answers names not in the map
/// (for a fixed table: "no such record"); `None` lets the resolver answer them.
pub struct MapCache<K, V> {
    map: HashMap<K, V>,
    miss: Option<V>,
}

impl<K: Hash + Eq, V: Clone> ResolverCache<K, V> for MapCache<K, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get(name).cloned().or_else(|| self.miss.clone())
    }
    fn remove<Q>(&self, _: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        None
    }
    fn insert(&self, _: K, _: V, _: Instant) {}
}

fn first_parsed<T: TxtRecordParser + Into<Txt>>(values: &[String]) -> Option<Txt> {
    values
        .iter()
        .find_map(|v| T::parse(v.as_bytes()).ok())
        .map(Into::into)
}

/// Addresses parsed from the table's text values (unparsable ones left out).
fn parsed_set<T: std::str::FromStr>(values: &[String]) -> RecordSet<T> {
    record_set(
        values
            .iter()
            .filter_map(|v| v.trim().parse().ok())
            .collect(),
    )
}

/// Answers a name with and without its trailing dot.
fn insert_both<V: Clone>(map: &mut HashMap<Box<str>, V>, names: [Box<str>; 2], value: V) {
    for name in names {
        map.insert(name, value.clone());
    }
}

fn record_set<T>(items: Vec<T>) -> RecordSet<T> {
    RecordSet {
        rrset: items.into(),
        dnssec_status: DnssecStatus::Insecure,
    }
}

impl StaticTable {
    /// A table answering exactly `records`; every other name does not exist.
    pub fn new(records: BTreeMap<String, Vec<String>>) -> Result<Self, DnsError> {
        Self::build(records, true)
    }

    /// Empty caches in front of live DNS: every lookup goes to the resolver.
    pub fn pass_through() -> Self {
        Self::build(BTreeMap::new(), false).expect("an empty table is valid")
    }

    fn build(
        records: BTreeMap<String, Vec<String>>,
        authoritative: bool,
    ) -> Result<Self, DnsError> {
        let mut txt = HashMap::new();
        let mut mx = HashMap::new();
        let mut ipv4 = HashMap::new();
        let mut ipv6 = HashMap::new();
        for (key, values) in &records {
            let Some((name, kind)) = key.rsplit_once(' ') else {
                return Err(DnsError::Table(format!(
                    "static DNS key {key:?} is not \"name TYPE\""
                )));
            };
            let names = [Box::<str>::from(format!("{name}.")), Box::<str>::from(name)];
            match kind.to_ascii_uppercase().as_str() {
                "TXT" => {
                    let parsed = if name.starts_with("_dmarc.") {
                        first_parsed::<mail_auth::dmarc::Dmarc>(values)
                    } else if name.contains("._domainkey.") {
                        first_parsed::<mail_auth::common::verify::DomainKey>(values)
                    } else {
                        first_parsed::<mail_auth::spf::Spf>(values)
                    };
                    if let Some(parsed) = parsed {
                        for n in names {
                            txt.insert(n, parsed.clone());
                        }
                    }
                }
                "MX" => {
                    let set = record_set(
                        values
                            .iter()
                            .filter_map(|v| {
                                let (pref, host) = v.trim().split_once(' ')?;
                                Some(MX {
                                    exchanges: vec![Box::<str>::from(host.trim())]
                                        .into_boxed_slice(),
                                    preference: pref.parse().ok()?,
                                })
                            })
                            .collect(),
                    );
                    for n in names {
                        mx.insert(n, set.clone());
                    }
                }
                "A" => insert_both(&mut ipv4, names, parsed_set(values)),
                "AAAA" => insert_both(&mut ipv6, names, parsed_set(values)),
                // Only `check-dns` reads CNAMEs (through `values`); mail-auth needs none.
                "CNAME" => {}
                other => {
                    return Err(DnsError::Table(format!(
                        "static DNS type {other:?} is not TXT, MX, A, AAAA or CNAME"
                    )));
                }
            }
        }
        let nowhere = MessageAuthenticator::new(
            ResolverConfig::from_parts(None, vec![], vec![]),
            ResolverOpts::default(),
        )
        .map_err(DnsError::Resolver)?;
        Ok(Self {
            records,
            txt: MapCache {
                map: txt,
                miss: authoritative.then_some(Txt::Error(mail_auth::Error::Dns(
                    mail_auth::DnsError::RecordNotFound(
                        mail_auth::hickory_resolver::proto::op::ResponseCode::NXDomain,
                    ),
                ))),
            },
            mx: MapCache {
                map: mx,
                miss: authoritative.then(|| record_set(Vec::new())),
            },
            ipv4: MapCache {
                map: ipv4,
                miss: authoritative.then(|| record_set(Vec::new())),
            },
            ipv6: MapCache {
                map: ipv6,
                miss: authoritative.then(|| record_set(Vec::new())),
            },
            ptr: MapCache {
                map: HashMap::new(),
                miss: authoritative.then(|| record_set(Vec::new())),
            },
            nowhere,
        })
    }

    fn values(&self, name: &str, kind: &str) -> &[String] {
        let key = format!("{} {kind}", name.trim_end_matches('.').to_ascii_lowercase());
        self.records.get(&key).map(Vec::as_slice).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[tokio::test]
    async fn a_failed_lookup_keeps_the_resolver_error() {
        // No name servers: the lookup fails at once and nothing leaves the machine.
        let nowhere = MessageAuthenticator::new(
            ResolverConfig::from_parts(None, vec![], vec![]),
            ResolverOpts::default(),
        )
        .expect("resolver");
        let dns = Dns::Live(Arc::new(nowhere));
        let error = dns
            .host_ips("host.example")
            .await
            .expect_err("no name servers");
        assert!(matches!(error, DnsError::Lookup(_)), "{error:?}");
        assert!(error.to_string().starts_with("DNS lookup failed: "));
        assert!(error.source().expect("a source").is::<NetError>());
    }

    #[test]
    fn a_bad_static_table_is_told_apart_from_a_failed_lookup() {
        let table = BTreeMap::from([("old.example SRV".to_owned(), vec!["x".to_owned()])]);
        assert!(matches!(
            StaticTable::new(table),
            Err(DnsError::Table(message)) if message.contains("\"SRV\"")
        ));
    }
}
