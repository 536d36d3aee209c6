//! What every request to the desk must pass: the `Host` it names (against DNS rebinding),
//! the browser's word that it comes from the desk's own pages, the session's capability
//! and cookie (`session` says why both), a CSRF token on every form sent, and the headers
//! every answer carries (CSP, no caching, no framing).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Desk;
use super::session::{Granted, Refusal, View, same};

/// The Content-Security-Policy of every desk page: its own stylesheet, its own frames,
/// forms to itself, and no script at all.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
/// The Content-Security-Policy of a message's HTML frame: nothing may load but `data:`
/// images and inline styles, nothing may run (`sandbox`), only the desk may frame it.
pub const FRAME_CSP: &str = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; \
     sandbox; form-action 'none'; base-uri 'none'; frame-ancestors 'self'";

/// A cookie's value from the request's `Cookie` fields.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether a `Host` value names the desk at `addr`: its own address, or `localhost` with
/// its port. Anything else is a name some other site resolved to 127.0.0.1.
fn host_ok(addr: SocketAddr, host: &str) -> bool {
    host == addr.to_string() || host == format!("localhost:{}", addr.port())
}

/// Whether an `Origin` sent with a form is the desk at `addr`.
fn origin_ok(addr: SocketAddr, origin: &str) -> bool {
    origin
        .strip_prefix("http://")
        .is_some_and(|host| host_ok(addr, host))
}

/// Whether the browser says the request comes from a page of another origin. Another
/// port on 127.0.0.1 is `same-site` to a browser, so only `same-origin` (a desk page) and
/// `none` (the reviewer typed or opened the URL) pass. A client that sends no such header
/// is no browser a page can steer; it still needs both session secrets.
fn from_another_origin(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .is_some_and(|v| v != "same-origin" && v != "none")
}

/// Splits `/d/<cap>/rest` into the capability and `/rest`.
fn split_capability(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/d/")?;
    match rest.find('/') {
        Some(slash) => Some((&rest[..slash], &rest[slash..])),
        None => Some((rest, "/")),
    }
}

tokio::task_local! {
    /// The admitted session's view, for the pages rendered while answering its request.
    static VIEW: View;
}

/// The session the current request was admitted for (empty outside one).
pub fn current_view() -> View {
    VIEW.try_with(View::clone).unwrap_or(View {
        root: String::new(),
        csrf: String::new(),
    })
}

fn refuse(status: StatusCode, text: &'static str) -> Response {
    (status, text).into_response()
}

/// The middleware in front of every route.
pub async fn check(State(desk): State<Arc<Desk>>, request: Request, next: Next) -> Response {
    let mut response = admit(&desk, request, next).await;
    secure_headers(response.headers_mut());
    response
}

async fn admit(desk: &Desk, mut request: Request, next: Next) -> Response {
    let sessions = &desk.sessions;
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !host_ok(desk.addr, host) {
        return refuse(StatusCode::MISDIRECTED_REQUEST, "unknown Host\n");
    }
    let now = tokio::time::Instant::now();
    if request.uri().path() == "/login" {
        // The one way in that a page elsewhere may lead to (the login file `--open`
        // writes is one): it is worth nothing without the one-time secret.
        let offered = request
            .uri()
            .query()
            .and_then(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "secret")
                    .map(|(_, v)| v.into_owned())
            })
            .unwrap_or_default();
        return match sessions.redeem(&offered, now) {
            Some(granted) => logged_in(&sessions.cookie_name(), &granted),
            None => refuse(
                StatusCode::FORBIDDEN,
                "This link was already used or is wrong. A new one is shown where \
                 `reclaim desk` runs when the current session ends; or start it again.\n",
            ),
        };
    }
    if from_another_origin(headers) {
        return refuse(StatusCode::FORBIDDEN, "request from another site\n");
    }
    let Some((cap, rest)) = split_capability(request.uri().path()) else {
        return refuse(
            StatusCode::FORBIDDEN,
            "No desk session: open the URL `reclaim desk` printed.\n",
        );
    };
    let view = match sessions.admit(cap, cookie(headers, &sessions.cookie_name()), now) {
        Ok(view) => view,
        Err(Refusal::NoSession) => {
            return refuse(
                StatusCode::FORBIDDEN,
                "No desk session: open the URL `reclaim desk` printed.\n",
            );
        }
        Err(Refusal::Expired) => {
            return refuse(
                StatusCode::FORBIDDEN,
                "This desk session has ended. The terminal running `reclaim desk` shows \
                 a new one-time URL.\n",
            );
        }
    };
    if request.method() != Method::GET && request.method() != Method::HEAD {
        // Belt to the CSRF token's braces: a browser names where a form came from.
        let foreign_origin = headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|o| !origin_ok(desk.addr, o));
        if foreign_origin {
            return refuse(StatusCode::FORBIDDEN, "form from another site\n");
        }
    }
    // The handlers see the desk's own paths; the capability is this layer's business.
    let inner = match request.uri().query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest.to_owned(),
    };
    match inner.parse() {
        Ok(uri) => *request.uri_mut() = uri,
        Err(_) => return refuse(StatusCode::BAD_REQUEST, "bad path\n"),
    }
    let root = view.root.clone();
    let mut response = VIEW.scope(view, next.run(request)).await;
    within_session(&root, response.headers_mut());
    response
}

