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
    /// How many notices one sender and the whole gateway may get.
    pub limits: NoticeLimits,
    /// Undelivered notices are dropped after this long.
    pub max_age: Duration,
    pub relay: Option<RelayConfig>,
    /// Folder whose `en.txt` / `nl.txt` override the built-in templates; `None`: built-in.
    pub templates: Option<PathBuf>,
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

/// Which authentication of the envelope sender for its own domain a notice requires.
/// `From:` never counts: notices go to the envelope sender, so only proof about that
/// address's domain says the notice reaches whoever sent the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRequirement {
    /// SPF passes for the MAIL FROM domain, or a passing DKIM signature's `d=` is aligned
    /// with it (the default).
    SpfOrDkim,
    /// SPF passes for the MAIL FROM domain.
    Spf,
    /// A passing DKIM signature's `d=` is aligned with the MAIL FROM domain.
    Dkim,
    /// No check: every eligible sender gets a notice.
    None,
}

/// Ceilings on notices beyond the per (sender, retired address) `interval`, so that a
/// catch-all (where every local part is new) cannot be used to aim notices in bulk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoticeLimits {
    /// At most this many notices per envelope sender in any `sender_interval`.
    pub sender_limit: u32,
    pub sender_interval: Duration,
    /// At most this many notices from the whole gateway in any hour.
    pub hourly_limit: u32,
    /// At most this many of those go to one sender organisation (the registrable domain of
    /// the envelope sender), so that one domain rotating its addresses cannot spend the
    /// whole hour and starve everybody else. At most `hourly_limit`.
    pub per_domain_hourly_limit: u32,
}

impl Default for NoticeLimits {
    fn default() -> Self {
        let hourly_limit = 100;
        Self {
            sender_limit: 5,
            sender_interval: Duration::from_secs(86400),
            hourly_limit,
            per_domain_hourly_limit: default_domain_limit(hourly_limit),
        }
    }
}

/// The default share of the hour one organisation may use: a tenth, at least one notice.
pub fn default_domain_limit(hourly_limit: u32) -> u32 {
    (hourly_limit / 10).max(1)
}

/// Upper bounds for the limits: each window is remembered as one timestamp per notice.
pub const MAX_SENDER_LIMIT: u32 = 1000;
pub const MAX_HOURLY_LIMIT: u32 = 10_000;

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
    // Notice limits (policy): keep these together.
    sender_limit: Option<u32>,
    sender_interval: Option<String>,
    hourly_limit: Option<u32>,
    per_domain_hourly_limit: Option<u32>,
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

/// Why DMARC-based values are gone, for the error that names their replacement.
const NO_DMARC: &str = "was removed: DMARC passes for the From: domain, which says nothing \
     about who owns the envelope sender that notices go to";

fn requirement(value: Option<&str>) -> Result<AuthRequirement, ConfigError> {
    let key = "notify.require";
    match value {
        None | Some("spf-or-dkim") => Ok(AuthRequirement::SpfOrDkim),
        Some("spf") => Ok(AuthRequirement::Spf),
        Some("dkim") => Ok(AuthRequirement::Dkim),
        Some("none") => Ok(AuthRequirement::None),
        Some("spf-or-dmarc") => Err(invalid(
            key,
            format!(
                "\"spf-or-dmarc\" {NO_DMARC}; use \"spf-or-dkim\" (SPF for the MAIL FROM domain, or DKIM aligned with it)"
            ),
        )),
        Some("dmarc") => Err(invalid(
            key,
            format!(
                "\"dmarc\" {NO_DMARC}; use \"dkim\" (a DKIM signature aligned with the MAIL FROM domain)"
            ),
        )),
        Some(other) => Err(invalid(
            key,
            format!("{other:?} is not spf-or-dkim, spf, dkim or none"),
        )),
    }
}

