//! Judges a registration lookup as `check-dns` findings, each with the fix. Pure: the time
//! is given.

use std::time::SystemTime;

use super::{RdapError, Registration};
use crate::config::RdapConfig;
use crate::dnscheck::{Finding, Status};

/// The check name of the registration finding.
pub const REGISTRATION: &str = "registration";
/// The check name of the registry-lock finding.
pub const LOCK: &str = "registry-lock";

fn finding(
    domain: &str,
    check: &'static str,
    status: Status,
    detail: String,
    fix: Option<String>,
) -> Finding {
    Finding {
        domain: domain.to_owned(),
        check,
        status,
        detail,
        fix,
    }
}

/// Whole days from `now` until `expires` (negative once it has passed).
pub fn days_left(expires: SystemTime, now: SystemTime) -> i64 {
    match expires.duration_since(now) {
        Ok(ahead) => (ahead.as_secs() / 86_400) as i64,
        Err(past) => -(past.duration().as_secs().div_ceil(86_400) as i64),
    }
}

/// The findings for one domain's lookup.
pub fn evaluate(
    domain: &str,
    result: &Result<Registration, RdapError>,
    now: SystemTime,
    config: &RdapConfig,
) -> Vec<Finding> {
    let r = match result {
        Ok(r) => r,
        Err(RdapError::NotFound) => {
            return vec![finding(
                domain,
                REGISTRATION,
                Status::Fail,
                "the registry does not know this domain: it may be free for anyone to register \
                 (or it is a subdomain: watch the registered name instead)"
                    .to_owned(),
                Some(format!(
                    "check at once with your registrar whether {domain} is still yours; register it again if it lapsed"
                )),
            )];
        }
        Err(e) => {
            return vec![finding(
                domain,
                REGISTRATION,
                Status::Warn,
                format!("registration not checked: {e}"),
                Some(match e {
                    RdapError::NoService(_)
                    | RdapError::Bootstrap { .. }
                    | RdapError::BootstrapRead { .. } => format!(
                        "set [rdap] bootstrap to a current copy of https://data.iana.org/rdap/dns.json \
                         (now: {}) or set [rdap.base_url] \"{domain}\"; without RDAP, check the \
                         paid-until date with your registrar",
                        config
                            .bootstrap
                            .as_ref()
                            .map_or("the built-in copy".to_owned(), |p| p.display().to_string())
                    ),
                    _ => "check the expiry date with your registrar; if this persists, set \
                          [rdap.base_url] for this domain"
                        .to_owned(),
                }),
            )];
        }
    };
    let registrar = r.registrar.as_deref().unwrap_or("your registrar");
    let named = r.registrar.as_deref().unwrap_or("not published");
    let alarms = r.alarms();
    let registration = if !alarms.is_empty() {
        finding(
            domain,
            REGISTRATION,
            Status::Fail,
            format!(
                "status {}: the registration is ending; once deleted anyone can register {domain} and receive its mail",
                alarms.join(", ")
            ),
            Some(format!(
                "ask {registrar} today to renew or restore {domain} (a restore in the redemption period costs extra; after it, the name is gone)"
            )),
        )
    } else {
        match r.expires {
            None => finding(
                domain,
                REGISTRATION,
                Status::Warn,
                format!(
                    "the registry publishes no expiry date (registrar: {named}); none is guessed"
                ),
                Some(format!(
                    "ask {registrar} for the paid-until date of {domain}, turn on automatic renewal, and put the date in your calendar"
                )),
            ),
            Some(expires) => {
                let days = days_left(expires, now);
                let date = humantime::format_rfc3339_seconds(expires);
                let status = if days < i64::from(config.fail_days) {
                    Status::Fail
                } else if days < i64::from(config.warn_days) {
                    Status::Warn
                } else {
                    Status::Pass
                };
                let detail = if days < 0 {
                    format!("expired {} day(s) ago ({date}), registrar {named}", -days)
                } else {
                    format!("expires {date}, in {days} day(s), registrar {named}")
                };
                let fix = (status != Status::Pass).then(|| {
                    format!("renew {domain} with {registrar} now, for several years, and turn on automatic renewal")
                });
                finding(domain, REGISTRATION, status, detail, fix)
            }
        }
    };
    let lock = if r.registry_locked() {
        finding(
            domain,
            LOCK,
            Status::Pass,
            "registry lock (server delete/transfer/update prohibited)".to_owned(),
            None,
        )
    } else {
        let client_lock = r.has("client transfer prohibited");
        finding(
            domain,
            LOCK,
            Status::Warn,
            if client_lock {
                "registrar lock only (client transfer prohibited); no registry lock".to_owned()
            } else {
                "no transfer lock: the domain can be moved away by a request to the registrar"
                    .to_owned()
            },
            Some(format!(
                "ask {registrar} for a registry lock (server delete, transfer and update prohibited) on {domain}"
            )),
        )
    };
    vec![registration, lock]
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn reg(statuses: &[&str], expires: Option<SystemTime>) -> Registration {
        Registration {
            name: "old.example".to_owned(),
            expires,
            statuses: statuses.iter().map(|s| s.to_string()).collect(),
            registrar: Some("Registrar X".to_owned()),
        }
    }

    #[test]
    fn expiry_thresholds_and_alarms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        let day = Duration::from_secs(86_400);
        let c = RdapConfig::default();
        let status = |r: Registration| evaluate("old.example", &Ok(r), now, &c)[0].status;
        assert_eq!(status(reg(&[], Some(now + day * 400))), Status::Pass);
        assert_eq!(status(reg(&[], Some(now + day * 30))), Status::Warn);
        assert_eq!(status(reg(&[], Some(now + day * 3))), Status::Fail);
        assert_eq!(status(reg(&[], Some(now - day))), Status::Fail);
        assert_eq!(status(reg(&[], None)), Status::Warn);
        assert_eq!(
            status(reg(&["redemption period"], Some(now + day * 400))),
            Status::Fail
        );
        assert_eq!(days_left(now - day, now), -1);
        assert_eq!(days_left(now + day * 2 + Duration::from_secs(5), now), 2);
        let locked = evaluate(
            "old.example",
            &Ok(reg(&crate::rdap::registration::REGISTRY_LOCK, None)),
            now,
            &c,
        );
        assert_eq!(locked[1].status, Status::Pass);
        let unlocked = evaluate("old.example", &Ok(reg(&["active"], None)), now, &c);
        assert_eq!(unlocked[1].status, Status::Warn);
        let gone = evaluate("old.example", &Err(RdapError::NotFound), now, &c);
        assert_eq!((gone.len(), gone[0].status), (1, Status::Fail));
    }
}
