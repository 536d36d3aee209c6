//! The TOML config file: parsed into raw serde structs, then validated once into [`Config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::capacity::StorageLimits;
use crate::domains::RetiredDomains;
use crate::retention::RetentionPolicy;
use crate::seal::Recipients;
use crate::units::{parse_duration, parse_size};
use edge::{MAX_AUTH_MEMORY_BUDGET, prefix, size_in, storage_limits};

mod access;
mod approvals;
mod audit;
mod database;
mod delivery;
mod edge;
mod layout;
mod notify;
mod paths;
mod raw;
mod review;
mod watch;

pub use database::StoreBackend;
pub use delivery::DeliveryConfig;
pub use notify::{AuthRequirement, NoticeLimits, NotifyConfig, RelayConfig, RelayTls};
use notify::{domain_policy, notify_config};
use raw::{RawAdmin, RawConfig, RawDomain, RawStore};
pub use review::{
    AdminTcpConfig, AdminTcpLimits, MAX_ADMIN_CONNECTIONS_PER_IP, PasswordError, PasswordSource,
    ReleaseConfig, ReleaseTls,
};
use review::{admin_tcp, release, retention};
pub use watch::{ExitConfig, ParkedConfig, RdapConfig};
use watch::{exit_config, parked_config, rdap_config};

/// Where the CLI looks for the config when `-c` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "config/reclaim.toml";

/// Why a config was refused. Every message names the key or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

/// The validated configuration, shared read-only as `Arc<Config>`.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub tls: Option<TlsConfig>,
    pub store: StoreConfig,
    pub seal: SealConfig,
    pub admin: AdminConfig,
    pub dns: DnsResolver,
    pub domains: RetiredDomains,
    pub notify: NotifyConfig,
    /// `[metrics] listen`: where Prometheus scrapes, if anywhere. An internal address.
    pub metrics_listen: Option<SocketAddr>,
    /// `[release]`: read by the CLI only.
    pub release: Option<ReleaseConfig>,
    /// `[rdap]`: the registration watch.
    pub rdap: RdapConfig,
    /// `[parked]`: what `check-dns` expects of a domain that sends no mail.
    pub parked: ParkedConfig,
    /// `[exit]`: read by `report --exit` only.
    pub exit: ExitConfig,
}

/// `[server]`: the SMTP listener and its limits.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub hostname: String,
    pub listen: Vec<SocketAddr>,
    pub limits: Limits,
    pub tls_handshake_timeout: Duration,
    pub shutdown_grace: Duration,
}

/// Every bound the SMTP side enforces, with the defaults a public MX wants.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_message_size: u64,
    pub max_recipients: usize,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// Longest command line accepted, CRLF included (RFC 5321 asks for at least 512).
    pub max_line_length: usize,
    /// Failed commands in one session before `421` and close.
    pub max_errors: usize,
    pub max_received_headers: usize,
    /// How long the server waits for a command (RFC 5321 4.5.3.2.7: at least 5 minutes).
    pub command_timeout: Duration,
    /// How long the server waits for the next data block (RFC 5321 4.5.3.2.5: 3 minutes).
    pub data_timeout: Duration,
    /// Upper bound on a whole session, however busy.
    pub session_timeout: Duration,
    /// `max_connections_per_ip` counts IPv4 clients by networks of this prefix length.
    pub client_prefix_v4: u8,
    /// `max_connections_per_ip` counts IPv6 clients by networks of this prefix length.
    pub client_prefix_v6: u8,
    /// Memory all in-memory DKIM copies together may use.
    pub auth_memory_budget: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_size: 25 * 1024 * 1024,
            max_recipients: 100,
            max_connections: 1024,
            max_connections_per_ip: 20,
            max_line_length: 2048,
            max_errors: 10,
            max_received_headers: 100,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(180),
            session_timeout: Duration::from_secs(1800),
            client_prefix_v4: 32,
            client_prefix_v6: 64,
            auth_memory_budget: 64 * 1024 * 1024,
        }
    }
}

