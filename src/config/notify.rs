//! `[notify]`, `[relocated]` and the per-domain notice settings: raw keys and validation.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::delivery::{DeliveryConfig, RawDelivery, delivery_config};
use super::{ConfigError, PasswordSource, RawDomain, duration, invalid};
use crate::units::parse_size;

/// `[notify]`: notices to senders of mail for retired addresses.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// From: of notices; `None` means no notice can be sent (notify domains act as silent).
    pub from: Option<String>,
    pub organisation: String,
    pub require: AuthRequirement,
    /// At most one notice per (sender, retired address) per interval.
    pub interval: Duration,
    /// Undelivered notices are dropped after this long.
    pub max_age: Duration,
    pub relay: Option<RelayConfig>,
    /// Folder with one template per language (`en.txt`, `nl.txt`).
    pub templates: PathBuf,
    /// How long notices say the copy is kept; default: the domain's retention.
    pub retention: Option<Duration>,
    /// Port of the senders' MX hosts for direct delivery (25 but in tests).
    pub mx_port: u16,
    /// Largest message kept in memory for DKIM (and so DMARC by DKIM) verification.
    pub auth_max_message_size: u64,
    /// First retry delay after a temporary delivery failure; doubles per attempt, up to an hour.
    pub retry_base: Duration,
    /// Deadlines, concurrency and reachable mail exchangers of delivery.
    pub delivery: DeliveryConfig,
}

/// Which sender authentication a notice requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRequirement {
    /// DMARC must pass.
    Dmarc,
    /// SPF must pass for the envelope sender.
    Spf,
    /// SPF or DMARC must pass (the default).
    SpfOrDmarc,
    /// No check: every eligible sender gets a notice.
    None,
}

/// A smarthost for notices.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub host: String,
    pub port: u16,
    pub tls: RelayTls,
    pub username: Option<String>,
    pub password: Option<PasswordSource>,
}

/// TLS towards the smarthost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayTls {
    None,
    Opportunistic,
    Required,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    from: Option<String>,
    organisation: Option<String>,
    require: Option<String>,
    interval: Option<String>,
    max_age: Option<String>,
    relay: Option<String>,
    relay_tls: Option<String>,
    relay_username: Option<String>,
    relay_password_file: Option<PathBuf>,
    relay_password_env: Option<String>,
    templates: Option<PathBuf>,
    retention: Option<String>,
    mx_port: Option<u16>,
    pub(super) local_part_case: Option<String>,
    auth_max_message_size: Option<String>,
    retry_base: Option<String>,
    // Delivery bounds, validated in `delivery.rs`.
    connect_timeout: Option<String>,
    reply_timeout: Option<String>,
    attempt_timeout: Option<String>,
    delivery_concurrency: Option<usize>,
    max_mx_hosts: Option<usize>,
    max_mx_addresses: Option<usize>,
    allow_private_mx: Option<bool>,
}

pub(super) fn domain_policy(d: &RawDomain) -> Result<crate::domains::DomainPolicy, ConfigError> {
    use crate::domains::{DomainPolicy, Language, Mode};
    let mode = match d.mode.as_deref() {
        None | Some("notify") => Mode::Notify,
        Some("bounce") => Mode::Bounce,
        Some("reject") => Mode::Reject,
        Some("silent") => Mode::Silent,
        Some(other) => {
            return Err(invalid(
                "domain.mode",
                format!("{other:?} is not notify, bounce, reject or silent"),
            ));
        }
    };
    let language = match d.language.as_deref() {
        None | Some("en") => Language::En,
        Some("nl") => Language::Nl,
        Some(other) => {
            return Err(invalid(
                "domain.language",
                format!("{other:?} is not en or nl"),
            ));
        }
    };
    let new_domain = match &d.new_domain {
        Some(name) => Some(crate::domains::normalize(name).ok_or_else(|| {
            invalid(
                "domain.new_domain",
                format!("{name:?} is not a domain name"),
            )
        })?),
        None => None,
    };
    let contact = match &d.contact {
        Some(address) => Some(checked_address("domain.contact", address)?),
        None => None,
    };
    Ok(DomainPolicy {
        mode,
        new_domain,
        contact,
        language,
    })
}

