//! The config keys of reviewing: retention, the mutual-TLS admin listener and `[release]`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::delivery::deadlines;
use super::{ConfigError, RawAdmin, RawDomain, RawStore, duration, invalid, prefix};
use crate::retention::RetentionPolicy;
use crate::smtp_client::Deadlines;

/// `[admin] listen`, `cert`, `key`, `client_ca`, and the listener's bounds.
#[derive(Debug, Clone)]
pub struct AdminTcpConfig {
    pub listen: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Only client certificates issued by this CA are let in.
    pub client_ca: PathBuf,
    pub limits: AdminTcpLimits,
}

/// The most `[admin] max_connections_per_ip` may be: fewer than the admin API's 32 slots,
/// so that no single network can ever hold them all.
pub const MAX_ADMIN_CONNECTIONS_PER_IP: usize = 31;
/// The longest `[admin] tls_handshake_timeout`: a handshake takes a few round trips.
const MAX_ADMIN_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(300);

/// How the mutual-TLS admin listener keeps sockets that never authenticate from
/// locking reviewers out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminTcpLimits {
    /// `tls_handshake_timeout`: a connection without a finished handshake by then is closed
    /// and gives its slot back.
    pub handshake_timeout: Duration,
    /// `max_connections_per_ip`: connections one client network may hold; more are closed
    /// at once, before they take a slot.
    pub per_network: usize,
    /// `client_prefix_v4`, `client_prefix_v6`: how addresses are grouped into networks.
    pub prefix_v4: u8,
    pub prefix_v6: u8,
}

impl Default for AdminTcpLimits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            per_network: 8,
            prefix_v4: 32,
            prefix_v6: 64,
        }
    }
}

/// `[release] tls`: how the CLI protects the connection to the submission server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseTls {
    None,
    Opportunistic,
    Required,
}

/// Where the submission password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    File(PathBuf),
    Env(String),
}

/// Why a relay password could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password file {}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("password variable {0} is not set")]
    Env(String),
}

impl PasswordSource {
    /// Reads the password when it is needed, so that it never sits in the config; a final
    /// line end is not part of it.
    pub fn read(&self) -> Result<String, PasswordError> {
        let text = match self {
            PasswordSource::File(path) => {
                std::fs::read_to_string(path).map_err(|source| PasswordError::File {
                    path: path.clone(),
                    source,
                })?
            }
            PasswordSource::Env(var) => {
                std::env::var(var).map_err(|_| PasswordError::Env(var.clone()))?
            }
        };
        Ok(text.trim_end_matches(['\r', '\n']).to_owned())
    }
}

/// `[release]`: the organisation's submission server, used by `reclaim release`.
#[derive(Debug, Clone)]
pub struct ReleaseConfig {
    pub host: String,
    pub port: u16,
    pub tls: ReleaseTls,
    pub username: Option<String>,
    pub password: Option<PasswordSource>,
    /// Envelope sender and `Resent-From` of released messages.
    pub from: String,
    /// Extra CA (PEM) trusted for the relay's certificate, for an internal CA.
    pub ca: Option<PathBuf>,
    /// `connect_timeout`, `reply_timeout`, `attempt_timeout`: how long the CLI waits.
    pub deadlines: Deadlines,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRelease {
    relay: String,
    tls: Option<String>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    from: String,
    ca: Option<PathBuf>,
    connect_timeout: Option<String>,
    reply_timeout: Option<String>,
    attempt_timeout: Option<String>,
}

pub(super) fn retention(
    store: &RawStore,
    domains: &[RawDomain],
) -> Result<RetentionPolicy, ConfigError> {
    let default = duration(
        "store.retention",
        store.retention.clone(),
        Duration::from_secs(30 * 86_400),
    )?;
    let mut per_domain = Vec::new();
    for d in domains {
        if let Some(text) = &d.retention {
            let name = d.name.strip_prefix("*.").unwrap_or(&d.name);
            let name = crate::domains::normalize(name)
                .ok_or_else(|| invalid("domain.name", format!("{:?} is not valid", d.name)))?;
            per_domain.push((
                name,
                duration("domain.retention", Some(text.clone()), default)?,
            ));
        }
    }
    Ok(RetentionPolicy::new(default, per_domain))
}

pub(super) fn admin_tcp(raw: &RawAdmin) -> Result<Option<AdminTcpConfig>, ConfigError> {
    let Some(listen) = &raw.listen else {
        if raw.cert.is_some()
            || raw.key.is_some()
            || raw.client_ca.is_some()
            || raw.tls_handshake_timeout.is_some()
            || raw.max_connections_per_ip.is_some()
            || raw.client_prefix_v4.is_some()
            || raw.client_prefix_v6.is_some()
        {
            return Err(invalid(
                "admin.listen",
                "cert, key, client_ca and the TCP listener's limits only make sense with listen",
            ));
        }
        return Ok(None);
    };
    let listen = listen.parse().map_err(|_| {
        invalid(
            "admin.listen",
            format!("{listen:?} is not an IP:PORT address"),
        )
    })?;
    let need = |key: &'static str, value: &Option<PathBuf>| {
        value
            .clone()
            .ok_or_else(|| invalid(key, "required with admin.listen (mutual TLS only)"))
    };
    Ok(Some(AdminTcpConfig {
        listen,
        cert: need("admin.cert", &raw.cert)?,
        key: need("admin.key", &raw.key)?,
        client_ca: need("admin.client_ca", &raw.client_ca)?,
        limits: admin_tcp_limits(raw)?,
    }))
}

