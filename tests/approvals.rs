//! Four eyes on both stores: one principal requests, a different one approves, and only
//! then does the API carry the action out; nobody approves their own request, a used
//! one-shot request and an expired one allow nothing, and every refusal is audited.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::pki::Pki;
use common::postgres::{self, Postgres};
use common::{Extra, TestGateway, my_uid};
use reclaim::capacity::StorageLimits;
use reclaim::clock::unix_now;
use reclaim::config::{Config, StoreBackend};
use reclaim::store::postgres::PgStore;
use reclaim::store::{
    Filing, GuardedAction, NewRequest, QuarantineStore, RequestBounds, RequestState, Store, Swap,
};

const REFUSED_EXIT: i32 = 8;
const USAGE_EXIT: i32 = 2;

/// A cap on open requests that forgets nothing.
fn bounds(max_open: usize) -> RequestBounds {
    RequestBounds {
        max_open,
        forget_expired_before: i64::MIN,
    }
}

/// Client certificates from one CA and the `[admin]` lines of a listener that takes them.
struct Certificates {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    admin: String,
}

impl Certificates {
    fn new(names: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_owned();
        let pki = Pki::new("reclaim admin CA");
        std::fs::write(path.join("ca.pem"), pki.ca.pem()).expect("ca");
        pki.issue(
            &path,
            "server",
            "reclaim admin",
            vec!["127.0.0.1".into()],
            false,
        );
        for name in names {
            pki.issue(&path, name, name, vec![], true);
        }
        let admin = format!(
            "listen = \"127.0.0.1:0\"\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}",
            path.join("server-cert.pem"),
            path.join("server-key.pem"),
            path.join("ca.pem")
        );
        Self {
            _dir: dir,
            dir: path,
            admin,
        }
    }

    fn flags(&self, gw: &TestGateway, name: &str) -> Vec<String> {
        let port = gw
            .running
            .as_ref()
            .and_then(|r| r.admin_addr)
            .expect("admin TCP address")
            .port();
        let file = |f: String| self.dir.join(f).display().to_string();
        vec![
            "--admin".into(),
            format!("https://127.0.0.1:{port}"),
            "--cert".into(),
            file(format!("{name}-cert.pem")),
            "--key".into(),
            file(format!("{name}-key.pem")),
            "--admin-ca".into(),
            file("ca.pem".into()),
        ]
    }
}

async fn cli_as(gw: &TestGateway, flags: &[String], args: &[&str]) -> std::process::Output {
    let mut full: Vec<&str> = flags.iter().map(String::as_str).collect();
    full.extend(args);
    gw.cli(&full).await
}

fn fails(out: &std::process::Output, code: i32, says: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(says), "{stderr}");
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The number in `request N filed …`.
fn filed(out: &std::process::Output) -> String {
    let text = ok(out);
    text.strip_prefix("request ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no request number in {text:?}"))
        .to_owned()
}

/// Plants an approved request of alice's for deleting `id` that has already expired, with
/// the gateway stopped (the embedded store is one process's).
async fn plant_expired(config: &Config, id: &str) -> u64 {
    let now = unix_now();
    let new = NewRequest {
        action: GuardedAction::Delete,
        ids: vec![id.to_owned()],
        older_than: None,
        to: vec![],
        domains: vec!["old.example".into()],
        reason: "long ago".into(),
        requester: "principal alice".into(),
        requester_who: "alice".into(),
        created: now - 7200,
        expires: now - 60,
    };
    async fn approve(store: &impl QuarantineStore, new: NewRequest, now: i64) -> u64 {
        let Filing::Filed(request) = store
            .request_create(new, bounds(100), now)
            .await
            .expect("file")
        else {
            panic!("full");
        };
        let approved = RequestState::Approved {
            by: "principal bob".into(),
            who: "cert CN=bob".into(),
            at: now - 3600,
        };
        let swap = store
            .request_swap(request.number, &RequestState::Pending, approved)
            .await
            .expect("approve");
        assert!(matches!(swap, Swap::Done(_)), "{swap:?}");
        request.number
    }
    match &config.store.backend {
        StoreBackend::Embedded => {
            let (store, _) = Store::open(&config.store.path).expect("store");
            approve(&store, new, now).await
        }
        StoreBackend::Postgres(pg) => {
            let limits = StorageLimits {
                max_size: None,
                min_free: 0,
            };
            let store = PgStore::open(pg, limits).await.expect("open");
            approve(&store, new, now).await
        }
    }
}

