//! The reviewer's desk for tests: one served in this process for a test gateway, and a
//! plain HTTP/1.1 client that sets every header itself (Host, Cookie, Origin).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use reclaim::cli::Args;
use reclaim::desk::{Bound, Limits};
use reclaim::review::ReviewContext;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::TestGateway;

/// A desk serving in this process.
pub struct Desk {
    pub addr: SocketAddr,
    /// The one-time login URL.
    pub url: String,
    /// Each new login URL, made when a session ends.
    pub urls: tokio::sync::watch::Receiver<String>,
    pub shutdown: CancellationToken,
}

impl Drop for Desk {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn start_desk(gw: &TestGateway) -> Desk {
    start_desk_with(gw, Limits::default()).await
}

pub async fn start_desk_with(gw: &TestGateway, limits: Limits) -> Desk {
    start_desk_as(gw, &[], limits).await
}

/// A desk whose reviewer reaches the admin API with `flags` (such as `--admin URL --cert
/// …`), for a principal other than the socket's user.
pub async fn start_desk_as(gw: &TestGateway, flags: &[String], limits: Limits) -> Desk {
    let mut argv = vec![
        "reclaim".to_owned(),
        "-c".to_owned(),
        gw.config_path.display().to_string(),
        "-i".to_owned(),
        gw.identity.display().to_string(),
    ];
    argv.extend(flags.iter().cloned());
    argv.push("desk".to_owned());
    let args = Args::parse_from(argv);
    let context = ReviewContext::new(&args.access()).expect("review context");
    let bound = Bound::bind(context, "127.0.0.1:0".parse().expect("addr"), limits)
        .await
        .expect("desk binds");
    let (addr, url, urls) = (bound.addr, bound.url(), bound.urls());
    let shutdown = CancellationToken::new();
    tokio::spawn(bound.serve(shutdown.clone()));
    Desk {
        addr,
        url,
        urls,
        shutdown,
    }
}

/// One HTTP/1.1 request over a fresh connection; returns status, head and body.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    host: &str,
    cookie: Option<&str>,
    extra: &str,
    body: &str,
) -> (u16, String, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("desk");
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{cookie}{extra}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut answer))
        .await
        .expect("answer in time")
        .expect("read");
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let status = head[9..12].parse().expect("status code");
    (status, head, answer[split + 4..].to_vec())
}

/// A form POST with the session `cookie` and `extra` header lines.
pub async fn post(
    addr: SocketAddr,
    path: &str,
    host: &str,
    cookie: &str,
    extra: &str,
    body: &str,
) -> (u16, String, Vec<u8>) {
    http(addr, "POST", path, host, Some(cookie), extra, body).await
}

/// A GET with nothing extra.
pub async fn get(
    addr: SocketAddr,
    path: &str,
    host: &str,
    cookie: Option<&str>,
) -> (u16, String, Vec<u8>) {
    http(addr, "GET", path, host, cookie, "", "").await
}

pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A desk session as a browser holds it: the cookie and the capability its URLs start with.
pub struct Session {
    /// `name=value`.
    pub cookie: String,
    /// `/d/<capability>`.
    pub root: String,
}

impl Session {
    /// `path` (one of the desk's own, such as `/inbox`) inside this session.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.root)
    }
}

/// Redeems a login answer: checks the cookie's scope and reads the session from it.
pub fn granted(head: &str) -> Session {
    let set_cookie = header(head, "set-cookie").expect("a session cookie");
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    let root = set_cookie
        .split(';')
        .find_map(|part| part.trim().strip_prefix("Path="))
        .expect("the cookie is scoped to a path")
        .trim_end_matches('/')
        .to_owned();
    assert!(root.starts_with("/d/") && root.len() > 40, "{root}");
    let cookie = set_cookie.split(';').next().expect("name=value").to_owned();
    Session { cookie, root }
}

/// The CSRF token in a desk page.
pub fn csrf(page: &[u8]) -> String {
    String::from_utf8_lossy(page)
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF token in the page")
        .to_owned()
}

/// Trades the desk's one-time URL for its session.
pub async fn session(desk: &Desk) -> Session {
    let host = desk.addr.to_string();
    let login = desk
        .url
        .strip_prefix(&format!("http://{host}"))
        .expect("a URL on the desk")
        .to_owned();
    let (status, head, _) = get(desk.addr, &login, &host, None).await;
    assert_eq!(status, 200, "{head}");
    granted(&head)
}