fn admin_tcp_limits(raw: &RawAdmin) -> Result<AdminTcpLimits, ConfigError> {
    let defaults = AdminTcpLimits::default();
    let handshake_timeout = duration(
        "admin.tls_handshake_timeout",
        raw.tls_handshake_timeout.clone(),
        defaults.handshake_timeout,
    )?;
    if handshake_timeout > MAX_ADMIN_HANDSHAKE_TIMEOUT {
        return Err(invalid("admin.tls_handshake_timeout", "must be at most 5m"));
    }
    let per_network = raw.max_connections_per_ip.unwrap_or(defaults.per_network);
    if !(1..=MAX_ADMIN_CONNECTIONS_PER_IP).contains(&per_network) {
        return Err(invalid(
            "admin.max_connections_per_ip",
            format!(
                "must be from 1 to {MAX_ADMIN_CONNECTIONS_PER_IP} (fewer than the API's 32 slots)"
            ),
        ));
    }
    Ok(AdminTcpLimits {
        handshake_timeout,
        per_network,
        prefix_v4: prefix(
            "admin.client_prefix_v4",
            raw.client_prefix_v4,
            defaults.prefix_v4,
            16..=32,
        )?,
        prefix_v6: prefix(
            "admin.client_prefix_v6",
            raw.client_prefix_v6,
            defaults.prefix_v6,
            32..=128,
        )?,
    })
}

