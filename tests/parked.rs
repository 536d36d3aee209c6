//! `check-dns` on the posture of a domain that sends no mail, from a fixed DNS table: each
//! domain below breaks one rule, and the finding for that rule says so with the fix.

mod common;

use common::run_cli;

const CONFIG: &str = r#"
[server]
hostname = "mx.old.example"
listen = ["127.0.0.1:2525"]

[seal]
recipients = ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"]

[parked]
dkim_selectors = ["s2019"]

[dns]
resolver = "static"
[dns.static]
"mx.old.example A" = ["192.0.2.25"]
"new.example MX" = ["10 mx.new.example."]
"other.example MX" = ["10 mx.other.example."]
"nullmx.example MX" = ["0 ."]
"good.example._report._dmarc.new.example TXT" = ["v=DMARC1"]
"_dmarc.good.example TXT" = ["v=DMARC1; p=reject; sp=reject; rua=mailto:dmarc@new.example"]
"*._domainkey.good.example TXT" = ["v=DKIM1; p="]
"s2019._domainkey.good.example TXT" = ["v=DKIM1; k=rsa; p="]
"_dmarc.subs.example TXT" = ["v=DMARC1; p=reject; sp=none"]
"_dmarc.noreports.example TXT" = ["v=DMARC1; p=reject"]
"_dmarc.deadreports.example TXT" = ["v=DMARC1; p=reject; rua=mailto:d@lapsed.example"]
"_dmarc.nullreports.example TXT" = ["v=DMARC1; p=reject; rua=mailto:d@nullmx.example"]
"_dmarc.selfreports.example TXT" = ["v=DMARC1; p=reject; rua=mailto:dmarc@selfreports.example"]
"selfreports.example MX" = ["10 mx.old.example."]
"_dmarc.unauth.example TXT" = ["v=DMARC1; p=reject; rua=mailto:d@other.example"]
"s2019._domainkey.keys.example TXT" = ["v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAx"]
"*._domainkey.realwild.example TXT" = ["v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAx"]
"dangling.example A" = ["198.51.100.7"]
"www.dangling.example CNAME" = ["oldsite.cloudhost.example."]
"alias.example A" = []
"www.alias.example CNAME" = ["web.alias.example."]
"web.alias.example A" = ["192.0.2.80"]
"www.outside.example CNAME" = ["shop.vendor.example."]
"shop.vendor.example A" = ["203.0.113.9"]

[[domain]]
name = "good.example"
[[domain]]
name = "subs.example"
[[domain]]
name = "noreports.example"
[[domain]]
name = "deadreports.example"
[[domain]]
name = "nullreports.example"
[[domain]]
name = "selfreports.example"
[[domain]]
name = "unauth.example"
[[domain]]
name = "keys.example"
[[domain]]
name = "realwild.example"
[[domain]]
name = "dangling.example"
[[domain]]
name = "alias.example"
[[domain]]
name = "outside.example"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_domain_posture_is_checked_rule_by_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = common::write_file(dir.path(), "parked.toml", CONFIG.as_bytes());
    let out = run_cli(
        ["-c", config.to_str().expect("utf8"), "check-dns", "--json"]
            .map(String::from)
            .to_vec(),
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    let get = |domain: &str, check: &str, needle: &str| -> (String, String) {
        let f = found
            .iter()
            .find(|f| {
                f["domain"] == domain
                    && f["check"] == check
                    && f["detail"].as_str().is_some_and(|d| d.contains(needle))
            })
            .unwrap_or_else(|| panic!("no {check} finding for {domain} with {needle:?}"));
        (
            f["status"].as_str().expect("status").to_owned(),
            f["fix"].as_str().unwrap_or("").to_owned(),
        )
    };

    for check in [
        "dmarc-subdomains",
        "dmarc-reports",
        "dkim-wildcard",
        "dkim-selectors",
        "leftover-records",
    ] {
        assert_eq!(get("good.example", check, "").0, "pass", "{check}");
    }

    let (status, fix) = get("subs.example", "dmarc-subdomains", "sp=none");
    assert_eq!(status, "fail");
    assert!(fix.contains("sp=reject"), "{fix}");

    let (status, fix) = get("noreports.example", "dmarc-reports", "no rua");
    assert_eq!(status, "warn");
    assert!(fix.contains("rua=mailto:"), "{fix}");
    assert_eq!(
        get("deadreports.example", "dmarc-reports", "lapsed.example").0,
        "fail"
    );
    assert_eq!(
        get("nullreports.example", "dmarc-reports", "receives no mail").0,
        "fail"
    );
    assert_eq!(
        get("selfreports.example", "dmarc-reports", "retired domain").0,
        "warn"
    );
    let (status, fix) = get("unauth.example", "dmarc-reports", "not authorised");
    assert_eq!(status, "warn");
    assert_eq!(
        fix,
        "unauth.example._report._dmarc.other.example. TXT \"v=DMARC1\""
    );

    let (status, fix) = get("keys.example", "dkim-wildcard", "no empty wildcard");
    assert_eq!(status, "warn");
    assert_eq!(fix, "*._domainkey.keys.example. TXT \"v=DKIM1; p=\"");
    let (status, fix) = get("keys.example", "dkim-selectors", "s2019");
    assert_eq!(status, "fail");
    assert!(fix.contains("s2019._domainkey.keys.example"), "{fix}");
    assert_eq!(
        get("realwild.example", "dkim-wildcard", "real key").0,
        "fail"
    );

    let (status, fix) = get("dangling.example", "leftover-records", "does not resolve");
    assert_eq!(status, "warn");
    assert_eq!(
        fix,
        "remove www.dangling.example. CNAME oldsite.cloudhost.example."
    );
    assert_eq!(
        get("dangling.example", "leftover-records", "198.51.100.7").0,
        "warn"
    );
    assert_eq!(
        get("alias.example", "leftover-records", "within the domain").0,
        "pass"
    );
    assert_eq!(
        get("outside.example", "leftover-records", "shop.vendor.example").0,
        "warn"
    );
}