async fn four_eyes(store_lines: &str) {
    let certs = Certificates::new(&["bob", "carol"]);
    let tail = format!(
        "[[principal]]\nname = \"alice\"\nuid = {}\nroles = [\"admin\"]\n\n\
         [[principal]]\nname = \"bob\"\ncertificate_subject = \"CN=bob\"\nroles = [\"admin\"]\n\n\
         [[principal]]\nname = \"carol\"\ncertificate_subject = \"CN=carol\"\nroles = [\"viewer\"]\n\n\
         [approvals]\nactions = [\"delete\", \"export\", \"hold-lift\"]\nexpiry = \"1h\"\n",
        my_uid()
    );
    let mut gw = TestGateway::start_custom(Extra {
        admin: &certs.admin,
        store: store_lines,
        tail: &tail,
        ..Extra::default()
    })
    .await;
    let a = gw
        .send(
            "a@p.example",
            &["x@old.example"],
            b"Subject: one\r\n\r\nfirst\r\n",
        )
        .await;
    let b = gw
        .send(
            "a@p.example",
            &["x@old.example"],
            b"Subject: two\r\n\r\nsecond\r\n",
        )
        .await;
    let alice: Vec<String> = vec![];
    let bob = certs.flags(&gw, "bob");
    let carol = certs.flags(&gw, "carol");

    // Without an approved request the guarded actions are refused, with what to do.
    fails(
        &cli_as(&gw, &alice, &["delete", &a, "--reason", "alone"]).await,
        REFUSED_EXIT,
        "delete needs an approval",
    );
    fails(
        &cli_as(&gw, &alice, &["export", &a, "-o", "-", "--reason", "alone"]).await,
        REFUSED_EXIT,
        "export needs an approval",
    );
    // Placing a hold needs none; lifting it does.
    ok(&cli_as(&gw, &alice, &["hold", &b, "--reason", "case 7"]).await);
    fails(
        &cli_as(&gw, &alice, &["unhold", &b, "--reason", "case closed"]).await,
        REFUSED_EXIT,
        "hold-lift needs an approval",
    );
    // Show and release are not guarded in this config.
    ok(&cli_as(&gw, &alice, &["show", &a, "--reason", "read"]).await);

    // Alice asks; she cannot approve herself, nor can a viewer; bob can.
    let n = filed(
        &cli_as(
            &gw,
            &alice,
            &["request", "delete", &a, "--reason", "ticket 9"],
        )
        .await,
    );
    fails(
        &cli_as(&gw, &alice, &["approve", &n]).await,
        REFUSED_EXIT,
        "another principal must approve it",
    );
    fails(
        &cli_as(&gw, &carol, &["approve", &n]).await,
        REFUSED_EXIT,
        "needs the role deleter or admin",
    );
    // A pending request does not allow the action yet.
    fails(
        &cli_as(
            &gw,
            &alice,
            &["delete", &a, "--request", &n, "--reason", "early"],
        )
        .await,
        REFUSED_EXIT,
        "pending, not approved",
    );
    let listed = ok(&cli_as(&gw, &bob, &["requests", "--json"]).await);
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("requests JSON");
    assert_eq!(listed["requests"][0]["state"], "pending", "{listed:#}");
    assert_eq!(listed["requests"][0]["reason"], "ticket 9", "{listed:#}");
    assert!(ok(&cli_as(&gw, &bob, &["approve", &n]).await).contains("approved"));
    // A second approval finds it decided.
    fails(
        &cli_as(&gw, &bob, &["approve", &n]).await,
        USAGE_EXIT,
        "already approved",
    );
    // Only the requester carries it out, only on what it names, and only once.
    fails(
        &cli_as(
            &gw,
            &bob,
            &["delete", &a, "--request", &n, "--reason", "mine now"],
        )
        .await,
        REFUSED_EXIT,
        "only its requester",
    );
    fails(
        &cli_as(
            &gw,
            &alice,
            &["delete", &a, &b, "--request", &n, "--reason", "both"],
        )
        .await,
        REFUSED_EXIT,
        "does not name every message",
    );
    ok(&cli_as(
        &gw,
        &alice,
        &["delete", &a, "--request", &n, "--reason", "ticket 9"],
    )
    .await);
    assert!(!ok(&cli_as(&gw, &alice, &["list"]).await).contains(&a));
    fails(
        &cli_as(
            &gw,
            &alice,
            &["delete", &b, "--request", &n, "--reason", "again"],
        )
        .await,
        REFUSED_EXIT,
        "is used",
    );

    // An export request may be fetched again while it lasts.
    let e = filed(
        &cli_as(
            &gw,
            &alice,
            &["request", "export", &b, "--reason", "dsar 3"],
        )
        .await,
    );
    ok(&cli_as(&gw, &bob, &["approve", &e]).await);
    for _ in 0..2 {
        let out = ok(&cli_as(
            &gw,
            &alice,
            &[
                "export",
                &b,
                "-o",
                "-",
                "--request",
                &e,
                "--reason",
                "dsar 3",
            ],
        )
        .await);
        assert!(out.contains("second"), "{out}");
    }
    // A denied request allows nothing.
    let h = filed(
        &cli_as(
            &gw,
            &alice,
            &["request", "hold-lift", &b, "--reason", "closed"],
        )
        .await,
    );
    ok(&cli_as(&gw, &bob, &["deny", &h, "--reason", "still in court"]).await);
    fails(
        &cli_as(
            &gw,
            &alice,
            &["unhold", &b, "--request", &h, "--reason", "closed"],
        )
        .await,
        REFUSED_EXIT,
        "is denied",
    );

    // An expired approved request allows nothing; an expired pending one is not approved.
    gw.stop().await;
    let config = Config::load(&gw.config_path).expect("config");
    let old = plant_expired(&config, &b).await.to_string();
    gw.restart().await;
    let bob = certs.flags(&gw, "bob");
    fails(
        &cli_as(
            &gw,
            &alice,
            &["delete", &b, "--request", &old, "--reason", "late"],
        )
        .await,
        REFUSED_EXIT,
        "expired",
    );
    assert!(ok(&cli_as(&gw, &alice, &["list"]).await).contains(&b));

    // Every refusal is in the trail with why, and the chain verifies.
    let trail: serde_json::Value =
        serde_json::from_str(&ok(&cli_as(&gw, &bob, &["audit", "--json"]).await))
            .expect("audit JSON");
    let records = trail["records"].as_array().expect("records");
    let refused = |action: &str, says: &str| {
        records.iter().any(|r| {
            r["action"] == action
                && r["status"] == 403
                && r["detail"].as_str().is_some_and(|d| d.contains(says))
        })
    };
    for (action, says) in [
        ("delete", "needs an approval"),
        ("export", "needs an approval"),
        ("unhold", "needs an approval"),
        ("approve", "another principal must approve it"),
        ("approve", "needs the role"),
        ("delete", "pending, not approved"),
        ("delete", "only its requester"),
        ("delete", "does not name every message"),
        ("delete", "is used"),
        ("unhold", "is denied"),
        ("delete", "expired"),
    ] {
        assert!(
            refused(action, says),
            "no refused {action} saying {says:?} in {trail:#}"
        );
    }
    let done = |action: &str, says: &str| {
        records.iter().any(|r| {
            r["action"] == action
                && r["status"] == 200
                && r["detail"].as_str().is_some_and(|d| d.contains(says))
        })
    };
    assert!(
        done("request", &format!("request {n}: delete")),
        "{trail:#}"
    );
    assert!(done("approve", "approved"), "{trail:#}");
    assert!(done("deny", "denied"), "{trail:#}");
    assert!(done("delete", &format!("under request {n}")), "{trail:#}");
    ok(&cli_as(&gw, &bob, &["audit", "--verify"]).await);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_embedded_store_an_action_needs_a_second_principal() {
    four_eyes("").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_postgres_store_an_action_needs_a_second_principal() {
    if !postgres::available() {
        return;
    }
    let pg = Postgres::start_new();
    four_eyes(&pg.store_lines()).await;
}

/// Two approvers racing on one request: exactly one wins; and the cap on open requests.
async fn decisions_are_atomic(store: &impl QuarantineStore) {
    let now = unix_now();
    let new = |expires| NewRequest {
        action: GuardedAction::Purge,
        ids: vec![],
        older_than: Some(86_400),
        to: vec![],
        domains: vec![],
        reason: "yearly".into(),
        requester: "principal alice".into(),
        requester_who: "alice".into(),
        created: now,
        expires,
    };
    let Filing::Filed(first) = store
        .request_create(new(now + 60), bounds(2), now)
        .await
        .expect("file")
    else {
        panic!("full");
    };
    assert!(matches!(
        store
            .request_create(new(now + 60), bounds(2), now)
            .await
            .expect("file"),
        Filing::Filed(_)
    ));
    assert_eq!(
        store
            .request_create(new(now + 60), bounds(2), now)
            .await
            .expect("file"),
        Filing::Full { open: 2 }
    );
    let approved = |by: &str| RequestState::Approved {
        by: by.into(),
        who: by.into(),
        at: now,
    };
    let (x, y) = tokio::join!(
        store.request_swap(first.number, &RequestState::Pending, approved("bob")),
        store.request_swap(first.number, &RequestState::Pending, approved("carol")),
    );
    let wins = [x.expect("swap"), y.expect("swap")]
        .iter()
        .filter(|s| matches!(s, Swap::Done(_)))
        .count();
    assert_eq!(wins, 1);
    let got = store
        .request_get(first.number)
        .await
        .expect("get")
        .expect("one");
    assert!(
        matches!(got.state, RequestState::Approved { .. }),
        "{got:?}"
    );
    assert!(matches!(
        store
            .request_swap(99, &RequestState::Pending, approved("bob"))
            .await,
        Ok(Swap::Missing)
    ));
    let listed = store.request_list(10).await.expect("list");
    assert_eq!(listed.len(), 2);
    assert!(listed[0].number > listed[1].number);

    // Once both have been expired for longer than kept, the next filing forgets all but
    // the newest, and numbering goes on after it.
    let later = now + 1_000;
    let forgetting = RequestBounds {
        max_open: 2,
        forget_expired_before: later - 100,
    };
    let Filing::Filed(third) = store
        .request_create(new(later + 60), forgetting, later)
        .await
        .expect("file")
    else {
        panic!("full");
    };
    assert_eq!(third.number, listed[0].number + 1);
    let numbers: Vec<u64> = store
        .request_list(10)
        .await
        .expect("list")
        .iter()
        .map(|r| r.number)
        .collect();
    assert_eq!(numbers, [third.number, listed[0].number]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_decides_a_request_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = Store::open(dir.path()).expect("store");
    decisions_are_atomic(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_store_decides_a_request_once() {
    if !postgres::available() {
        return;
    }
    let pg = tokio::task::spawn_blocking(Postgres::start_new)
        .await
        .expect("cluster task");
    let config = reclaim::store::postgres::PostgresConfig {
        url: reclaim::store::postgres::UrlSource::Inline(pg.url()),
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
    decisions_are_atomic(&store).await;
}

async fn listed(gw: &TestGateway) -> String {
    ok(&gw.cli(&["list"]).await)
}

/// The number in the desk's `#N · action · ids` line of a filed request.
fn filed_on_desk(page: &[u8]) -> String {
    let page = String::from_utf8_lossy(page);
    assert!(page.contains("Request filed"), "{page}");
    page.split('#')
        .filter_map(|rest| rest.split(" · ").next())
        .find(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no request number in {page}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_desk_one_reviewer_files_and_another_approves() {
    use common::desk::{csrf, get, post, session, start_desk, start_desk_as};

    let relay = common::recorder::Recorder::start(0).await;
    let certs = Certificates::new(&["bob"]);
    let tail = format!(
        "[[principal]]\nname = \"alice\"\nuid = {}\nroles = [\"admin\"]\n\n\
         [[principal]]\nname = \"bob\"\ncertificate_subject = \"CN=bob\"\nroles = [\"admin\"]\n\n\
         [approvals]\nactions = [\"delete\", \"export\", \"release\"]\nexpiry = \"1h\"\n\n\
         [release]\nrelay = \"{}\"\ntls = \"none\"\nfrom = \"quarantine@new.example\"\n",
        my_uid(),
        relay.addr
    );
    let mut gw = TestGateway::start_custom(Extra {
        admin: &certs.admin,
        tail: &tail,
        ..Extra::default()
    })
    .await;
    let a = gw
        .send(
            "a@p.example",
            &["x@old.example"],
            b"Subject: one\r\n\r\nfirst\r\n",
        )
        .await;
    let b = gw
        .send(
            "a@p.example",
            &["x@old.example"],
            b"Subject: two\r\n\r\nsecond\r\n",
        )
        .await;
    let alice_desk = start_desk(&gw).await;
    let bob_desk = start_desk_as(
        &gw,
        &certs.flags(&gw, "bob"),
        reclaim::desk::Limits::default(),
    )
    .await;
    let (alice, bob) = (session(&alice_desk).await, session(&bob_desk).await);
    let (alice_host, bob_host) = (alice_desk.addr.to_string(), bob_desk.addr.to_string());
    let page = |desk: &common::desk::Desk, s: &common::desk::Session, host: &str, path: &str| {
        let (addr, url, cookie, host) = (desk.addr, s.at(path), s.cookie.clone(), host.to_owned());
        async move {
            let (status, head, body) = get(addr, &url, &host, Some(&cookie)).await;
            assert_eq!(status, 200, "{head}");
            body
        }
    };
    let alice_csrf = csrf(&page(&alice_desk, &alice, &alice_host, "/inbox").await);
    let bob_csrf = csrf(&page(&bob_desk, &bob, &bob_host, "/inbox").await);
    let as_alice = |path: &str, form: String| {
        let (addr, url, cookie, host) = (
            alice_desk.addr,
            alice.at(path),
            alice.cookie.clone(),
            alice_host.clone(),
        );
        let body = format!("csrf={alice_csrf}&{form}");
        async move {
            let (status, _, page) = post(addr, &url, &host, &cookie, "", &body).await;
            (status, String::from_utf8_lossy(&page).into_owned())
        }
    };
    let as_bob = |path: &str, form: String| {
        let (addr, url, cookie, host) = (
            bob_desk.addr,
            bob.at(path),
            bob.cookie.clone(),
            bob_host.clone(),
        );
        let body = format!("csrf={bob_csrf}&{form}");
        async move {
            let (status, _, page) = post(addr, &url, &host, &cookie, "", &body).await;
            (status, String::from_utf8_lossy(&page).into_owned())
        }
    };

    // A guarded delete from the message page files a request and deletes nothing.
    let (status, filed_page) =
        as_alice(&format!("/message/{a}/delete"), "reason=ticket+9".into()).await;
    assert_eq!(status, 200, "{filed_page}");
    let n = filed_on_desk(filed_page.as_bytes());
    assert!(listed(&gw).await.contains(&a), "a request deletes nothing");
    let requests =
        String::from_utf8(page(&bob_desk, &bob, &bob_host, "/requests").await).expect("utf8");
    assert!(
        requests.contains(&format!("id=\"approve-{n}\"")) && requests.contains("ticket 9"),
        "{requests}"
    );
    assert!(
        requests.contains("Needs approval: release, export, delete"),
        "{requests}"
    );

    // The requester cannot approve it; another reviewer can, once.
    let (status, refused) = as_alice(&format!("/requests/{n}/approve"), "reason=".into()).await;
    assert_eq!(status, 403, "{refused}");
    assert!(
        refused.contains("another principal must approve it"),
        "{refused}"
    );
    let (status, approved) = as_bob(&format!("/requests/{n}/approve"), "reason=ok".into()).await;
    assert_eq!(status, 200, "{approved}");
    assert!(approved.contains("Request approved"), "{approved}");
    let (status, again) = as_bob(&format!("/requests/{n}/approve"), "reason=".into()).await;
    assert_eq!(status, 400, "{again}");

    // The approved request offers the requester its carrying out; only she may.
    let requests =
        String::from_utf8(page(&alice_desk, &alice, &alice_host, "/requests").await).expect("utf8");
    assert!(
        requests.contains(&format!("id=\"carry-{n}\"")),
        "{requests}"
    );
    let carry = format!("do=delete&id={a}&request={n}&reason=ticket+9");
    let (status, refused) = as_bob("/selection", carry.clone()).await;
    assert_eq!(status, 403, "{refused}");
    assert!(refused.contains("only its requester"), "{refused}");
    assert!(listed(&gw).await.contains(&a));
    let (status, deleted) = as_alice("/selection", carry.clone()).await;
    assert_eq!(status, 200, "{deleted}");
    assert!(
        deleted.contains("Deleted") && deleted.contains(&a),
        "{deleted}"
    );
    assert!(!listed(&gw).await.contains(&a), "carried out");
    let (status, used) = as_alice("/selection", carry).await;
    assert_eq!(status, 403, "a delete request is used once: {used}");

    // A guarded download files a request too, and a denied one allows nothing.
    let (status, filed_page) = as_alice(&format!("/message/{b}/eml"), "reason=dsar+3".into()).await;
    assert_eq!(status, 200, "{filed_page}");
    let e = filed_on_desk(filed_page.as_bytes());
    let (status, denied) = as_bob(&format!("/requests/{e}/deny"), "reason=no+basis".into()).await;
    assert_eq!(status, 200, "{denied}");
    assert!(denied.contains("Request denied"), "{denied}");
    let (status, refused) = as_alice(
        &format!("/message/{b}/eml"),
        format!("reason=dsar+3&request={e}"),
    )
    .await;
    assert_eq!(status, 403, "{refused}");
    assert!(refused.contains("is denied"), "{refused}");
    assert!(!refused.contains("second"), "nothing of the message");

    // A release request carries its recipients to the approver and to the carrying out.
    let (status, filed_page) = as_alice(
        &format!("/message/{b}/release"),
        "to=case%40new.example&reason=forward".into(),
    )
    .await;
    assert_eq!(status, 200, "{filed_page}");
    assert!(filed_page.contains("case@new.example"), "{filed_page}");
    let r = filed_on_desk(filed_page.as_bytes());
    let (status, approved) = as_bob(&format!("/requests/{r}/approve"), "reason=".into()).await;
    assert_eq!(status, 200, "{approved}");
    let requests =
        String::from_utf8(page(&alice_desk, &alice, &alice_host, "/requests").await).expect("utf8");
    let form = requests
        .split(&format!("id=\"carry-{r}-1\""))
        .nth(1)
        .and_then(|rest| rest.split("</form>").next())
        .unwrap_or_else(|| panic!("no carry-out form for {r}: {requests}"));
    assert!(
        form.contains("name=\"to\" value=\"case@new.example\""),
        "{form}"
    );
    let (status, refused) = as_alice(
        &format!("/message/{b}/release"),
        format!("to=me%40evil.example&request={r}&reason=forward"),
    )
    .await;
    assert_eq!(status, 403, "{refused}");
    let (status, released) = as_alice(
        &format!("/message/{b}/release"),
        format!("to=case%40new.example&request={r}&reason=forward"),
    )
    .await;
    assert_eq!(status, 200, "{released}");
    assert!(released.contains("Released"), "{released}");
    let received = relay.wait_ended(1, Duration::from_secs(20)).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].rcpt_to, ["case@new.example"]);

    // What the policy does not guard happens at once.
    let (status, held) = as_alice(&format!("/message/{b}/hold"), "held=1&reason=case".into()).await;
    assert_eq!(status, 200, "{held}");
    assert!(held.contains("Legal hold placed"), "{held}");

    // The trail has both reviewers' steps, and the chain verifies.
    let trail = ok(&gw.cli(&["audit", "--json"]).await);
    assert!(trail.contains(&format!("request {n}: delete")), "{trail}");
    assert!(trail.contains(&format!("under request {n}")), "{trail}");
    ok(&gw.cli(&["audit", "--verify"]).await);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_release_goes_only_where_the_approver_agreed() {
    let relay = common::recorder::Recorder::start(0).await;
    let certs = Certificates::new(&["bob"]);
    let tail = format!(
        "[[principal]]\nname = \"alice\"\nuid = {}\nroles = [\"admin\"]\n\n\
         [[principal]]\nname = \"bob\"\ncertificate_subject = \"CN=bob\"\nroles = [\"admin\"]\n\n\
         [approvals]\nactions = [\"release\"]\nexpiry = \"1h\"\n\n\
         [release]\nrelay = \"{}\"\ntls = \"none\"\nfrom = \"quarantine@new.example\"\n",
        my_uid(),
        relay.addr
    );
    let mut gw = TestGateway::start_custom(Extra {
        admin: &certs.admin,
        tail: &tail,
        ..Extra::default()
    })
    .await;
    let a = gw
        .send(
            "a@p.example",
            &["x@old.example"],
            b"Subject: one\r\n\r\nfirst\r\n",
        )
        .await;
    let alice: Vec<String> = vec![];
    let bob = certs.flags(&gw, "bob");

    // The request names where the message goes; the approver sees it.
    fails(
        &cli_as(&gw, &alice, &["request", "release", &a, "--reason", "dsar"]).await,
        USAGE_EXIT,
        "names its recipients",
    );
    let n = filed(
        &cli_as(
            &gw,
            &alice,
            &[
                "request",
                "release",
                &a,
                "--to",
                "case@new.example",
                "--reason",
                "dsar",
            ],
        )
        .await,
    );
    let listed: serde_json::Value =
        serde_json::from_str(&ok(&cli_as(&gw, &bob, &["requests", "--json"]).await))
            .expect("requests JSON");
    assert_eq!(
        listed["requests"][0]["to"],
        serde_json::json!(["case@new.example"]),
        "{listed:#}"
    );
    assert!(ok(&cli_as(&gw, &bob, &["requests"]).await).contains("case@new.example"));
    ok(&cli_as(&gw, &bob, &["approve", &n]).await);

    // Anywhere else, or to more, is refused before the message leaves the gateway.
    for to in [
        &["--to", "me@evil.example"][..],
        &["--to", "case@new.example", "--to", "me@evil.example"][..],
    ] {
        let mut args = vec!["release", &a];
        args.extend(to);
        args.extend(["--request", &n, "--reason", "dsar"]);
        fails(
            &cli_as(&gw, &alice, &args).await,
            REFUSED_EXIT,
            "approves a release to case@new.example only",
        );
    }
    ok(&cli_as(
        &gw,
        &alice,
        &[
            "release",
            &a,
            "--to",
            "case@new.example",
            "--request",
            &n,
            "--reason",
            "dsar",
        ],
    )
    .await);
    let received = relay.wait_ended(1, Duration::from_secs(20)).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].rcpt_to, ["case@new.example"]);

    // The trail says where each fetch asked to send it.
    let trail = ok(&cli_as(&gw, &bob, &["audit", "--json"]).await);
    let trail: serde_json::Value = serde_json::from_str(&trail).expect("audit JSON");
    let fetches: Vec<(u64, String)> = trail["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter(|r| r["action"] == "release-fetch")
        .map(|r| {
            let detail = r["detail"].as_str().unwrap_or_default().to_owned();
            (r["status"].as_u64().unwrap_or_default(), detail)
        })
        .collect();
    assert_eq!(fetches.len(), 3, "{fetches:?}");
    assert!(
        fetches
            .iter()
            .any(|(s, d)| *s == 403 && d.contains("to me@evil.example")),
        "{fetches:?}"
    );
    assert!(
        fetches.iter().any(|(s, d)| *s == 200
            && d.contains(&format!("under request {n}"))
            && d.ends_with("; to case@new.example")),
        "{fetches:?}"
    );
    gw.stop().await;
}
