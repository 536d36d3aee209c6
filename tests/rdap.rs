//! The registration watch against an RDAP server the test starts on loopback: findings from
//! real HTTP answers, hostile answers, when no lookup may happen at all, and the server's
//! daily check exported as metrics (the only test here that installs the recorder).

mod common;

use std::time::{Duration, Instant};

use common::rdap::RdapServer;
use common::{Client as SmtpClient, run_cli};
use reclaim::config::{DnsResolver, RdapConfig};
use reclaim::dnscheck::{Finding, Status};
use reclaim::rdap::{self, Client, RdapError};

fn config_for(base: &str, timeout: Duration) -> RdapConfig {
    let mut config = RdapConfig {
        timeout,
        ..RdapConfig::default()
    };
    config
        .base_urls
        .insert("old.example".to_owned(), base.to_owned());
    config
}

async fn findings(server: &RdapServer, route: &str) -> Vec<Finding> {
    let config = config_for(&server.base(route), Duration::from_secs(5));
    let client = Client::from_config(&config).expect("client");
    rdap::check(&client, &config, &DnsResolver::Off, "old.example").await
}

fn get<'a>(found: &'a [Finding], check: &str) -> &'a Finding {
    found
        .iter()
        .find(|f| f.check == check)
        .unwrap_or_else(|| panic!("no {check} finding in {found:?}"))
}

#[tokio::test]
async fn registry_answers_become_findings_with_fixes() {
    let server = RdapServer::start("127.0.0.1", None).await;

    let ok = findings(&server, "ok").await;
    let reg = get(&ok, "registration");
    assert_eq!(reg.status, Status::Pass, "{reg:?}");
    assert!(reg.detail.contains("in 399 day") || reg.detail.contains("in 400 day"));
    assert!(reg.detail.contains("Test Registrar B.V."), "{}", reg.detail);
    assert_eq!(get(&ok, "registry-lock").status, Status::Pass);

    let soon = findings(&server, "soon").await;
    assert_eq!(get(&soon, "registration").status, Status::Fail);
    assert!(
        get(&soon, "registration")
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("renew"))
    );
    assert_eq!(get(&soon, "registry-lock").status, Status::Warn);

    let none = findings(&server, "noexp").await;
    let reg = get(&none, "registration");
    assert_eq!(reg.status, Status::Warn);
    assert!(
        reg.detail.contains("publishes no expiry date"),
        "{}",
        reg.detail
    );
    assert!(
        reg.fix
            .as_deref()
            .is_some_and(|f| f.contains("Test Registrar B.V.") && f.contains("paid-until"))
    );
    assert!(
        get(&none, "registry-lock")
            .detail
            .contains("registrar lock only")
    );

    let redemption = findings(&server, "redemption").await;
    let reg = get(&redemption, "registration");
    assert_eq!(reg.status, Status::Fail);
    assert!(reg.detail.contains("redemption period"), "{}", reg.detail);

    let gone = findings(&server, "gone").await;
    assert_eq!(get(&gone, "registration").status, Status::Fail);
    assert!(
        get(&gone, "registration")
            .detail
            .contains("free for anyone")
    );

    for route in ["malformed", "entity"] {
        let bad = findings(&server, route).await;
        let reg = get(&bad, "registration");
        assert_eq!(reg.status, Status::Warn, "{route}");
        assert!(
            reg.detail.contains("not an RDAP domain object"),
            "{route}: {}",
            reg.detail
        );
    }
}