/// `[tls]`: certificate and key for STARTTLS.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `[store]`: where the quarantine lives.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub path: PathBuf,
    /// How long messages are kept (per domain), unless held.
    pub retention: RetentionPolicy,
    pub audit_retention: Duration,
    /// How often the server purges expired messages (also once at start).
    pub purge_interval: Duration,
    /// The quota and the free-disk floor, answered `452 4.3.1` before the data.
    pub limits: StorageLimits,
    /// How often the store's free disk space is measured (also after each delete).
    pub free_check_interval: Duration,
    /// Which messages go into segment files, and how they are staged.
    pub staging: crate::store::StagingLimits,
    /// Embedded (default) or PostgreSQL.
    pub backend: StoreBackend,
}

/// `[seal]`: who can read the quarantine.
#[derive(Debug, Clone)]
pub struct SealConfig {
    /// The keys for mail to a domain without `readers` (and to the bare `<postmaster>`).
    pub recipients: Recipients,
    /// `[[domain]] readers`: the only keys that domain's mail is sealed to, by retired
    /// domain (normalised, `*.` dropped).
    pub readers: std::collections::BTreeMap<String, Recipients>,
    /// Dev setups only: an identity generated on first start and used when no recipients
    /// are configured. The private key then sits on the gateway, so it is never for production.
    pub dev_identity: Option<PathBuf>,
}

/// `[admin]`: the internal API.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub socket: PathBuf,
    /// The optional TCP listener, mutual TLS only.
    pub tcp: Option<AdminTcpConfig>,
    /// `[[principal]]`: who may do what; empty lets every client that reaches the API act as
    /// an admin.
    pub access: crate::admin::access::AccessPolicy,
    /// `[approvals]`: the actions that need a second principal's approval.
    pub approvals: crate::admin::approvals::ApprovalPolicy,
    /// `[audit]`: where the audit chain's head is witnessed.
    pub witness: crate::witness::WitnessConfig,
}

/// `[dns] resolver`: which DNS resolver features that need DNS may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsResolver {
    System,
    Off,
    Server(SocketAddr),
    /// Fixed answers, keyed `"name TYPE"` (lower-case name without trailing dot).
    Static(std::collections::BTreeMap<String, Vec<String>>),
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::parse(&text).map_err(|err| match err {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })?;
        paths::anchor(&mut config, &paths::base_of(path));
        Ok(config)
    }

    /// Validates config text. Paths in it stay as written; [`Config::load`] takes relative
    /// ones from the config file's folder.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|err| ConfigError::Parse {
            path: PathBuf::new(),
            message: err.to_string().trim_end().to_owned(),
        })?;
        raw.validate()
    }

    /// Checks what only matters for `serve`: someone must be able to read the quarantine.
    pub fn require_recipients(&self) -> Result<(), ConfigError> {
        if self.seal.recipients.is_empty() && self.seal.dev_identity.is_none() {
            return Err(invalid(
                "seal.recipients",
                "no recipients: list at least one age or ssh public key of a reviewer",
            ));
        }
        Ok(())
    }
}

fn duration(
    key: &'static str,
    value: Option<String>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some(text) => {
            let d = parse_duration(&text).map_err(|m| invalid(key, m.to_string()))?;
            if d.is_zero() {
                return Err(invalid(key, "must be greater than zero"));
            }
            Ok(d)
        }
    }
}

fn positive(key: &'static str, value: Option<usize>, default: usize) -> Result<usize, ConfigError> {
    match value {
        None => Ok(default),
        Some(0) => Err(invalid(key, "must be at least 1")),
        Some(n) => Ok(n),
    }
}

