//! One admin API connection: read a bounded request, route it, answer it, and record it
//! in the audit trail before anything leaves the server.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::Oversight;
use super::access::{Denied, Scope};
use super::approvals::{self, Blocked};
use super::http::{
    HeadScan, MAX_BODY, MAX_HEAD, RequestHead, parse_head, response_head, scan_head,
};
use super::peer::Peer;
use super::routes::{MAX_SEALED_BYTES, Purpose, Refusal, Route, approval, refuse, route};
use super::{DeleteResult, MessageItem, MessagePage};
use crate::clock::unix_now;
use crate::seal::reseal::{MAX_HEADER, header_length};
use crate::store::{AuditEntry, Entry, MessageId, MessageMeta, QuarantineStore, Resealed, Sealed};
use crate::witness;

/// How long a client has to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What a request is answered with.
enum Reply {
    Json(String),
    /// A sealed message, streamed.
    Sealed(Sealed),
}

/// Serves one request on `stream` from `peer`.
pub async fn serve<S>(
    mut stream: S,
    store: Arc<impl QuarantineStore>,
    oversight: &Oversight,
    peer: Peer,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let request = tokio::time::timeout(REQUEST_TIMEOUT, read_request(&mut stream)).await;
    let (head, body) = match request {
        Ok(Ok(request)) => request,
        Ok(Err(refusal)) => {
            return refused(&mut stream, &*store, oversight, &peer, None, refusal).await;
        }
        Err(_) => {
            let refusal = refuse(408, "request timed out");
            return refused(&mut stream, &*store, oversight, &peer, None, refusal).await;
        }
    };
    let (route, request) = match route(&head, &body).and_then(|r| Ok((r, approval(&head)?))) {
        Ok(routed) => routed,
        Err(refusal) => {
            return refused(&mut stream, &*store, oversight, &peer, Some(&head), refusal).await;
        }
    };
    let answered = answer_and_record(&*store, oversight, &peer, &route, request).await;
    match answered {
        Ok(Reply::Json(body)) => {
            let _ = stream
                .write_all(&response_head(200, "application/json", body.len() as u64))
                .await;
            let _ = stream.write_all(body.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
        Ok(Reply::Sealed(mut sealed)) => {
            let _ = stream
                .write_all(&response_head(
                    200,
                    "application/octet-stream",
                    sealed.length,
                ))
                .await;
            let _ = tokio::io::copy(&mut sealed.reader, &mut stream).await;
            let _ = stream.shutdown().await;
        }
        Err(refusal) => respond_error(&mut stream, refusal).await,
    }
}

/// Answers, then records the request with the status it got. Data is handed out only once
/// its audit record is durable; if recording fails, the request fails.
/// A request its principal's roles do not allow is refused (403) and recorded like any
/// other, with why in the record's detail. A message outside a limited principal's domains
/// is answered as one that does not exist (404), and the record says why. An action that
/// needs four eyes goes ahead only under the approved request `request` names
/// ([`approvals::gate`]); without one it is refused (403) and recorded the same way.
async fn answer_and_record(
    store: &impl QuarantineStore,
    oversight: &Oversight,
    peer: &Peer,
    route: &Route,
    request: Option<u64>,
) -> Result<Reply, Refusal> {
    // Ids the request named, plus those it turned out to touch (a purge names none).
    let mut touched = Vec::new();
    let mut hidden = None;
    let mut note = None;
    let now = unix_now();
    let (result, denied) = match oversight.access.check(peer, route) {
        Ok(()) if is_request_route(route) => {
            let outcome = approvals::answer(store, oversight, peer, route, now).await;
            touched = outcome.ids;
            note = outcome.note;
            let denied = match &outcome.result {
                Err(r) if r.status == 403 => note.take().or_else(|| Some(r.message.clone())),
                _ => None,
            };
            (outcome.result.map(Reply::Json), denied)
        }
        Ok(()) => match approvals::gate(store, oversight, peer, route, request, now).await {
            Ok(under) => {
                note = under;
                let scope = oversight.access.scope(peer);
                let seen = Seen {
                    scope,
                    touched: &mut touched,
                    hidden: &mut hidden,
                };
                (answer(store, route, seen).await, None)
            }
            Err(Blocked::Denied(Denied(why))) => (Err(refuse(403, why.clone())), Some(why)),
            Err(Blocked::Failed(refusal)) => (Err(refusal), None),
        },
        Err(Denied(why)) => (Err(refuse(403, why.clone())), Some(why)),
    };
    let (action, mut ids, reason) = route.audit_fields();
    ids.extend(touched);
    let detail = match route {
        _ if denied.is_some() => denied,
        _ if hidden.is_some() => hidden,
        _ if note.is_some() => note,
        Route::AuditNote { detail, .. } => detail.clone(),
        _ => None,
    };
    // Where a release fetch says the message goes, beside whatever else is noted.
    let detail = match route {
        Route::Sealed { to, .. } if !to.is_empty() => {
            let to = format!("to {}", to.join(", "));
            Some(detail.map_or_else(|| to.clone(), |d| format!("{d}; {to}")))
        }
        _ => detail,
    };
    let entry = AuditEntry {
        time: now,
        who: peer.who.clone(),
        uid: peer.uid,
        action: action.to_owned(),
        ids,
        reason,
        status: result.as_ref().map_or_else(|r| r.status, |_| 200),
        detail,
    };
    witness::record(store, &oversight.witness, entry)
        .await
        .map_err(internal)?;
    result
}

/// Whether `route` files, lists or decides approval requests.
fn is_request_route(route: &Route) -> bool {
    matches!(
        route,
        Route::RequestCreate { .. } | Route::RequestList { .. } | Route::RequestDecide { .. }
    )
}

/// What a request may see, and what it turned out to touch or be kept from.
struct Seen<'a> {
    scope: Scope<'a>,
    /// Ids it touched beyond those it named (a purge names none).
    touched: &'a mut Vec<String>,
    /// Why it was answered 404 for a message that exists, for the audit record.
    hidden: &'a mut Option<String>,
}

impl Seen<'_> {
    /// The message `id` if it exists and is in scope; otherwise the 404 a message that does
    /// not exist gets, so that a limited principal cannot tell the two apart.
    async fn visible(
        &mut self,
        store: &impl QuarantineStore,
        id: MessageId,
    ) -> Result<Entry, Refusal> {
        let entry = store
            .get(id)
            .await
            .map_err(internal)?
            .ok_or_else(|| not_found(id))?;
        if !self.scope.admits(&entry.meta.domains) {
            *self.hidden = Some(format!(
                "{id} is outside the principal's domains ({})",
                self.scope.describe()
            ));
            return Err(not_found(id));
        }
        Ok(entry)
    }
}

