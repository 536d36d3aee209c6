//! The posture of a domain that sends no mail (internet.nl's parked-domain how-to, M3AAWG's
//! parked-domain practice): subdomains rejected by DMARC, reports going somewhere alive, no
//! DKIM key left, and no address or alias left pointing at something given up.

use super::leftover::{HostRecords, evaluate_host};
use super::{Finding, Status, finding};
use crate::config::ParkedConfig;
use crate::dns::Dns;
use crate::domains::RetiredDomains;

/// `tag=value` pairs of a DMARC or DKIM record, tags lower-case.
fn tags(record: &str) -> Vec<(String, String)> {
    record
        .split(';')
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect()
}

fn tag<'a>(tags: &'a [(String, String)], name: &str) -> Option<&'a str> {
    tags.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn dmarc_record(txt: &[String]) -> Option<&String> {
    txt.iter()
        .find(|t| t.trim().to_ascii_lowercase().starts_with("v=dmarc1"))
}

/// Subdomains must be rejected too (`sp=reject`, or `p=reject` with no `sp`).
pub fn evaluate_subdomain_policy(domain: &str, dmarc_txt: &[String]) -> Finding {
    let check = "dmarc-subdomains";
    let fix = Some(format!(
        "_dmarc.{domain}. TXT \"v=DMARC1; p=reject; sp=reject; adkim=s; aspf=s\""
    ));
    let Some(record) = dmarc_record(dmarc_txt) else {
        return finding(domain, check, Status::Fail, "no DMARC record", fix);
    };
    let t = tags(record);
    let lower = |v: Option<&str>| v.map(str::to_ascii_lowercase);
    match (
        lower(tag(&t, "sp")).as_deref(),
        lower(tag(&t, "p")).as_deref(),
    ) {
        (Some("reject"), _) => finding(domain, check, Status::Pass, "sp=reject", None),
        (None, Some("reject")) => finding(
            domain,
            check,
            Status::Pass,
            "no sp: p=reject applies to subdomains",
            None,
        ),
        (Some(sp), _) => finding(
            domain,
            check,
            Status::Fail,
            format!("sp={sp}: mail forged from any subdomain is not rejected"),
            fix,
        ),
        (None, _) => finding(
            domain,
            check,
            Status::Warn,
            "no sp and p is not reject: subdomains are not protected",
            fix,
        ),
    }
}

/// Where one `rua` address sends reports, as looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportTarget {
    pub domain: String,
    /// The domain is itself retired (reports land in the quarantine, unread).
    pub retired: bool,
    /// It has a mail exchanger that is not a null MX.
    pub receives_mail: bool,
    /// Same domain, or it publishes the RFC 7489 7.1 authorisation record.
    pub authorised: bool,
}

/// The domains of `rua=mailto:…` addresses (size suffixes dropped).
pub fn report_domains(dmarc_txt: &[String]) -> Vec<String> {
    let Some(record) = dmarc_record(dmarc_txt) else {
        return Vec::new();
    };
    let t = tags(record);
    tag(&t, "rua")
        .unwrap_or("")
        .split(',')
        .filter_map(|uri| {
            let uri = uri.trim();
            let address = uri
                .get(..7)?
                .eq_ignore_ascii_case("mailto:")
                .then(|| &uri[7..])?;
            let address = address.split('!').next().unwrap_or(address);
            let (_, domain) = address.rsplit_once('@')?;
            Some(domain.trim().trim_end_matches('.').to_ascii_lowercase())
        })
        .filter(|d| !d.is_empty())
        .collect()
}

