//! Operator commands and signals: check-config, check-dns with a fixed DNS table, SIGHUP
//! certificate reload on the real binary.

mod common;

use std::time::Duration;

use common::run_cli;

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

const DNS_CONFIG: &str = r#"
[server]
hostname = "mx.old.example"
listen = ["127.0.0.1:2525"]

[seal]
recipients = ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"]

[dns]
resolver = "static"
[dns.static]
"good.example MX" = ["10 mx.old.example."]
"mx.old.example A" = ["192.0.2.25"]
"good.example TXT" = ["v=spf1 -all"]
"_dmarc.good.example TXT" = ["v=DMARC1; p=reject; sp=reject; rua=mailto:dmarc@new.example"]
"new.example MX" = ["10 mx.new.example."]
"good.example._report._dmarc.new.example TXT" = ["v=DMARC1"]
"*._domainkey.good.example TXT" = ["v=DKIM1; p="]
"bad.example MX" = ["10 mx.old.example.", "20 mx.parking.example."]
"bad.example TXT" = ["v=spf1 include:_spf.mailer.example ~all"]
"_dmarc.bad.example TXT" = ["v=DMARC1; p=none"]
"_mta-sts.bad.example TXT" = ["v=STSv1; id=2019"]

[parked]
dkim_selectors = ["s2019"]

[[domain]]
name = "good.example"
mode = "silent"

[[domain]]
name = "bad.example"
mode = "silent"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_dns_reports_what_to_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = common::write_file(dir.path(), "dns.toml", DNS_CONFIG.as_bytes());
    let config = config.to_str().expect("utf8").to_owned();

    let good = run_cli(args(&[
        "-c",
        &config,
        "check-dns",
        "good.example",
        "--json",
    ]))
    .await;
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let findings: Vec<serde_json::Value> = serde_json::from_slice(&good.stdout).expect("json");
    assert_eq!(findings.len(), 12);
    assert!(
        findings.iter().all(|f| f["status"] == "pass"),
        "{findings:?}"
    );

    let bad = run_cli(args(&["-c", &config, "check-dns", "bad.example", "--json"])).await;
    assert_eq!(
        bad.status.code(),
        Some(1),
        "a failed check fails the command"
    );
    let findings: Vec<serde_json::Value> = serde_json::from_slice(&bad.stdout).expect("json");
    let status = |check: &str| {
        findings
            .iter()
            .find(|f| f["check"] == check)
            .map(|f| f["status"].as_str().unwrap_or("").to_owned())
    };
    assert_eq!(status("mx").as_deref(), Some("fail"));
    assert_eq!(status("spf").as_deref(), Some("fail"));
    assert_eq!(status("dmarc").as_deref(), Some("warn"));
    assert_eq!(status("mta-sts").as_deref(), Some("warn"));
    let spf = findings.iter().find(|f| f["check"] == "spf").expect("spf");
    assert!(
        spf["fix"]
            .as_str()
            .is_some_and(|f| f.contains("v=spf1 -all"))
    );

    // Without arguments every configured domain is checked, as a table for people.
    let all = run_cli(args(&["-c", &config, "check-dns"])).await;
    let table = String::from_utf8_lossy(&all.stdout).into_owned();
    assert!(
        table.contains("good.example") && table.contains("bad.example") && table.contains("FAIL"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_validates_without_starting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = common::write_file(dir.path(), "good.toml", DNS_CONFIG.as_bytes());
    let out = run_cli(args(&["-c", good.to_str().expect("utf8"), "check-config"])).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK"));
    assert!(
        !dir.path().join("data").exists(),
        "check-config creates nothing"
    );

    let broken_cert = DNS_CONFIG.replace(
        "[seal]",
        "[tls]\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n\n[seal]",
    );
    let bad = common::write_file(dir.path(), "bad.toml", broken_cert.as_bytes());
    let out = run_cli(args(&["-c", bad.to_str().expect("utf8"), "check-config"])).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/cert.pem"));
}

/// The certificate a STARTTLS server presents, as DER, fetched with Python's smtplib.
async fn presented_certificate(port: u16) -> Vec<u8> {
    let script = r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
s.starttls(context=ctx)
sys.stdout.write(s.sock.getpeercert(binary_form=True).hex())
s.quit()
"#;
    let port = port.to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args(["-c", script, &port])
            .output()
            .expect("python3")
    })
    .await
    .expect("task");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hex = String::from_utf8(out.stdout).expect("hex");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

