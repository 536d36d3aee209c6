//! The exit rule over simulated weeks: mail is stored with given receive times (through the
//! store, sealed as the gateway seals it), then `report --exit` decrypts the summaries and
//! says which retired domains can end their mail for good.

mod common;

use std::time::SystemTime;

use common::TestGateway;
use reclaim::seal::{Recipients, Sealer};
use reclaim::store::{
    MessageId, MessageMeta, NoticePlan, OutboxItem, QuarantineStore, QueuedNotice, RateLimits,
    Store,
};
use reclaim::summary::{AuthResults, Summary};

const DAY: i64 = 86_400;

const REST: &str = r#"
[dns]
resolver = "static"
[dns.static]
"mx.old.example A" = ["192.0.2.25"]

[exit]
quiet_after = "90d"

[[domain]]
name = "old.example"
retention = "400d"
[[domain]]
name = "quiet.example"
retention = "400d"
[[domain]]
name = "almost.example"
retention = "400d"
[[domain]]
name = "short.example"
retention = "30d"
[[domain]]
name = "ended.example"
retention = "400d"
"#;

/// One message as it would have arrived `days_ago`.
struct Mail {
    days_ago: i64,
    to: &'static str,
    from: &'static str,
    /// DMARC result; `None` for mail received with DNS off.
    dmarc: Option<&'static str>,
    automated: bool,
    /// The gateway queued a notice to the sender for it.
    told: bool,
}

fn mail(days_ago: i64, to: &'static str, from: &'static str, dmarc: &'static str) -> Mail {
    Mail {
        days_ago,
        to,
        from,
        dmarc: Some(dmarc),
        automated: false,
        told: false,
    }
}

fn told(mail: Mail) -> Mail {
    Mail { told: true, ..mail }
}

/// The notice the gateway would have queued for `m`, with limits that never hold it back.
fn notice_for(store: &Store, m: &Mail, received_at: i64) -> NoticePlan {
    if !m.told {
        return NoticePlan::default();
    }
    NoticePlan {
        notice: Some(QueuedNotice {
            id: MessageId::new(),
            pairs: vec![store.pair_key(m.from, m.to)],
            sender: store.sender_key(m.from),
            organisation: store.organisation_key(m.from),
            limits: RateLimits {
                pair_interval: 0,
                sender_limit: 1000,
                sender_interval: DAY,
                hourly_limit: 10_000,
                domain_limit: 10_000,
            },
            item: OutboxItem {
                to: m.from.to_owned(),
                message: "Subject: moved\r\n\r\nmoved\r\n".to_owned(),
                created_at: received_at,
                attempts: 0,
                // Not due while the test runs: the gateway's worker leaves it alone.
                next_attempt_at: received_at + 1000 * DAY,
                lease: None,
            },
        }),
        suppressed: Vec::new(),
    }
}