/// DMARC aggregate reports must reach a domain that is alive and willing.
pub fn evaluate_reports(domain: &str, targets: &[ReportTarget]) -> Finding {
    let check = "dmarc-reports";
    let example = format!(
        "add rua=mailto:dmarc-reports@<your live domain> to _dmarc.{domain}, and publish {domain}._report._dmarc.<your live domain>. TXT \"v=DMARC1\""
    );
    if targets.is_empty() {
        return finding(
            domain,
            check,
            Status::Warn,
            "no rua: nobody hears about mail forged from this domain",
            Some(example),
        );
    }
    if let Some(dead) = targets.iter().find(|t| !t.receives_mail) {
        return finding(
            domain,
            check,
            Status::Fail,
            format!(
                "reports go to {}, which receives no mail (whoever registers it gets them)",
                dead.domain
            ),
            Some(example),
        );
    }
    if let Some(retired) = targets.iter().find(|t| t.retired) {
        return finding(
            domain,
            check,
            Status::Warn,
            format!(
                "reports go to {}, a retired domain: they end up in this quarantine",
                retired.domain
            ),
            Some(example),
        );
    }
    if let Some(unauthorised) = targets.iter().find(|t| !t.authorised) {
        return finding(
            domain,
            check,
            Status::Warn,
            format!(
                "{} has not authorised reports for {domain} (RFC 7489 7.1): receivers drop them",
                unauthorised.domain
            ),
            Some(format!(
                "{domain}._report._dmarc.{}. TXT \"v=DMARC1\"",
                unauthorised.domain
            )),
        );
    }
    let names: Vec<&str> = targets.iter().map(|t| t.domain.as_str()).collect();
    finding(
        domain,
        check,
        Status::Pass,
        format!("reports go to {}", names.join(", ")),
        None,
    )
}

/// The `p=` of a DKIM key record: `Some("")` for a revoked key, `None` for no key record.
fn dkim_key(txt: &[String]) -> Option<String> {
    txt.iter().find_map(|r| {
        let t = tags(r);
        tag(&t, "p").map(|p| p.split_whitespace().collect())
    })
}

/// `*._domainkey` should publish an empty key, so that no selector verifies.
pub fn evaluate_dkim_wildcard(domain: &str, wildcard_txt: &[String]) -> Finding {
    let check = "dkim-wildcard";
    let fix = Some(format!("*._domainkey.{domain}. TXT \"v=DKIM1; p=\""));
    match dkim_key(wildcard_txt).as_deref() {
        Some("") => finding(
            domain,
            check,
            Status::Pass,
            "*._domainkey publishes an empty key",
            None,
        ),
        Some(_) => finding(
            domain,
            check,
            Status::Fail,
            "*._domainkey publishes a real key: every selector verifies with it",
            fix,
        ),
        None => finding(
            domain,
            check,
            Status::Warn,
            "no empty wildcard DKIM key",
            fix,
        ),
    }
}

/// Old selectors must publish no key: a DKIM signature with a key that still verifies
/// passes DMARC even with `p=reject`.
pub fn evaluate_selectors(domain: &str, selectors: &[(String, Vec<String>)]) -> Finding {
    let check = "dkim-selectors";
    if selectors.is_empty() {
        return finding(
            domain,
            check,
            Status::Warn,
            "no old selectors listed, so none checked",
            Some(
                "list the selectors the domain signed with (s= in old mail's DKIM-Signature) in [parked] dkim_selectors"
                    .to_owned(),
            ),
        );
    }
    let live: Vec<&str> = selectors
        .iter()
        .filter(|(_, txt)| dkim_key(txt).is_some_and(|p| !p.is_empty()))
        .map(|(s, _)| s.as_str())
        .collect();
    if live.is_empty() {
        let names: Vec<&str> = selectors.iter().map(|(s, _)| s.as_str()).collect();
        return finding(
            domain,
            check,
            Status::Pass,
            format!("no key published for {}", names.join(", ")),
            None,
        );
    }
    finding(
        domain,
        check,
        Status::Fail,
        format!(
            "selector(s) {} still publish a key: whoever has the private key signs mail that passes DMARC",
            live.join(", ")
        ),
        Some(
            live.iter()
                .map(|s| format!("remove {s}._domainkey.{domain} (or publish \"v=DKIM1; p=\")"))
                .collect::<Vec<_>>()
                .join("; "),
        ),
    )
}

