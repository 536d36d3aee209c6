//! The notice rate limits' memory is pruned, on both stores, of what no limit looks at any
//! more: the retention sweep calls `prune_rate_memory`, so the memory does not grow with
//! every sender ever told.

mod common;

use std::time::Duration;

use common::postgres;
use reclaim::capacity::StorageLimits;
use reclaim::store::postgres::{PgStore, PostgresConfig, UrlSource};
use reclaim::store::{
    MessageId, MessageMeta, NoticeOutcome, NoticePlan, OutboxItem, QuarantineStore, QueuedNotice,
    RateLimits, StagedMessage, Store,
};

const DAY: i64 = 86_400;
const LIMITS: RateLimits = RateLimits {
    pair_interval: 7 * DAY,
    sender_limit: 3,
    sender_interval: DAY,
    hourly_limit: 100,
    domain_limit: 10,
};

/// Stores one message from `from` to `to` at `now` whose notice is held to [`LIMITS`].
async fn store_one<S: QuarantineStore>(store: &S, from: &str, to: &str, now: i64) -> NoticeOutcome {
    let plan = NoticePlan {
        notice: Some(QueuedNotice {
            id: MessageId::new(),
            pairs: vec![store.pair_key(from, to)],
            sender: store.sender_key(from),
            organisation: store
                .organisation_key(reclaim::notice::policy::sender_organisation(from).as_str()),
            limits: LIMITS,
            item: OutboxItem {
                to: from.to_owned(),
                message: "Subject: moved\r\n\r\nmoved\r\n".to_owned(),
                created_at: now,
                attempts: 0,
                next_attempt_at: now + 1000 * DAY,
                lease: None,
            },
        }),
        suppressed: Vec::new(),
    };
    let mut blob = store.create_blob(MessageId::new()).await.expect("blob");
    blob.write(b"age-encryption.org/v1\n(sealed)".to_vec())
        .await
        .expect("write");
    let meta = MessageMeta {
        received_at: now,
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

async fn pruned<S: QuarantineStore>(store: &S, at: i64) -> usize {
    store.prune_rate_memory(at, LIMITS).await.expect("prune")
}

async fn prune_keeps_what_limits_still_need<S: QuarantineStore>(store: &S) {
    // Stores admit notices at the wall clock's time; pruning is asked about later times.
    // A minute of margin covers the seconds the test itself takes.
    let now = reclaim::clock::unix_now();
    let margin = 60;
    let (a, b) = (
        ("a@partner.example", "x@old.example"),
        ("b@partner.example", "y@old.example"),
    );
    assert_eq!(store_one(store, a.0, a.1, now).await.queued, 1);
    assert_eq!(store_one(store, b.0, b.1, now).await.queued, 1);
    assert_eq!(pruned(store, now).await, 0, "everything is still looked at");

    // An hour on: the gateway's window and partner.example's share of it are empty and go.
    let hour_on = now + 3600 + margin;
    assert_eq!(pruned(store, hour_on).await, 2);
    assert_eq!(pruned(store, hour_on).await, 0);

    // A day on: both senders' windows go too; the pairs stay their week, and still hold a
    // second notice back.
    let day_on = now + LIMITS.sender_interval + margin;
    assert_eq!(pruned(store, day_on).await, 2);
    assert_eq!(pruned(store, day_on).await, 0);
    let again = store_one(store, a.0, a.1, now).await;
    assert_eq!(again.limited, Some("pair_interval"));

    // A week on the pairs go too, and a may be told again.
    let week_on = now + LIMITS.pair_interval + margin;
    assert_eq!(pruned(store, week_on).await, 2);
    assert_eq!(store_one(store, a.0, a.1, now).await.queued, 1);
}

#[tokio::test]
async fn the_embedded_store_forgets_what_no_limit_needs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = Store::open(dir.path()).expect("store");
    prune_keeps_what_limits_still_need(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_store_forgets_what_no_limit_needs() {
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
    let store = PgStore::open(&config, limits).await.expect("open");
    prune_keeps_what_limits_still_need(&store).await;
}
