//! The desk's pages about messages: the inbox, one message (opened with a reason) and its
//! HTML frame. Everything shown is decrypted here and escaped by the templates.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::chrome::{Chrome, c_reason, error, failed, pairs, render, value};
use super::guard::{self, FRAME_CSP};
use super::i18n::Texts;
use super::{Desk, blocking};
use crate::clock::unix_now;
use crate::review::filter::{Criteria, Filter};
use crate::review::listed::Listed;
use crate::review::listing;
use crate::review::show::{self, Verified};

pub async fn home() -> Redirect {
    Redirect::to("/inbox")
}

pub async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../assets/desk/desk.css"),
    )
        .into_response()
}

/// The inbox filters as the form shows them.
#[derive(Default)]
pub struct Filters {
    pub domain: String,
    pub since: String,
    pub until: String,
    pub from: String,
    pub to: String,
    pub subject: String,
}

impl Filters {
    fn from_pairs(pairs: &[(String, String)]) -> Self {
        Self {
            domain: value(pairs, "domain"),
            since: value(pairs, "since"),
            until: value(pairs, "until"),
            from: value(pairs, "from"),
            to: value(pairs, "to"),
            subject: value(pairs, "subject"),
        }
    }

    fn criteria(&self) -> Criteria {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Criteria {
            domain: some(&self.domain),
            since: some(&self.since),
            // A date picked as "until" means up to the end of that day.
            until: some(&self.until).map(|u| match u.len() {
                10 => format!("{u}T23:59:59Z"),
                _ => u,
            }),
            from: some(&self.from),
            to: some(&self.to),
            subject: some(&self.subject),
        }
    }

    /// The query string of these filters (and a cursor), starting with `?`.
    fn query(&self, before: Option<&str>) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("domain", &self.domain),
            ("since", &self.since),
            ("until", &self.until),
            ("from", &self.from),
            ("to", &self.to),
            ("subject", &self.subject),
        ] {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        if let Some(b) = before {
            q.append_pair("before", b);
        }
        let q = q.finish();
        if q.is_empty() { q } else { format!("?{q}") }
    }
}

/// One inbox row, ready to show.
pub struct InboxRow {
    pub id: String,
    pub received: String,
    pub sender: String,
    pub automated: bool,
    pub recipients: String,
    pub subject: String,
    pub size: String,
    pub tls: bool,
    pub verdict: String,
    pub held: bool,
}

impl InboxRow {
    fn new(m: Listed) -> Self {
        let sender = match (&m.from, m.mail_from.is_empty()) {
            (Some(from), _) if !from.is_empty() => from.clone(),
            (_, true) => "<>".to_owned(),
            _ => m.mail_from.clone(),
        };
        Self {
            received: m
                .received_at
                .replace('T', " ")
                .trim_end_matches('Z')
                .get(..16)
                .unwrap_or_default()
                .to_owned(),
            sender,
            automated: m.looks_automated,
            recipients: m.rcpt_to.join(", "),
            subject: listing::truncate(m.subject.as_deref().unwrap_or_default(), 120),
            size: human_size(m.size),
            tls: m.tls,
            verdict: m.auth.as_ref().map_or_else(
                || "–".to_owned(),
                |a| format!("{} / {} / {}", a.spf, a.dkim, a.dmarc),
            ),
            held: m.held,
            id: m.id,
        }
    }
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KB", b as f64 / 1024.0),
        b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    }
}

#[derive(Template)]
#[template(path = "desk/inbox.html")]
struct InboxPage {
    c: Chrome,
    f: Filters,
    domains: Vec<String>,
    rows: Vec<InboxRow>,
    /// Summaries on this page that the reviewer's keys do not open: the mail of domains
    /// whose readers they are not.
    left_out: u64,
    first_query: String,
    next_query: Option<String>,
}