pub(super) fn release(raw: RawRelease) -> Result<ReleaseConfig, ConfigError> {
    let (host, port) = raw
        .relay
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.trim_matches(['[', ']']), p.parse::<u16>().ok()?)))
        .filter(|(h, _)| !h.is_empty())
        .ok_or_else(|| invalid("release.relay", format!("{:?} is not HOST:PORT", raw.relay)))?;
    let tls = match raw.tls.as_deref() {
        None | Some("required") => ReleaseTls::Required,
        Some("opportunistic") => ReleaseTls::Opportunistic,
        Some("none") => ReleaseTls::None,
        Some(other) => {
            return Err(invalid(
                "release.tls",
                format!("{other:?} is not none, opportunistic or required"),
            ));
        }
    };
    let password = match (raw.password_file, raw.password_env) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "release.password_file",
                "give password_file or password_env, not both",
            ));
        }
        (Some(path), None) => Some(PasswordSource::File(path)),
        (None, Some(var)) => Some(PasswordSource::Env(var)),
        (None, None) => None,
    };
    if password.is_some() && raw.username.is_none() {
        return Err(invalid("release.username", "a password needs a username"));
    }
    if !raw.from.contains('@') {
        return Err(invalid(
            "release.from",
            format!("{:?} is not an address", raw.from),
        ));
    }
    let deadlines = deadlines(
        [
            "release.connect_timeout",
            "release.reply_timeout",
            "release.attempt_timeout",
        ],
        [raw.connect_timeout, raw.reply_timeout, raw.attempt_timeout],
    )?;
    Ok(ReleaseConfig {
        host: host.to_owned(),
        port,
        tls,
        username: raw.username,
        password,
        from: raw.from,
        ca: raw.ca,
        deadlines,
    })
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::super::tests::{MINIMAL, error_of};
    use super::*;

    #[test]
    fn review_keys_are_validated() {
        let text = MINIMAL.replace(
            "name = \"old.example\"",
            "name = \"*.old.example\"\nretention = \"90d\"",
        ) + "\n[store]\nretention = \"7d\"\naudit_retention = \"1y\"\n\n[release]\nrelay = \"smtp.new.example:587\"\ntls = \"opportunistic\"\nusername = \"q\"\npassword_env = \"PW\"\nfrom = \"quarantine@new.example\"\n";
        let c = Config::parse(&text).expect("valid");
        assert_eq!(c.store.retention.default(), Duration::from_secs(7 * 86_400));
        assert_eq!(
            c.store.retention.for_domains(&["old.example".into()]),
            Duration::from_secs(90 * 86_400)
        );
        let release = c.release.expect("release");
        assert_eq!(
            (release.host.as_str(), release.port),
            ("smtp.new.example", 587)
        );
        assert_eq!(release.tls, ReleaseTls::Opportunistic);
        assert_eq!(release.password, Some(PasswordSource::Env("PW".into())));
        assert_eq!(release.deadlines, super::super::delivery::DEFAULT_DEADLINES);

        let set = text.replace(
            "from = \"quarantine",
            "connect_timeout = \"1s\"\nreply_timeout = \"2s\"\nattempt_timeout = \"5s\"\nfrom = \"quarantine",
        );
        let release = Config::parse(&set)
            .expect("valid")
            .release
            .expect("release");
        assert_eq!(release.deadlines.reply, Duration::from_secs(2));
        assert_eq!(release.deadlines.attempt, Duration::from_secs(5));
        assert_eq!(release.deadlines.connect, Duration::from_secs(1));
        for (bad, key) in [
            ("reply_timeout = \"0s\"", "release.reply_timeout"),
            ("connect_timeout = \"2h\"", "release.connect_timeout"),
            ("attempt_timeout = \"1m\"", "release.attempt_timeout"),
        ] {
            let bad = text.replace(
                "from = \"quarantine",
                &format!("{bad}\nfrom = \"quarantine"),
            );
            assert!(error_of(&bad).contains(key), "{bad}");
        }

        let bad = format!("{MINIMAL}\n[release]\nrelay = \"nohost\"\nfrom = \"a@b.example\"\n");
        assert!(error_of(&bad).contains("release.relay"));
        let bad = bad.replace("nohost", "h:25\"\ntls = \"maybe");
        assert!(error_of(&bad).contains("release.tls"));
        let bad = format!("{MINIMAL}\n[admin]\nlisten = \"127.0.0.1:8443\"\n");
        assert!(error_of(&bad).contains("admin.cert"));
        let bad = format!("{MINIMAL}\n[admin]\nmax_connections_per_ip = 4\n");
        assert!(error_of(&bad).contains("admin.listen"));
        let bad = format!("{MINIMAL}\n[store]\nretention = \"forever\"\n");
        assert!(error_of(&bad).contains("store.retention"));
    }

    #[test]
    fn admin_listener_limits_are_validated() {
        let tcp = format!(
            "{MINIMAL}\n[admin]\nlisten = \"127.0.0.1:8443\"\ncert = \"c\"\nkey = \"k\"\nclient_ca = \"ca\"\n"
        );
        let limits = |text: &str| {
            Config::parse(text)
                .expect("valid")
                .admin
                .tcp
                .expect("TCP listener")
                .limits
        };
        assert_eq!(limits(&tcp), AdminTcpLimits::default());
        let set = format!(
            "{tcp}tls_handshake_timeout = \"3s\"\nmax_connections_per_ip = 2\nclient_prefix_v4 = 24\nclient_prefix_v6 = 48\n"
        );
        assert_eq!(
            limits(&set),
            AdminTcpLimits {
                handshake_timeout: Duration::from_secs(3),
                per_network: 2,
                prefix_v4: 24,
                prefix_v6: 48,
            }
        );
        for (bad, key) in [
            (
                "tls_handshake_timeout = \"0s\"",
                "admin.tls_handshake_timeout",
            ),
            (
                "tls_handshake_timeout = \"10m\"",
                "admin.tls_handshake_timeout",
            ),
            (
                "tls_handshake_timeout = \"soon\"",
                "admin.tls_handshake_timeout",
            ),
            ("max_connections_per_ip = 0", "admin.max_connections_per_ip"),
            (
                "max_connections_per_ip = 32",
                "admin.max_connections_per_ip",
            ),
            ("client_prefix_v4 = 33", "admin.client_prefix_v4"),
            ("client_prefix_v4 = 8", "admin.client_prefix_v4"),
            ("client_prefix_v6 = 129", "admin.client_prefix_v6"),
        ] {
            let text = format!("{tcp}{bad}\n");
            assert!(error_of(&text).contains(key), "{bad}: {}", error_of(&text));
        }
    }
}