impl RawConfig {
    fn validate(self) -> Result<Config, ConfigError> {
        let defaults = Limits::default();
        let s = self.server;
        let hostname = crate::domains::normalize(&s.hostname).ok_or_else(|| {
            invalid(
                "server.hostname",
                format!("{:?} is not a host name", s.hostname),
            )
        })?;
        if s.listen.is_empty() {
            return Err(invalid(
                "server.listen",
                "give at least one address, e.g. \"0.0.0.0:25\"",
            ));
        }
        let listen = s
            .listen
            .iter()
            .map(|a| {
                a.parse::<SocketAddr>().map_err(|_| {
                    invalid("server.listen", format!("{a:?} is not an IP:PORT address"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let max_message_size = match s.max_message_size {
            None => defaults.max_message_size,
            Some(text) => {
                parse_size(&text).map_err(|m| invalid("server.max_message_size", m.to_string()))?
            }
        };
        if max_message_size < 1024 {
            return Err(invalid("server.max_message_size", "must be at least 1KiB"));
        }
        let max_line_length = positive(
            "server.max_line_length",
            s.max_line_length,
            defaults.max_line_length,
        )?;
        if !(512..=65536).contains(&max_line_length) {
            return Err(invalid(
                "server.max_line_length",
                "must be between 512 (RFC 5321) and 65536",
            ));
        }
        let limits = Limits {
            max_message_size,
            max_recipients: positive(
                "server.max_recipients",
                s.max_recipients,
                defaults.max_recipients,
            )?,
            max_connections: positive(
                "server.max_connections",
                s.max_connections,
                defaults.max_connections,
            )?,
            max_connections_per_ip: positive(
                "server.max_connections_per_ip",
                s.max_connections_per_ip,
                defaults.max_connections_per_ip,
            )?,
            max_line_length,
            max_errors: positive("server.max_errors", s.max_errors, defaults.max_errors)?,
            max_received_headers: positive(
                "server.max_received_headers",
                s.max_received_headers,
                defaults.max_received_headers,
            )?,
            command_timeout: duration(
                "server.command_timeout",
                s.command_timeout,
                defaults.command_timeout,
            )?,
            data_timeout: duration("server.data_timeout", s.data_timeout, defaults.data_timeout)?,
            session_timeout: duration(
                "server.session_timeout",
                s.session_timeout,
                defaults.session_timeout,
            )?,
            client_prefix_v4: prefix(
                "server.client_prefix_v4",
                s.client_prefix_v4,
                defaults.client_prefix_v4,
                16..=32,
            )?,
            client_prefix_v6: prefix(
                "server.client_prefix_v6",
                s.client_prefix_v6,
                defaults.client_prefix_v6,
                32..=128,
            )?,
            auth_memory_budget: size_in(
                "server.auth_memory_budget",
                s.auth_memory_budget.as_deref(),
                defaults.auth_memory_budget,
                0..=MAX_AUTH_MEMORY_BUDGET,
            )?,
        };
        let server = ServerConfig {
            hostname,
            listen,
            limits,
            tls_handshake_timeout: duration(
                "server.tls_handshake_timeout",
                s.tls_handshake_timeout,
                Duration::from_secs(30),
            )?,
            shutdown_grace: duration(
                "server.shutdown_grace",
                s.shutdown_grace,
                Duration::from_secs(30),
            )?,
        };

        let recipients =
            Recipients::parse(&self.seal.recipients).map_err(|m| invalid("seal.recipients", m))?;

        let dns = match self.dns.resolver.as_deref() {
            None | Some("system") => DnsResolver::System,
            Some("off") => DnsResolver::Off,
            Some("static") => DnsResolver::Static(
                self.dns
                    .table
                    .iter()
                    .map(|(k, v)| (static_dns_key(k), v.clone()))
                    .collect(),
            ),
            Some(addr) => DnsResolver::Server(addr.parse().map_err(|_| {
                invalid(
                    "dns.resolver",
                    format!("{addr:?} is not \"system\", \"off\" or IP:PORT"),
                )
            })?),
        };

        if self.domain.is_empty() {
            return Err(invalid(
                "domain",
                "no [[domain]]: name at least one retired domain",
            ));
        }
        let mut domains = RetiredDomains::new(self.domain.iter().map(|d| d.name.as_str()))
            .map_err(|e| invalid("domain.name", e.to_string()))?;
        for d in &self.domain {
            domains
                .set_policy(&d.name, domain_policy(d)?)
                .map_err(|e| invalid("domain.name", e.to_string()))?;
        }
        let readers = domain_readers(&self.domain)?;
        let case_insensitive_local = match self.notify.local_part_case.as_deref() {
            None | Some("exact") => false,
            Some("insensitive") => true,
            Some(other) => {
                return Err(invalid(
                    "notify.local_part_case",
                    format!("{other:?} is not \"exact\" or \"insensitive\""),
                ));
            }
        };
        domains
            .set_relocated(&self.relocated, case_insensitive_local)
            .map_err(|e| invalid("relocated", e.to_string()))?;
        let notify = notify_config(self.notify)?;
        let metrics_listen = match &self.metrics.listen {
            None => None,
            Some(text) => {
                let addr: SocketAddr = text.parse().map_err(|_| {
                    invalid(
                        "metrics.listen",
                        format!("{text:?} is not an IP:PORT address"),
                    )
                })?;
                internal_listener("metrics.listen", addr, &server.listen)?;
                Some(addr)
            }
        };

        let admin_socket = self
            .admin
            .socket
            .clone()
            .unwrap_or_else(|| self.store.path.join("admin.sock"));
        let admin_tcp = admin_tcp(&self.admin)?;
        let access = access::access_policy(self.principal, &domains)?;
        let witness = audit::witness_config(self.audit, &server.hostname)?;
        let approvals = approvals::approval_policy(self.approvals)?;
        if let Some(tcp) = &admin_tcp {
            internal_listener("admin.listen", tcp.listen, &server.listen)?;
        }
        let release = self.release.map(release).transpose()?;
        let rdap = rdap_config(self.rdap)?;
        let parked = parked_config(self.parked)?;
        let exit = exit_config(self.exit)?;
        let retention = retention(&self.store, &self.domain)?;
        let storage = storage_limits(&self.store)?;
        let staging = layout::staging_limits(&self.store)?;
        let backend = database::store_backend(&self.store)?;
        database::check_lease(&backend, notify.delivery.attempt_timeout)?;
        let audit_retention = duration(
            "store.audit_retention",
            self.store.audit_retention,
            Duration::from_secs(2 * 365 * 86_400),
        )?;
        let purge_interval = duration(
            "store.purge_interval",
            self.store.purge_interval,
            Duration::from_secs(600),
        )?;
        let free_check_interval = duration(
            "store.free_check_interval",
            self.store.free_check_interval.clone(),
            Duration::from_secs(10),
        )?;
        Ok(Config {
            server,
            tls: self.tls.map(|t| TlsConfig {
                cert: t.cert,
                key: t.key,
            }),
            store: StoreConfig {
                path: self.store.path,
                retention,
                audit_retention,
                purge_interval,
                limits: storage,
                free_check_interval,
                staging,
                backend,
            },
            seal: SealConfig {
                recipients,
                readers,
                dev_identity: self.seal.dev_identity,
            },
            admin: AdminConfig {
                socket: admin_socket,
                tcp: admin_tcp,
                access,
                approvals,
                witness,
            },
            dns,
            domains,
            notify,
            metrics_listen,
            release,
            rdap,
            parked,
            exit,
        })
    }
}

/// `[[domain]] readers`, parsed as `[seal] recipients` is. An empty list is refused: it
/// would seal that domain's mail to nobody.
fn domain_readers(
    domains: &[RawDomain],
) -> Result<std::collections::BTreeMap<String, Recipients>, ConfigError> {
    let mut out = std::collections::BTreeMap::new();
    for d in domains {
        let Some(readers) = &d.readers else { continue };
        let name = d.name.strip_prefix("*.").unwrap_or(&d.name);
        let name = crate::domains::normalize(name)
            .ok_or_else(|| invalid("domain.name", format!("{:?} is not a domain", d.name)))?;
        if readers.is_empty() {
            return Err(invalid(
                "domain.readers",
                format!(
                    "{}: no key; list at least one age or ssh public key, or leave readers out \
                     to seal to [seal] recipients",
                    d.name
                ),
            ));
        }
        let keys = Recipients::parse(readers)
            .map_err(|m| invalid("domain.readers", format!("{}: {m}", d.name)))?;
        if out.insert(name, keys).is_some() {
            return Err(invalid(
                "domain.readers",
                format!("{}: readers given twice for one domain", d.name),
            ));
        }
    }
    Ok(out)
}

/// Internal interfaces (metrics, the admin listener) never listen where SMTP does: not on a
/// wildcard address, and not on an address the SMTP listener uses (or could use, when it
/// listens on a wildcard), loopback excepted.
fn internal_listener(
    key: &'static str,
    addr: SocketAddr,
    smtp: &[SocketAddr],
) -> Result<(), ConfigError> {
    if addr.port() != 0 && smtp.contains(&addr) {
        return Err(invalid(key, format!("{addr} is an SMTP listen address")));
    }
    let shares_smtp_address = smtp
        .iter()
        .any(|l| l.ip() == addr.ip() || l.ip().is_unspecified());
    if addr.ip().is_unspecified() || (shares_smtp_address && !addr.ip().is_loopback()) {
        return Err(invalid(
            key,
            format!("{addr} is reachable where SMTP listens; use an internal or loopback address"),
        ));
    }
    Ok(())
}

/// `"Name. type"` -> `"name TYPE"`: the form the fixed DNS table is looked up by.
fn static_dns_key(key: &str) -> String {
    match key.trim().rsplit_once(' ') {
        Some((name, kind)) => format!(
            "{} {}",
            name.trim().trim_end_matches('.').to_ascii_lowercase(),
            kind.trim().to_ascii_uppercase()
        ),
        None => key.trim().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const MINIMAL: &str = r#"
        [server]
        hostname = "mx.old.example"
        listen = ["127.0.0.1:2525"]
        [seal]
        recipients = ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"]
        [[domain]]
        name = "old.example"
    "#;

    pub(super) fn error_of(text: &str) -> String {
        Config::parse(text)
            .expect_err("config must be refused")
            .to_string()
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = Config::parse(MINIMAL).expect("valid");
        assert_eq!(c.server.limits.max_message_size, 25 * 1024 * 1024);
        assert_eq!(c.server.limits.command_timeout, Duration::from_secs(300));
        assert_eq!(c.admin.socket, PathBuf::from("data/admin.sock"));
        assert_eq!(c.dns, DnsResolver::System);
        assert!(c.tls.is_none());
        assert!(c.require_recipients().is_ok());
        assert_eq!(
            c.store.retention.default(),
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(c.store.purge_interval, Duration::from_secs(600));
        assert!(c.admin.tcp.is_none() && c.release.is_none());
        assert_eq!(
            (
                c.server.limits.client_prefix_v4,
                c.server.limits.client_prefix_v6
            ),
            (32, 64)
        );
        assert_eq!(c.server.limits.auth_memory_budget, 64 << 20);
        assert_eq!(c.store.limits.max_size, None);
        assert_eq!(c.store.limits.min_free, 1 << 30);
    }

    #[test]
    fn unknown_keys_are_named() {
        let text = MINIMAL.replace("[seal]", "[seal]\nrecipents = []");
        assert!(error_of(&text).contains("recipents"), "{}", error_of(&text));
        let text = MINIMAL.replace("[server]", "[server]\nmax_mesage_size = \"1MiB\"");
        assert!(error_of(&text).contains("max_mesage_size"));
    }

    #[test]
    fn bad_values_are_named() {
        let text = MINIMAL.replace("[server]", "[server]\nmax_message_size = \"lots\"");
        assert!(error_of(&text).contains("server.max_message_size"));
        let text = MINIMAL.replace("127.0.0.1:2525", "localhost");
        assert!(error_of(&text).contains("server.listen"));
        let text = MINIMAL.replace("age1ql3z", "age1xx3z");
        assert!(error_of(&text).contains("seal.recipients"));
        let text = MINIMAL.replace("name = \"old.example\"", "name = \"old example\"");
        assert!(error_of(&text).contains("domain.name"));
        let text = MINIMAL.replace("[server]", "[server]\ncommand_timeout = \"0s\"");
        assert!(error_of(&text).contains("server.command_timeout"));
        let text = MINIMAL.replace("[server]", "[server]\nmax_recipients = 0");
        assert!(error_of(&text).contains("server.max_recipients"));
        let text = format!("{MINIMAL}\n[dns]\nresolver = \"8.8.8.8\"");
        assert!(error_of(&text).contains("dns.resolver"));
    }

    #[test]
    fn metrics_never_listen_where_smtp_does() {
        let with = |smtp: &str, metrics: &str| {
            let text = MINIMAL.replace("127.0.0.1:2525", smtp)
                + &format!("\n[metrics]\nlisten = \"{metrics}\"\n");
            Config::parse(&text).map(|c| c.metrics_listen)
        };
        assert!(with("127.0.0.1:2525", "127.0.0.1:9425").is_ok_and(|m| m.is_some()));
        assert!(with("192.0.2.10:25", "10.0.0.5:9425").is_ok());
        for (smtp, metrics) in [
            ("127.0.0.1:2525", "0.0.0.0:9425"),
            ("0.0.0.0:25", "10.0.0.5:9425"),
            ("192.0.2.10:25", "192.0.2.10:9425"),
            ("127.0.0.1:2525", "127.0.0.1:2525"),
        ] {
            let err = with(smtp, metrics)
                .expect_err("must be refused")
                .to_string();
            assert!(err.contains("metrics.listen"), "{smtp} {metrics}: {err}");
        }
    }

    #[test]
    fn admin_listener_is_internal_too() {
        let text = MINIMAL.replace("127.0.0.1:2525", "0.0.0.0:25")
            + "[admin]\nlisten = \"0.0.0.0:8443\"\ncert = \"c\"\nkey = \"k\"\nclient_ca = \"ca\"\n";
        assert!(
            error_of(&text).contains("admin.listen"),
            "{}",
            error_of(&text)
        );
    }

    #[test]
    fn domain_readers_are_parsed_like_seal_recipients() {
        let reader = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN alice@rust";
        let text = format!(
            "{MINIMAL}readers = [\"{reader}\"]\n[[domain]]\nname = \"*.Other.example\"\n\
             readers = [\"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\", \"{reader}\"]\n\
             [[domain]]\nname = \"third.example\"\n"
        );
        let c = Config::parse(&text).expect("valid");
        let groups: Vec<(&str, usize)> = c
            .seal
            .readers
            .iter()
            .map(|(d, r)| (d.as_str(), r.len()))
            .collect();
        assert_eq!(groups, [("old.example", 1), ("other.example", 2)]);
    }

    #[test]
    fn bad_domain_readers_are_named() {
        for readers in ["[]", "[\"age1xx3z\"]", "[\"ecdsa-sha2-nistp256 AAAA\"]"] {
            let text = format!("{MINIMAL}readers = {readers}\n");
            let err = error_of(&text);
            assert!(
                err.contains("domain.readers") && err.contains("old.example"),
                "{readers}: {err}"
            );
        }
        let twice = format!(
            "{MINIMAL}readers = [\"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\"]\n\
             [[domain]]\nname = \"*.old.example\"\n\
             readers = [\"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\"]\n"
        );
        assert!(
            error_of(&twice).contains("domain.readers"),
            "{}",
            error_of(&twice)
        );
    }

    #[test]
    fn no_recipients_refuses_to_serve() {
        let text = MINIMAL.replace(
            "recipients = [\"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\"]",
            "",
        );
        let c = Config::parse(&text).expect("parses");
        let err = c.require_recipients().expect_err("must refuse").to_string();
        assert!(err.contains("seal.recipients"));
    }
}
