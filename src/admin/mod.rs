//! The internal admin API: HTTP/1.1 + JSON on a Unix domain socket (mode 0600). It hands
//! out sealed summaries and sealed blobs only; reviewers decrypt on their side.
//!
//! Routes (all `GET`):
//! - `/v1/health`: `{"status":"ok","messages":N}`
//! - `/v1/messages?limit=N&before=ID`: newest first, `{"messages":[…],"next_before":ID|null}`
//! - `/v1/messages/ID`: one message's metadata and sealed summary
//! - `/v1/messages/ID/sealed`: the sealed age file (`application/octet-stream`)

pub mod client;
pub mod http;
pub mod routes;
pub mod server;

use serde::{Deserialize, Serialize};

/// One message as the API lists it. `summary` is the base64 of an age file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageItem {
    pub id: String,
    pub received_at: i64,
    pub size: u64,
    pub sealed_size: u64,
    pub domains: Vec<String>,
    pub summary: String,
}

/// A page of the message list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagePage {
    pub messages: Vec<MessageItem>,
    pub next_before: Option<String>,
}

/// Largest page the API hands out in one response.
pub const MAX_PAGE: usize = 1000;
