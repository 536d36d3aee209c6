//! Maps an admin API request to what it asks for. Pure, so it can be tested and fuzzed.

use serde::Deserialize;

use super::http::RequestHead;
use super::{MAX_INDEX_PAGE, MAX_PAGE};
use crate::store::{GuardedAction, ListFilter, MessageId, Reseal};

/// Default page size of `/v1/messages` and `/v1/audit`.
pub const DEFAULT_PAGE: usize = 100;
/// Most ids one delete request may name.
pub const MAX_IDS: usize = 1000;

/// Most messages `POST /v1/sealed` reads at once.
pub const MAX_SEALED_IDS: usize = 500;

/// Most sealed bytes one `POST /v1/sealed` answer holds (it is made in memory); asking
/// for more is refused (413) and the client asks for fewer.
pub const MAX_SEALED_BYTES: u64 = 16 * 1024 * 1024;
/// Longest reason accepted; a reason is a sentence, not a document.
pub const MAX_REASON: usize = 1000;

/// Why a sealed message is fetched; recorded in the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Show,
    Export,
    Release,
    /// To rewrap its file key for other keys; only the header is read.
    Reseal,
}

impl Purpose {
    pub fn action(self) -> &'static str {
        match self {
            Purpose::Show => "show",
            Purpose::Export => "export",
            Purpose::Release => "release-fetch",
            Purpose::Reseal => "reseal-fetch",
        }
    }
}

/// A valid admin API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    List {
        limit: usize,
        before: Option<MessageId>,
        filter: ListFilter,
        /// `index=1`: leave out the summary of each message that records whom it is sealed
        /// to, so that a client which needs only the index (and tells from `sealed_to`
        /// which messages it can open) is not sent every summary.
        index: bool,
    },
    Message(MessageId),
    /// Several sealed messages in one answer, to be shown (`POST /v1/sealed`), recorded as
    /// one read of all of them: a mail client's header fetch reads hundreds at once.
    SealedMany {
        ids: Vec<MessageId>,
        reason: String,
    },
    Sealed {
        id: MessageId,
        purpose: Purpose,
        reason: String,
        /// A release's recipients (`to=`, repeated), recorded and, under a four-eyes
        /// request, held to the ones approved. Empty for the other purposes.
        to: Vec<String>,
    },
    Delete {
        ids: Vec<MessageId>,
        reason: Option<String>,
    },
    Hold {
        id: MessageId,
        held: bool,
        reason: Option<String>,
    },
    Purge {
        older_than: u64,
        reason: Option<String>,
    },
    Stats,
    AuditList {
        after: u64,
        limit: usize,
    },
    /// A message's header, summary and fingerprints replaced by a re-seal done on the
    /// reviewer's side.
    Reseal {
        id: MessageId,
        change: Box<Reseal>,
        reason: String,
    },
    /// A record the CLI adds about what it did on its side (a release).
    AuditNote {
        ids: Vec<MessageId>,
        reason: String,
        detail: Option<String>,
    },
    /// Files a four-eyes approval request.
    RequestCreate {
        action: GuardedAction,
        ids: Vec<MessageId>,
        older_than: Option<u64>,
        /// A release's recipients, sorted, without repeats.
        to: Vec<String>,
        reason: String,
    },
    /// The approval requests, newest first.
    RequestList {
        limit: usize,
    },
    /// Approves (`approve`) or denies request `number`.
    RequestDecide {
        number: u64,
        approve: bool,
        reason: Option<String>,
    },
}

impl Route {
    /// The audit action name, the message ids and the reason of this request.
    pub fn audit_fields(&self) -> (&'static str, Vec<String>, Option<String>) {
        let ids = |ids: &[MessageId]| ids.iter().map(ToString::to_string).collect();
        match self {
            Route::Health => ("health", vec![], None),
            Route::List { .. } => ("list", vec![], None),
            Route::Message(id) => ("summary", vec![id.to_string()], None),
            Route::SealedMany { ids: list, reason } => ("show", ids(list), Some(reason.clone())),
            Route::Sealed {
                id,
                purpose,
                reason,
                ..
            } => (purpose.action(), vec![id.to_string()], Some(reason.clone())),
            Route::Delete { ids: list, reason } => ("delete", ids(list), reason.clone()),
            Route::Hold { id, held, reason } => (
                if *held { "hold" } else { "unhold" },
                vec![id.to_string()],
                reason.clone(),
            ),
            Route::Purge { reason, .. } => ("purge", vec![], reason.clone()),
            Route::Reseal { id, reason, .. } => {
                ("reseal", vec![id.to_string()], Some(reason.clone()))
            }
            Route::Stats => ("stats", vec![], None),
            Route::AuditList { .. } => ("audit", vec![], None),
            Route::AuditNote {
                ids: list, reason, ..
            } => ("release", ids(list), Some(reason.clone())),
            Route::RequestCreate {
                ids: list, reason, ..
            } => ("request", ids(list), Some(reason.clone())),
            Route::RequestList { .. } => ("requests", vec![], None),
            Route::RequestDecide {
                approve, reason, ..
            } => (
                if *approve { "approve" } else { "deny" },
                vec![],
                reason.clone(),
            ),
        }
    }
}

