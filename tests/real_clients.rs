//! Standard clients a sender would use: Python's smtplib and swaks. CI installs both.

mod common;

use common::TestGateway;
use common::have;

async fn run(program: &str, args: Vec<String>) -> std::process::Output {
    let program = program.to_owned();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(program)
            .args(args)
            .output()
            .expect("run client")
    })
    .await
    .expect("client task")
}

const PYTHON_CLIENT: &str = r#"
import smtplib, ssl, sys
port = int(sys.argv[1])
msg = b"From: partner@partner.example\r\nSubject: via smtplib\r\n\r\nPYTHON-MARKER caf\xc3\xa9\r\n.hidden dot\r\n"
with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
    s.ehlo("client.example")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s.starttls(context=ctx)
    s.ehlo("client.example")
    refused = s.sendmail("partner@partner.example", ["jan@old.example", "Piet@OLD.EXAMPLE"], msg)
    assert refused == {}, refused
    try:
        s.sendmail("partner@partner.example", ["someone@elsewhere.example"], msg)
        raise SystemExit("relay accepted")
    except smtplib.SMTPRecipientsRefused as e:
        code = e.recipients["someone@elsewhere.example"][0]
        assert code == 550, code
print("ok")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_smtplib_with_starttls() {
    if !have("python3") {
        return;
    }
    let mut gw = TestGateway::start("").await;
    let out = run(
        "python3",
        vec![
            "-c".into(),
            PYTHON_CLIENT.into(),
            gw.addr.port().to_string(),
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = gw.list().await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["subject"], "via smtplib");
    assert_eq!(listed[0]["tls"], true);
    let exported = gw.export(listed[0]["id"].as_str().expect("id")).await;
    let (_, original) = common::split_trace(&exported);
    assert_eq!(original, "From: partner@partner.example\r\nSubject: via smtplib\r\n\r\nPYTHON-MARKER café\r\n.hidden dot\r\n".as_bytes());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaks_plain_and_tls() {
    if !have("swaks") {
        return;
    }
    let mut gw = TestGateway::start("").await;
    let server = format!("127.0.0.1:{}", gw.addr.port());
    for tls in [false, true] {
        let mut args: Vec<String> = [
            "--server",
            &server,
            "--from",
            "robot@partner.example",
            "--to",
            "jan@old.example",
            "--helo",
            "partner.example",
            "--header",
            "Subject: swaks test",
            "--body",
            "SWAKS-MARKER",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if tls {
            args.push("--tls".into());
        }
        let out = run("swaks", args).await;
        let transcript = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{transcript}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            transcript.contains(" 250 2.0.0 Ok: queued as"),
            "{transcript}"
        );
    }
    let out = run(
        "swaks",
        vec![
            "--server".into(),
            server.clone(),
            "--to".into(),
            "x@elsewhere.example".into(),
            "--from".into(),
            "a@b.example".into(),
        ],
    )
    .await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("<** 550 5.7.1"),
        "relay must be refused"
    );
    let listed = gw.list().await;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["tls"], true);
    assert_eq!(listed[1]["tls"], false);
    gw.stop().await;
}
