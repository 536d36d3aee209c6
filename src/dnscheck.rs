//! `check-dns`: what a reclaimed domain's DNS needs, checked record by record, each finding
//! with the fix. The evaluation is pure; [`check_domain`] only gathers the records.

use serde::Serialize;

use crate::dns::{Dns, DnsError};

mod leftover;
mod parked;

pub use leftover::{HostRecords, evaluate_host};
pub use parked::check_parked;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

/// One check of one domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub domain: String,
    pub check: &'static str,
    pub status: Status,
    pub detail: String,
    /// What to change, when something should change.
    pub fix: Option<String>,
}

fn finding(
    domain: &str,
    check: &'static str,
    status: Status,
    detail: impl Into<String>,
    fix: Option<String>,
) -> Finding {
    Finding {
        domain: domain.to_owned(),
        check,
        status,
        detail: detail.into(),
        fix,
    }
}

/// The MX records must name this gateway, and only it.
pub fn evaluate_mx(domain: &str, mx_hosts: &[String], gateway: &str) -> Finding {
    let fix = Some(format!("{domain}. MX 10 {gateway}."));
    let ours = |h: &String| h.trim_end_matches('.').eq_ignore_ascii_case(gateway);
    if mx_hosts.len() == 1 && mx_hosts[0].trim_end_matches('.').is_empty() {
        // The end state the exit rule leads to (RFC 7505).
        finding(
            domain,
            "mx",
            Status::Pass,
            "null MX: this domain's mail has ended for good; remove it from [[domain]] once its quarantine has expired",
            None,
        )
    } else if mx_hosts.is_empty() {
        finding(
            domain,
            "mx",
            Status::Fail,
            "no MX record: mail goes to the domain's A record, or nowhere",
            fix,
        )
    } else if mx_hosts.iter().all(ours) {
        finding(domain, "mx", Status::Pass, format!("MX is {gateway}"), None)
    } else if mx_hosts.iter().any(ours) {
        let others: Vec<&str> = mx_hosts
            .iter()
            .filter(|h| !ours(h))
            .map(String::as_str)
            .collect();
        finding(
            domain,
            "mx",
            Status::Fail,
            format!(
                "other MX hosts also receive this domain's mail: {}",
                others.join(", ")
            ),
            Some(format!("remove the MX records for {}", others.join(", "))),
        )
    } else {
        finding(
            domain,
            "mx",
            Status::Fail,
            format!("MX points elsewhere: {}", mx_hosts.join(", ")),
            fix,
        )
    }
}

/// The gateway's host name must resolve.
pub fn evaluate_mx_address(domain: &str, gateway: &str, addresses: usize) -> Finding {
    if addresses > 0 {
        finding(
            domain,
            "mx-address",
            Status::Pass,
            format!("{gateway} has {addresses} address(es)"),
            None,
        )
    } else {
        finding(
            domain,
            "mx-address",
            Status::Fail,
            format!("{gateway} has no A or AAAA record"),
            Some(format!("{gateway}. A <the gateway's public IPv4>")),
        )
    }
}

/// A retired domain sends no mail: SPF must be exactly `v=spf1 -all`.
pub fn evaluate_spf(domain: &str, txt: &[String]) -> Finding {
    let fix = Some(format!("{domain}. TXT \"v=spf1 -all\""));
    let spf: Vec<&String> = txt
        .iter()
        .filter(|t| t.trim().to_ascii_lowercase().starts_with("v=spf1"))
        .collect();
    match spf.as_slice() {
        [] => finding(
            domain,
            "spf",
            Status::Fail,
            "no SPF record: anyone may send as this domain",
            fix,
        ),
        [one] => {
            let terms: Vec<String> = one
                .split_whitespace()
                .map(str::to_ascii_lowercase)
                .collect();
            if terms == ["v=spf1", "-all"] {
                finding(domain, "spf", Status::Pass, "v=spf1 -all", None)
            } else {
                finding(
                    domain,
                    "spf",
                    Status::Fail,
                    format!("SPF allows senders: {one}"),
                    fix,
                )
            }
        }
        _ => finding(
            domain,
            "spf",
            Status::Fail,
            "several SPF records (a permanent error)",
            fix,
        ),
    }
}

/// DMARC must reject everything that claims to come from the retired domain.
pub fn evaluate_dmarc(domain: &str, txt: &[String]) -> Finding {
    let fix = Some(format!("_dmarc.{domain}. TXT \"v=DMARC1; p=reject\""));
    let Some(record) = txt
        .iter()
        .find(|t| t.trim().to_ascii_lowercase().starts_with("v=dmarc1"))
    else {
        return finding(domain, "dmarc", Status::Fail, "no DMARC record", fix);
    };
    let policy = record
        .split(';')
        .filter_map(|tag| tag.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("p"))
        .map(|(_, v)| v.trim().to_ascii_lowercase());
    match policy.as_deref() {
        Some("reject") => finding(domain, "dmarc", Status::Pass, "p=reject", None),
        Some(other) => finding(
            domain,
            "dmarc",
            Status::Warn,
            format!("p={other}: forged mail is not rejected"),
            fix,
        ),
        None => finding(
            domain,
            "dmarc",
            Status::Fail,
            "DMARC record without a policy",
            fix,
        ),
    }
}