pub async fn inbox(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let back = format!(
        "/inbox{}",
        query
            .as_deref()
            .map(|q| format!("?{q}"))
            .unwrap_or_default()
    );
    let c = Chrome::new(&headers, "inbox", back);
    let pairs = pairs(query.as_deref());
    let f = Filters::from_pairs(&pairs);
    let filter = match Filter::new(&f.criteria(), unix_now()) {
        Ok(filter) => filter,
        Err(e) => return error(c, StatusCode::BAD_REQUEST, e.with_causes()),
    };
    let before = Some(value(&pairs, "before")).filter(|b| !b.is_empty());
    let (page_size, scan) = (desk.limits.page_size, desk.limits.scan);
    let found = blocking(&desk, move |context| {
        // The context counts what every listing leaves out; this page's share is the
        // difference (a report built at the same moment would add its own to it).
        let hidden = context.hidden();
        let page = listing::fetch_page(context, Some(page_size), &filter, before, Some(scan))?;
        Ok((page, context.hidden().saturating_sub(hidden)))
    })
    .await;
    let ((listed, next), left_out) = match found {
        Ok(found) => found,
        Err(e) => return failed(c, &e),
    };
    let domains = desk
        .context
        .config
        .as_ref()
        .map(|config| config.domains.names().map(str::to_owned).collect())
        .unwrap_or_default();
    let page = InboxPage {
        first_query: f.query(None),
        next_query: next.as_deref().map(|n| f.query(Some(n))),
        rows: listed.into_iter().map(InboxRow::new).collect(),
        left_out,
        domains,
        f,
        c,
    };
    render(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "desk/open.html")]
struct OpenPage {
    c: Chrome,
    id: String,
}

/// Asks why before anything is decrypted.
pub async fn open_form(headers: HeaderMap, Path(id): Path<String>) -> Response {
    let c = Chrome::new(&headers, "inbox", format!("/message/{id}"));
    match crate::review::parse_id(&id) {
        Ok(id) => render(
            StatusCode::OK,
            &OpenPage {
                c,
                id: id.to_string(),
            },
        ),
        Err(e) => error(c, StatusCode::NOT_FOUND, e.to_string()),
    }
}

#[derive(Template)]
#[template(path = "desk/message.html")]
struct MessagePage {
    c: Chrome,
    subject: String,
    m: show::Shown,
    /// (check, result, what it was for)
    checks: Vec<(&'static str, String, String)>,
    frame: Option<String>,
}

/// Opens a message: the fetch is recorded with the reason, as `reclaim show` does.
pub async fn message(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: guard::Form,
) -> Response {
    let c = Chrome::new(&headers, "inbox", format!("/message/{id}"));
    let reason = form.get("reason").to_owned();
    if reason.is_empty() {
        let text = c_reason(c.t);
        return error(c, StatusCode::BAD_REQUEST, text);
    }
    let id = match crate::review::parse_id(&id) {
        Ok(id) => id,
        Err(e) => return error(c, StatusCode::NOT_FOUND, e.to_string()),
    };
    let shown = match blocking(&desk, move |context| show::load(context, id, &reason)).await {
        Ok(shown) => shown,
        Err(e) => return failed(c, &e),
    };
    let frame = shown
        .message
        .html
        .as_deref()
        .map(|html| desk.frames.put(super::html::sanitise(html)));
    let subject = shown
        .message
        .headers
        .iter()
        .find(|(name, _)| name == "Subject")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let checks = checks(c.t, shown.gateway_auth.as_ref());
    let page = MessagePage {
        c,
        subject,
        m: shown,
        checks,
        frame,
    };
    render(StatusCode::OK, &page)
}

fn checks(t: &Texts, verified: Option<&Verified>) -> Vec<(&'static str, String, String)> {
    let Some(v) = verified else {
        return Vec::new();
    };
    let named = |d: &Option<String>| match d.as_deref() {
        None => t.domain_unknown.to_owned(),
        Some("") => "–".to_owned(),
        Some(d) => d.to_owned(),
    };
    let dkim = match v.dkim.domains.as_deref() {
        None => t.domain_unknown.to_owned(),
        Some(domains) => domains
            .iter()
            .map(|d| format!("d={d}"))
            .collect::<Vec<_>>()
            .join(", "),
    };
    vec![
        ("SPF", v.spf.result.clone(), named(&v.spf.domain)),
        ("DKIM", v.dkim.result.clone(), dkim),
        ("DMARC", v.dmarc.result.clone(), named(&v.dmarc.domain)),
    ]
}

/// A message's sanitised HTML, under the frame's own CSP (nothing loads, nothing runs).
pub async fn frame(State(desk): State<Arc<Desk>>, Path(token): Path<String>) -> Response {
    let Some(body) = desk.frames.get(&token) else {
        return (StatusCode::NOT_FOUND, "gone; open the message again\n").into_response();
    };
    // The sanitiser keeps text as it is; bidi overrides in it are neutralised as on pages.
    let body = crate::sanitize::sanitize_page(&body);
    let document = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"></head><body>{body}</body></html>"
    );
    let mut response = Html(document).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(FRAME_CSP),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    response
}