async fn answer(
    store: &impl QuarantineStore,
    route: &Route,
    mut seen: Seen<'_>,
) -> Result<Reply, Refusal> {
    match route {
        Route::Health => json(&serde_json::json!({
            "status": "ok",
            "messages": store.count().await.map_err(internal)?,
        })),
        Route::List {
            limit,
            before,
            filter,
            index,
        } => {
            let (entries, next) = store
                .list(*before, *limit, filter)
                .await
                .map_err(internal)?;
            // The store's page, less what is out of scope: a page may come out short (even
            // empty), but `next_before` is the store's, so paging still walks every message.
            json(&MessagePage {
                messages: entries
                    .into_iter()
                    .filter(|e| seen.scope.admits(&e.meta.domains))
                    .map(|mut e| {
                        if *index && !e.meta.sealed_to.is_empty() {
                            e.sealed_summary = Vec::new();
                        }
                        item(e)
                    })
                    .collect(),
                next_before: next.map(|id| id.to_string()),
            })
        }
        Route::Message(id) => json(&item(seen.visible(store, *id).await?)),
        Route::SealedMany { ids, .. } => sealed_many(store, ids, &mut seen).await,
        Route::Sealed { id, purpose, .. } => {
            if seen.scope.limited() {
                seen.visible(store, *id).await?;
            }
            let sealed = store
                .read_sealed(*id)
                .await
                .map_err(internal)?
                .ok_or_else(|| not_found(*id))?;
            if *purpose == Purpose::Reseal {
                return header_only(*id, sealed).await.map(Reply::Sealed);
            }
            Ok(Reply::Sealed(sealed))
        }
        Route::Delete { ids, .. } => {
            // A limited principal deletes all it names or nothing: any id that is not a
            // message it can see is a 404, whether it exists elsewhere or not at all.
            if seen.scope.limited() {
                for id in ids {
                    seen.visible(store, *id).await?;
                }
            }
            let found = store.delete(ids).await.map_err(internal)?;
            let mut result = DeleteResult::default();
            for (id, existed) in ids.iter().zip(found) {
                let list = if existed {
                    &mut result.deleted
                } else {
                    &mut result.missing
                };
                list.push(id.to_string());
            }
            json(&result)
        }
        Route::Hold { id, held, .. } => {
            if seen.scope.limited() {
                seen.visible(store, *id).await?;
            }
            if !store
                .set_hold(*id, *held, unix_now())
                .await
                .map_err(internal)?
            {
                return Err(not_found(*id));
            }
            json(&serde_json::json!({ "id": id.to_string(), "held": held }))
        }
        Route::Purge { older_than, .. } => {
            let cutoff = unix_now().saturating_sub(i64::try_from(*older_than).unwrap_or(i64::MAX));
            let report = store
                .purge(Arc::new(move |meta: &MessageMeta| {
                    meta.received_at <= cutoff
                }))
                .await
                .map_err(internal)?;
            seen.touched.extend(report.deleted.iter().cloned());
            json(&report)
        }
        Route::Reseal { id, change, .. } => {
            seen.visible(store, *id).await?;
            match store
                .reseal(*id, (**change).clone())
                .await
                .map_err(internal)?
            {
                Resealed::Done => {
                    json(&serde_json::json!({ "id": id.to_string(), "resealed": true }))
                }
                Resealed::Missing => Err(not_found(*id)),
                Resealed::Changed => Err(refuse(
                    409,
                    format!("{id} no longer starts with the header that was read; read it again"),
                )),
            }
        }
        Route::Stats => json(&store.stats().await.map_err(internal)?),
        Route::AuditList { after, limit } => {
            json(&store.audit_page(*after, *limit).await.map_err(internal)?)
        }
        Route::AuditNote { ids, .. } => {
            // A principal limited to domains records releases of its own messages only:
            // a note about another domain's message would put words in that trail.
            if seen.scope.limited() {
                for id in ids {
                    seen.visible(store, *id).await?;
                }
            }
            json(&serde_json::json!({ "recorded": true }))
        }
        Route::RequestCreate { .. } | Route::RequestList { .. } | Route::RequestDecide { .. } => {
            Err(refuse(404, "approval requests are answered elsewhere"))
        }
    }
}

