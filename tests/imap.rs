//! `reclaim imap` against a real gateway and admin API: the password of the run and no
//! other, mailboxes per retired domain, exact bytes of a message delivered over SMTP, UIDs
//! and flags across restarts, SEARCH from summaries and by decryption within its bound,
//! refusals of everything that would change the quarantine, loopback only, and input
//! that is too long or malformed, IDLE. Real clients: Python's imaplib, curl, and mbsync
//! (isync) syncing every mailbox into a Maildir across a restart.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use clap::Parser;
use common::{TestGateway, split_trace};
use reclaim::cli::Args;
use reclaim::imap::{Bound, ImapError, Limits, Review};
use reclaim::review::ReviewContext;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const INVOICE: &[u8] = b"From: Anna <anna@partner.example>\r\nTo: jan@old.example\r\n\
Subject: Quarterly invoice\r\nMessage-ID: <q1@partner.example>\r\n\r\n\
Dear Jan,\r\nthe invoice for the quarter is attached in spirit.\r\n";
const HELLO: &[u8] =
    b"From: b@other.example\r\nSubject: hello from B\r\n\r\nnothing secret here\r\n";

/// An IMAP server serving in this process.
struct Imap {
    addr: SocketAddr,
    password: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Imap {
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("stops in time")
            .expect("server task");
    }
}

fn review(gw: &TestGateway) -> Box<Review> {
    review_as(gw, &gw.identity)
}

/// The review service of the reviewer holding `identity`.
fn review_as(gw: &TestGateway, identity: &Path) -> Box<Review> {
    Box::new(Review::new(gw.review_context(Some(identity)), "imap test"))
}

async fn start_imap(gw: &TestGateway, state: &Path, limits: Limits) -> Imap {
    serve(review(gw), state, limits).await
}

async fn serve(quarantine: Box<Review>, state: &Path, limits: Limits) -> Imap {
    let bound = Bound::bind(
        quarantine,
        state,
        "127.0.0.1:0".parse().expect("addr"),
        limits,
    )
    .await
    .expect("imap binds");
    let (addr, password) = (bound.addr, bound.password().to_owned());
    assert!(password.len() >= 32, "a long random password");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(bound.serve(shutdown.clone()));
    Imap {
        addr,
        password,
        shutdown,
        task,
    }
}

/// A raw IMAP client: sends lines, reads responses with their literals.
struct Client {
    stream: BufReader<TcpStream>,
    next: u32,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut c = Self {
            stream: BufReader::new(stream),
            next: 0,
        };
        let greeting = c.line().await;
        assert!(
            greeting.starts_with(b"* OK [CAPABILITY IMAP4rev1"),
            "{greeting:?}"
        );
        c
    }

    async fn line(&mut self) -> Vec<u8> {
        use tokio::io::AsyncBufReadExt;
        let mut line = Vec::new();
        tokio::time::timeout(
            Duration::from_secs(60),
            self.stream.read_until(b'\n', &mut line),
        )
        .await
        .expect("a line in time")
        .expect("read");
        line
    }

    /// Everything up to and with the tagged line, literals included as sent.
    async fn read_until_tagged(&mut self, tag: &str) -> Vec<u8> {
        let mut all = Vec::new();
        loop {
            let line = self.line().await;
            assert!(
                !line.is_empty(),
                "connection closed; so far: {}",
                String::from_utf8_lossy(&all)
            );
            all.extend_from_slice(&line);
            if let Some(n) = literal_size(&line) {
                let mut bytes = vec![0; n];
                self.stream.read_exact(&mut bytes).await.expect("literal");
                all.extend_from_slice(&bytes);
                continue;
            }
            if line.starts_with(format!("{tag} ").as_bytes()) {
                return all;
            }
        }
    }

    /// Sends `command` with a fresh tag; returns the whole response.
    async fn cmd(&mut self, command: &str) -> String {
        String::from_utf8_lossy(&self.cmd_bytes(command).await).into_owned()
    }

    async fn cmd_bytes(&mut self, command: &str) -> Vec<u8> {
        self.next += 1;
        let tag = format!("t{}", self.next);
        self.send(format!("{tag} {command}\r\n").as_bytes()).await;
        self.read_until_tagged(&tag).await
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.get_mut().write_all(bytes).await.expect("send");
    }

    async fn login(addr: SocketAddr, password: &str) -> Self {
        let mut c = Self::connect(addr).await;
        let r = c.cmd(&format!("LOGIN reviewer {password}")).await;
        assert!(tagged_ok(&r), "{r}");
        c
    }

    /// Whether the server closed the connection.
    async fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        matches!(
            tokio::time::timeout(Duration::from_secs(10), self.stream.read_to_end(&mut rest)).await,
            Ok(Ok(_))
        )
    }
}

fn literal_size(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"\r\n")?;
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&inner[open + 1..]).ok()?.parse().ok()
}

fn last_line(response: &str) -> &str {
    response.trim_end().lines().last().unwrap_or_default()
}

fn tagged_ok(response: &str) -> bool {
    last_line(response).split(' ').nth(1) == Some("OK")
}

fn tagged_status(response: &str) -> &str {
    last_line(response).split(' ').nth(1).unwrap_or_default()
}