#[tokio::test]
async fn hostile_answers_end_in_time_with_a_clear_error() {
    let elsewhere = RdapServer::start("127.0.0.2", None).await;
    let server = RdapServer::start("127.0.0.1", Some(elsewhere.base("ok"))).await;
    let lookup = |route: &str, timeout: Duration| {
        let config = config_for(&server.base(route), timeout);
        async move {
            let client = Client::from_config(&config).expect("client");
            rdap::lookup(&client, &config, &DnsResolver::Off, "old.example")
                .await
                .expect("planned")
        }
    };

    let started = Instant::now();
    let slow = lookup("slow", Duration::from_millis(500)).await;
    assert_eq!(slow, Err(RdapError::Timeout(Duration::from_millis(500))));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    let limit = RdapConfig::default().max_response_size;
    assert_eq!(
        lookup("huge", Duration::from_secs(10)).await,
        Err(RdapError::TooLarge(limit))
    );
    assert_eq!(
        lookup("declared-huge", Duration::from_secs(10)).await,
        Err(RdapError::TooLarge(limit))
    );

    // A plain-HTTP redirect to another server is refused; the lookup has ended, so the
    // other server would have been asked by now.
    let away = lookup("away", Duration::from_secs(5)).await;
    assert!(
        matches!(&away, Err(RdapError::Redirect(m)) if m.contains("127.0.0.2")),
        "{away:?}"
    );
    assert_eq!(elsewhere.hits(), 0);
    // Within the same server a redirect is followed.
    let hop = lookup("hop", Duration::from_secs(5))
        .await
        .expect("followed");
    assert!(hop.registry_locked());
}

const CHECK_CONFIG: &str = r#"
[server]
hostname = "mx.old.example"
listen = ["127.0.0.1:2525"]

[seal]
recipients = ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"]

[dns]
resolver = "static"
[dns.static]
"old.example MX" = ["10 mx.old.example."]
"mx.old.example A" = ["192.0.2.25"]
"old.example TXT" = ["v=spf1 -all"]
"_dmarc.old.example TXT" = ["v=DMARC1; p=reject"]
"lapsed.example MX" = ["10 mx.old.example."]

