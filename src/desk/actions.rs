//! The desk's changes and downloads, each behind a checked CSRF token and each with the
//! reviewer's reason, which the admin API records in the audit trail: download as .eml,
//! export a selection as mbox, release, hold and lift a hold, delete; and the language
//! switch. Where the `[approvals]` policy guards an action, the same form files a
//! four-eyes request instead, and carries the action out once the form names an approved
//! request (the Requests page sends it so).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::chrome::{Chrome, c_reason, error, failed, render};
use super::guard::Form;
use super::i18n::{LANG_COOKIE, Texts};
use super::{Desk, blocking, blocking_under};
use crate::admin::MessageItem;
use crate::review::approvals::{self, Asked};
use crate::review::{
    ReviewContext, ReviewError, export, listing, manage, parse_id, release as review_release,
};
use crate::store::{GuardedAction, MessageId};

#[derive(Template)]
#[template(path = "desk/done.html")]
struct DonePage {
    c: Chrome,
    what: &'static str,
    detail: String,
    reason: String,
}

/// The reason and message id of an action, or the status and text that say what is wrong.
fn reason_and_id(
    t: &Texts,
    form: &Form,
    id: &str,
) -> Result<(String, MessageId), (StatusCode, String)> {
    let reason = form.get("reason").to_owned();
    if reason.is_empty() {
        return Err((StatusCode::BAD_REQUEST, c_reason(t)));
    }
    match parse_id(id) {
        Ok(id) => Ok((reason, id)),
        Err(e) => Err((StatusCode::NOT_FOUND, e.to_string())),
    }
}