fn new_certificate(name: &str) -> (String, String) {
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("cert");
    (cert.pem(), key.serialize_pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_without_a_restart() {
    if !common::have("python3") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert_a, key_a) = new_certificate("first.old.example");
    let cert_path = common::write_file(dir.path(), "cert.pem", cert_a.as_bytes());
    let key_path = common::write_file(dir.path(), "key.pem", key_a.as_bytes());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let (_, recipient) = common::new_identity(dir.path(), "reviewer.key");
    let config = format!(
        "[server]\nhostname = \"mx.old.example\"\nlisten = [\"127.0.0.1:{port}\"]\n[tls]\ncert = {cert_path:?}\nkey = {key_path:?}\n[store]\npath = {:?}\nmin_free = \"0\"\n[seal]\nrecipients = [\"{recipient}\"]\n[admin]\nsocket = {:?}\n[dns]\nresolver = \"off\"\n[[domain]]\nname = \"old.example\"\n",
        dir.path().join("store"),
        dir.path().join("admin.sock"),
    );
    let config_path = common::write_file(dir.path(), "reclaim.toml", config.as_bytes());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_reclaim"))
        .args(["-c", config_path.to_str().expect("utf8"), "serve"])
        .env("RECLAIM_LOG", "warn")
        .spawn()
        .expect("start");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = presented_certificate(port).await;
    let hup = |pid: u32| {
        std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .expect("kill")
    };

    // A broken certificate on reload: the old one stays, the server stays up.
    std::fs::write(&cert_path, b"not a certificate").expect("write");
    assert!(hup(child.id()).success());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        presented_certificate(port).await,
        before,
        "a failed reload keeps the old certificate"
    );

    let (cert_b, key_b) = new_certificate("second.old.example");
    std::fs::write(&cert_path, cert_b.as_bytes()).expect("write");
    std::fs::write(&key_path, key_b.as_bytes()).expect("write");
    assert!(hup(child.id()).success());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = presented_certificate(port).await;
    assert_ne!(after, before, "the renewed certificate is served");
    assert!(
        child.try_wait().expect("status").is_none(),
        "SIGHUP does not stop the server"
    );

    // SIGTERM: a clean exit 0.
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill")
            .success()
    );
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_to_a_pipe_carry_no_colour_codes() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, recipient) = common::new_identity(dir.path(), "reviewer.key");
    let config = format!(
        "[server]\nhostname = \"mx.old.example\"\nlisten = [\"127.0.0.1:0\"]\n[store]\npath = {:?}\nmin_free = \"0\"\n[seal]\nrecipients = [\"{recipient}\"]\n[admin]\nsocket = {:?}\n[dns]\nresolver = \"off\"\n[[domain]]\nname = \"old.example\"\n",
        dir.path().join("store"),
        dir.path().join("admin.sock"),
    );
    let config_path = common::write_file(dir.path(), "reclaim.toml", config.as_bytes());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_reclaim"))
        .args(["-c", config_path.to_str().expect("utf8"), "serve"])
        .env("RECLAIM_LOG", "info")
        .env_remove("NO_COLOR")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start");
    let stderr = child.stderr.take().expect("piped");
    let lines = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.expect("log line");
            let done = line.contains("admin API listening");
            seen.push(line);
            if done {
                break;
            }
        }
        seen
    })
    .await
    .expect("reader");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(
        lines.iter().any(|l| l.contains("SMTP listening")),
        "{lines:?}"
    );
    assert!(
        lines.iter().all(|l| !l.contains('\x1b')),
        "escape codes in piped logs: {lines:?}"
    );
}