/// A wildcard record answers every name, so web traffic for old links goes wherever it
/// points (often the domain's previous owner or a parking service).
pub fn evaluate_wildcard(domain: &str, probe: &str, addresses: usize) -> Finding {
    if addresses == 0 {
        finding(
            domain,
            "wildcard",
            Status::Pass,
            "no wildcard A/AAAA records",
            None,
        )
    } else {
        finding(
            domain,
            "wildcard",
            Status::Warn,
            format!("{probe} resolves: a wildcard record sends traffic for any name somewhere"),
            Some(format!(
                "remove *.{domain} A/AAAA/CNAME records unless you run that host"
            )),
        )
    }
}

/// An MTA-STS record, if any: senders may cache a policy, so the id must change whenever
/// the policy does, and the policy must list this gateway.
pub fn evaluate_mta_sts(domain: &str, txt: &[String]) -> Finding {
    let Some(record) = txt
        .iter()
        .find(|t| t.trim().to_ascii_lowercase().starts_with("v=stsv1"))
    else {
        return finding(
            domain,
            "mta-sts",
            Status::Pass,
            "no MTA-STS policy published (fine for a retired domain)",
            None,
        );
    };
    let id = record
        .split(';')
        .filter_map(|tag| tag.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("id"))
        .map(|(_, v)| v.trim().to_owned());
    finding(
        domain,
        "mta-sts",
        Status::Warn,
        format!(
            "MTA-STS published (id={}); its policy is not fetched by this check",
            id.as_deref().unwrap_or("missing")
        ),
        Some(format!(
            "make sure https://mta-sts.{domain}/.well-known/mta-sts.txt lists `mx: <this gateway>` and give _mta-sts.{domain} a new id, so that senders drop a policy cached from the previous owner"
        )),
    )
}

fn lookup_failed(domain: &str, check: &'static str, error: &DnsError) -> Finding {
    finding(
        domain,
        check,
        Status::Fail,
        format!("lookup failed: {error}"),
        None,
    )
}

/// Runs every check for `domain`, expecting `gateway` as its MX host.
pub async fn check_domain(dns: &Dns, domain: &str, gateway: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    match dns.mx_records(domain).await {
        Ok(records) => {
            let hosts: Vec<String> = records.into_iter().map(|(_, h)| h).collect();
            out.push(evaluate_mx(domain, &hosts, gateway));
        }
        Err(e) => out.push(lookup_failed(domain, "mx", &e)),
    }
    let gateway_ips = dns
        .host_ips(gateway)
        .await
        .map(|ips| ips.len())
        .unwrap_or(0);
    out.push(evaluate_mx_address(domain, gateway, gateway_ips));
    match dns.txt(domain).await {
        Ok(txt) => out.push(evaluate_spf(domain, &txt)),
        Err(e) => out.push(lookup_failed(domain, "spf", &e)),
    }
    match dns.txt(&format!("_dmarc.{domain}")).await {
        Ok(txt) => out.push(evaluate_dmarc(domain, &txt)),
        Err(e) => out.push(lookup_failed(domain, "dmarc", &e)),
    }
    let probe = format!(
        "reclaim-wildcard-check-{}.{domain}",
        uuid::Uuid::new_v4().simple()
    );
    let wildcard_ips = dns.host_ips(&probe).await.map(|ips| ips.len()).unwrap_or(0);
    out.push(evaluate_wildcard(domain, &probe, wildcard_ips));
    match dns.txt(&format!("_mta-sts.{domain}")).await {
        Ok(txt) => out.push(evaluate_mta_sts(domain, &txt)),
        Err(e) => out.push(lookup_failed(domain, "mta-sts", &e)),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(items: &[&str]) -> Vec<String> {
        items.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn evaluations() {
        let gw = "mx.old.example";
        assert_eq!(
            evaluate_mx("old.example", &s(&["mx.old.example."]), gw).status,
            Status::Pass
        );
        assert_eq!(
            evaluate_mx(
                "old.example",
                &s(&["mx.old.example", "mx.parking.example"]),
                gw
            )
            .status,
            Status::Fail
        );
        assert_eq!(evaluate_mx("old.example", &[], gw).status, Status::Fail);
        assert_eq!(
            evaluate_mx("old.example", &s(&[""]), gw).status,
            Status::Pass
        );
        assert_eq!(
            evaluate_spf("old.example", &s(&["v=spf1 -all"])).status,
            Status::Pass
        );
        assert_eq!(
            evaluate_spf("old.example", &s(&["v=spf1 include:_spf.google.com ~all"])).status,
            Status::Fail
        );
        assert_eq!(
            evaluate_spf("old.example", &s(&["google-site-verification=x"])).status,
            Status::Fail
        );
        assert_eq!(
            evaluate_dmarc("old.example", &s(&["v=DMARC1; p=reject; rua=mailto:x@y"])).status,
            Status::Pass
        );
        assert_eq!(
            evaluate_dmarc("old.example", &s(&["v=DMARC1; p=none"])).status,
            Status::Warn
        );
        assert_eq!(evaluate_dmarc("old.example", &[]).status, Status::Fail);
        assert_eq!(
            evaluate_wildcard("old.example", "x.old.example", 1).status,
            Status::Warn
        );
        assert_eq!(evaluate_mta_sts("old.example", &[]).status, Status::Pass);
        let sts = evaluate_mta_sts("old.example", &s(&["v=STSv1; id=20190101"]));
        assert_eq!(sts.status, Status::Warn);
        assert!(sts.detail.contains("id=20190101"));
        assert!(
            evaluate_spf("old.example", &[])
                .fix
                .is_some_and(|f| f.contains("v=spf1 -all"))
        );
    }
}