/// Only the age header of a sealed message: what a re-seal needs, and nothing of the
/// payload (whose first bytes a holder of the file key could decrypt without its tag).
async fn header_only(id: MessageId, mut sealed: Sealed) -> Result<Sealed, Refusal> {
    let mut start = Vec::new();
    (&mut sealed.reader)
        .take(MAX_HEADER as u64)
        .read_to_end(&mut start)
        .await
        .map_err(internal)?;
    let length = header_length(&start).ok_or_else(|| {
        tracing::error!(%id, "a stored message does not start with a whole age header");
        refuse(500, "internal error; see the server log")
    })?;
    start.truncate(length);
    Ok(Sealed {
        length: length as u64,
        reader: Box::new(std::io::Cursor::new(start)),
    })
}

fn json(value: &impl serde::Serialize) -> Result<Reply, Refusal> {
    serde_json::to_string(value)
        .map(Reply::Json)
        .map_err(internal)
}

async fn refused<S>(
    stream: &mut S,
    store: &impl QuarantineStore,
    oversight: &Oversight,
    peer: &Peer,
    head: Option<&RequestHead>,
    refusal: Refusal,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let entry = AuditEntry {
        time: unix_now(),
        who: peer.who.clone(),
        uid: peer.uid,
        action: "refused".into(),
        status: refusal.status,
        detail: head.map(|h| format!("{} {}", h.method, h.path)),
        ..AuditEntry::default()
    };
    if let Err(error) = witness::record(store, &oversight.witness, entry).await {
        tracing::error!(%error, "cannot record a refused admin request");
    }
    respond_error(stream, refusal).await;
}