fn limits(raw: &RawNotify) -> Result<NoticeLimits, ConfigError> {
    let defaults = NoticeLimits::default();
    let bounded = |key: &'static str, value: Option<u32>, default: u32, max: u32| match value {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(invalid(key, format!("{n} is not between 1 and {max}"))),
    };
    let hourly_limit = bounded(
        "notify.hourly_limit",
        raw.hourly_limit,
        defaults.hourly_limit,
        MAX_HOURLY_LIMIT,
    )?;
    // The budget is a share of the hour: a larger one would mean nothing.
    let per_domain_hourly_limit = match raw.per_domain_hourly_limit {
        None => default_domain_limit(hourly_limit),
        Some(n) if (1..=hourly_limit).contains(&n) => n,
        Some(n) => {
            return Err(invalid(
                "notify.per_domain_hourly_limit",
                format!("{n} is not between 1 and hourly_limit ({hourly_limit})"),
            ));
        }
    };
    Ok(NoticeLimits {
        sender_limit: bounded(
            "notify.sender_limit",
            raw.sender_limit,
            defaults.sender_limit,
            MAX_SENDER_LIMIT,
        )?,
        sender_interval: duration(
            "notify.sender_interval",
            raw.sender_interval.clone(),
            defaults.sender_interval,
        )?,
        hourly_limit,
        per_domain_hourly_limit,
    })
}

pub(super) fn notify_config(raw: RawNotify) -> Result<NotifyConfig, ConfigError> {
    let require = requirement(raw.require.as_deref())?;
    let limits = limits(&raw)?;
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
        Some(text) => {
            parse_size(text).map_err(|m| invalid("notify.auth_max_message_size", m.to_string()))?
        }
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
        limits,
        max_age: duration(
            "notify.max_age",
            raw.max_age,
            Duration::from_secs(2 * 86400),
        )?,
        relay,
        templates: raw.templates,
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

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::super::tests::{MINIMAL, error_of};
    use super::*;

    fn with_notify(lines: &str) -> String {
        format!("{MINIMAL}\n[notify]\n{lines}\n")
    }

    #[test]
    fn require_values_and_removed_ones() {
        let parsed = |lines: &str| {
            Config::parse(&with_notify(lines))
                .expect("valid")
                .notify
                .require
        };
        assert_eq!(parsed(""), AuthRequirement::SpfOrDkim, "the default");
        for (value, expected) in [
            ("spf-or-dkim", AuthRequirement::SpfOrDkim),
            ("spf", AuthRequirement::Spf),
            ("dkim", AuthRequirement::Dkim),
            ("none", AuthRequirement::None),
        ] {
            assert_eq!(parsed(&format!("require = \"{value}\"")), expected);
        }
        for (removed, replacement) in [("spf-or-dmarc", "spf-or-dkim"), ("dmarc", "dkim")] {
            let err = error_of(&with_notify(&format!("require = \"{removed}\"")));
            assert!(err.contains("notify.require"), "{err}");
            assert!(err.contains("was removed"), "{err}");
            assert!(err.contains(&format!("use \"{replacement}\"")), "{err}");
        }
        let err = error_of(&with_notify("require = \"dmarc-or-spf\""));
        assert!(
            err.contains("is not spf-or-dkim, spf, dkim or none"),
            "{err}"
        );
    }

    #[test]
    fn notice_limits_have_defaults_and_bounds() {
        let limits = |lines: &str| Config::parse(&with_notify(lines)).map(|c| c.notify.limits);
        assert_eq!(limits("").expect("valid"), NoticeLimits::default());
        assert_eq!(
            limits("sender_limit = 2\nsender_interval = \"1h\"\nhourly_limit = 7").expect("valid"),
            NoticeLimits {
                sender_limit: 2,
                sender_interval: Duration::from_secs(3600),
                hourly_limit: 7,
                per_domain_hourly_limit: 1,
            }
        );
        let budget = |lines: &str| limits(lines).expect("valid").per_domain_hourly_limit;
        assert_eq!(budget(""), 10, "a tenth of the default hourly_limit");
        assert_eq!(budget("hourly_limit = 1000"), 100);
        assert_eq!(
            budget("hourly_limit = 40\nper_domain_hourly_limit = 40"),
            40
        );
        for (bad, key) in [
            ("sender_limit = 0", "notify.sender_limit"),
            ("sender_limit = 1001", "notify.sender_limit"),
            ("hourly_limit = 0", "notify.hourly_limit"),
            ("hourly_limit = 10001", "notify.hourly_limit"),
            ("sender_interval = \"0s\"", "notify.sender_interval"),
            (
                "per_domain_hourly_limit = 0",
                "notify.per_domain_hourly_limit",
            ),
            (
                "per_domain_hourly_limit = 101",
                "notify.per_domain_hourly_limit",
            ),
            (
                "hourly_limit = 5\nper_domain_hourly_limit = 6",
                "hourly_limit (5)",
            ),
        ] {
            let err = limits(bad).expect_err("refused").to_string();
            assert!(err.contains(key), "{bad}: {err}");
        }
    }
}