/// Gathers the records and runs the parked-domain checks for `domain`.
pub async fn check_parked(
    dns: &Dns,
    parked: &ParkedConfig,
    retired: &RetiredDomains,
    domain: &str,
    gateway: &str,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let dmarc = dns
        .txt(&format!("_dmarc.{domain}"))
        .await
        .unwrap_or_default();
    out.push(evaluate_subdomain_policy(domain, &dmarc));
    let mut targets = Vec::new();
    for target in report_domains(&dmarc) {
        targets.push(report_target(dns, retired, domain, target).await);
    }
    out.push(evaluate_reports(domain, &targets));
    let wildcard = dns
        .txt(&format!("*._domainkey.{domain}"))
        .await
        .unwrap_or_default();
    out.push(evaluate_dkim_wildcard(domain, &wildcard));
    let mut selectors = Vec::new();
    for s in &parked.dkim_selectors {
        let txt = dns
            .txt(&format!("{s}._domainkey.{domain}"))
            .await
            .unwrap_or_default();
        selectors.push((s.clone(), txt));
    }
    out.push(evaluate_selectors(domain, &selectors));
    for host in &parked.hosts {
        let name = if host == "@" {
            domain.to_owned()
        } else {
            format!("{host}.{domain}")
        };
        // The gateway must resolve; `mx-address` checks it.
        if name.eq_ignore_ascii_case(gateway) {
            continue;
        }
        let records = match dns.cname(&name).await.ok().flatten() {
            Some(target) => {
                let resolves = dns.host_ips(&target).await.is_ok_and(|ips| !ips.is_empty());
                HostRecords::Alias { target, resolves }
            }
            None => match dns.host_ips(&name).await {
                Ok(ips) if !ips.is_empty() => HostRecords::Addresses(ips),
                _ => HostRecords::Nothing,
            },
        };
        out.push(evaluate_host(domain, &name, &records));
    }
    out
}

async fn report_target(
    dns: &Dns,
    retired: &RetiredDomains,
    domain: &str,
    target: String,
) -> ReportTarget {
    let hosts = dns.mx_records(&target).await.unwrap_or_default();
    let receives_mail = if hosts.is_empty() {
        dns.host_ips(&target).await.is_ok_and(|ips| !ips.is_empty())
    } else {
        // A null MX (RFC 7505) is one record with the root as host.
        hosts
            .iter()
            .any(|(_, h)| !h.trim_end_matches('.').is_empty())
    };
    let same = target == domain || target.ends_with(&format!(".{domain}"));
    let authorised = same
        || dns
            .txt(&format!("{domain}._report._dmarc.{target}"))
            .await
            .unwrap_or_default()
            .iter()
            .any(|t| t.trim().to_ascii_lowercase().starts_with("v=dmarc1"));
    ReportTarget {
        retired: retired.matching(&target).is_some(),
        domain: target,
        receives_mail,
        authorised,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(items: &[&str]) -> Vec<String> {
        items.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn report_addresses_are_read() {
        let txt = s(&[
            "v=DMARC1; p=reject; rua=mailto:a@Reports.Example!10m, mailto:b@x.example,https://no",
        ]);
        assert_eq!(report_domains(&txt), ["reports.example", "x.example"]);
        assert!(report_domains(&s(&["v=DMARC1; p=reject"])).is_empty());
    }

    #[test]
    fn subdomain_policy() {
        let st = |r: &str| evaluate_subdomain_policy("old.example", &s(&[r])).status;
        assert_eq!(st("v=DMARC1; p=reject; sp=reject"), Status::Pass);
        assert_eq!(st("v=DMARC1; p=reject"), Status::Pass);
        assert_eq!(st("v=DMARC1; p=reject; sp=none"), Status::Fail);
        assert_eq!(st("v=DMARC1; p=none"), Status::Warn);
    }

    #[test]
    fn dkim_keys() {
        assert_eq!(
            evaluate_dkim_wildcard("old.example", &s(&["v=DKIM1; p="])).status,
            Status::Pass
        );
        assert_eq!(
            evaluate_dkim_wildcard("old.example", &s(&["v=DKIM1; k=rsa; p=MIIB AQAB"])).status,
            Status::Fail
        );
        assert_eq!(
            evaluate_dkim_wildcard("old.example", &[]).status,
            Status::Warn
        );
        let old = vec![
            ("s1".to_owned(), s(&["v=DKIM1; p="])),
            ("s2".to_owned(), s(&["v=DKIM1; p=MIIBAQAB"])),
        ];
        let f = evaluate_selectors("old.example", &old);
        assert_eq!(f.status, Status::Fail);
        assert!(f.detail.contains("s2") && !f.detail.contains("s1,"));
        assert_eq!(
            evaluate_selectors("old.example", &old[..1]).status,
            Status::Pass
        );
    }
}
