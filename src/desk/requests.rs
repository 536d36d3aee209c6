//! The desk's four-eyes page: the requests the reviewer may see, with approve and deny
//! for pending ones and, for approved ones, the form that carries the action out under
//! the request (it posts to the same action the inbox and message pages use). Who may
//! decide or carry out what is the admin API's call, not the desk's; a refusal comes back
//! as its page with status 403.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::actions::done;
use super::chrome::{Chrome, error, failed, render};
use super::guard::Form;
use super::i18n::Texts;
use super::{Desk, blocking};
use crate::admin::approvals::RequestView;
use crate::clock::{format_time, unix_now};
use crate::review::approvals;
use crate::store::RequestState;

/// Requests the page shows, newest first.
const SHOWN: usize = 200;

/// One request, ready to show.
pub struct RequestRow {
    pub number: u64,
    pub action: &'static str,
    pub ids: Vec<String>,
    /// A release's approved recipients.
    pub to: Vec<String>,
    /// The messages (and a release's recipients), or a purge's age.
    pub what: String,
    pub requester: String,
    pub reason: String,
    pub state: String,
    pub expires: String,
    /// Open and waiting for a decision.
    pub pending: bool,
    /// Open and approved: it can be carried out.
    pub approved: bool,
}

impl RequestRow {
    fn of(view: RequestView, now: i64, t: &Texts) -> Self {
        let open = view.request.open_at(now);
        let r = view.request;
        let what = approvals::what(&r.filed);
        let mut state = match &r.state {
            RequestState::Pending => "pending".to_owned(),
            RequestState::Approved { who, .. } => format!("approved by {who}"),
            RequestState::Denied { who, denial, .. } => match denial {
                Some(why) => format!("denied by {who}: {why}"),
                None => format!("denied by {who}"),
            },
            RequestState::Used { who, .. } => format!("approved by {who}, used"),
        };
        if view.expired {
            state.push_str(" · ");
            state.push_str(t.expired);
        }
        Self {
            number: r.number,
            action: r.filed.action.as_str(),
            pending: open && matches!(r.state, RequestState::Pending),
            approved: open && matches!(r.state, RequestState::Approved { .. }),
            ids: r.filed.ids,
            to: r.filed.to,
            what,
            requester: r.filed.requester_who,
            reason: r.filed.reason,
            state,
            expires: format_time(r.filed.expires),
        }
    }
}

#[derive(Template)]
#[template(path = "desk/requests.html")]
struct RequestsPage {
    c: Chrome,
    guarded: String,
    rows: Vec<RequestRow>,
}

pub async fn page(State(desk): State<Arc<Desk>>, headers: HeaderMap) -> Response {
    let c = Chrome::new(&headers, "requests", "/requests".into());
    let list = match blocking(&desk, |context| approvals::list(context, SHOWN)).await {
        Ok(list) => list,
        Err(e) => return failed(c, &e),
    };
    let now = unix_now();
    let guarded: Vec<&str> = list.guarded.iter().map(|a| a.as_str()).collect();
    let page = RequestsPage {
        guarded: guarded.join(", "),
        rows: list
            .requests
            .into_iter()
            .map(|view| RequestRow::of(view, now, c.t))
            .collect(),
        c,
    };
    render(StatusCode::OK, &page)
}

/// Approves or denies request `number`, with the decider's optional reason.
pub async fn decide(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
    Path((number, decision)): Path<(String, String)>,
    form: Form,
) -> Response {
    let c = Chrome::new(&headers, "requests", "/requests".into());
    let approve = match decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => return error(c, StatusCode::NOT_FOUND, "no such decision".into()),
    };
    let Ok(number) = number.parse::<u64>() else {
        let text = format!("{number:?} is not a request number");
        return error(c, StatusCode::NOT_FOUND, text);
    };
    let reason = form.get("reason").to_owned();
    let why = (!reason.is_empty()).then(|| reason.clone());
    let decided = blocking(&desk, move |context| {
        approvals::decide(context, number, approve, why.as_deref())
    })
    .await;
    match decided {
        Ok(view) => {
            let r = &view.request;
            let detail = format!(
                "#{} · {} · {}",
                r.number,
                r.filed.action,
                r.filed.ids.join(", ")
            );
            let what = if approve {
                |t: &Texts| t.done_approved
            } else {
                |t: &Texts| t.done_denied
            };
            done(c, what, detail, reason)
        }
        Err(e) => failed(c, &e),
    }
}