/// A plain `local@domain` address, as notices and relocation entries need.
fn checked_address(key: &'static str, address: &str) -> Result<String, ConfigError> {
    let ok = address.rsplit_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && !local
                .contains(|c: char| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
            && crate::domains::normalize(domain).is_some()
    });
    if ok {
        Ok(address.to_owned())
    } else {
        Err(invalid(key, format!("{address:?} is not an email address")))
    }
}

pub(super) fn notify_config(raw: RawNotify) -> Result<NotifyConfig, ConfigError> {
    let require = match raw.require.as_deref() {
        None | Some("spf-or-dmarc") => AuthRequirement::SpfOrDmarc,
        Some("dmarc") => AuthRequirement::Dmarc,
        Some("spf") => AuthRequirement::Spf,
        Some("none") => AuthRequirement::None,
        Some(other) => {
            return Err(invalid(
                "notify.require",
                format!("{other:?} is not dmarc, spf, spf-or-dmarc or none"),
            ));
        }
    };
    let from = match &raw.from {
        Some(address) => Some(checked_address("notify.from", address)?),
        None => None,
    };
    let relay = match &raw.relay {
        None => None,
        Some(text) => {
            let (host, port) = text
                .rsplit_once(':')
                .and_then(|(h, p)| {
                    Some((
                        h.trim_matches(|c| c == '[' || c == ']'),
                        p.parse::<u16>().ok()?,
                    ))
                })
                .filter(|(h, _)| !h.is_empty())
                .ok_or_else(|| invalid("notify.relay", format!("{text:?} is not HOST:PORT")))?;
            let tls = match raw.relay_tls.as_deref() {
                None | Some("required") => RelayTls::Required,
                Some("opportunistic") => RelayTls::Opportunistic,
                Some("none") => RelayTls::None,
                Some(other) => {
                    return Err(invalid(
                        "notify.relay_tls",
                        format!("{other:?} is not none, opportunistic or required"),
                    ));
                }
            };
            let password = match (&raw.relay_password_file, &raw.relay_password_env) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        "notify.relay_password_file",
                        "give relay_password_file or relay_password_env, not both",
                    ));
                }
                (Some(path), None) => Some(PasswordSource::File(path.clone())),
                (None, Some(var)) => Some(PasswordSource::Env(var.clone())),
                (None, None) => None,
            };
            if password.is_some() != raw.relay_username.is_some() {
                return Err(invalid(
                    "notify.relay_username",
                    "a relay username needs a password source and the other way round",
                ));
            }
            Some(RelayConfig {
                host: host.to_owned(),
                port,
                tls,
                username: raw.relay_username.clone(),
                password,
            })
        }
    };
    let auth_max_message_size = match &raw.auth_max_message_size {
        None => 1024 * 1024,
        Some(text) => parse_size(text).map_err(|m| invalid("notify.auth_max_message_size", m))?,
    };
    Ok(NotifyConfig {
        from,
        organisation: raw.organisation.unwrap_or_default(),
        require,
        interval: duration(
            "notify.interval",
            raw.interval,
            Duration::from_secs(7 * 86400),
        )?,
        max_age: duration(
            "notify.max_age",
            raw.max_age,
            Duration::from_secs(2 * 86400),
        )?,
        relay,
        templates: raw
            .templates
            .unwrap_or_else(|| PathBuf::from("config/notices")),
        retention: match raw.retention {
            Some(text) => Some(duration("notify.retention", Some(text), Duration::ZERO)?),
            None => None,
        },
        mx_port: raw.mx_port.unwrap_or(25),
        auth_max_message_size,
        retry_base: duration("notify.retry_base", raw.retry_base, Duration::from_secs(60))?,
        delivery: delivery_config(RawDelivery {
            connect_timeout: raw.connect_timeout,
            reply_timeout: raw.reply_timeout,
            attempt_timeout: raw.attempt_timeout,
            delivery_concurrency: raw.delivery_concurrency,
            max_mx_hosts: raw.max_mx_hosts,
            max_mx_addresses: raw.max_mx_addresses,
            allow_private_mx: raw.allow_private_mx,
        })?,
    })
}
