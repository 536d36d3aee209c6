//! The desk's changes and downloads, each behind a checked CSRF token and each with the
//! reviewer's reason, which the admin API records in the audit trail: download as .eml,
//! export a selection as mbox, release, hold and lift a hold, delete; and the language
//! switch.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::chrome::{Chrome, c_reason, error, failed, render};
use super::guard::Form;
use super::i18n::{LANG_COOKIE, Texts};
use super::{Desk, blocking};
use crate::admin::MessageItem;
use crate::cli::{export, list, manage, parse_id, release as cli_release};
use crate::store::MessageId;

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
        Err(e) => Err((StatusCode::NOT_FOUND, e.message)),
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

/// The whole message as .eml, fetched as an export with the reason.
pub async fn eml(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    let c = Chrome::new(&desk, &headers, "inbox", "/inbox".into());
    let (reason, id) = match reason_and_id(c.t, &form, &id) {
        Ok(parts) => parts,
        Err((status, text)) => return error(c, status, text),
    };
    match blocking(&desk, move |context| {
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
    let c = Chrome::new(&desk, &headers, "inbox", "/inbox".into());
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
        Err(e) => return error(c, StatusCode::BAD_REQUEST, e.message),
    };
    match form.get("do") {
        "export" => {
            let result = blocking(&desk, move |context| {
                let mut listed = Vec::with_capacity(ids.len());
                for id in ids {
                    let item: MessageItem =
                        context.client.get_json(&format!("/v1/messages/{id}"))?;
                    listed.push(list::decrypt(context, item)?);
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
        "delete" => {
            let why = reason.clone();
            match blocking(&desk, move |context| {
                manage::delete_ids(context, &ids, Some(&why))
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
        _ => error(c, StatusCode::BAD_REQUEST, "unknown action".into()),
    }
}

fn done(
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

/// Decrypts here and submits to the `[release]` relay, as `reclaim release` does.
pub async fn release(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    let c = Chrome::new(&desk, &headers, "inbox", "/inbox".into());
    let (reason, id) = match reason_and_id(c.t, &form, &id) {
        Ok(parts) => parts,
        Err((status, text)) => return error(c, status, text),
    };
    let to: Vec<String> = form
        .get("to")
        .split([',', ' ', ';'])
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    if to.is_empty() {
        let text = c.t.release_to.to_owned();
        return error(c, StatusCode::BAD_REQUEST, text);
    }
    let why = reason.clone();
    match blocking(&desk, move |context| {
        cli_release::release(context, id, &to, &why)
    })
    .await
    {
        Ok(released) => done(
            c,
            |t| t.done_released,
            format!("{id} → {} ({})", released.to, released.message_id),
            reason,
        ),
        Err(e) => failed(c, &e),
    }
}

/// Places or lifts a legal hold.
pub async fn hold(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    let c = Chrome::new(&desk, &headers, "inbox", "/inbox".into());
    let (reason, id) = match reason_and_id(c.t, &form, &id) {
        Ok(parts) => parts,
        Err((status, text)) => return error(c, status, text),
    };
    let held = form.get("held") != "0";
    let why = reason.clone();
    match blocking(&desk, move |context| {
        manage::set_hold(context, id, held, Some(&why))
    })
    .await
    {
        Ok(()) => done(
            c,
            |t| if held { t.done_held } else { t.done_unheld },
            id.to_string(),
            reason,
        ),
        Err(e) => failed(c, &e),
    }
}

/// Deletes one message now.
pub async fn delete(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    let c = Chrome::new(&desk, &headers, "inbox", "/inbox".into());
    let (reason, id) = match reason_and_id(c.t, &form, &id) {
        Ok(parts) => parts,
        Err((status, text)) => return error(c, status, text),
    };
    let why = reason.clone();
    match blocking(&desk, move |context| {
        manage::delete_ids(context, &[id], Some(&why))
    })
    .await
    {
        Ok(result) if result.deleted.is_empty() => {
            error(c, StatusCode::NOT_FOUND, format!("no such message: {id}"))
        }
        Ok(_) => done(c, |t| t.done_deleted, id.to_string(), reason),
        Err(e) => failed(c, &e),
    }
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
