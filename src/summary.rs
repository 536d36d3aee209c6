//! The per-message summary reviewers see in listings. It holds addresses and a subject, so
//! the gateway seals it before it reaches the index.

use serde::{Deserialize, Serialize};

/// TLS parameters of the session a message arrived on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsInfo {
    pub version: String,
    pub cipher: String,
}

/// Envelope, connection facts and a few header fields of one quarantined message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Envelope sender; empty for the null sender `<>`.
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub client_ip: String,
    pub helo: String,
    pub tls: Option<TlsInfo>,
    pub subject: Option<String>,
    pub from: Option<String>,
    pub date: Option<String>,
    pub message_id: Option<String>,
}
