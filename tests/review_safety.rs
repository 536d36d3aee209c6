//! Reviewing cannot be turned against the reviewer or the organisation: release never
//! smuggles a second message, `show` keeps the gateway's verdict apart from the sender's
//! claims, and exports never land on a terminal, a symbolic link or an existing file.

mod common;

use std::time::Duration;

use common::TestGateway;
use common::recorder::Recorder;

/// A message whose body holds a bare LF before `.` CRLF and then SMTP commands: a relay
/// that takes the LF as a line end would read a second message from it.
const SMUGGLER: &[u8] = b"From: a@partner.example\r\nTo: jan@old.example\r\nSubject: please release\r\n\r\nfirst line\n.\r\nMAIL FROM:<x@evil.example>\r\nRCPT TO:<victim@new.example>\r\nDATA\r\nsmuggled\r\n.\r\nlast line\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_submits_exactly_one_message() {
    let relay = Recorder::start(0).await;
    let mut gw = TestGateway::start_releasing_to(relay.addr).await;
    let id = gw
        .send("a@partner.example", &["jan@old.example"], SMUGGLER)
        .await;
    let (_, stored) = common::split_trace(&gw.export(&id).await);
    assert_eq!(stored, SMUGGLER, "the gateway stores the bare LF as sent");

    gw.cli_ok(&[
        "release",
        &id,
        "--to",
        "case@new.example",
        "--reason",
        "ticket 9",
    ])
    .await;
    let received = relay.wait_ended(1, Duration::from_secs(20)).await;
    assert_eq!(received.len(), 1, "the relay read more than one message");
    let message = &received[0];
    assert_eq!(message.mail_from, "quarantine@new.example");
    assert_eq!(message.rcpt_to, ["case@new.example"]);
    assert!(
        message.data.contains(
            "\r\nfirst line\r\n.\r\nMAIL FROM:<x@evil.example>\r\nRCPT TO:<victim@new.example>\r\nDATA\r\nsmuggled\r\n.\r\nlast line\r\n"
        ),
        "{:?}",
        message.data
    );
    let bytes = message.data.as_bytes();
    let bare = (0..bytes.len()).any(|i| {
        (bytes[i] == b'\n' && (i == 0 || bytes[i - 1] != b'\r'))
            || (bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n'))
    });
    assert!(
        !bare,
        "a bare CR or LF reached the relay: {:?}",
        message.data
    );
    gw.stop().await;
}

/// A partner whose SPF and DMARC pass from 127.0.0.1, and a message that claims a DKIM pass
/// for a bank in its own `Authentication-Results`.
const VERIFIED_REST: &str = r#"
[dns]
resolver = "static"
[dns.static]
"partner.example TXT" = ["v=spf1 ip4:127.0.0.1 -all"]
"_dmarc.partner.example TXT" = ["v=DMARC1; p=reject"]

