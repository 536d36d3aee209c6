//! What every request to the desk must pass: the `Host` it names (against DNS rebinding),
//! the session cookie (given once for the secret in the printed URL), a CSRF token on
//! every form sent, and the headers every answer carries (CSP, no caching, no framing).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Desk;

/// The Content-Security-Policy of every desk page: its own stylesheet, its own frames,
/// forms to itself, and no script at all.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
/// The Content-Security-Policy of a message's HTML frame: nothing may load but `data:`
/// images and inline styles, nothing may run (`sandbox`), only the desk may frame it.
pub const FRAME_CSP: &str = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; \
     sandbox; form-action 'none'; base-uri 'none'; frame-ancestors 'self'";

/// A random secret: two version-4 UUIDs (244 random bits from the operating system).
pub fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Compares secrets in time that does not depend on where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The desk's secrets: the one-time login secret printed in the URL, the session the
/// cookie carries after it was exchanged, and the CSRF token of the forms.
pub struct Secrets {
    login: Mutex<Option<String>>,
    pub session: String,
    pub csrf: String,
    addr: SocketAddr,
}

impl Secrets {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            login: Mutex::new(Some(random_token())),
            session: random_token(),
            csrf: random_token(),
            addr,
        }
    }

    /// The URL to print: it holds the login secret.
    pub fn login_url(&self) -> String {
        let login = self.login.lock().unwrap_or_else(|p| p.into_inner());
        format!(
            "http://{}/login?secret={}",
            self.addr,
            login.as_deref().unwrap_or_default()
        )
    }

    /// The cookie's name; it carries the port so two desks on one machine do not clash.
    pub fn cookie_name(&self) -> String {
        format!("reclaim_desk_{}", self.addr.port())
    }

    /// Takes the login secret if `offered` is it: it works once.
    fn redeem(&self, offered: &str) -> bool {
        let mut login = self.login.lock().unwrap_or_else(|p| p.into_inner());
        if login.as_deref().is_some_and(|s| same(s, offered)) {
            *login = None;
            return true;
        }
        false
    }

    /// Whether a `Host` value names this desk: its own address, or `localhost` with its
    /// port. Anything else is a name some other site resolved to 127.0.0.1.
    fn host_ok(&self, host: &str) -> bool {
        let port = self.addr.port();
        host == self.addr.to_string() || host == format!("localhost:{port}")
    }

    /// Whether an `Origin` sent with a form is this desk.
    fn origin_ok(&self, origin: &str) -> bool {
        origin
            .strip_prefix("http://")
            .is_some_and(|host| self.host_ok(host))
    }
}

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

fn refuse(status: StatusCode, text: &'static str) -> Response {
    (status, text).into_response()
}

/// The middleware in front of every route.
pub async fn check(State(desk): State<Arc<Desk>>, request: Request, next: Next) -> Response {
    let mut response = admit(&desk, request, next).await;
    secure_headers(response.headers_mut());
    response
}

async fn admit(desk: &Desk, request: Request, next: Next) -> Response {
    let secrets = &desk.secrets;
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !secrets.host_ok(host) {
        return refuse(StatusCode::MISDIRECTED_REQUEST, "unknown Host\n");
    }
    let cookie_name = secrets.cookie_name();
    let has_session = cookie(headers, &cookie_name).is_some_and(|v| same(v, &secrets.session));
    if request.uri().path() == "/login" {
        let offered = request
            .uri()
            .query()
            .and_then(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "secret")
                    .map(|(_, v)| v.into_owned())
            })
            .unwrap_or_default();
        if !has_session && !secrets.redeem(&offered) {
            return refuse(
                StatusCode::FORBIDDEN,
                "This link was already used or is wrong. Start `reclaim desk` again for a new one.\n",
            );
        }
        let cookie = format!(
            "{cookie_name}={}; HttpOnly; SameSite=Strict; Path=/",
            secrets.session
        );
        return Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header(header::LOCATION, "/inbox")
            .header(header::SET_COOKIE, cookie)
            .body(Body::empty())
            .expect("a fixed redirect is a valid response");
    }
    if !has_session {
        return refuse(
            StatusCode::FORBIDDEN,
            "No desk session: open the URL `reclaim desk` printed.\n",
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        // Belt to the CSRF token's braces: a browser names where a form came from.
        let cross_site = headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v != "same-origin" && v != "none");
        let foreign_origin = headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|o| !secrets.origin_ok(o));
        if cross_site || foreign_origin {
            return refuse(StatusCode::FORBIDDEN, "form from another site\n");
        }
    }
    next.run(request).await
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
        if !same(form.get("csrf"), &desk.secrets.csrf) {
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
    fn hosts_secrets_and_cookies() {
        let secrets = Secrets::new("127.0.0.1:8123".parse().expect("addr"));
        assert!(secrets.host_ok("127.0.0.1:8123") && secrets.host_ok("localhost:8123"));
        for bad in [
            "evil.example:8123",
            "127.0.0.1",
            "localhost:80",
            "127.0.0.1:8124",
            "",
        ] {
            assert!(!secrets.host_ok(bad), "{bad}");
        }
        assert!(secrets.origin_ok("http://localhost:8123"));
        assert!(!secrets.origin_ok("http://evil.example:8123") && !secrets.origin_ok("null"));
        let url = secrets.login_url();
        let secret = url.rsplit('=').next().expect("secret").to_owned();
        assert!(!secrets.redeem("wrong"));
        assert!(secrets.redeem(&secret), "the printed secret works");
        assert!(!secrets.redeem(&secret), "but only once");
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; reclaim_desk_8123=xyz"),
        );
        assert_eq!(cookie(&headers, "reclaim_desk_8123"), Some("xyz"));
        assert_eq!(cookie(&headers, "reclaim_desk_1"), None);
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
