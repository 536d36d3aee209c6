//! One sender organisation cannot spend the gateway's hourly notice budget: a flood from
//! rotating addresses at one domain is held to `[notify] per_domain_hourly_limit`, and a
//! partner at another domain is still told, on both stores and across a restart.

mod common;

use std::time::{Duration, SystemTime};

use common::postgres;
use reclaim::capacity::StorageLimits;
use reclaim::config::Config;
use reclaim::domains::Recipient;
use reclaim::notice::{Planner, Templates};
use reclaim::retention::RetentionPolicy;
use reclaim::store::postgres::{PgStore, PostgresConfig, UrlSource};
use reclaim::store::{
    MessageId, MessageMeta, NoticeOutcome, QuarantineStore, StagedMessage, Store,
};
use reclaim::summary::Summary;

/// The defaults but for `require`: the flood needs no SPF of its own here, the budget is
/// what is tested. `hourly_limit` is 100, so the default domain budget is 10.
const CONFIG: &str = r#"
    [server]
    hostname = "mx.old.example"
    listen = ["127.0.0.1:2525"]
    [seal]
    recipients = ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"]
    [[domain]]
    name = "old.example"
    new_domain = "new.example"
    [notify]
    from = "postmaster@new.example"
    require = "none"
"#;

/// Stores one message from `from` to `to`, its notice planned as the gateway plans it.
async fn store_one<S: QuarantineStore>(store: &S, from: &str, to: &str) -> NoticeOutcome {
    let config = Config::parse(CONFIG).expect("config");
    let templates = Templates::built_in();
    let retention = RetentionPolicy::new(Duration::from_secs(30 * 86400), vec![]);
    let summary = Summary {
        mail_from: from.to_owned(),
        rcpt_to: vec![to.to_owned()],
        ..Summary::default()
    };
    let accepted = [Recipient {
        address: to.to_owned(),
        disposition: config.domains.disposition(to),
    }];
    let plan = Planner {
        notify: &config.notify,
        domains: &config.domains,
        templates: &templates,
        store,
        hostname: "mx.old.example",
        retention: &retention,
    }
    .plan(&summary, &accepted, SystemTime::now());
    assert!(
        plan.notice.is_some(),
        "{from} is eligible: {:?}",
        plan.suppressed
    );
    let mut blob = store.create_blob(MessageId::new()).await.expect("blob");
    blob.write(b"age-encryption.org/v1\n(sealed)".to_vec())
        .await
        .expect("write");
    let meta = MessageMeta {
        received_at: reclaim::clock::unix_now(),
        size: 10,
        sealed_size: 0,
        domains: vec!["old.example".into()],
        notice: None,
        sealed_to: Vec::new(),
    };
    store
        .commit(blob, meta, b"summary".to_vec(), plan)
        .await
        .expect("commit")
        .1
}

/// A hundred messages from rotating addresses (and subdomains) of one organisation; how
/// many of their notices were queued, and why the others were not.
async fn flood<S: QuarantineStore>(store: &S) -> (usize, Vec<&'static str>) {
    let mut queued = 0;
    let mut held = Vec::new();
    for i in 0..100 {
        let host = ["bulk.example", "a.bulk.example", "MAIL.Bulk.Example"][i % 3];
        let outcome = store_one(store, &format!("r{i}@{host}"), &format!("x{i}@old.example")).await;
        queued += outcome.queued;
        held.extend(outcome.limited);
    }
    (queued, held)
}

/// After the flood, a partner at another organisation is told, and the flood got only its
/// organisation's budget.
async fn the_partner_is_still_told<S: QuarantineStore>(store: &S) {
    let (queued, held) = flood(store).await;
    let outcome = store_one(store, "jan@partner.example", "jan@old.example").await;
    assert_eq!(outcome.limited, None, "the partner's notice");
    assert_eq!(outcome.queued, 1);
    assert_eq!(
        queued, 10,
        "the organisation's budget: a tenth of hourly_limit"
    );
    assert!(held.iter().all(|&r| r == "domain_limit"), "{held:?}");
}

/// After a restart the hour is still the same hour: its notices are in the store.
async fn the_hour_outlives_a_restart<S: QuarantineStore>(store: &S) {
    let again = store_one(store, "late@b.bulk.example", "late@old.example").await;
    assert_eq!(again.limited, Some("domain_limit"));
    let other = store_one(store, "piet@other.example", "piet@old.example").await;
    assert_eq!(other.queued, 1);
}

#[tokio::test]
async fn on_the_embedded_store_one_domain_cannot_use_up_the_hour() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (store, _) = Store::open(dir.path()).expect("store");
        the_partner_is_still_told(&store).await;
    }
    let (store, _) = Store::open(dir.path()).expect("reopen");
    the_hour_outlives_a_restart(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_postgres_store_one_domain_cannot_use_up_the_hour() {
    if !postgres::available() {
        return;
    }
    let pg = tokio::task::spawn_blocking(postgres::Postgres::start_new)
        .await
        .expect("cluster task");
    let config = PostgresConfig {
        url: UrlSource::Inline(pg.url()),
        ca_file: None,
        pool_size: 4,
        timeout: Duration::from_secs(5),
        query_timeout: Duration::from_secs(30),
        outbox_lease: Duration::from_secs(600),
    };
    let limits = StorageLimits {
        max_size: None,
        min_free: 0,
    };
    {
        let store = PgStore::open(&config, limits).await.expect("open");
        the_partner_is_still_told(&store).await;
    }
    // Another node, or this one restarted: the same shared windows.
    let store = PgStore::open(&config, limits).await.expect("reopen");
    the_hour_outlives_a_restart(&store).await;
}