[[domain]]
name = "old.example"
"#;
const CLAIMING: &[u8] = b"Authentication-Results: mx.new.example; dkim=pass header.d=bank.example; dmarc=pass header.from=bank.example\r\nARC-Authentication-Results: i=1; mx.new.example; spf=pass smtp.mailfrom=bank.example\r\nFrom: Bank <a@partner.example>\r\nTo: jan@old.example\r\nSubject: your account\r\n\r\nhello\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_prints_the_gateways_verdict_apart_from_the_senders_claims() {
    let mut gw = TestGateway::start_sections("", VERIFIED_REST).await;
    let id = gw
        .send("a@partner.example", &["jan@old.example"], CLAIMING)
        .await;

    let text = gw.cli_ok(&["show", &id, "--reason", "ticket 9"]).await;
    let (verdict, rest) = text
        .split_once("Verified by reclaim when the message arrived:\n")
        .expect("the gateway's verdict is printed")
        .1
        .split_once("\n\n")
        .expect("the verdict ends in a blank line");
    assert!(
        verdict.contains("SPF       pass, for partner.example"),
        "{text}"
    );
    assert!(verdict.contains("DKIM      none"), "{text}");
    assert!(
        verdict.contains("DMARC     pass, for partner.example (From:)"),
        "{text}"
    );
    assert!(!verdict.contains("bank.example"), "{text}");
    let (before, claims) = rest
        .split_once("Claimed by the sender (not verified by reclaim):\n")
        .expect("the claims are labelled");
    assert!(!before.contains("bank.example"), "{text}");
    assert!(
        claims
            .contains("  Authentication-Results: mx.new.example; dkim=pass header.d=bank.example"),
        "{text}"
    );
    assert!(
        claims.contains("  ARC-Authentication-Results: i=1; mx.new.example; spf=pass"),
        "{text}"
    );

    let json: serde_json::Value = serde_json::from_str(
        &gw.cli_ok(&["show", &id, "--reason", "ticket 9", "--json"])
            .await,
    )
    .expect("JSON");
    let auth = &json["gateway_auth"];
    assert_eq!(auth["spf"]["result"], "pass");
    assert_eq!(auth["spf"]["domain"], "partner.example");
    assert_eq!(auth["dkim"]["result"], "none");
    assert_eq!(auth["dkim"]["domains"], serde_json::json!([]));
    assert_eq!(auth["dmarc"]["result"], "pass");
    assert_eq!(auth["dmarc"]["domain"], "partner.example");
    assert_eq!(json["sender_claims"][0]["field"], "Authentication-Results");
    assert_eq!(
        json["sender_claims"][1]["field"],
        "ARC-Authentication-Results"
    );
    assert!(json.get("auth_results").is_none(), "{json}");
    gw.stop().await;

    // DNS off: the gateway verified nothing, and show says so instead of echoing claims.
    let mut gw = TestGateway::start("").await;
    let id = gw
        .send("a@partner.example", &["jan@old.example"], CLAIMING)
        .await;
    let text = gw.cli_ok(&["show", &id, "--reason", "ticket 9"]).await;
    assert!(
        text.contains("Verified    nothing: reclaim checked no SPF, DKIM or DMARC"),
        "{text}"
    );
    let json = gw.cli_ok(&["show", &id, "--reason", "t", "--json"]).await;
    let json: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert!(json["gateway_auth"].is_null(), "{json}");
    gw.stop().await;
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

