//! The server's registration watch: looks every retired domain up at start and then every
//! `[rdap] interval`, logs what is wrong and exports it as metrics.

use std::time::SystemTime;

use tokio_util::sync::CancellationToken;

use super::{Client, Plan, findings, lookup, plan};
use crate::config::{DnsResolver, RdapConfig};
use crate::dnscheck::Status;
use crate::telemetry;

/// Everything the watch needs, owned by its task.
pub struct Watch {
    pub client: Client,
    pub config: RdapConfig,
    pub dns: DnsResolver,
    pub domains: Vec<String>,
}

impl Watch {
    /// The domains this watch will look up; empty when it has nothing to do.
    pub fn planned(&self) -> Vec<&str> {
        self.domains
            .iter()
            .filter(|d| {
                matches!(
                    plan(&self.config, &self.dns, d),
                    Plan::Url(_) | Plan::Bootstrap
                )
            })
            .map(String::as_str)
            .collect()
    }

    /// Checks until `shutdown`; returns at once when no domain is to be looked up.
    pub async fn run(self, shutdown: CancellationToken) {
        let planned: Vec<String> = self.planned().into_iter().map(str::to_owned).collect();
        if planned.is_empty() {
            tracing::debug!("registration watch: no domain to look up");
            return;
        }
        loop {
            for domain in &planned {
                let result = tokio::select! {
                    r = lookup(&self.client, &self.config, &self.dns, domain) => r,
                    _ = shutdown.cancelled() => return,
                };
                if let Some(result) = result {
                    record(domain, &result, SystemTime::now(), &self.config);
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.interval) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }
}

/// Logs a lookup's findings and sets the domain's gauges.
fn record(
    domain: &str,
    result: &Result<super::Registration, super::RdapError>,
    now: SystemTime,
    config: &RdapConfig,
) {
    let label = domain.to_owned();
    let found = findings::evaluate(domain, result, now, config);
    for f in &found {
        match f.status {
            Status::Pass => {
                tracing::info!(domain, check = f.check, detail = %f.detail, "registration")
            }
            Status::Warn => {
                tracing::warn!(domain, check = f.check, detail = %f.detail, fix = f.fix.as_deref().unwrap_or(""), "registration")
            }
            Status::Fail => {
                tracing::error!(domain, check = f.check, detail = %f.detail, fix = f.fix.as_deref().unwrap_or(""), "REGISTRATION AT RISK")
            }
        }
    }
    let state = found
        .iter()
        .find(|f| f.check == findings::REGISTRATION)
        .map_or(2.0, |f| match f.status {
            Status::Pass => 0.0,
            Status::Warn => 1.0,
            Status::Fail => 2.0,
        });
    metrics::gauge!(telemetry::REGISTRATION_STATUS, "domain" => label.clone()).set(state);
    let Ok(registration) = result else {
        return;
    };
    metrics::gauge!(telemetry::REGISTRATION_CHECKED, "domain" => label.clone())
        .set(unix_seconds(now));
    metrics::gauge!(telemetry::REGISTRATION_LOCKED, "domain" => label.clone()).set(
        if registration.registry_locked() {
            1.0
        } else {
            0.0
        },
    );
    // No expiry published: the expiry gauges stay absent rather than guessed.
    if let Some(expires) = registration.expires {
        metrics::gauge!(telemetry::REGISTRATION_EXPIRY, "domain" => label.clone())
            .set(unix_seconds(expires));
        metrics::gauge!(telemetry::REGISTRATION_DAYS_LEFT, "domain" => label)
            .set(findings::days_left(expires, now) as f64);
    }
}

fn unix_seconds(t: SystemTime) -> f64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as f64,
        Err(e) => -(e.duration().as_secs() as f64),
    }
}
