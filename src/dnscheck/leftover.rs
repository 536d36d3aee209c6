//! Address records and aliases left under a retired domain: an alias to a name the
//! organisation gave up (a cloud host, a SaaS name) lets whoever claims it serve that name.

use super::{Finding, Status, finding};

/// What one host name under the domain resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRecords {
    Nothing,
    Addresses(Vec<std::net::IpAddr>),
    Alias { target: String, resolves: bool },
}

/// Address records and aliases left behind: an alias to a name given up is a takeover.
pub fn evaluate_host(domain: &str, host: &str, records: &HostRecords) -> Finding {
    let check = "leftover-records";
    match records {
        HostRecords::Nothing => finding(
            domain,
            check,
            Status::Pass,
            format!("{host}: no address records or aliases"),
            None,
        ),
        HostRecords::Alias {
            target,
            resolves: false,
        } => finding(
            domain,
            check,
            Status::Warn,
            format!(
                "{host} is an alias for {target}, which does not resolve: whoever claims {target} takes {host} over"
            ),
            Some(format!("remove {host}. CNAME {target}.")),
        ),
        HostRecords::Alias { target, .. }
            if target == domain || target.ends_with(&format!(".{domain}")) =>
        {
            finding(
                domain,
                check,
                Status::Pass,
                format!("{host} is an alias within the domain ({target})"),
                None,
            )
        }
        HostRecords::Alias { target, .. } => finding(
            domain,
            check,
            Status::Warn,
            format!(
                "{host} is an alias for {target}: make sure the organisation still controls it"
            ),
            Some(format!(
                "remove {host}. CNAME {target}. unless you still run {target}"
            )),
        ),
        HostRecords::Addresses(ips) => {
            let list: Vec<String> = ips.iter().map(ToString::to_string).collect();
            finding(
                domain,
                check,
                Status::Warn,
                format!(
                    "{host} has address records ({}): a domain that only receives mail here needs none, and a given-up address is reused by others",
                    list.join(", ")
                ),
                Some(format!(
                    "remove the A/AAAA records of {host} unless you still run that host"
                )),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_addresses() {
        let st = |r: HostRecords| evaluate_host("old.example", "www.old.example", &r).status;
        assert_eq!(st(HostRecords::Nothing), Status::Pass);
        let alias = |target: &str, resolves| HostRecords::Alias {
            target: target.to_owned(),
            resolves,
        };
        assert_eq!(st(alias("gone.cloud.example", false)), Status::Warn);
        assert_eq!(st(alias("web.old.example", true)), Status::Pass);
        assert_eq!(st(alias("web.old.example.evil", true)), Status::Warn);
        assert_eq!(st(alias("shop.vendor.example", true)), Status::Warn);
        assert_eq!(
            st(HostRecords::Addresses(vec![
                "192.0.2.1".parse().expect("ip")
            ])),
            Status::Warn
        );
    }
}