fn download(bytes: Vec<u8>, filename: &str) -> Response {
    (
        [
            // Never rendered by the browser: saved as a file the reviewer asked for.
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// A guarded action as a form asks for it: which, and where a release goes.
struct Guarded {
    action: GuardedAction,
    to: Vec<String>,
}

impl Guarded {
    fn new(action: GuardedAction) -> Self {
        Self {
            action,
            to: Vec::new(),
        }
    }
}

/// The approved request a guarded action is carried out under: the one the form names,
/// or none when the policy does not guard the action. When it does and the form names
/// none, files a request for `ids` with `reason` and answers with the page that says so
/// (the `Err`), as it does with a page for any failure.
async fn approved_request(
    desk: &Arc<Desk>,
    c: &Chrome,
    form: &Form,
    guarded: &Guarded,
    ids: &[MessageId],
    reason: &str,
) -> Result<Option<u64>, Response> {
    let action = guarded.action;
    match form.get("request") {
        "" => {}
        n => {
            return match n.parse() {
                Ok(n) => Ok(Some(n)),
                Err(_) => Err(error(
                    c.clone(),
                    StatusCode::BAD_REQUEST,
                    format!("{n:?} is not a request number"),
                )),
            };
        }
    }
    let policy = blocking(desk, |context| Ok(approvals::list(context, 1)?.guarded)).await;
    match policy {
        Ok(needs) if !needs.contains(&action) => return Ok(None),
        Ok(_) => {}
        Err(e) => return Err(failed(c.clone(), &e)),
    }
    let (asked_ids, to, why) = (ids.to_vec(), guarded.to.clone(), reason.to_owned());
    let filed = blocking(desk, move |context| {
        let asked = Asked {
            action,
            ids: &asked_ids,
            older_than: None,
            to: &to,
            reason: &why,
        };
        approvals::file(context, &asked)
    })
    .await;
    Err(match filed {
        Ok(view) => {
            let r = &view.request;
            let detail = format!("#{} · {action} · {}", r.number, approvals::what(&r.filed));
            done(c.clone(), |t| t.done_requested, detail, reason.to_owned())
        }
        Err(e) => failed(c.clone(), &e),
    })
}

/// The whole message as .eml, fetched as an export with the reason.
pub async fn eml(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    let c = Chrome::new(&headers, "inbox", "/inbox".into());
    let (reason, id) = match reason_and_id(c.t, &form, &id) {
        Ok(parts) => parts,
        Err((status, text)) => return error(c, status, text),
    };
    let guarded = Guarded::new(GuardedAction::Export);
    let request = match approved_request(&desk, &c, &form, &guarded, &[id], &reason).await {
        Ok(request) => request,
        Err(page) => return page,
    };
    match blocking_under(&desk, request, move |context| {
        export::fetch_plain(context, id, "export", &reason)
    })
    .await
    {
        Ok(plain) => download(plain, &format!("{id}.eml")),
        Err(e) => failed(c, &e),
    }
}

/// Exports or deletes the messages ticked in the inbox.
pub async fn selection(State(desk): State<Arc<Desk>>, headers: HeaderMap, form: Form) -> Response {
    let c = Chrome::new(&headers, "inbox", "/inbox".into());
    let reason = form.get("reason").to_owned();
    if reason.is_empty() {
        let text = c_reason(c.t);
        return error(c, StatusCode::BAD_REQUEST, text);
    }
    let ids: Result<Vec<MessageId>, _> = form.all("id").into_iter().map(parse_id).collect();
    let ids = match ids {
        Ok(ids) if ids.is_empty() => {
            let text = c.t.nothing_selected.to_owned();
            return error(c, StatusCode::BAD_REQUEST, text);
        }
        Ok(ids) if ids.len() > desk.limits.selection => {
            let text = format!("at most {} messages at once", desk.limits.selection);
            return error(c, StatusCode::BAD_REQUEST, text);
        }
        Ok(ids) => ids,
        Err(e) => return error(c, StatusCode::BAD_REQUEST, e.to_string()),
    };
    let action = match form.get("do") {
        "export" => GuardedAction::Export,
        "delete" => GuardedAction::Delete,
        _ => return error(c, StatusCode::BAD_REQUEST, "unknown action".into()),
    };
    let guarded = Guarded::new(action);
    let request = match approved_request(&desk, &c, &form, &guarded, &ids, &reason).await {
        Ok(request) => request,
        Err(page) => return page,
    };
    match action {
        GuardedAction::Export => {
            let result = blocking_under(&desk, request, move |context| {
                let mut listed = Vec::with_capacity(ids.len());
                for id in ids {
                    let item: MessageItem =
                        context.client.get_json(&format!("/v1/messages/{id}"))?;
                    listed.push(listing::decrypt(context, item)?);
                }
                // Oldest first, as `reclaim export --mbox` writes them.
                listed.sort_by_key(|m| m.received_unix);
                let mut mbox = Vec::new();
                for m in &listed {
                    export::append_mbox(context, m, &mut mbox, &reason)?;
                }
                Ok(mbox)
            })
            .await;
            match result {
                Ok(mbox) => download(mbox, "reclaim-export.mbox"),
                Err(e) => failed(c, &e),
            }
        }
        _ => {
            let why = reason.clone();
            match blocking_under(&desk, request, move |context| {
                manage::delete(context, &ids, Some(&why))
            })
            .await
            {
                Ok(result) => {
                    let mut detail = result.deleted.join(", ");
                    if !result.missing.is_empty() {
                        detail.push_str(&format!(" (missing: {})", result.missing.join(", ")));
                    }
                    done(c, |t| t.done_deleted, detail, reason)
                }
                Err(e) => failed(c, &e),
            }
        }
    }
}

pub(super) fn done(
    c: Chrome,
    what: impl FnOnce(&Texts) -> &'static str,
    detail: String,
    reason: String,
) -> Response {
    let what = what(c.t);
    render(
        StatusCode::OK,
        &DonePage {
            c,
            what,
            detail,
            reason,
        },
    )
}

/// Runs one reasoned change to message `id` off the server's threads and answers with the
/// page that says what was done (`outcome` words it) and with which reason. A `guarded`
/// change goes through [`approved_request`] first.
async fn act<T: Send + 'static>(
    desk: Arc<Desk>,
    headers: &HeaderMap,
    id: &str,
    form: &Form,
    guarded: Option<Guarded>,
    work: impl FnOnce(&ReviewContext, MessageId, &str) -> Result<T, ReviewError> + Send + 'static,
    outcome: impl FnOnce(&Texts, MessageId, T) -> (&'static str, String),
) -> Response {
    let c = Chrome::new(headers, "inbox", "/inbox".into());
    let (reason, id) = match reason_and_id(c.t, form, id) {
        Ok(parts) => parts,
        Err((status, text)) => return error(c, status, text),
    };
    let request = match &guarded {
        None => None,
        Some(guarded) => match approved_request(&desk, &c, form, guarded, &[id], &reason).await {
            Ok(request) => request,
            Err(page) => return page,
        },
    };
    let why = reason.clone();
    match blocking_under(&desk, request, move |context| work(context, id, &why)).await {
        Ok(result) => {
            let (what, detail) = outcome(c.t, id, result);
            render(
                StatusCode::OK,
                &DonePage {
                    c,
                    what,
                    detail,
                    reason,
                },
            )
        }
        Err(e) => failed(c, &e),
    }
}

/// Decrypts here and submits to the `[release]` relay, as `reclaim release` does.
pub async fn release(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    let to: Vec<String> = form
        .get("to")
        .split([',', ' ', ';'])
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    let guarded = Some(Guarded {
        action: GuardedAction::Release,
        to: to.clone(),
    });
    let work = move |context: &ReviewContext, id, reason: &str| {
        if to.is_empty() {
            return Err(ReviewError::Usage(
                "name at least one address to release to".into(),
            ));
        }
        review_release::release(context, id, &to, reason)
    };
    act(
        desk,
        &headers,
        &id,
        &form,
        guarded,
        work,
        |t, id, released| {
            let detail = format!("{id} → {} ({})", released.to, released.message_id);
            (t.done_released, detail)
        },
    )
    .await
}

/// Places or lifts a legal hold.
pub async fn hold(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    let held = form.get("held") != "0";
    let work = move |context: &ReviewContext, id, reason: &str| {
        manage::set_hold(context, id, held, Some(reason))
    };
    // Placing a hold only ever keeps mail; lifting one lets retention delete it.
    let guarded = (!held).then(|| Guarded::new(GuardedAction::HoldLift));
    act(desk, &headers, &id, &form, guarded, work, |t, id, ()| {
        let what = if held { t.done_held } else { t.done_unheld };
        (what, id.to_string())
    })
    .await
}

/// Deletes one message now.
pub async fn delete(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    let work = |context: &ReviewContext, id: MessageId, reason: &str| {
        manage::delete_one(context, id, reason)
    };
    let guarded = Some(Guarded::new(GuardedAction::Delete));
    act(desk, &headers, &id, &form, guarded, work, |t, id, ()| {
        (t.done_deleted, id.to_string())
    })
    .await
}

/// The language switch: remembered in a cookie, then back to the page it was used on.
pub async fn language(form: Form) -> Response {
    let lang = match form.get("lang") {
        "nl" => "nl",
        _ => "en",
    };
    // Only a path on this desk: never `//host`, never a full URL.
    let back = form.get("back");
    let back = if back.starts_with('/') && !back.starts_with("//") && !back.contains('\\') {
        back.to_owned()
    } else {
        "/inbox".to_owned()
    };
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, back),
            (
                header::SET_COOKIE,
                format!("{LANG_COOKIE}={lang}; SameSite=Strict; Path=/; Max-Age=31536000"),
            ),
        ],
    )
        .into_response()
}