/// The number after `name ` in a response, such as `UIDVALIDITY 123`.
fn number_after(response: &str, name: &str) -> u64 {
    let at = response
        .find(&format!("{name} "))
        .unwrap_or_else(|| panic!("no {name} in {response}"));
    response[at + name.len() + 1..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {name} in {response}"))
}

/// The literal following `marker` in a response.
fn literal_after(response: &[u8], marker: &[u8]) -> Vec<u8> {
    let at = response
        .windows(marker.len())
        .position(|w| w == marker)
        .unwrap_or_else(|| {
            panic!(
                "no {:?} in {}",
                String::from_utf8_lossy(marker),
                String::from_utf8_lossy(response)
            )
        });
    let rest = &response[at + marker.len()..];
    let open = rest.iter().position(|&b| b == b'{').expect("a literal");
    let close = rest.iter().position(|&b| b == b'}').expect("a literal");
    let n: usize = std::str::from_utf8(&rest[open + 1..close])
        .expect("digits")
        .parse()
        .expect("size");
    rest[close + 3..close + 3 + n].to_vec()
}

fn search_numbers(response: &str) -> Vec<u32> {
    let line = response
        .lines()
        .find(|l| l.starts_with("* SEARCH"))
        .unwrap_or_else(|| panic!("no SEARCH in {response}"));
    line["* SEARCH".len()..]
        .split_whitespace()
        .map(|n| n.parse().expect("number"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_client_reads_the_quarantine_by_domain_with_stable_uids() {
    let gw = TestGateway::start("").await;
    let invoice = gw
        .send("anna@partner.example", &["jan@old.example"], INVOICE)
        .await;
    let hello = gw
        .send("b@other.example", &["piet@x.retired.example"], HELLO)
        .await;
    let state = tempfile::tempdir().expect("state dir");
    let imap = start_imap(&gw, state.path(), Limits::default()).await;

    let mut c = Client::connect(imap.addr).await;
    let r = c.cmd("CAPABILITY").await;
    assert!(
        r.contains("* CAPABILITY IMAP4rev1 AUTH=PLAIN")
            && r.contains(" IDLE")
            && !r.contains("LOGINDISABLED")
            && !r.contains("UIDPLUS"),
        "{r}"
    );
    let r = c.cmd("SELECT INBOX").await;
    assert_eq!(tagged_status(&r), "BAD", "nothing before login: {r}");
    let r = c.cmd("LOGIN reviewer not-the-password").await;
    assert!(r.contains("NO [AUTHENTICATIONFAILED]"), "{r}");
    let r = c.cmd(&format!("LOGIN reviewer {}x", imap.password)).await;
    assert_eq!(tagged_status(&r), "NO", "a longer password is not it: {r}");
    let r = c
        .cmd(&format!("LOGIN \"any name\" \"{}\"", imap.password))
        .await;
    assert!(tagged_ok(&r), "{r}");

    let r = c.cmd("LIST \"\" *").await;
    for name in [
        "\"INBOX\"",
        "\"old.example\"",
        "\"retired.example\"",
        "\"xn--bcher-kva.example\"",
    ] {
        assert!(r.contains(&format!("\"/\" {name}\r\n")), "{name} in {r}");
    }
    let r = c.cmd("LSUB \"\" \"old*\"").await;
    assert!(r.contains("old.example") && !r.contains("INBOX"), "{r}");

    let r = c.cmd("SELECT INBOX").await;
    assert!(
        r.contains("* 2 EXISTS") && r.contains("[READ-WRITE]"),
        "{r}"
    );
    let inbox_validity = number_after(&r, "UIDVALIDITY");
    assert_eq!(number_after(&r, "UIDNEXT"), 3);
    let r = c.cmd("STATUS old.example (MESSAGES UNSEEN UIDNEXT)").await;
    assert!(
        r.contains("* STATUS \"old.example\" (MESSAGES 1 UNSEEN 1 UIDNEXT 2)"),
        "{r}"
    );

    // SEARCH from the summaries: no message is opened for these.
    assert_eq!(
        search_numbers(&c.cmd("SEARCH FROM partner.example").await),
        [1]
    );
    assert_eq!(
        search_numbers(&c.cmd("UID SEARCH SUBJECT \"hello from\"").await),
        [2]
    );
    assert_eq!(
        search_numbers(&c.cmd("SEARCH OR SUBJECT invoice TO retired.example").await),
        [1, 2]
    );
    assert_eq!(
        search_numbers(&c.cmd("SEARCH NOT FROM partner SINCE 1-Jan-2020").await),
        [2]
    );
    assert!(search_numbers(&c.cmd("SEARCH BEFORE 1-Jan-2020").await).is_empty());
    assert_eq!(search_numbers(&c.cmd("SEARCH UNSEEN").await), [1, 2]);
    // TEXT and BODY decrypt.
    assert_eq!(
        search_numbers(&c.cmd("SEARCH BODY \"IN SPIRIT\"").await),
        [1]
    );
    assert_eq!(
        search_numbers(&c.cmd("SEARCH TEXT \"hello from\"").await),
        [2]
    );

    // The domain's mailbox holds only its own message, byte for byte as delivered.
    let r = c.cmd("EXAMINE old.example").await;
    assert!(r.contains("* 1 EXISTS") && r.contains("[READ-ONLY]"), "{r}");
    let r = c
        .cmd_bytes("UID FETCH 1:* (UID RFC822.SIZE BODY.PEEK[])")
        .await;
    let body = literal_after(&r, b"BODY[] ");
    let exported = gw.export(&invoice).await;
    assert_eq!(
        body, exported,
        "BODY[] is the message as reclaim export gives it"
    );
    assert_eq!(
        split_trace(&body).1,
        INVOICE,
        "and the message as sent, after the trace"
    );
    let text = String::from_utf8_lossy(&r).into_owned();
    assert_eq!(
        number_after(&text, "RFC822.SIZE"),
        body.len() as u64,
        "{text}"
    );
    // Reading it was an audited read of this message with the run's reason.
    let audit: serde_json::Value =
        serde_json::from_str(&gw.cli_ok(&["audit", "--json"]).await).expect("JSON");
    let shows: Vec<&serde_json::Value> = audit["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter(|r| r["action"] == "show" && r["reason"] == "imap test")
        .collect();
    assert!(
        shows
            .iter()
            .any(|r| r["ids"] == serde_json::json!([invoice])),
        "{audit}"
    );
    assert_eq!(text.matches("FETCH (").count(), 1, "one message: {text}");
    let r = c
        .cmd("FETCH 1 (FLAGS ENVELOPE BODYSTRUCTURE INTERNALDATE)")
        .await;
    assert!(r.contains("\"Quarterly invoice\""), "{r}");
    assert!(
        r.contains("((\"Anna\" NIL \"anna\" \"partner.example\"))"),
        "{r}"
    );
    assert!(r.contains("BODYSTRUCTURE (\"TEXT\" \"PLAIN\""), "{r}");
    assert!(r.contains("FLAGS ()"), "{r}");
    let r = c.cmd("STORE 1 +FLAGS (\\Seen)").await;
    assert_eq!(tagged_status(&r), "NO", "EXAMINE is read-only: {r}");

    let r = c.cmd("SELECT retired.example").await;
    assert!(r.contains("* 1 EXISTS"), "{r}");
    let r = c
        .cmd("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[TEXT]<0.7>)")
        .await;
    assert!(r.contains("Subject: hello from B\r\n\r\n"), "{r}");
    assert!(r.contains("BODY[TEXT]<0> {7}\r\nnothing"), "{r}");
    assert!(
        !r.contains("invoice"),
        "the other domain's message is not here: {r}"
    );
    let r = c.cmd("FETCH 1 BODY[]").await;
    assert!(r.contains("FLAGS (\\Seen)"), "BODY[] sets \\Seen: {r}");
    let r = c.cmd("STORE 1 +FLAGS (\\Flagged)").await;
    assert!(r.contains("* 1 FETCH (FLAGS (\\Seen \\Flagged))"), "{r}");
    let r = c.cmd("STORE 1 +FLAGS (\\Deleted)").await;
    assert!(tagged_status(&r) == "NO" && r.contains("delete"), "{r}");
    for refused in [
        "APPEND INBOX {3}",
        "COPY 1 INBOX",
        "UID MOVE 1 INBOX",
        "CREATE x",
        "DELETE old.example",
        "RENAME old.example x",
    ] {
        let r = c.cmd(refused).await;
        assert!(
            tagged_status(&r) == "NO" && r.contains("read-only"),
            "{refused}: {r}"
        );
    }
    let r = c.cmd("EXPUNGE").await;
    assert!(tagged_ok(&r), "{r}");
    let r = c.cmd("UID EXPUNGE 1:*").await;
    assert!(tagged_ok(&r) && !r.contains("* 1 EXPUNGE"), "{r}");
    let r = c.cmd("SELECT nosuch.example").await;
    assert_eq!(tagged_status(&r), "NO", "{r}");
    let r = c.cmd("LOGOUT").await;
    assert!(r.contains("* BYE"), "{r}");

    // A new run: same UIDs, same UIDVALIDITY, flags kept; a new password.
    let old_password = imap.password.clone();
    imap.stop().await;
    let third = gw
        .send(
            "c@third.example",
            &["jan@old.example"],
            b"Subject: third\r\n\r\nx\r\n",
        )
        .await;
    let imap = start_imap(&gw, state.path(), Limits::default()).await;
    assert_ne!(imap.password, old_password);
    let mut c = Client::connect(imap.addr).await;
    let r = c.cmd(&format!("LOGIN reviewer {old_password}")).await;
    assert_eq!(tagged_status(&r), "NO", "last run's password is gone: {r}");
    let r = c.cmd(&format!("LOGIN reviewer {}", imap.password)).await;
    assert!(tagged_ok(&r), "{r}");
    let r = c.cmd("SELECT INBOX").await;
    assert!(r.contains("* 3 EXISTS"), "{r}");
    assert_eq!(number_after(&r, "UIDVALIDITY"), inbox_validity);
    let r = c
        .cmd("UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        .await;
    let uid_of = |subject: &str| {
        let line = r
            .lines()
            .position(|l| l.contains(subject))
            .unwrap_or_else(|| panic!("{subject} in {r}"));
        let fetch = r
            .lines()
            .take(line + 1)
            .filter(|l| l.starts_with("* "))
            .last()
            .expect("fetch line");
        number_after(fetch, "UID")
    };
    assert_eq!(
        (uid_of("Quarterly"), uid_of("hello from B"), uid_of("third")),
        (1, 2, 3),
        "{r}"
    );
    assert!(
        r.contains("UID 2 FLAGS (\\Seen \\Flagged)"),
        "flags kept: {r}"
    );
    assert_eq!(search_numbers(&c.cmd("UID SEARCH UNSEEN").await), [1, 3]);
    let _ = (hello, third);
    imap.stop().await;

    // Losing the state file means new UIDVALIDITY values.
    std::fs::remove_file(state.path().join(reclaim::imap::state::STATE_FILE)).expect("state file");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let imap = start_imap(&gw, state.path(), Limits::default()).await;
    let mut c = Client::login(imap.addr, &imap.password).await;
    let r = c.cmd("SELECT INBOX").await;
    assert_ne!(number_after(&r, "UIDVALIDITY"), inbox_validity, "{r}");
    let r = c.cmd("UID FETCH 1:* FLAGS").await;
    assert!(!r.contains("\\Seen"), "flags went with the state: {r}");
    imap.stop().await;
}

/// Reads lines until one starts with `start`; everything read, for the message.
async fn until_line(c: &mut Client, start: &str) -> String {
    let mut seen = String::new();
    loop {
        let line = String::from_utf8_lossy(&c.line().await).into_owned();
        assert!(!line.is_empty(), "closed before {start:?}; read: {seen}");
        seen.push_str(&line);
        if line.starts_with(start) {
            return seen;
        }
    }
}

/// Reader groups: a reviewer sees exactly the messages sealed to their key, told from each
/// message's `sealed_to` with one summary opened per set of keys, not one per message; the
/// summaries are opened when a SEARCH needs them, and index pages leave them out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_sees_only_what_is_sealed_to_them_without_opening_every_summary() {
    let keys = tempfile::tempdir().expect("tempdir");
    let (a_key, a) = common::new_identity(keys.path(), "a.key");
    let (_, b) = common::new_identity(keys.path(), "b.key");
    let rest = format!(
        "[dns]\nresolver = \"off\"\n\n\
         [[domain]]\nname = \"a.example\"\nreaders = [\"{a}\"]\n\n\
         [[domain]]\nname = \"b.example\"\nreaders = [\"{b}\"]\n"
    );
    let gw = TestGateway::start_custom(common::Extra {
        rest: Some(&rest),
        ..common::Extra::default()
    })
    .await;
    for n in 0..4 {
        let body = format!("Subject: for a {n}\r\n\r\nbody {n}\r\n");
        gw.send("s@p.example", &["x@a.example"], body.as_bytes())
            .await;
    }
    gw.send(
        "s@p.example",
        &["y@b.example"],
        b"Subject: b only\r\n\r\nb\r\n",
    )
    .await;
    gw.send(
        "s@p.example",
        &["x@a.example", "y@b.example"],
        b"Subject: for a and b\r\n\r\nboth\r\n",
    )
    .await;

    // An index page leaves out every summary whose keys are recorded.
    let context = ReviewContext::new(
        &Args::parse_from([
            "reclaim".to_owned(),
            "-c".to_owned(),
            gw.config_path.display().to_string(),
            "list".to_owned(),
        ])
        .access(),
    )
    .expect("review context");
    let page: reclaim::admin::MessagePage = context
        .client
        .get_json("/v1/messages?index=1")
        .expect("an index page");
    assert_eq!(page.messages.len(), 6);
    assert!(
        page.messages
            .iter()
            .all(|m| m.summary.is_empty() && !m.sealed_to.is_empty()),
        "{page:?}"
    );

    let state = tempfile::tempdir().expect("state dir");
    let imap = serve(review_as(&gw, &a_key), state.path(), Limits::default()).await;
    let mut c = Client::login(imap.addr, &imap.password).await;
    let r = c.cmd("SELECT INBOX").await;
    assert!(
        r.contains("* 5 EXISTS"),
        "a's four and the one to both: {r}"
    );
    let r = c.cmd("STATUS b.example (MESSAGES)").await;
    assert!(r.contains("(MESSAGES 1)"), "only the one to both: {r}");
    // Three sets of keys (a; b; a and b): at most one summary opened for each.
    let opened = summaries_read(&context);
    assert!(opened <= 3, "{opened} summaries read for SELECT and STATUS");

    let r = c.cmd("SEARCH SUBJECT \"for a\"").await;
    assert_eq!(search_numbers(&r), [1, 2, 3, 4, 5], "{r}");
    let r = c.cmd("SEARCH SUBJECT \"b only\"").await;
    assert!(search_numbers(&r).is_empty(), "{r}");
    let r = c.cmd("UID FETCH 5 (BODY.PEEK[TEXT])").await;
    assert!(r.contains("both\r\n"), "{r}");
    // A fetch of many is one audited read of all of them.
    let shows = |context: &ReviewContext| -> Vec<String> {
        common::audit_records(context)
            .into_iter()
            .filter(|r| r.contains("\"action\":\"show\""))
            .collect()
    };
    let before = shows(&context).len();
    let r = c
        .cmd("FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        .await;
    assert_eq!(r.matches("Subject: for a").count(), 5, "{r}");
    let after = shows(&context);
    assert_eq!(after.len(), before + 1, "{after:?}");
    let record: serde_json::Value = serde_json::from_str(&after[before]).expect("JSON");
    assert_eq!(
        record["ids"].as_array().map(Vec::len),
        Some(4),
        "the four not read just before: {record}"
    );
    assert_eq!(
        summaries_read(&context),
        opened,
        "SEARCH lists, it does not read one by one"
    );
    c.cmd("LOGOUT").await;
    imap.stop().await;
}

/// With deleting enabled, \\Deleted lasts for the session and EXPUNGE or CLOSE deletes
/// through the admin API with the run's reason; where the policy guards deletes a four-eyes
/// request is filed instead and nothing is deleted; EXAMINE deletes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_is_opt_in_and_follows_the_delete_rules() {
    let gw = TestGateway::start("").await;
    let mut ids = Vec::new();
    for n in 1..=4 {
        let body = format!("Subject: n{n}\r\n\r\nbody {n}\r\n");
        ids.push(
            gw.send("s@p.example", &["jan@old.example"], body.as_bytes())
                .await,
        );
    }
    let context = admin_context(&gw);
    let deletes = Limits {
        deletes: true,
        ..Limits::default()
    };
    let state = tempfile::tempdir().expect("state dir");
    let imap = start_imap(&gw, state.path(), deletes).await;
    let mut c = Client::login(imap.addr, &imap.password).await;
    let r = c.cmd("EXAMINE INBOX").await;
    assert!(r.contains("* 4 EXISTS"), "{r}");
    let r = c.cmd("STORE 1 +FLAGS (\\Deleted)").await;
    assert_eq!(tagged_status(&r), "NO", "EXAMINE is read-only: {r}");
    let r = c.cmd("SELECT INBOX").await;
    assert!(r.contains("FLAGS (\\Seen \\Flagged \\Deleted)"), "{r}");
    let r = c.cmd("STORE 2 +FLAGS (\\Deleted \\Flagged)").await;
    assert!(r.contains("* 2 FETCH (FLAGS (\\Flagged \\Deleted))"), "{r}");
    let r = c.cmd("STORE 3 +FLAGS.SILENT (\\Deleted)").await;
    assert!(!r.contains("FETCH"), "{r}");
    let r = c.cmd("STORE 3 -FLAGS (\\Deleted)").await;
    assert!(r.contains("* 3 FETCH (FLAGS ())"), "unmarked again: {r}");
    let r = c.cmd("STORE 4 FLAGS (\\Deleted)").await;
    assert!(r.contains("* 4 FETCH (FLAGS (\\Deleted))"), "{r}");
    let r = c.cmd("FETCH 1:* (UID FLAGS)").await;
    assert!(
        r.contains("* 2 FETCH (UID 2 FLAGS (\\Flagged \\Deleted))"),
        "{r}"
    );
    assert_eq!(
        listed_ids(&context).len(),
        4,
        "nothing deleted before EXPUNGE"
    );
    let r = c.cmd("UID SEARCH DELETED").await;
    assert!(r.contains("* SEARCH 2 4\r\n"), "{r}");
    // UID EXPUNGE (UIDPLUS, announced with deleting on) takes only the marked ones in its
    // set; EXPUNGE then takes the rest.
    let r = c.cmd("CAPABILITY").await;
    assert!(r.contains(" UIDPLUS"), "{r}");
    let r = c.cmd("UID EXPUNGE 1:3").await;
    assert!(
        r.contains("* 2 EXPUNGE\r\n") && !r.contains("* 3 EXPUNGE") && tagged_ok(&r),
        "{r}"
    );
    assert_eq!(listed_ids(&context).len(), 3);
    let r = c.cmd("EXPUNGE").await;
    assert!(
        r.contains("* 3 EXPUNGE\r\n") && r.matches("EXPUNGE\r\n").count() == 1 && tagged_ok(&r),
        "{r}"
    );
    let left = listed_ids(&context);
    assert_eq!(left.len(), 2);
    assert!(left.contains(&ids[0]) && left.contains(&ids[2]), "{left:?}");
    let deleted = common::audit_records(&context)
        .into_iter()
        .filter(|r| r.contains("\"action\":\"delete\"") && r.contains("\"reason\":\"imap test\""))
        .collect::<Vec<_>>();
    assert_eq!(
        deleted.len(),
        2,
        "one delete per expunge, with the run's reason: {deleted:?}"
    );
    assert!(
        deleted
            .iter()
            .any(|d| d.contains(&ids[1]) && !d.contains(&ids[3]))
    );
    assert!(
        deleted
            .iter()
            .any(|d| d.contains(&ids[3]) && !d.contains(&ids[1]))
    );
    let r = c.cmd("FETCH 1:* UID").await;
    assert!(
        r.contains("* 1 FETCH (UID 1)") && r.contains("* 2 FETCH (UID 3)") && !r.contains("* 3 "),
        "{r}"
    );
    // Several at once: one that is gone is answered as such, the others whole.
    let reader = gw.review_context(Some(&gw.identity));
    let asked: Vec<reclaim::store::MessageId> = [&ids[1], &ids[0]]
        .iter()
        .map(|i| i.parse().expect("id"))
        .collect();
    let got = reclaim::review::export::show_many(&reader, &asked, "check").expect("read");
    assert_eq!(got.len(), 2);
    assert!(got[0].is_none(), "deleted");
    let (_, first) = split_trace(got[1].as_deref().expect("there"));
    assert_eq!(first, b"Subject: n1\r\n\r\nbody 1\r\n");
    // CLOSE deletes too, without telling.
    c.cmd("STORE 1 +FLAGS (\\Deleted)").await;
    let r = c.cmd("CLOSE").await;
    assert!(tagged_ok(&r) && !r.contains("EXPUNGE"), "{r}");
    assert_eq!(listed_ids(&context), &ids[2..3]);
    c.cmd("LOGOUT").await;
    imap.stop().await;

    // Where the policy guards deletes, EXPUNGE files a request and deletes nothing.
    let tail = format!(
        "[[principal]]\nname = \"alice\"\nuid = {}\nroles = [\"admin\"]\n\n\
         [approvals]\nactions = [\"delete\"]\nexpiry = \"1h\"\n",
        common::my_uid()
    );
    let guarded = TestGateway::start_custom(common::Extra {
        tail: &tail,
        ..common::Extra::default()
    })
    .await;
    let id = guarded
        .send(
            "s@p.example",
            &["jan@old.example"],
            b"Subject: x\r\n\r\nx\r\n",
        )
        .await;
    let context = admin_context(&guarded);
    let state = tempfile::tempdir().expect("state dir");
    let imap = start_imap(&guarded, state.path(), deletes).await;
    let mut c = Client::login(imap.addr, &imap.password).await;
    c.cmd("SELECT INBOX").await;
    c.cmd("STORE 1 +FLAGS (\\Deleted)").await;
    let r = c.cmd("EXPUNGE").await;
    assert!(
        tagged_status(&r) == "NO" && r.contains("approval") && r.contains("--request 1"),
        "{r}"
    );
    assert_eq!(
        listed_ids(&context),
        std::slice::from_ref(&id),
        "nothing deleted"
    );
    let requests: serde_json::Value = context
        .client
        .get_json("/v1/requests?limit=10")
        .expect("requests");
    let filed = &requests["requests"][0];
    assert_eq!(filed["number"], 1, "{requests}");
    assert_eq!(
        (&filed["state"], &filed["action"], &filed["reason"]),
        (&"pending".into(), &"delete".into(), &"imap test".into()),
        "{requests}"
    );
    assert!(filed.to_string().contains(&id), "{requests}");
    let r = c.cmd("CLOSE").await;
    assert_eq!(
        tagged_status(&r),
        "NO",
        "the refusal keeps the mailbox: {r}"
    );
    let r = c.cmd("FETCH 1 FLAGS").await;
    assert!(r.contains("\\Deleted"), "still marked: {r}");
    c.cmd("LOGOUT").await;
    imap.stop().await;
}

/// The review service with the gateway's config and no identity: for the admin API only.
fn admin_context(gw: &TestGateway) -> ReviewContext {
    gw.review_context(None)
}

/// The ids on the first page of the admin API's list.
fn listed_ids(context: &ReviewContext) -> Vec<String> {
    let page: reclaim::admin::MessagePage = context
        .client
        .get_json("/v1/messages?index=1")
        .expect("a page");
    page.messages.into_iter().map(|m| m.id).collect()
}

/// How many single summaries (`GET /v1/messages/ID`) the audit trail records.
fn summaries_read(context: &ReviewContext) -> usize {
    common::audit_records(context)
        .iter()
        .filter(|r| r.contains("\"action\":\"summary\""))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_tells_of_new_and_deleted_mail_until_done() {
    let gw = TestGateway::start("").await;
    let invoice = gw
        .send("anna@partner.example", &["jan@old.example"], INVOICE)
        .await;
    let state = tempfile::tempdir().expect("state dir");
    let quick = Limits {
        idle_poll: Duration::from_millis(100),
        listing_fresh: Duration::ZERO,
        ..Limits::default()
    };
    let imap = start_imap(&gw, state.path(), quick).await;
    let mut c = Client::login(imap.addr, &imap.password).await;

    // With no mailbox selected there is nothing to tell; DONE ends it.
    c.send(b"i1 IDLE\r\n").await;
    assert!(c.line().await.starts_with(b"+ "), "a continuation");
    c.send(b"done\r\n").await;
    let r = String::from_utf8_lossy(&c.read_until_tagged("i1").await).into_owned();
    assert!(r.starts_with("i1 OK"), "{r}");

    let r = c.cmd("SELECT old.example").await;
    assert!(r.contains("* 1 EXISTS"), "{r}");
    c.send(b"i2 IDLE\r\n").await;
    assert!(c.line().await.starts_with(b"+ "), "a continuation");
    gw.send("anna@partner.example", &["kees@old.example"], HELLO)
        .await;
    until_line(&mut c, "* 2 EXISTS").await;
    gw.cli_ok(&["delete", &invoice, "--reason", "idle test"])
        .await;
    until_line(&mut c, "* 1 EXPUNGE").await;
    c.send(b"DONE\r\n").await;
    let r = String::from_utf8_lossy(&c.read_until_tagged("i2").await).into_owned();
    assert!(r.ends_with("i2 OK IDLE terminated\r\n"), "{r}");
    let r = c.cmd("FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])").await;
    assert!(
        r.contains("hello from B"),
        "the new message is number 1 now: {r}"
    );

    // Anything but DONE ends the IDLE with BAD; the connection goes on.
    c.send(b"i3 IDLE\r\n").await;
    assert!(c.line().await.starts_with(b"+ "), "a continuation");
    c.send(b"i4 NOOP\r\n").await;
    let r = String::from_utf8_lossy(&c.read_until_tagged("i3").await).into_owned();
    assert!(r.starts_with("i3 BAD"), "{r}");
    assert!(tagged_ok(&c.cmd("NOOP").await));

    // A server that stops says BYE to an idling client.
    c.send(b"i5 IDLE\r\n").await;
    assert!(c.line().await.starts_with(b"+ "), "a continuation");
    imap.stop().await;
    until_line(&mut c, "* BYE reclaim imap is stopping").await;
    assert!(c.closed().await);

    // An IDLE past the idle timeout is logged out.
    let imap = start_imap(
        &gw,
        state.path(),
        Limits {
            idle: Duration::from_millis(300),
            ..quick
        },
    )
    .await;
    let mut c = Client::login(imap.addr, &imap.password).await;
    c.cmd("SELECT INBOX").await;
    c.send(b"i6 IDLE\r\n").await;
    assert!(c.line().await.starts_with(b"+ "), "a continuation");
    until_line(&mut c, "* BYE idle for too long").await;
    assert!(c.closed().await);
    imap.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_are_bounded_and_authenticate_plain_works() {
    let gw = TestGateway::start("").await;
    gw.send(
        "a@partner.example",
        &["jan@old.example"],
        b"Subject: x\r\n\r\ny\r\n",
    )
    .await;
    let state = tempfile::tempdir().expect("state dir");
    let imap = start_imap(&gw, state.path(), Limits::default()).await;

    let mut c = Client::connect(imap.addr).await;
    for _ in 0..2 {
        let r = c.cmd("LOGIN reviewer wrong").await;
        assert_eq!(tagged_status(&r), "NO", "{r}");
    }
    let r = c.cmd("LOGIN reviewer wrong").await;
    assert!(r.contains("* BYE too many failed logins"), "{r}");
    assert!(c.closed().await, "the third failure drops the connection");

    use base64::Engine;
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    // With the response after a continuation, as most clients send it.
    let mut c = Client::connect(imap.addr).await;
    c.send(b"a1 AUTHENTICATE PLAIN\r\n").await;
    assert_eq!(c.line().await, b"+ \r\n");
    c.send(format!("{}\r\n", b64(format!("\0jan\0{}", imap.password))).as_bytes())
        .await;
    let r = String::from_utf8_lossy(&c.read_until_tagged("a1").await).into_owned();
    assert!(tagged_ok(&r), "{r}");
    // And as an initial response (SASL-IR); a wrong one fails.
    let mut c = Client::connect(imap.addr).await;
    let r = c
        .cmd(&format!("AUTHENTICATE PLAIN {}", b64("\0jan\0nope".into())))
        .await;
    assert_eq!(tagged_status(&r), "NO", "{r}");
    let r = c
        .cmd(&format!(
            "AUTHENTICATE PLAIN {}",
            b64(format!("\0jan\0{}", imap.password))
        ))
        .await;
    assert!(tagged_ok(&r), "{r}");
    // A literal password, as clients send passwords with special characters.
    let mut c = Client::connect(imap.addr).await;
    c.send(b"a1 LOGIN {3}\r\n").await;
    assert!(c.line().await.starts_with(b"+ "));
    c.send(format!("jan {{{}}}\r\n", imap.password.len()).as_bytes())
        .await;
    assert!(c.line().await.starts_with(b"+ "));
    c.send(format!("{}\r\n", imap.password).as_bytes()).await;
    let r = String::from_utf8_lossy(&c.read_until_tagged("a1").await).into_owned();
    assert!(tagged_ok(&r), "{r}");
    imap.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_lines_big_literals_garbage_and_costly_searches_are_refused() {
    let gw = TestGateway::start("").await;
    for n in 0..3 {
        let body = format!("Subject: m{n}\r\n\r\nbody {n}\r\n");
        gw.send("a@partner.example", &["jan@old.example"], body.as_bytes())
            .await;
    }
    let state = tempfile::tempdir().expect("state dir");
    let limits = Limits {
        search_decrypts: 2,
        ..Limits::default()
    };
    let imap = start_imap(&gw, state.path(), limits).await;
    let mut c = Client::login(imap.addr, &imap.password).await;

    let mut long = b"big1 NOOP ".to_vec();
    long.extend(std::iter::repeat_n(b'a', 100_000));
    long.extend_from_slice(b"\r\n");
    c.send(&long).await;
    let r = String::from_utf8_lossy(&c.read_until_tagged("big1").await).into_owned();
    assert!(r.starts_with("big1 BAD command longer than"), "{r}");
    c.send(b"big2 LOGIN {100000000}\r\n").await;
    let r = String::from_utf8_lossy(&c.read_until_tagged("big2").await).into_owned();
    assert!(r.starts_with("big2 BAD literal larger than"), "{r}");
    for garbage in [
        "FETCH",
        "FETCH 1 (",
        "FETCH 0 FLAGS",
        "FETCH 1 BODY[1.",
        "SEARCH ((((",
        "STORE 1 FLAGS (",
        "SELECT \"unterminated",
        "UID",
        "\u{7f}\u{1}",
        "FETCH 1:* BODY[HEADER.FIELDS (]",
    ] {
        let r = c.cmd(garbage).await;
        assert_eq!(tagged_status(&r), "BAD", "{garbage:?}: {r}");
    }
    c.send(b"\r\n").await;
    assert!(c.line().await.starts_with(b"* BAD"));
    let r = c.cmd("SELECT INBOX").await;
    assert!(
        r.contains("* 3 EXISTS"),
        "still serving after all that: {r}"
    );
    let r = c
        .cmd("FETCH 1:* (BODY.PEEK[5] BODY.PEEK[1.2.3.MIME] BODY.PEEK[]<99999.5>)")
        .await;
    assert!(
        tagged_ok(&r) && r.contains("BODY[5] NIL") && r.contains("BODY[]<99999> {0}"),
        "{r}"
    );

    let r = c.cmd("SEARCH TEXT body").await;
    assert!(
        tagged_status(&r) == "NO" && r.contains("[LIMIT]"),
        "three to decrypt, two allowed: {r}"
    );
    let r = c.cmd("SEARCH SUBJECT m2 TEXT body").await;
    assert_eq!(
        search_numbers(&r),
        [3],
        "narrowed by the summary first: {r}"
    );
    imap.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_loopback_and_the_binary_prints_where_and_how() {
    let gw = TestGateway::start("").await;
    let state = tempfile::tempdir().expect("state dir");
    let refused = Bound::bind(
        review(&gw),
        state.path(),
        "0.0.0.0:0".parse().expect("addr"),
        Limits::default(),
    )
    .await;
    assert!(
        matches!(refused, Err(ImapError::NotLoopback(_))),
        "0.0.0.0 refused"
    );
    let out = gw
        .cli(&[
            "imap",
            "--listen",
            "192.0.2.1:1143",
            "--reason",
            "x",
            "--state",
            &state.path().display().to_string(),
        ])
        .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("loopback only"), "{stderr}");
    let out = gw.cli(&["imap"]).await;
    assert!(!out.status.success(), "--reason is required");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--reason"));
}

/// The messages of a Maildir folder (new and cur) as they were on the server: mbsync
/// stores them with LF line ends and adds an `X-TUID:` header of its own.
fn maildir_messages(folder: &Path) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(folder.join(sub)) else {
            continue;
        };
        for entry in entries {
            let stored = std::fs::read(entry.expect("entry").path()).expect("message");
            let mut message = Vec::new();
            for line in stored.split_inclusive(|&b| b == b'\n') {
                if !line.starts_with(b"X-TUID: ") {
                    message.extend_from_slice(line.strip_suffix(b"\n").unwrap_or(line));
                    message.extend_from_slice(b"\r\n");
                }
            }
            messages.push(message);
        }
    }
    messages.sort();
    messages
}

/// Runs a real client program off the async threads (the server answers it meanwhile).
async fn run_client(program: &str, args: Vec<std::ffi::OsString>) -> std::process::Output {
    let program = program.to_owned();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(&program)
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"))
    })
    .await
    .expect("client task")
}

/// Runs mbsync (isync) with `config`; its output when it fails.
async fn mbsync(config: &Path) {
    let args = ["60", "mbsync", "-c"]
        .into_iter()
        .map(Into::into)
        .chain([config.as_os_str().to_owned(), "-a".into()])
        .collect();
    let output = run_client("timeout", args).await;
    assert!(
        output.status.success(),
        "mbsync: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mbsync_pulls_every_mailbox_and_only_new_mail_after_a_restart() {
    if !common::have("mbsync") {
        return;
    }
    let gw = TestGateway::start("").await;
    let invoice = gw
        .send("anna@partner.example", &["jan@old.example"], INVOICE)
        .await;
    let hello = gw
        .send("b@other.example", &["piet@x.retired.example"], HELLO)
        .await;
    let state = tempfile::tempdir().expect("state dir");
    let local = tempfile::tempdir().expect("maildir");
    let imap = start_imap(&gw, state.path(), Limits::default()).await;
    let config = |port: u16, password: &str| {
        format!(
            "IMAPAccount reclaim\nHost 127.0.0.1\nPort {port}\nUser reviewer\nPass {password}\n\
             SSLType None\nAuthMechs LOGIN\n\n\
             IMAPStore quarantine\nAccount reclaim\n\n\
             MaildirStore local\nPath {dir}/\nInbox {dir}/INBOX\nSubFolders Verbatim\n\n\
             Channel quarantine\nFar :quarantine:\nNear :local:\nPatterns *\nCreate Near\n\
             Sync Pull\nSyncState *\n",
            dir = local.path().display()
        )
    };
    let config_file = common::write_file(
        state.path(),
        "mbsyncrc",
        config(imap.addr.port(), &imap.password).as_bytes(),
    );
    mbsync(&config_file).await;
    let (invoice_bytes, hello_bytes) = (gw.export(&invoice).await, gw.export(&hello).await);
    assert_eq!(
        maildir_messages(&local.path().join("old.example")),
        std::slice::from_ref(&invoice_bytes)
    );
    assert_eq!(
        maildir_messages(&local.path().join("retired.example")),
        std::slice::from_ref(&hello_bytes)
    );
    let mut both = vec![invoice_bytes, hello_bytes];
    both.sort();
    assert_eq!(maildir_messages(&local.path().join("INBOX")), both);
    imap.stop().await;

    // A new run (new port, new password) with the same state: the UIDs hold, so mbsync
    // pulls only the message that came meanwhile.
    let later = gw
        .send("anna@partner.example", &["kees@old.example"], HELLO)
        .await;
    let imap = start_imap(&gw, state.path(), Limits::default()).await;
    std::fs::write(
        &config_file,
        config(imap.addr.port(), &imap.password).as_bytes(),
    )
    .expect("config");
    mbsync(&config_file).await;
    let mut expected = both.clone();
    expected.push(gw.export(&later).await);
    expected.sort();
    assert_eq!(maildir_messages(&local.path().join("INBOX")), expected);
    assert_eq!(maildir_messages(&local.path().join("old.example")).len(), 2);
    imap.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_imaplib_and_curl_read_it() {
    if !common::have("python3") {
        return;
    }
    let gw = TestGateway::start("").await;
    let id = gw
        .send("anna@partner.example", &["jan@old.example"], INVOICE)
        .await;
    let state = tempfile::tempdir().expect("state dir");
    let imap = start_imap(&gw, state.path(), Limits::default()).await;
    let script = r#"
import imaplib, sys
port, password, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
m = imaplib.IMAP4("127.0.0.1", port)
try:
    m.login("reviewer", "wrong")
    sys.exit("a wrong password was accepted")
except imaplib.IMAP4.error:
    pass
m.login("reviewer", password)
typ, boxes = m.list()
assert typ == "OK" and any(b'"old.example"' in b for b in boxes), boxes
typ, data = m.select("old.example")
assert typ == "OK" and data == [b"1"], data
typ, data = m.uid("SEARCH", None, "FROM", "anna")
assert data == [b"1"], data
typ, data = m.uid("FETCH", "1", "(RFC822)")
open(out, "wb").write(data[0][1])
typ, data = m.fetch("1", "(FLAGS)")
assert b"\\Seen" in data[0], data
m.close()
m.logout()
"#;
    let out_file = state.path().join("fetched.eml");
    let args = vec![
        "-c".into(),
        script.into(),
        imap.addr.port().to_string().into(),
        imap.password.clone().into(),
        out_file.clone().into(),
    ];
    let output = run_client("python3", args).await;
    assert!(
        output.status.success(),
        "imaplib: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let fetched = std::fs::read(&out_file).expect("fetched");
    let exported = gw.export(&id).await;
    assert_eq!(fetched, exported);

    // curl's IMAP client: SASL PLAIN with an initial response, LIST, then a UID fetch.
    if common::have("curl") {
        let curl = |url: String, password: String| {
            let args = ["-sS", "--max-time", "30", "-u"]
                .into_iter()
                .map(Into::into)
                .chain([format!("reviewer:{password}").into(), url.into()])
                .collect();
            run_client("curl", args)
        };
        let base = format!("imap://127.0.0.1:{}", imap.addr.port());
        let listed = curl(format!("{base}/"), imap.password.clone()).await;
        let text = String::from_utf8_lossy(&listed.stdout);
        assert!(
            listed.status.success() && text.contains("old.example"),
            "{text}{}",
            String::from_utf8_lossy(&listed.stderr)
        );
        let got = curl(format!("{base}/old.example;UID=1"), imap.password.clone()).await;
        assert!(
            got.status.success(),
            "{}",
            String::from_utf8_lossy(&got.stderr)
        );
        assert_eq!(got.stdout, exported);
        let refused = curl(format!("{base}/old.example;UID=1"), "wrong".into()).await;
        assert!(!refused.status.success() && refused.stdout.is_empty());
    }
    imap.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_prints_its_address_and_password_and_serves() {
    let gw = TestGateway::start("").await;
    gw.send(
        "a@partner.example",
        &["jan@old.example"],
        b"Subject: bin\r\n\r\nx\r\n",
    )
    .await;
    let state = tempfile::tempdir().expect("state dir");
    let mut child = Killed(
        std::process::Command::new(env!("CARGO_BIN_EXE_reclaim"))
            .arg("-c")
            .arg(&gw.config_path)
            .arg("-i")
            .arg(&gw.identity)
            .args([
                "imap",
                "--listen",
                "127.0.0.1:0",
                "--reason",
                "binary test",
                "--state",
            ])
            .arg(state.path())
            .env_remove("RECLAIM_IDENTITY")
            .env_remove("RECLAIM_CONFIG")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run reclaim imap"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let printed = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stdout).lines();
        let mut text = String::new();
        for line in lines.by_ref() {
            let line = line.expect("line");
            text.push_str(&line);
            text.push('\n');
            if line.starts_with("password") {
                break;
            }
        }
        text
    });
    let printed = tokio::time::timeout(Duration::from_secs(60), printed)
        .await
        .expect("prints in time")
        .expect("reader");
    let addr: SocketAddr = printed
        .lines()
        .find_map(|l| l.strip_prefix("reclaim imap on "))
        .unwrap_or_else(|| panic!("an address in {printed}"))
        .parse()
        .expect("a socket address");
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{printed}");
    let password = printed
        .lines()
        .find_map(|l| l.strip_prefix("password (for this run only): "))
        .unwrap_or_else(|| panic!("a password in {printed}"))
        .to_owned();
    let mut c = Client::login(addr, &password).await;
    let r = c.cmd("SELECT old.example").await;
    assert!(r.contains("* 1 EXISTS"), "{r}");
    let r = c.cmd("FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]").await;
    assert!(r.contains("Subject: bin"), "{r}");
}

/// A child process stopped when the test ends, passed or failed.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
