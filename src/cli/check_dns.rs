//! `reclaim check-dns`: checks a retired domain's DNS and prints what to fix.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context;

use super::{Exit, exit};
use crate::config::Config;
use crate::dns::Dns;
use crate::dnscheck::{Finding, Status, check_domain};
use crate::sanitize::sanitize;

pub fn run(
    config_path: &Path,
    domains: &[String],
    mx: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let config = Config::load(config_path)?;
    let dns = Dns::from_config(&config.dns).context("setting up DNS")?;
    if matches!(dns, Dns::Off) {
        anyhow::bail!(
            "DNS is off in {}: set [dns] resolver to check DNS",
            config_path.display()
        );
    }
    let gateway = mx
        .unwrap_or(&config.server.hostname)
        .trim_end_matches('.')
        .to_owned();
    let domains: Vec<String> = if domains.is_empty() {
        config.domains.names().map(str::to_owned).collect()
    } else {
        domains.to_vec()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let rdap = crate::rdap::Client::from_config(&config.rdap).context("setting up RDAP")?;
    let findings: Vec<Finding> = runtime.block_on(async {
        let mut all = Vec::new();
        for domain in &domains {
            let name = crate::domains::normalize(domain).unwrap_or_else(|| domain.clone());
            all.extend(check_domain(&dns, &name, &gateway).await);
            all.extend(
                crate::dnscheck::check_parked(
                    &dns,
                    &config.parked,
                    &config.domains,
                    &name,
                    &gateway,
                )
                .await,
            );
            all.extend(crate::rdap::check(&rdap, &config.rdap, &config.dns, &name).await);
        }
        all
    });
    let mut findings = findings;
    let names: Vec<String> = domains
        .iter()
        .map(|d| crate::domains::normalize(d).unwrap_or_else(|| d.clone()))
        .collect();
    findings.extend(super::exit_rule::gateway_findings(
        &config,
        &names,
        crate::clock::unix_now(),
    ));
    if json {
        super::terminal::write_json(&mut super::stdout::lock(), &findings)?;
    } else {
        let mut table = comfy_table::Table::new();
        table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
        table.set_header(["Domain", "Check", "Result", "Detail", "Fix"]);
        for f in &findings {
            let status = match f.status {
                Status::Pass => "pass",
                Status::Warn => "WARN",
                Status::Fail => "FAIL",
            };
            table.add_row([
                f.domain.clone(),
                f.check.to_owned(),
                status.to_owned(),
                sanitize(&f.detail),
                sanitize(f.fix.as_deref().unwrap_or("")),
            ]);
        }
        writeln!(super::stdout::lock(), "{table}")?;
    }
    let failed = findings.iter().filter(|f| f.status == Status::Fail).count();
    if failed > 0 {
        return Err(Exit {
            code: exit::FAILURE,
            message: format!("{failed} check(s) failed"),
        }
        .into());
    }
    Ok(())
}