[[domain]]
name = "old.example"
[[domain]]
name = "lapsed.example"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_dns_looks_up_only_what_has_an_rdap_url() {
    let server = RdapServer::start("127.0.0.1", None).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // A bootstrap that would send every .example lookup to the test server: with a fixed
    // DNS table it must not be used.
    let bootstrap = common::write_file(
        dir.path(),
        "dns.json",
        format!(
            r#"{{"services": [[["example"], ["{}"]]]}}"#,
            server.base("ok")
        )
        .as_bytes(),
    );
    let text = format!(
        "{CHECK_CONFIG}\n[rdap]\nbootstrap = {:?}\n[rdap.base_url]\n\"lapsed.example\" = \"{}\"\n",
        bootstrap,
        server.base("redemption")
    );
    let config = common::write_file(dir.path(), "c.toml", text.as_bytes());
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
    let registration: Vec<&serde_json::Value> = found
        .iter()
        .filter(|f| f["check"] == "registration")
        .collect();
    assert_eq!(registration.len(), 1, "{registration:?}");
    assert_eq!(registration[0]["domain"], "lapsed.example");
    assert_eq!(registration[0]["status"], "fail");
    assert_eq!(server.hits(), 1, "only the explicit URL was asked");

    // The same with the watch switched off: nothing at all is asked.
    let off = text.replace("[rdap]\n", "[rdap]\nenabled = false\n");
    let config = common::write_file(dir.path(), "off.toml", off.as_bytes());
    let out = run_cli(
        ["-c", config.to_str().expect("utf8"), "check-dns", "--json"]
            .map(String::from)
            .to_vec(),
    )
    .await;
    let found: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    assert!(found.iter().all(|f| f["check"] != "registration"));
    assert_eq!(server.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_checks_registrations_and_exports_them() {
    let server = RdapServer::start("127.0.0.1", None).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let rest = format!(
        "[dns]\nresolver = \"off\"\n\n[[domain]]\nname = \"old.example\"\n[[domain]]\nname = \"quiet.example\"\n[[domain]]\nname = \"ending.example\"\n\n\
         [metrics]\nlisten = \"127.0.0.1:{port}\"\n\n[rdap]\ninterval = \"1h\"\n[rdap.base_url]\n\"old.example\" = \"{}\"\n\"quiet.example\" = \"{}\"\n\"ending.example\" = \"{}\"\n",
        server.base("ok"),
        server.base("noexp"),
        server.base("redemption"),
    );
    let mut gw = common::TestGateway::start_custom(common::Extra {
        rest: Some(&rest),
        ..common::Extra::default()
    })
    .await;
    // The first round runs at start; wait for its last gauge rather than for a time.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut body = common::scrape_metrics(port).await;
    while !body.contains("reclaim_domain_registration_status{domain=\"ending.example\"}") {
        assert!(Instant::now() < deadline, "no registration metrics: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        body = common::scrape_metrics(port).await;
    }
    let line = |prefix: &str| {
        body.lines()
            .find(|l| l.starts_with(prefix))
            .map(|l| l[prefix.len()..].trim().to_owned())
    };
    let days = line("reclaim_domain_registration_days_left{domain=\"old.example\"}")
        .and_then(|v| v.parse::<f64>().ok())
        .expect("days left for old.example");
    assert!((399.0..=400.0).contains(&days), "{days}");
    assert!(
        line("reclaim_domain_registration_expiry_timestamp_seconds{domain=\"old.example\"}")
            .is_some()
    );
    assert_eq!(
        line("reclaim_domain_registration_status{domain=\"old.example\"}").as_deref(),
        Some("0")
    );
    assert_eq!(
        line("reclaim_domain_registry_locked{domain=\"old.example\"}").as_deref(),
        Some("1")
    );
    // No expiry published: status warn, and no expiry gauge is made up.
    assert_eq!(
        line("reclaim_domain_registration_status{domain=\"quiet.example\"}").as_deref(),
        Some("1")
    );
    assert!(line("reclaim_domain_registration_days_left{domain=\"quiet.example\"}").is_none());
    assert_eq!(
        line("reclaim_domain_registration_status{domain=\"ending.example\"}").as_deref(),
        Some("2")
    );
    assert!(
        line("reclaim_domain_registration_checked_timestamp_seconds{domain=\"old.example\"}")
            .is_some()
    );
    assert_eq!(server.hits(), 3);

    // The watch does not get in the way of mail or of shutdown.
    let (mut c, _) = SmtpClient::connect(gw.addr).await;
    assert!(c.cmd("QUIT").await.starts_with("221"));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdap_bootstrap_fetches_a_current_copy_and_keeps_the_old_one_on_failure() {
    let server = RdapServer::start("127.0.0.1", None).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let old = r#"{"services": [[["old"], ["https://rdap.old.invalid/"]]]}"#;
    let target = common::write_file(dir.path(), "dns.json", old.as_bytes());
    let text = format!("{CHECK_CONFIG}\n[rdap]\nbootstrap = {target:?}\n");
    let config = common::write_file(dir.path(), "c.toml", text.as_bytes());
    let run = |extra: &[String]| {
        let mut args = vec![
            "-c".to_owned(),
            config.to_str().expect("utf8").to_owned(),
            "rdap-bootstrap".to_owned(),
        ];
        args.extend_from_slice(extra);
        run_cli(args)
    };
    let url = |route: &str| {
        vec![
            "--url".to_owned(),
            format!("{}dns.json", server.base(route)),
        ]
    };

    // A fixed DNS table: nothing is fetched from a place the operator did not name.
    let out = run(&[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--url"));
    assert_eq!(server.hits(), 0);

    // Answers that are no bootstrap file leave the old copy in place.
    for route in [
        "malformed",
        "bootstrap-empty",
        "entity",
        "gone",
        "declared-huge",
    ] {
        let out = run(&url(route)).await;
        assert_eq!(out.status.code(), Some(1), "{route}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("is unchanged"), "{route}: {stderr}");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), old);
    }

    let out = run(&url("bootstrap")).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("3 top-level domain(s), published 2026-11-30T12:00:00Z"),
        "{stdout}"
    );
    let fresh = reclaim::rdap::bootstrap::Bootstrap::load(&target).expect("written file parses");
    assert_eq!(
        fresh.base_url("gemeente.example").expect("example"),
        server.base("ok")
    );
    assert!(
        fresh.base_url("x.old").is_err(),
        "the old copy was replaced"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