async fn read_request<S>(stream: &mut S) -> Result<(RequestHead, Vec<u8>), Refusal>
where
    S: AsyncRead + Unpin,
{
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let end = loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| refuse(400, e.to_string()))?;
        if n == 0 {
            return Err(refuse(400, "connection closed mid-request"));
        }
        buf.extend_from_slice(&chunk[..n]);
        match scan_head(&buf, MAX_HEAD) {
            HeadScan::Complete(end) => break end,
            HeadScan::Incomplete => {}
            HeadScan::TooLarge => {
                return Err(refuse(431, format!("request head over {MAX_HEAD} bytes")));
            }
        }
    };
    let head = parse_head(&buf[..end]).map_err(|bad| refuse(400, bad.0))?;
    if head.content_length > MAX_BODY {
        return Err(refuse(413, format!("request body over {MAX_BODY} bytes")));
    }
    let mut body = buf.split_off(end);
    while body.len() < head.content_length {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| refuse(400, e.to_string()))?;
        if n == 0 {
            return Err(refuse(400, "connection closed mid-body"));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(head.content_length);
    Ok((head, body))
}

/// `POST /v1/sealed`: for each id in order, `ID LENGTH\n` and the sealed bytes, or `ID -\n`
/// for a message that is not there (or not in a limited principal's scope).
async fn sealed_many(
    store: &impl QuarantineStore,
    ids: &[MessageId],
    seen: &mut Seen<'_>,
) -> Result<Reply, Refusal> {
    let mut body = Vec::new();
    for id in ids {
        let visible = !seen.scope.limited() || seen.visible(store, *id).await.is_ok();
        let sealed = if visible {
            store.read_sealed(*id).await.map_err(internal)?
        } else {
            None
        };
        let Some(mut sealed) = sealed else {
            body.extend_from_slice(format!("{id} -\n").as_bytes());
            continue;
        };
        if body.len() as u64 + sealed.length > MAX_SEALED_BYTES {
            return Err(refuse(
                413,
                format!(
                    "these messages are more than {MAX_SEALED_BYTES} bytes sealed; ask for fewer"
                ),
            ));
        }
        body.extend_from_slice(format!("{id} {}\n", sealed.length).as_bytes());
        let start = body.len();
        sealed
            .reader
            .read_to_end(&mut body)
            .await
            .map_err(internal)?;
        if (body.len() - start) as u64 != sealed.length {
            return Err(internal(format!(
                "message {id}: its sealed length changed while read"
            )));
        }
    }
    Ok(Reply::Sealed(Sealed {
        length: body.len() as u64,
        reader: Box::new(std::io::Cursor::new(body)),
    }))
}

fn item(entry: Entry) -> MessageItem {
    MessageItem {
        id: entry.id.to_string(),
        received_at: entry.meta.received_at,
        size: entry.meta.size,
        sealed_size: entry.meta.sealed_size,
        domains: entry.meta.domains,
        summary: base64::engine::general_purpose::STANDARD.encode(entry.sealed_summary),
        held: entry.held,
        notice: entry.meta.notice,
        sealed_to: entry.meta.sealed_to,
    }
}

pub(super) fn internal(error: impl std::fmt::Display) -> Refusal {
    tracing::error!(%error, "admin request failed");
    refuse(500, "internal error; see the server log")
}

fn not_found(id: MessageId) -> Refusal {
    refuse(404, format!("no message {id}"))
}

async fn respond_error<S>(stream: &mut S, refusal: Refusal)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let body = serde_json::json!({ "error": refusal.message }).to_string();
    let _ = stream
        .write_all(&response_head(
            refusal.status,
            "application/json",
            body.len() as u64,
        ))
        .await;
    let _ = stream.write_all(body.as_bytes()).await;
    // Closing with unread input would reset the connection and the client might never see
    // the error: half-close, then drain what it still sends (bounded in bytes and time).
    let _ = stream.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut sink = [0u8; 4096];
        let mut left: usize = 1 << 20;
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 || left < n {
                break;
            }
            left -= n;
        }
    })
    .await;
}