/// The answer to a redeemed login: the cookie, scoped to the session's own path, and a
/// page that moves on to the inbox. Not a redirect: a login reached from another page
/// (the login file) is a cross-site navigation, and a browser would not send a
/// `SameSite=Strict` cookie along its redirects; a refresh from this page is same-origin.
fn logged_in(cookie_name: &str, granted: &Granted) -> Response {
    let root = &granted.root;
    let cookie = format!(
        "{cookie_name}={}; HttpOnly; SameSite=Strict; Path={root}/",
        granted.cookie
    );
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"0; url={root}/inbox\">\
         <title>reclaim desk</title></head>\
         <body><p><a href=\"{root}/inbox\" id=\"enter\">Open the desk</a></p></body></html>"
    );
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::SET_COOKIE, cookie)
        .body(Body::from(page))
        .expect("a fixed page is a valid response")
}

/// A redirect a handler made to one of the desk's own paths stays inside the session.
fn within_session(root: &str, headers: &mut HeaderMap) {
    let Some(location) = headers.get(header::LOCATION).and_then(|v| v.to_str().ok()) else {
        return;
    };
    if location.starts_with('/')
        && !location.starts_with("//")
        && let Ok(value) = HeaderValue::from_str(&format!("{root}{location}"))
    {
        headers.insert(header::LOCATION, value);
    }
}

/// Headers on every answer: a page's CSP unless the answer set its own (the frame), never
/// stored, never sniffed, never framed elsewhere, no referrer to other sites.
fn secure_headers(headers: &mut HeaderMap) {
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_CSP),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Not `no-referrer`: under it a browser sends `Origin: null` with the desk's own
    // forms, and the origin check above could not tell them from a foreign one.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
}

/// A form sent to the desk whose CSRF token was checked: the only way a handler gets at
/// form fields, so no change can skip the check.
pub struct Form(pub Vec<(String, String)>);

impl Form {
    /// The first value of `name`, trimmed; empty when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.trim())
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

impl FromRequest<Arc<Desk>> for Form {
    type Rejection = Response;

    async fn from_request(request: Request, desk: &Arc<Desk>) -> Result<Self, Self::Rejection> {
        let body = Bytes::from_request(request, desk)
            .await
            .map_err(IntoResponse::into_response)?;
        let fields: Vec<(String, String)> = form_urlencoded::parse(&body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let form = Form(fields);
        if !same(form.get("csrf"), &current_view().csrf) {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "missing or wrong CSRF token\n",
            ));
        }
        Ok(form)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_origins_paths_and_cookies() {
        let addr: SocketAddr = "127.0.0.1:8123".parse().expect("addr");
        assert!(host_ok(addr, "127.0.0.1:8123") && host_ok(addr, "localhost:8123"));
        for bad in [
            "evil.example:8123",
            "127.0.0.1",
            "localhost:80",
            "127.0.0.1:8124",
            "",
        ] {
            assert!(!host_ok(addr, bad), "{bad}");
        }
        assert!(origin_ok(addr, "http://localhost:8123"));
        assert!(!origin_ok(addr, "http://evil.example:8123") && !origin_ok(addr, "null"));
        assert_eq!(split_capability("/d/abc/inbox"), Some(("abc", "/inbox")));
        assert_eq!(split_capability("/d/abc"), Some(("abc", "/")));
        assert_eq!(split_capability("/d/abc/"), Some(("abc", "/")));
        assert_eq!(split_capability("/inbox"), None);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; reclaim_desk_8123=xyz"),
        );
        assert_eq!(cookie(&headers, "reclaim_desk_8123"), Some("xyz"));
        assert_eq!(cookie(&headers, "reclaim_desk_1"), None);
        assert!(!from_another_origin(&headers), "no browser, no verdict");
        for (site, foreign) in [
            ("same-origin", false),
            ("none", false),
            ("same-site", true),
            ("cross-site", true),
        ] {
            headers.insert("sec-fetch-site", HeaderValue::from_static(site));
            assert_eq!(from_another_origin(&headers), foreign, "{site}");
        }
    }

    #[test]
    fn redirects_stay_inside_the_session() {
        let mut headers = HeaderMap::new();
        headers.insert(header::LOCATION, HeaderValue::from_static("/inbox?x=1"));
        within_session("/d/cap", &mut headers);
        assert_eq!(headers[header::LOCATION], "/d/cap/inbox?x=1");
        headers.insert(
            header::LOCATION,
            HeaderValue::from_static("//evil.example/"),
        );
        within_session("/d/cap", &mut headers);
        assert_eq!(headers[header::LOCATION], "//evil.example/");
    }
}
