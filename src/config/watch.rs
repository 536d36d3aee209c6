//! The config keys of watching a retired domain: `[rdap]` (its registration) and `[parked]`
//! (what `check-dns` expects of a domain that sends no mail).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, duration, invalid};
use crate::units::parse_size;

/// The largest RDAP answer that may be allowed: real ones are a few KiB.
const MAX_RDAP_RESPONSE_SIZE: u64 = 16 * 1024 * 1024;

/// `[rdap]`: the registration watch.
#[derive(Debug, Clone)]
pub struct RdapConfig {
    /// `enabled = false` turns every RDAP lookup off, explicit base URLs included.
    pub enabled: bool,
    /// A current copy of the IANA bootstrap file for DNS (RFC 9224); `None`: the copy built
    /// into the binary.
    pub bootstrap: Option<PathBuf>,
    /// Per domain: the RDAP base URL to ask instead of the bootstrap's.
    pub base_urls: BTreeMap<String, String>,
    /// Connect, request and body together, per lookup.
    pub timeout: Duration,
    pub max_response_size: u64,
    /// How often the server checks (and once at start).
    pub interval: Duration,
    /// Fewer days left than this: warn.
    pub warn_days: u32,
    /// Fewer days left than this: fail.
    pub fail_days: u32,
}

impl Default for RdapConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bootstrap: None,
            base_urls: BTreeMap::new(),
            timeout: Duration::from_secs(10),
            max_response_size: 256 * 1024,
            interval: Duration::from_secs(86_400),
            warn_days: 60,
            fail_days: 14,
        }
    }
}

/// `[parked]`: what a domain that sends no mail should still (not) publish.
#[derive(Debug, Clone, Default)]
pub struct ParkedConfig {
    /// DKIM selectors the domain used to sign with; each must publish no key any more.
    pub dkim_selectors: Vec<String>,
    /// Host names under each retired domain checked for address records and CNAMEs
    /// (`"@"` is the domain itself).
    pub hosts: Vec<String>,
}

/// `[exit]`: when `report --exit` says a domain's mail can end for good.
#[derive(Debug, Clone)]
pub struct ExitConfig {
    /// No legitimate sender for this long: the domain may get a null MX.
    pub quiet_after: Duration,
    /// A told sender who writes again later than this after the first message "still writes".
    pub grace: Duration,
    /// Weeks shown in the trend.
    pub weeks: usize,
}