fn code_and_stderr(out: &std::process::Output) -> (Option<i32>, String) {
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_never_follows_links_or_overwrites_and_keeps_files_private() {
    let mut gw = TestGateway::start("").await;
    let id = gw
        .send(
            "a@partner.example",
            &["jan@old.example"],
            b"Subject: one\r\n\r\nx\r\n",
        )
        .await;
    let expected = gw.export(&id).await;
    let work = tempfile::tempdir().expect("tempdir");
    let victim = common::write_file(work.path(), "victim.txt", b"precious");

    // -o at a symbolic link: refused, whatever the link points to stays as it was.
    let link = work.path().join("link.eml");
    std::os::unix::fs::symlink(&victim, &link).expect("symlink");
    let link_arg = link.to_str().expect("utf8");
    for extra in [&[][..], &["--force"][..]] {
        let mut args = vec!["export", &id, "-o", link_arg, "--reason", "t"];
        args.extend_from_slice(extra);
        let (code, err) = code_and_stderr(&gw.cli(&args).await);
        assert_eq!(code, Some(2), "{extra:?}: {err}");
        assert!(err.contains("symbolic link"), "{err}");
    }
    assert_eq!(std::fs::read(&victim).expect("read"), b"precious");

    // A new file: mode 0600 and the message.
    let fresh = work.path().join("fresh.eml");
    let fresh_arg = fresh.to_str().expect("utf8");
    gw.cli_ok(&["export", &id, "-o", fresh_arg, "--reason", "t"])
        .await;
    assert_eq!(std::fs::read(&fresh).expect("read"), expected);
    assert_eq!(mode(&fresh), 0o600);

    // An existing file: refused without --force and left alone, replaced with it.
    let existing = victim.to_str().expect("utf8");
    let (code, err) = code_and_stderr(
        &gw.cli(&["export", &id, "-o", existing, "--reason", "t"])
            .await,
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("exists; pass --force"), "{err}");
    assert_eq!(std::fs::read(&victim).expect("read"), b"precious");
    gw.cli_ok(&["export", &id, "-o", existing, "--force", "--reason", "t"])
        .await;
    assert_eq!(std::fs::read(&victim).expect("read"), expected);
    assert_eq!(mode(&victim), 0o600, "the replacement is private too");

    // --mbox: the same rules.
    let mbox = common::write_file(work.path(), "old.mbox", b"keep");
    let mbox_arg = mbox.to_str().expect("utf8");
    let (code, err) = code_and_stderr(
        &gw.cli(&["export", "--mbox", mbox_arg, "--reason", "t"])
            .await,
    );
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(std::fs::read(&mbox).expect("read"), b"keep");
    gw.cli_ok(&["export", "--mbox", mbox_arg, "--force", "--reason", "t"])
        .await;
    assert!(std::fs::read(&mbox).expect("read").starts_with(b"From "));
    assert_eq!(mode(&mbox), 0o600);

    // --dir: a new folder is 0700 and its files 0600; a link planted at DIR/ID.eml is
    // refused before anything is written, and its target is untouched.
    let dir = work.path().join("out/nested");
    let dir_arg = dir.to_str().expect("utf8");
    gw.cli_ok(&["export", "--dir", dir_arg, "--reason", "t"])
        .await;
    let file = dir.join(format!("{id}.eml"));
    assert_eq!(std::fs::read(&file).expect("read"), expected);
    assert_eq!((mode(&dir), mode(&file)), (0o700, 0o600));
    let planted = work.path().join("planted");
    std::fs::create_dir(&planted).expect("mkdir");
    std::os::unix::fs::symlink(&mbox, planted.join(format!("{id}.eml"))).expect("symlink");
    let planted_arg = planted.to_str().expect("utf8");
    for extra in [&[][..], &["--force"][..]] {
        let mut args = vec!["export", "--dir", planted_arg, "--reason", "t"];
        args.extend_from_slice(extra);
        let (code, err) = code_and_stderr(&gw.cli(&args).await);
        assert_eq!(code, Some(2), "{extra:?}: {err}");
    }
    assert!(std::fs::read(&mbox).expect("read").starts_with(b"From "));
    let (code, err) =
        code_and_stderr(&gw.cli(&["export", "--dir", dir_arg, "--reason", "t"]).await);
    assert_eq!(code, Some(2), "an existing DIR/ID.eml needs --force: {err}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_refuses_a_terminal_unless_asked() {
    if !common::have("script") {
        return;
    }
    let mut gw = TestGateway::start("").await;
    let id = gw
        .send(
            "a@partner.example",
            &["jan@old.example"],
            b"Subject: \x1b]0;owned\x07\r\n\r\nx\r\n",
        )
        .await;
    // Runs the CLI with a pseudo-terminal as standard output (util-linux `script`).
    let on_terminal = |extra: &'static [&'static str]| {
        let mut command = format!(
            "'{}' -c '{}' -i '{}' export {id} --reason t",
            env!("CARGO_BIN_EXE_reclaim"),
            gw.config_path.display(),
            gw.identity.display()
        );
        for arg in extra {
            command.push(' ');
            command.push_str(arg);
        }
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("script")
                .args(["-qec", &command, "/dev/null"])
                .stdin(std::process::Stdio::null())
                .env_remove("RECLAIM_IDENTITY")
                .env_remove("RECLAIM_CONFIG")
                .output()
                .expect("run script")
        })
    };
    let refused = on_terminal(&[]).await.expect("task");
    let text = String::from_utf8_lossy(&refused.stdout);
    assert_eq!(refused.status.code(), Some(2), "{text}");
    assert!(
        text.contains("refusing to write a raw message to the terminal"),
        "{text}"
    );
    assert!(!text.contains("owned"), "{text}");

    let forced = on_terminal(&["-o", "-"]).await.expect("task");
    let text = String::from_utf8_lossy(&forced.stdout);
    assert_eq!(forced.status.code(), Some(0), "{text}");
    assert!(text.contains("owned"), "-o - writes the message: {text}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_csv_carries_no_control_or_bidi_characters() {
    let mut gw = TestGateway::start("").await;
    // A sender address with a right-to-left override, accepted under SMTPUTF8.
    let (mut c, _) = common::Client::connect(gw.addr).await;
    assert!(c.cmd("EHLO client.example").await.starts_with("250"));
    let reply = c
        .cmd("MAIL FROM:<\"inv\u{202e}fdp.exe\"@evil.example> SMTPUTF8")
        .await;
    assert!(reply.starts_with("250"), "{reply}");
    assert!(c.cmd("RCPT TO:<jan@old.example>").await.starts_with("250"));
    assert!(c.cmd("DATA").await.starts_with("354"));
    c.send(b"Subject: x\r\n\r\nx\r\n.\r\n").await;
    assert!(c.reply().await.starts_with("250"));

    let csv = gw.cli_ok(&["report", "--csv"]).await;
    assert!(csv.contains("inv?fdp.exe"), "{csv}");
    assert!(!csv.contains('\u{202e}'), "{csv:?}");
    gw.stop().await;
}
