//! The CLI as a user meets it: keygen, identities of every kind, and clear errors.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::have;
use common::{Client, TestGateway, queued_id, run_cli};

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keygen_writes_a_private_file_and_prints_only_the_recipient() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("reviewer.key");
    let out = run_cli(args(&["keygen", "-o", key.to_str().expect("utf8")])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8(out.stdout).expect("utf8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1);
    assert!(lines[0].starts_with("age1"));
    let text = std::fs::read_to_string(&key).expect("key file");
    assert!(text.contains(&format!("# public key: {}", lines[0])));
    assert!(text.contains("AGE-SECRET-KEY-1"));
    assert_eq!(
        std::fs::metadata(&key).expect("meta").permissions().mode() & 0o777,
        0o600
    );

    let again = run_cli(args(&["keygen", "-o", key.to_str().expect("utf8")])).await;
    assert!(!again.status.success(), "must never overwrite");
    assert_eq!(std::fs::read_to_string(&key).expect("key file"), text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_errors_are_one_clear_line() {
    let mut gw = TestGateway::start("").await;
    let (mut c, _) = Client::connect(gw.addr).await;
    let id = queued_id(
        &c.send_message(
            "a@p.example",
            &["b@old.example"],
            b"Subject: x\r\n\r\nbody\r\n",
        )
        .await,
    );

    let (wrong, _) = common::new_identity(gw.dir.path(), "other.key");
    let config = gw.config_path.to_str().expect("utf8").to_owned();
    let out = run_cli(args(&[
        "-c",
        &config,
        "-i",
        wrong.to_str().expect("utf8"),
        "export",
        &id,
        "--reason",
        "test",
    ]))
    .await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("right identity"), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    let out = run_cli(args(&[
        "-c",
        &config,
        "-i",
        wrong.to_str().expect("utf8"),
        "list",
    ]))
    .await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("right identity"), "{}", stderr(&out));

    let out = gw
        .cli(&[
            "export",
            "0193a5c4-0000-7000-8000-000000000000",
            "--reason",
            "test",
        ])
        .await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no message 0193a5c4-0000-7000-8000-000000000000"),
        "{}",
        stderr(&out)
    );
    let out = gw
        .cli(&["export", "../../etc/passwd", "--reason", "test"])
        .await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not a message id"),
        "{}",
        stderr(&out)
    );

    let out = run_cli(args(&[
        "-c",
        "/nonexistent/reclaim.toml",
        "-i",
        "x",
        "list",
    ]))
    .await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot read config file /nonexistent/reclaim.toml"),
        "{}",
        stderr(&out)
    );
    let out = run_cli(args(&["-c", &config, "-i", "/nonexistent/key", "list"])).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("/nonexistent/key"),
        "{}",
        stderr(&out)
    );

    gw.stop().await;
    let out = gw.cli(&["list"]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot reach the reclaim server"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("panicked") && !stderr(&out).contains("backtrace"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_options_work_on_every_subcommand() {
    let out = run_cli(args(&["keygen", "--help"])).await;
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    for option in ["--config", "--identity", "--socket"] {
        assert!(help.contains(option), "keygen --help lacks {option}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("k");
    let out = run_cli(args(&[
        "-c",
        "whatever.toml",
        "--socket",
        "/x",
        "keygen",
        "-o",
        key.to_str().expect("utf8"),
    ]))
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_bad_configs_with_the_key_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "[server]\nhostname = \"mx.old.example\"\nlisten = [\"127.0.0.1:0\"]\nlisen = 1\n[[domain]]\nname = \"old.example\"\n",
            "lisen",
        ),
        (
            "[server]\nhostname = \"mx.old.example\"\nlisten = [\"127.0.0.1:0\"]\n[[domain]]\nname = \"old.example\"\n",
            "seal.recipients",
        ),
        (
            "[server]\nhostname = \"mx.old.example\"\nlisten = [\"127.0.0.1:0\"]\nmax_message_size = \"huge\"\n[[domain]]\nname = \"old.example\"\n",
            "server.max_message_size",
        ),
    ];
    for (text, key) in cases {
        let path = common::write_file(dir.path(), "bad.toml", text.as_bytes());
        let out = run_cli(args(&["serve", "-c", path.to_str().expect("utf8")])).await;
        assert!(!out.status.success());
        assert!(stderr(&out).contains(key), "{key}: {}", stderr(&out));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_identities_decrypt_and_age_reads_the_store() {
    if !have("ssh-keygen") || !have("age") {
        eprintln!("skipping: ssh-keygen and age are not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for (kind, bits) in [("ed25519", None), ("rsa", Some("2048"))] {
        let key = dir.path().join(format!("id_{kind}"));
        let mut cmd = std::process::Command::new("ssh-keygen");
        cmd.args([
            "-q",
            "-t",
            kind,
            "-N",
            "",
            "-C",
            "reviewer@test",
            "-f",
            key.to_str().expect("utf8"),
        ]);
        if let Some(bits) = bits {
            cmd.args(["-b", bits]);
        }
        assert!(cmd.status().expect("ssh-keygen").success());
        let public = std::fs::read_to_string(key.with_extension("pub")).expect("pub");
        let recipients =
            reclaim::seal::Recipients::parse(&[public.trim().to_owned()]).expect("ssh recipient");
        let sealer = reclaim::seal::Sealer::new(recipients).expect("sealer");
        let sealed = sealer.seal_bytes(b"for the ssh reviewer").expect("seal");
        let identity = reclaim::seal::Identities::load(&key).expect("ssh identity");
        let opened = identity.open_bytes(&sealed).expect("open");
        assert_eq!(opened, b"for the ssh reviewer", "{kind}");
        // A summary sealed under its message's key, as the gateway seals it, opens with
        // the ssh key too.
        let (writer, summary) = sealer.seal_message(Vec::new()).expect("seal message");
        writer.finish().expect("finish");
        let summary = summary.seal(b"{\"subject\":\"ssh\"}");
        assert_eq!(
            identity.open_summary(&summary).expect("open summary"),
            b"{\"subject\":\"ssh\"}",
            "{kind}"
        );
    }

    // The standard age tool decrypts a sealed message fetched from the admin API, as the
    // README shows (the message lives in a segment file, so this is the way to get it).
    let mut gw = TestGateway::start("").await;
    let (mut c, _) = Client::connect(gw.addr).await;
    let id = queued_id(
        &c.send_message(
            "a@p.example",
            &["b@old.example"],
            b"Subject: x\r\n\r\nread me with age\r\n",
        )
        .await,
    );
    assert!(!gw.store.join("messages").join(format!("{id}.age")).exists());
    let blob = gw.dir.path().join(format!("{id}.age"));
    let curl = std::process::Command::new("curl")
        .args(["-fsS", "--unix-socket"])
        .arg(&gw.socket)
        .arg(format!(
            "http://localhost/v1/messages/{id}/sealed?reason=read+with+age"
        ))
        .arg("-o")
        .arg(&blob)
        .output()
        .expect("curl");
    assert!(
        curl.status.success(),
        "{}",
        String::from_utf8_lossy(&curl.stderr)
    );
    let out = std::process::Command::new("age")
        .args([
            "-d",
            "-i",
            gw.identity.to_str().expect("utf8"),
            blob.to_str().expect("utf8"),
        ])
        .output()
        .expect("age");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, gw.export(&id).await);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passphrase_protected_identity_via_environment() {
    use std::io::Write;
    let mut gw = TestGateway::start("").await;
    let (mut c, _) = Client::connect(gw.addr).await;
    let id = queued_id(
        &c.send_message(
            "a@p.example",
            &["b@old.example"],
            b"Subject: x\r\n\r\nprotected\r\n",
        )
        .await,
    );

    // What `age -p -a -o key.age key` writes: the identity file, sealed to a passphrase.
    let plain_identity = std::fs::read(&gw.identity).expect("identity");
    let protected = gw.dir.path().join("reviewer.key.age");
    let file = std::fs::File::create(&protected).expect("create");
    let armored = age::armor::ArmoredWriter::wrap_output(file, age::armor::Format::AsciiArmor)
        .expect("armor");
    let encryptor = age::Encryptor::with_user_passphrase(age::secrecy::SecretString::from(
        "correct horse".to_owned(),
    ));
    let mut writer = encryptor.wrap_output(armored).expect("wrap");
    writer.write_all(&plain_identity).expect("write");
    writer
        .finish()
        .and_then(|armor| armor.finish())
        .expect("finish");

    let config = gw.config_path.to_str().expect("utf8").to_owned();
    let run = |passphrase: &'static str| {
        let config = config.clone();
        let protected = protected.clone();
        let id = id.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_reclaim"))
                .args([
                    "-c",
                    &config,
                    "-i",
                    protected.to_str().expect("utf8"),
                    "export",
                    &id,
                    "--reason",
                    "test",
                ])
                .env("RECLAIM_PASSPHRASE", passphrase)
                .stdin(std::process::Stdio::null())
                .output()
                .expect("run reclaim")
        })
    };
    let good = run("correct horse").await.expect("task");
    assert!(good.status.success(), "{}", stderr(&good));
    assert_eq!(good.stdout, gw.export(&id).await);
    let bad = run("wrong horse").await.expect("task");
    assert!(!bad.status.success());
    assert_eq!(stderr(&bad).lines().count(), 1, "{}", stderr(&bad));
    gw.stop().await;
}