impl Default for ExitConfig {
    fn default() -> Self {
        Self {
            quiet_after: Duration::from_secs(90 * 86_400),
            grace: Duration::from_secs(86_400),
            weeks: 12,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExit {
    quiet_after: Option<String>,
    grace: Option<String>,
    weeks: Option<usize>,
}

pub(super) fn exit_config(raw: RawExit) -> Result<ExitConfig, ConfigError> {
    let d = ExitConfig::default();
    let weeks = raw.weeks.unwrap_or(d.weeks);
    if !(1..=520).contains(&weeks) {
        return Err(invalid("exit.weeks", "must be between 1 and 520"));
    }
    Ok(ExitConfig {
        quiet_after: duration("exit.quiet_after", raw.quiet_after, d.quiet_after)?,
        grace: duration("exit.grace", raw.grace, d.grace)?,
        weeks,
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRdap {
    enabled: Option<bool>,
    bootstrap: Option<PathBuf>,
    #[serde(default)]
    base_url: BTreeMap<String, String>,
    timeout: Option<String>,
    max_response_size: Option<String>,
    interval: Option<String>,
    warn_days: Option<u32>,
    fail_days: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawParked {
    #[serde(default)]
    dkim_selectors: Vec<String>,
    hosts: Option<Vec<String>>,
}

pub(super) fn rdap_config(raw: RawRdap) -> Result<RdapConfig, ConfigError> {
    let d = RdapConfig::default();
    let max_response_size = match raw.max_response_size {
        None => d.max_response_size,
        Some(text) => {
            parse_size(&text).map_err(|m| invalid("rdap.max_response_size", m.to_string()))?
        }
    };
    if !(1024..=MAX_RDAP_RESPONSE_SIZE).contains(&max_response_size) {
        return Err(invalid(
            "rdap.max_response_size",
            "must be between 1KiB and 16MiB",
        ));
    }
    let mut base_urls = BTreeMap::new();
    for (domain, url) in raw.base_url {
        let name = crate::domains::normalize(&domain)
            .ok_or_else(|| invalid("rdap.base_url", format!("{domain:?} is not a domain")))?;
        let parsed = reqwest::Url::parse(&url)
            .map_err(|e| invalid("rdap.base_url", format!("{url:?}: {e}")))?;
        if !matches!(parsed.scheme(), "https" | "http") {
            return Err(invalid(
                "rdap.base_url",
                format!("{url:?} is not an http(s) URL"),
            ));
        }
        base_urls.insert(name, url);
    }
    let warn_days = raw.warn_days.unwrap_or(d.warn_days);
    let fail_days = raw.fail_days.unwrap_or(d.fail_days);
    if fail_days > warn_days || warn_days > 3650 {
        return Err(invalid(
            "rdap.warn_days",
            "must be at least rdap.fail_days and at most 3650",
        ));
    }
    Ok(RdapConfig {
        enabled: raw.enabled.unwrap_or(d.enabled),
        bootstrap: raw.bootstrap.or(d.bootstrap),
        base_urls,
        timeout: duration("rdap.timeout", raw.timeout, d.timeout)?,
        max_response_size,
        interval: duration("rdap.interval", raw.interval, d.interval)?,
        warn_days,
        fail_days,
    })
}

pub(super) fn parked_config(raw: RawParked) -> Result<ParkedConfig, ConfigError> {
    let label = |s: &String| {
        !s.is_empty()
            && s.len() <= 63
            && s.split('.')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    };
    if let Some(bad) = raw.dkim_selectors.iter().find(|s| !label(s)) {
        return Err(invalid(
            "parked.dkim_selectors",
            format!("{bad:?} is not a selector"),
        ));
    }
    let hosts = raw
        .hosts
        .unwrap_or_else(|| vec!["@".to_owned(), "www".to_owned()]);
    if let Some(bad) = hosts.iter().find(|h| h.as_str() != "@" && !label(h)) {
        return Err(invalid(
            "parked.hosts",
            format!("{bad:?} is not a host label (or \"@\")"),
        ));
    }
    Ok(ParkedConfig {
        dkim_selectors: raw.dkim_selectors,
        hosts,
    })
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::super::tests::{MINIMAL, error_of};
    use std::time::Duration;

    #[test]
    fn rdap_and_parked_keys() {
        let c = Config::parse(MINIMAL).expect("valid");
        assert!(c.rdap.enabled && c.rdap.base_urls.is_empty());
        assert_eq!(c.rdap.timeout, Duration::from_secs(10));
        assert_eq!(c.parked.hosts, ["@", "www"]);
        let text = format!(
            "{MINIMAL}\n[rdap]\nenabled = false\ntimeout = \"3s\"\n[rdap.base_url]\n\"Old.Example.\" = \"https://rdap.test/\"\n[parked]\ndkim_selectors = [\"s1\"]\n"
        );
        let c = Config::parse(&text).expect("valid");
        assert!(!c.rdap.enabled);
        assert_eq!(c.rdap.timeout, Duration::from_secs(3));
        assert_eq!(
            c.rdap.base_urls.get("old.example").map(String::as_str),
            Some("https://rdap.test/")
        );
        assert_eq!(c.parked.dkim_selectors, ["s1"]);
        for (bad, key) in [
            ("[rdap]\ntimeout = \"0s\"", "rdap.timeout"),
            (
                "[rdap]\nmax_response_size = \"1GiB\"",
                "rdap.max_response_size",
            ),
            ("[rdap]\nwarn_days = 5\nfail_days = 10", "rdap.warn_days"),
            (
                "[rdap.base_url]\n\"old.example\" = \"ftp://x/\"",
                "rdap.base_url",
            ),
            ("[rdap]\nbase = 1", "base"),
            (
                "[parked]\ndkim_selectors = [\"a b\"]",
                "parked.dkim_selectors",
            ),
            ("[parked]\nhosts = [\"*\"]", "parked.hosts"),
        ] {
            let err = error_of(&format!("{MINIMAL}\n{bad}\n"));
            assert!(err.contains(key), "{bad}: {err}");
        }
    }
}
