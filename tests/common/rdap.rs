//! A loopback RDAP server for tests: answers `/{route}/domain/{name}` with well-formed,
//! alarming, malformed and hostile responses, and counts the requests it got.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct RdapServer {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl RdapServer {
    /// Starts on `ip` port 0; `away` is where the `away` route redirects to.
    pub async fn start(ip: &str, away: Option<String>) -> Self {
        let listener = TcpListener::bind((ip, 0)).await.expect("bind RDAP server");
        let addr = listener.local_addr().expect("addr");
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, away.clone()));
            }
        });
        Self { addr, hits }
    }

    /// The base URL of one route, e.g. `http://127.0.0.1:PORT/ok/`.
    pub fn base(&self, route: &str) -> String {
        format!("http://{}/{route}/", self.addr)
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// An RFC 3339 date `days` from now.
pub fn date_in(days: i64) -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    let t = time::OffsetDateTime::from_unix_timestamp(now + days * 86_400).expect("valid time");
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("formats")
}

/// A domain object with the given statuses and, if given, an expiration event.
pub fn domain_json(name: &str, statuses: &[&str], expires: Option<String>) -> String {
    let mut events = vec![serde_json::json!({
        "eventAction": "registration", "eventDate": "2003-02-01T10:00:00Z"
    })];
    if let Some(date) = expires {
        events.push(serde_json::json!({"eventAction": "expiration", "eventDate": date}));
    }
    serde_json::json!({
        "rdapConformance": ["rdap_level_0"],
        "objectClassName": "domain",
        "ldhName": name,
        "status": statuses,
        "events": events,
        "entities": [{
            "objectClassName": "entity",
            "roles": ["registrar"],
            "handle": "1234",
            "vcardArray": ["vcard", [["version", {}, "text", "4.0"],
                                     ["fn", {}, "text", "Test Registrar B.V."]]]
        }]
    })
    .to_string()
}

const LOCK: [&str; 3] = [
    "server delete prohibited",
    "server transfer prohibited",
    "server update prohibited",
];

/// The bootstrap file the `bootstrap` route serves, for the server at `host`.
pub fn bootstrap_json(host: &str) -> String {
    serde_json::json!({
        "version": "1.0",
        "publication": "2026-11-30T12:00:00Z",
        "description": "RDAP bootstrap file for Domain Name System registrations",
        "services": [
            [["example"], [format!("http://{host}/ok/")]],
            [["test", "invalid"], [format!("http://{host}/gone/")]]
        ]
    })
    .to_string()
}

fn host_of(head: &str) -> String {
    head.lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("host"))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_default()
}

async fn serve(mut stream: TcpStream, away: Option<String>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut parts = path.trim_start_matches('/').split('/');
    let route = parts.next().unwrap_or("");
    let name = path.rsplit('/').next().unwrap_or("").to_owned();
    let json = |body: String| (200, "application/rdap+json", body, None);
    let (code, kind, body, location) = match route {
        "ok" => json(domain_json(&name, &LOCK, Some(date_in(400)))),
        "soon" => json(domain_json(&name, &["active"], Some(date_in(5)))),
        "noexp" => json(domain_json(&name, &["client transfer prohibited"], None)),
        "redemption" => json(domain_json(
            &name,
            &["redemption period", "server update prohibited"],
            Some(date_in(-20)),
        )),
        "malformed" => json("{\"objectClassName\": \"domain\", \"events\": [".to_owned()),
        "entity" => json("{\"objectClassName\": \"entity\", \"handle\": \"X\"}".to_owned()),
        // A bootstrap file (RFC 9224) that sends every .example lookup to this server.
        "bootstrap" => json(bootstrap_json(&host_of(&head))),
        "bootstrap-empty" => json("{\"version\": \"1.0\", \"services\": []}".to_owned()),
        "gone" => (404, "application/rdap+json", "{}".to_owned(), None),
        "hop" => (
            302,
            "text/plain",
            String::new(),
            Some(format!("/ok/domain/{name}")),
        ),
        "away" => (
            302,
            "text/plain",
            String::new(),
            Some(format!("{}domain/{name}", away.unwrap_or_default())),
        ),
        "slow" => {
            // Holds the connection without answering; the client must give up by itself.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return;
        }
        "huge" => {
            // No length: the body goes on until the client stops reading.
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/rdap+json\r\nConnection: close\r\n\r\n[")
                .await;
            let chunk = vec![b' '; 64 * 1024];
            for _ in 0..1024 {
                if stream.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            return;
        }
        "declared-huge" => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/rdap+json\r\nContent-Length: 1000000000\r\nConnection: close\r\n\r\n{")
                .await;
            return;
        }
        _ => (400, "text/plain", "unknown route".to_owned(), None),
    };
    let reason = match code {
        200 => "OK",
        302 => "Found",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let location = location
        .map(|l| format!("Location: {l}\r\n"))
        .unwrap_or_default();
    let response = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n{location}Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
