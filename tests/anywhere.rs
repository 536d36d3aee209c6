//! A gateway started as a package or a container starts it: from a working directory that is
//! not the checkout, with notices configured and no `templates` key. The built-in English and
//! Dutch templates must go out, and relative paths in the config are taken from the config
//! file's folder, never from the working directory.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::process::{free_port, serve};
use common::recorder::Recorder;
use common::{Client, queued_id};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_templates_go_out_in_english_and_dutch_from_any_directory() {
    let relay = Recorder::start(0).await;
    let home = tempfile::tempdir().expect("config dir");
    let elsewhere = tempfile::tempdir().expect("working dir");
    let smtp: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let (_, recipient) = common::new_identity(home.path(), "reviewer.key");
    let config = format!(
        r#"
[server]
hostname = "mx.old.example"
listen = ["{smtp}"]
[store]
path = "store"
min_free = "0"
[seal]
recipients = ["{recipient}"]
[admin]
socket = "admin.sock"
[dns]
resolver = "off"
[[domain]]
name = "old.example"
new_domain = "new.example"
language = "en"
[[domain]]
name = "oud.example"
new_domain = "nieuw.example"
language = "nl"
[notify]
from = "postmaster@new.example"
require = "none"
relay = "{relay}"
relay_tls = "none"
"#,
        relay = relay.addr,
    );
    let config_path = common::write_file(home.path(), "reclaim.toml", config.as_bytes());
    let log = home.path().join("serve.log");
    let _serving = serve(&config_path, smtp, &log, Some(elsewhere.path())).await;

    for (from, to) in [
        ("a@partner.example", "jan@old.example"),
        ("b@partner.example", "piet@oud.example"),
    ] {
        let (mut client, _) = Client::connect(smtp).await;
        let body = format!("From: <{from}>\r\nSubject: hello\r\n\r\nhi\r\n");
        queued_id(&client.send_message(from, &[to], body.as_bytes()).await);
    }
    let mut got = relay.wait_for(2, Duration::from_secs(20)).await;
    got.sort_by(|a, b| a.rcpt_to.cmp(&b.rcpt_to));
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].rcpt_to, ["a@partner.example"]);
    assert!(
        got[0]
            .data
            .contains("\r\nSubject: An address at old.example is no longer in use\r\n"),
        "{}",
        got[0].data
    );
    assert!(got[0].data.contains("jan@new.example"), "{}", got[0].data);
    assert_eq!(got[1].rcpt_to, ["b@partner.example"]);
    assert!(
        got[1]
            .data
            .contains("\r\nSubject: Een adres bij oud.example is niet meer in gebruik\r\n"),
        "{}",
        got[1].data
    );
    assert!(
        got[1].data.contains("piet@nieuw.example"),
        "{}",
        got[1].data
    );

    assert!(
        home.path().join("store/index.redb").is_file() && home.path().join("admin.sock").exists(),
        "the store and the socket are beside the config file"
    );
    assert_eq!(
        std::fs::read_dir(elsewhere.path()).expect("list").count(),
        0,
        "nothing is written to the working directory"
    );
}