async fn store_all(store: &Store, sealer: &Sealer, now: i64, mails: &[Mail]) {
    for m in mails {
        let summary = Summary {
            mail_from: m.from.to_owned(),
            rcpt_to: vec![m.to.to_owned()],
            auto_submitted: m.automated.then(|| "auto-generated".to_owned()),
            auth: m.dmarc.map(|d| AuthResults {
                spf: "none".into(),
                dkim: "none".into(),
                dmarc: d.into(),
                ..AuthResults::default()
            }),
            ..Summary::default()
        };
        let sealed_summary = sealer
            .seal_bytes(&serde_json::to_vec(&summary).expect("json"))
            .expect("seal summary");
        let mut blob = store.create_blob(MessageId::new()).await.expect("blob");
        let body = sealer.seal_bytes(b"Subject: x\r\n\r\nx\r\n").expect("seal");
        blob.write(body).await.expect("write");
        let domain = m.to.rsplit_once('@').expect("address").1.to_owned();
        let received_at = now - m.days_ago * DAY;
        let meta = MessageMeta {
            received_at,
            size: 20,
            sealed_size: 0,
            domains: vec![domain],
            notice: None,
            sealed_to: Vec::new(),
        };
        store
            .commit(
                blob,
                meta,
                sealed_summary,
                notice_for(store, m, received_at),
            )
            .await
            .expect("commit");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exit_rule_fires_only_when_legitimate_senders_have_stopped() {
    let mut gw = TestGateway::start_sections("", REST).await;
    gw.stop().await;
    let identity = std::fs::read_to_string(&gw.identity).expect("identity");
    let public = identity
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("public key line")
        .trim()
        .to_owned();
    let sealer = Sealer::new(Recipients::parse(&[public]).expect("recipient")).expect("sealer");
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let automated = |days_ago, to| Mail {
        days_ago,
        to,
        from: "news@list.example",
        dmarc: Some("pass"),
        automated: true,
        told: false,
    };
    let mails = [
        // old.example: a partner wrote 20 weeks ago, was told, and wrote again two weeks
        // ago; another wrote once, was told, and stopped; a third was never told (a rate
        // limit held the notice back), so is on neither list.
        told(mail(140, "jan@old.example", "a@partner.example", "pass")),
        mail(14, "jan@old.example", "a@partner.example", "pass"),
        told(mail(139, "piet@old.example", "b@stopped.example", "pass")),
        mail(100, "piet@old.example", "f@untold.example", "pass"),
        mail(20, "piet@old.example", "f@untold.example", "pass"),
        // quiet.example: the last real person wrote 120 days ago; since then only forged
        // and automated mail, every week.
        mail(120, "info@quiet.example", "c@gone.example", "pass"),
        mail(60, "info@quiet.example", "c@gone.example", "fail"),
        mail(30, "info@quiet.example", "ceo@bank.example", "fail"),
        automated(6, "info@quiet.example"),
        automated(1, "info@quiet.example"),
        // almost.example: a person wrote 89 days ago, with DNS off (not checked).
        mail(150, "x@almost.example", "d@partner.example", "pass"),
        Mail {
            days_ago: 89,
            to: "x@almost.example",
            from: "d@partner.example",
            dmarc: None,
            automated: false,
            told: false,
        },
        // short.example: kept 30 days only, so 90 quiet days cannot be shown.
        automated(3, "y@short.example"),
        // ended.example: nothing at all for 100 days.
        mail(100, "z@ended.example", "e@partner.example", "pass"),
    ];
    {
        let (store, _) = Store::open(&gw.store).expect("store");
        store_all(&store, &sealer, now, &mails).await;
    }
    gw.restart().await;

    let out = gw.cli_ok(&["report", "--exit", "--json"]).await;
    let domains: Vec<serde_json::Value> = serde_json::from_str(&out).expect("json");
    let get = |name: &str| {
        domains
            .iter()
            .find(|d| d["domain"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {out}"))
            .clone()
    };

    let old = get("old.example");
    assert_eq!(old["verdict"], "still_in_use");
    assert_eq!(
        old["told_and_still_writing"],
        serde_json::json!(["a@partner.example"])
    );
    assert_eq!(
        old["told_and_stopped"],
        serde_json::json!(["b@stopped.example"])
    );
    assert_eq!(old["last_legitimate"], now - 14 * DAY);
    assert_eq!(old["records"], serde_json::json!([]));

    let quiet = get("quiet.example");
    assert_eq!(quiet["verdict"], "quiet", "{quiet}");
    assert_eq!(quiet["last_legitimate"], now - 120 * DAY);
    assert_eq!(
        (quiet["messages"].as_u64(), quiet["legitimate"].as_u64()),
        (Some(5), Some(1))
    );
    let records: Vec<&str> = quiet["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r.as_str())
        .collect();
    assert!(records.contains(&"quiet.example. MX 0 ."), "{records:?}");
    assert!(records.contains(&"quiet.example. TXT \"v=spf1 -all\""));
    assert!(
        records
            .iter()
            .any(|r| r.starts_with("_dmarc.quiet.example. TXT \"v=DMARC1; p=reject"))
    );
    assert!(
        quiet["keep"][0]
            .as_str()
            .is_some_and(|k| k.contains("registered"))
    );
    // The trend's last week holds the two automated messages, none legitimate.
    let weeks = quiet["weeks"].as_array().expect("weeks");
    assert_eq!(
        weeks.last().map(|w| (&w["legitimate"], &w["other"])),
        Some((&0.into(), &2.into()))
    );

    assert_eq!(get("almost.example")["verdict"], "still_in_use");
    let short = get("short.example");
    assert_eq!(short["verdict"], "cannot_tell");
    assert!(
        short["reason"]
            .as_str()
            .is_some_and(|r| r.contains("retention"))
    );

    // For people: the same verdicts, and the records to publish.
    let text = gw.cli_ok(&["report", "--exit"]).await;
    assert!(
        text.contains("QUIET: no legitimate sender for 90 day(s)"),
        "{text}"
    );
    assert!(text.contains("    quiet.example. MX 0 ."), "{text}");
    assert!(text.contains("and still writing") && text.contains("and stopped"));

    // check-dns on the gateway reads only receive times: it sees that ended.example gets
    // no mail at all, and that quiet.example still gets some (it cannot tell it is spam).
    let out = gw.cli(&["check-dns", "--json"]).await;
    let found: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    let exit = |name: &str| {
        found
            .iter()
            .find(|f| f["check"] == "exit-rule" && f["domain"] == name)
            .unwrap_or_else(|| panic!("no exit-rule finding for {name}: {found:?}"))
            .clone()
    };
    let ended = exit("ended.example");
    assert_eq!(ended["status"], "warn");
    assert!(
        ended["fix"]
            .as_str()
            .is_some_and(|f| f.contains("ended.example. MX 0 ."))
    );
    assert_eq!(exit("quiet.example")["status"], "pass");
    assert!(
        exit("quiet.example")["detail"]
            .as_str()
            .is_some_and(|d| d.contains("report --exit"))
    );
    assert_eq!(exit("short.example")["status"], "pass");
    gw.stop().await;
}
