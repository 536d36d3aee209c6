//! What every desk page shares: the chrome around it (language, CSRF token, where the
//! language switch returns to), rendering a template, and error pages.

use askama::Template;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::guard;
use super::i18n::{self, Texts};
use crate::review::{Kind, ReviewError};
use crate::sanitize::sanitize_page;

/// What the frame around every page needs.
#[derive(Clone)]
pub struct Chrome {
    pub t: &'static Texts,
    pub csrf: String,
    /// Where every URL of this session starts (`/d/<capability>`).
    pub root: String,
    pub page: &'static str,
    /// Where the language switch returns to.
    pub back: String,
}

impl Chrome {
    pub fn new(headers: &HeaderMap, page: &'static str, back: String) -> Self {
        let accept = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        let view = guard::current_view();
        Self {
            t: i18n::choose(guard::cookie(headers, i18n::LANG_COOKIE), accept),
            csrf: view.csrf,
            root: view.root,
            page,
            back,
        }
    }
}

/// A rendered template as an HTML answer. Everything a page shows came from a sender, so
/// the whole page loses the characters that could show it as something else (bidi
/// overrides, controls), as the CLI's output does; the templates themselves use none.
pub fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(sanitize_page(&html))).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "desk template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error\n").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "desk/error.html")]
struct ErrorPage {
    c: Chrome,
    message: String,
}

/// An error as a page: what the admin API or the decryption said, escaped.
pub fn error(c: Chrome, status: StatusCode, message: String) -> Response {
    render(status, &ErrorPage { c, message })
}

/// A failed review step as a page, with every cause, and the status its kind means: the
/// admin API (or the relay, or the reviewer's identity) failed the desk, unless the
/// request named no message or was malformed.
pub fn failed(c: Chrome, e: &ReviewError) -> Response {
    error(c, status_of(e), e.with_causes())
}

fn status_of(e: &ReviewError) -> StatusCode {
    match e.kind() {
        Kind::NotFound => StatusCode::NOT_FOUND,
        Kind::Usage => StatusCode::BAD_REQUEST,
        Kind::Forbidden => StatusCode::FORBIDDEN,
        Kind::Unreachable
        | Kind::Decrypt
        | Kind::AuditBroken
        | Kind::ReleaseRefused
        | Kind::Other => StatusCode::BAD_GATEWAY,
    }
}

/// The text for a missing reason.
pub fn c_reason(t: &Texts) -> String {
    format!("{}: {}", t.reason, t.reason_hint)
}

/// The query pairs of a request.
pub fn pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.trim().to_owned()))
        .collect()
}

/// The first value of `key`, or empty.
pub fn value(pairs: &[(String, String)], key: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::client::ClientError;

    #[test]
    fn review_failures_keep_their_statuses() {
        let answered = |status| {
            ReviewError::Admin(ClientError::Status {
                status,
                message: "refused".into(),
            })
        };
        let cases = [
            (ReviewError::NotFound("x".into()), StatusCode::NOT_FOUND),
            (answered(404), StatusCode::NOT_FOUND),
            (ReviewError::Usage("bad id".into()), StatusCode::BAD_REQUEST),
            (answered(409), StatusCode::BAD_REQUEST),
            (answered(403), StatusCode::FORBIDDEN),
            (answered(500), StatusCode::BAD_GATEWAY),
            (
                ReviewError::Admin(ClientError::NoAnswer {
                    endpoint: "admin.sock".into(),
                }),
                StatusCode::BAD_GATEWAY,
            ),
            (
                ReviewError::AuditBroken("x".into()),
                StatusCode::BAD_GATEWAY,
            ),
            (
                ReviewError::Interrupted("x".into()),
                StatusCode::BAD_GATEWAY,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(status_of(&error), status, "{}", error.with_causes());
        }
    }
}
