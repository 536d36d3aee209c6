//! The internal admin API: HTTP/1.1 + JSON on a Unix domain socket (mode 0600). It hands
//! out sealed summaries and sealed blobs only; reviewers decrypt on their side. Every
//! request is recorded in the audit trail. Optionally also on TCP with mutual TLS.
//!
//! Routes:
//! - `GET /v1/health`: `{"status":"ok","messages":N}`
//! - `GET /v1/messages?limit=N&before=ID&domain=D&since=T&until=T`: newest first,
//!   `{"messages":[…],"next_before":ID|null}` (times in seconds since the epoch)
//! - `GET /v1/messages/ID`: one message's metadata and sealed summary
//! - `GET /v1/messages/ID/sealed?reason=TEXT&purpose=show|export|release`: the sealed age
//!   file (`application/octet-stream`); refused (400) without a reason
//! - `DELETE /v1/messages/ID`, `POST /v1/delete {"ids":[…],"reason":…}`: delete now
//! - `POST|DELETE /v1/messages/ID/hold`: place or lift a legal hold
//! - `POST /v1/purge {"older_than":SECONDS,"reason":…}`: delete older messages not held
//! - `GET /v1/stats`: counts and bytes per domain and per day
//! - `GET /v1/audit?after=SEQ&limit=N`: audit records with the chain's anchor and head
//! - `POST /v1/audit {"action":"release","ids":[…],"reason":…,"detail":…}`: a release
//! - `POST /v1/requests {"action":…,"ids":[…],"older_than":SECONDS,"reason":…}`: file a
//!   four-eyes request; `GET /v1/requests?limit=N`: the requests, newest first;
//!   `POST /v1/requests/N/approve|deny?reason=TEXT`: decide one (see [`approvals`])
//! - `request=N` on a sealed export or release fetch, a delete, a purge or a hold lift:
//!   carry it out under approved request N, when `[approvals]` says it needs one

pub mod access;
pub mod approvals;
pub mod client;
mod deadline;
mod handler;
pub mod http;
mod networks;
pub mod peer;
pub mod routes;
pub mod server;
pub mod tls;

use serde::{Deserialize, Serialize};

/// What the admin API enforces on every request and where it reports each one: the same
/// for all of its listeners.
#[derive(Debug, Clone, Default)]
pub struct Oversight {
    pub access: access::AccessPolicy,
    pub approvals: approvals::ApprovalPolicy,
    pub witness: crate::witness::WitnessConfig,
}

/// One message as the API lists it. `summary` is the base64 of an age file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageItem {
    pub id: String,
    pub received_at: i64,
    pub size: u64,
    pub sealed_size: u64,
    pub domains: Vec<String>,
    /// The sealed summary, base64; left out of an index page (`index=1`) where
    /// `sealed_to` is known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub summary: String,
    /// Under legal hold.
    #[serde(default)]
    pub held: bool,
    /// What became of its notice; absent for messages stored before this was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<crate::store::NoticeRecord>,
    /// Fingerprints of the keys it is sealed to ([`crate::seal::fingerprint`]); absent for
    /// messages stored before this was recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sealed_to: Vec<String>,
}

/// What a delete did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteResult {
    pub deleted: Vec<String>,
    /// Ids with no message (already deleted, or never there).
    pub missing: Vec<String>,
}

/// A page of the message list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagePage {
    pub messages: Vec<MessageItem>,
    pub next_before: Option<String>,
}

/// Largest page the API hands out in one response.
pub const MAX_PAGE: usize = 1000;

/// Largest index page (`index=1`): its messages come without their summaries.
pub const MAX_INDEX_PAGE: usize = 10_000;