/// A refused request: HTTP status and a message for the JSON error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

pub fn refuse(status: u16, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedBody {
    ids: Vec<String>,
    purpose: String,
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteBody {
    ids: Vec<String>,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PurgeBody {
    older_than: u64,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResealBody {
    /// The header being replaced, the new one and the new summary, in standard base64.
    old_header: String,
    header: String,
    summary: String,
    sealed_to: Vec<String>,
    reason: String,
}

/// Most fingerprints one re-seal may record.
const MAX_SEALED_TO: usize = 1000;

fn reseal(id: &str, body: &[u8]) -> Result<Route, Refusal> {
    use base64::Engine;
    let b: ResealBody = json(body)?;
    let decode = |field: &str, text: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| refuse(400, format!("{field} is not base64")))
    };
    let change = Reseal {
        old_header: decode("old_header", &b.old_header)?,
        header: decode("header", &b.header)?,
        summary: decode("summary", &b.summary)?,
        sealed_to: b.sealed_to,
    };
    let max = crate::seal::reseal::MAX_HEADER;
    if change.old_header.is_empty() || change.header.is_empty() || change.summary.is_empty() {
        return Err(refuse(
            400,
            "old_header, header and summary must not be empty",
        ));
    }
    if change.old_header.len() > max || change.header.len() > max {
        return Err(refuse(400, format!("a header is at most {max} bytes")));
    }
    if crate::seal::reseal::header_length(&change.header) != Some(change.header.len()) {
        return Err(refuse(400, "header is not one whole age header"));
    }
    let fingerprint = |f: &String| f.len() == 16 && f.bytes().all(|b| b.is_ascii_hexdigit());
    if change.sealed_to.is_empty()
        || change.sealed_to.len() > MAX_SEALED_TO
        || !change.sealed_to.iter().all(fingerprint)
        || !change.sealed_to.is_sorted_by(|a, b| a < b)
    {
        return Err(refuse(
            400,
            format!(
                "sealed_to must name 1 to {MAX_SEALED_TO} key fingerprints (16 hex digits), sorted, each once"
            ),
        ));
    }
    Ok(Route::Reseal {
        id: parse_id(id)?,
        change: Box::new(change),
        reason: check_reason(b.reason)?,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestBody {
    action: String,
    #[serde(default)]
    ids: Vec<String>,
    older_than: Option<u64>,
    /// A release's recipients.
    #[serde(default)]
    to: Vec<String>,
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    action: String,
    ids: Vec<String>,
    reason: String,
    detail: Option<String>,
}

/// Routes a request with its body (empty for GET).
pub fn route(head: &RequestHead, body: &[u8]) -> Result<Route, Refusal> {
    let segments: Vec<&str> = head.path.trim_end_matches('/').split('/').skip(1).collect();
    let method = head.method.as_str();
    let allowed = match segments.as_slice() {
        ["v1", "health"] | ["v1", "messages"] | ["v1", "stats"] => "GET",
        ["v1", "messages", _] => "GET, DELETE",
        ["v1", "messages", _, "sealed"] => "GET",
        ["v1", "messages", _, "hold"] => "POST, DELETE",
        ["v1", "messages", _, "reseal"] => "POST",
        ["v1", "delete"] | ["v1", "purge"] | ["v1", "sealed"] => "POST",
        ["v1", "audit"] | ["v1", "requests"] => "GET, POST",
        ["v1", "requests", _, "approve" | "deny"] => "POST",
        _ => return Err(refuse(404, format!("no such endpoint: {}", head.path))),
    };
    if !allowed.split(", ").any(|m| m == method) {
        return Err(refuse(
            405,
            format!("{method} is not allowed here; use {allowed}"),
        ));
    }
    let reason = optional_reason(head)?;
    Ok(match (method, segments.as_slice()) {
        (_, ["v1", "health"]) => Route::Health,
        (_, ["v1", "stats"]) => Route::Stats,
        (_, ["v1", "messages"]) => list(head)?,
        ("GET", ["v1", "messages", id]) => Route::Message(parse_id(id)?),
        (_, ["v1", "messages", id]) => Route::Delete {
            ids: vec![parse_id(id)?],
            reason,
        },
        (_, ["v1", "messages", id, "sealed"]) => {
            let purpose = match head.param("purpose").unwrap_or("export") {
                "show" => Purpose::Show,
                "export" => Purpose::Export,
                "release" => Purpose::Release,
                "reseal" => Purpose::Reseal,
                other => return Err(refuse(400, format!("unknown purpose {other:?}"))),
            };
            let to: Vec<String> = head
                .query
                .iter()
                .filter(|(k, _)| k == "to")
                .map(|(_, v)| v.clone())
                .collect();
            if !to.is_empty() && purpose != Purpose::Release {
                return Err(refuse(400, "only a release names recipients (to=)"));
            }
            Route::Sealed {
                id: parse_id(id)?,
                purpose,
                reason: reason.ok_or_else(|| {
                    refuse(
                        400,
                        "reading a message needs a reason (reason=…); it goes into the audit trail",
                    )
                })?,
                to: check_recipients(to)?,
            }
        }
        (_, ["v1", "messages", id, "reseal"]) => reseal(id, body)?,
        (m, ["v1", "messages", id, "hold"]) => Route::Hold {
            id: parse_id(id)?,
            held: m == "POST",
            reason,
        },
        (_, ["v1", "sealed"]) => {
            let b: SealedBody = json(body)?;
            if b.ids.is_empty() || b.ids.len() > MAX_SEALED_IDS {
                return Err(refuse(
                    400,
                    format!("name between 1 and {MAX_SEALED_IDS} ids"),
                ));
            }
            if b.purpose != "show" {
                return Err(refuse(400, "several messages are read only to be shown"));
            }
            Route::SealedMany {
                ids: parse_ids(&b.ids)?,
                reason: check_reason(b.reason)?,
            }
        }
        (_, ["v1", "delete"]) => {
            let b: DeleteBody = json(body)?;
            if b.ids.is_empty() || b.ids.len() > MAX_IDS {
                return Err(refuse(400, format!("name between 1 and {MAX_IDS} ids")));
            }
            Route::Delete {
                ids: parse_ids(&b.ids)?,
                reason: b.reason.map(check_reason).transpose()?,
            }
        }
        (_, ["v1", "purge"]) => {
            let b: PurgeBody = json(body)?;
            Route::Purge {
                older_than: b.older_than,
                reason: b.reason.map(check_reason).transpose()?,
            }
        }
        ("GET", ["v1", "audit"]) => Route::AuditList {
            after: number(head, "after", 0)?,
            limit: limit(head)?,
        },
        (_, ["v1", "audit"]) => {
            let b: NoteBody = json(body)?;
            if b.action != "release" || b.ids.is_empty() || b.ids.len() > MAX_IDS {
                return Err(refuse(400, "only release notes naming messages are taken"));
            }
            Route::AuditNote {
                ids: parse_ids(&b.ids)?,
                reason: check_reason(b.reason)?,
                detail: b.detail.map(check_reason).transpose()?,
            }
        }
        ("GET", ["v1", "requests"]) => Route::RequestList {
            limit: limit(head)?,
        },
        (_, ["v1", "requests"]) => request_create(json(body)?)?,
        (_, ["v1", "requests", number, decision]) => Route::RequestDecide {
            number: number
                .parse()
                .map_err(|_| refuse(400, format!("{number:?} is not a request number")))?,
            approve: *decision == "approve",
            reason,
        },
        _ => return Err(refuse(404, format!("no such endpoint: {}", head.path))),
    })
}

/// The approved request a guarded action is carried out under (`request=N`), if named.
pub fn approval(head: &RequestHead) -> Result<Option<u64>, Refusal> {
    head.param("request")
        .map(|n| {
            n.parse()
                .map_err(|_| refuse(400, format!("request={n:?} is not a request number")))
        })
        .transpose()
}

/// A request to file: a purge names an age and no messages; hold-lift names one message;
/// the others between 1 and [`MAX_IDS`].
fn request_create(b: RequestBody) -> Result<Route, Refusal> {
    let action: GuardedAction = b.action.parse().map_err(|m: String| refuse(400, m))?;
    let ids: Vec<MessageId> = b
        .ids
        .iter()
        .map(|i| parse_id(i))
        .collect::<Result<_, _>>()?;
    match action {
        GuardedAction::Purge if !ids.is_empty() || b.older_than.is_none() => {
            return Err(refuse(
                400,
                "a purge request names older_than (seconds) and no ids",
            ));
        }
        GuardedAction::HoldLift if ids.len() != 1 => {
            return Err(refuse(400, "a hold-lift request names exactly one id"));
        }
        GuardedAction::Purge | GuardedAction::HoldLift => {}
        _ if ids.is_empty() || ids.len() > MAX_IDS => {
            return Err(refuse(
                400,
                format!("a {action} request names between 1 and {MAX_IDS} ids"),
            ));
        }
        _ if b.older_than.is_some() => {
            return Err(refuse(400, "only a purge request names older_than"));
        }
        _ => {}
    }
    // The approver agrees to where a release goes, not only to which message.
    match (action, b.to.is_empty()) {
        (GuardedAction::Release, true) => {
            return Err(refuse(400, "a release request names its recipients (to)"));
        }
        (GuardedAction::Release, false) | (_, true) => {}
        (_, false) => return Err(refuse(400, "only a release request names recipients")),
    }
    Ok(Route::RequestCreate {
        action,
        ids,
        older_than: b.older_than,
        to: check_recipients(b.to)?,
        reason: check_reason(b.reason)?,
    })
}

/// Most recipients one release may name.
pub const MAX_RECIPIENTS: usize = 100;

/// Release recipients as given, each an address, at most [`MAX_RECIPIENTS`], sorted and
/// without repeats (so that the set approved and the set used compare as sets).
fn check_recipients(to: Vec<String>) -> Result<Vec<String>, Refusal> {
    if to.len() > MAX_RECIPIENTS {
        return Err(refuse(
            400,
            format!("a release names at most {MAX_RECIPIENTS} recipients"),
        ));
    }
    let mut checked = Vec::with_capacity(to.len());
    for address in to {
        let address = address.trim();
        if address.parse::<lettre::Address>().is_err() {
            return Err(refuse(400, format!("{address:?} is not an address")));
        }
        checked.push(address.to_owned());
    }
    checked.sort_by_key(|a| a.to_ascii_lowercase());
    checked.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    Ok(checked)
}

fn json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Refusal> {
    serde_json::from_slice(body).map_err(|e| refuse(400, format!("bad request body: {e}")))
}

/// The ids a request body names, each a message id.
fn parse_ids(ids: &[String]) -> Result<Vec<MessageId>, Refusal> {
    ids.iter().map(|i| parse_id(i)).collect()
}

fn check_reason(text: String) -> Result<String, Refusal> {
    let text = text.trim().to_owned();
    if text.is_empty() || text.chars().count() > MAX_REASON {
        return Err(refuse(
            400,
            format!("a reason must be 1 to {MAX_REASON} characters"),
        ));
    }
    Ok(text)
}

fn optional_reason(head: &RequestHead) -> Result<Option<String>, Refusal> {
    head.param("reason")
        .map(|r| check_reason(r.to_owned()))
        .transpose()
}

fn parse_id(text: &str) -> Result<MessageId, Refusal> {
    text.parse().map_err(|e: String| refuse(400, e))
}

fn number<T: std::str::FromStr>(head: &RequestHead, key: &str, default: T) -> Result<T, Refusal> {
    match head.param(key) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| refuse(400, format!("{key} must be a number"))),
    }
}

fn limit(head: &RequestHead) -> Result<usize, Refusal> {
    limit_within(head, MAX_PAGE)
}

fn limit_within(head: &RequestHead, max: usize) -> Result<usize, Refusal> {
    Some(number(head, "limit", DEFAULT_PAGE)?)
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| refuse(400, format!("limit must be between 1 and {max}")))
}

fn list(head: &RequestHead) -> Result<Route, Refusal> {
    let mut filter = ListFilter::default();
    let mut before = None;
    let mut index = false;
    for (key, value) in &head.query {
        match key.as_str() {
            "limit" | "reason" => {}
            "index" => {
                index = match value.as_str() {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    _ => return Err(refuse(400, format!("index must be 1 or 0, not {value:?}"))),
                }
            }
            "before" => before = Some(parse_id(value)?),
            "domain" => {
                let name = crate::domains::normalize(value)
                    .ok_or_else(|| refuse(400, format!("{value:?} is not a domain name")))?;
                filter.domain = Some(name);
            }
            "since" => filter.since = Some(number(head, "since", 0i64)?),
            "until" => filter.until = Some(number(head, "until", 0i64)?),
            other => return Err(refuse(400, format!("unknown query parameter {other:?}"))),
        }
    }
    Ok(Route::List {
        limit: limit_within(head, if index { MAX_INDEX_PAGE } else { MAX_PAGE })?,
        before,
        filter,
        index,
    })
}

#[cfg(test)]
#[path = "routes_tests.rs"]
mod tests;
