//! One quarantined message as a reviewer sees it in a listing: its index entry and its
//! opened summary, the row `list`, `export`, `report`, the filters and the desk share.

use serde::Serialize;

use crate::admin::MessageItem;
use crate::clock::format_time;
use crate::summary::Summary;

/// One message as `list --json` prints it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Listed {
    pub id: String,
    pub received_at: String,
    #[serde(skip)]
    pub received_unix: i64,
    pub held: bool,
    pub size: u64,
    pub domains: Vec<String>,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub subject: Option<String>,
    pub from: Option<String>,
    pub date: Option<String>,
    pub message_id: Option<String>,
    pub client_ip: String,
    pub helo: String,
    pub tls: bool,
    pub tls_version: Option<String>,
    pub tls_cipher: Option<String>,
    /// SPF, DKIM and DMARC results at receive time (absent when DNS was off).
    pub auth: Option<crate::summary::AuthResults>,
    /// Null sender, Auto-Submitted, List-Id or Precedence bulk/list/junk.
    pub looks_automated: bool,
    /// What became of its notice, as the gateway recorded it when storing the message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<crate::store::NoticeRecord>,
}

impl Listed {
    /// The row of an index entry whose summary has been opened.
    pub fn new(item: MessageItem, summary: Summary) -> Self {
        let looks_automated = summary.looks_automated();
        Listed {
            id: item.id,
            received_at: format_time(item.received_at),
            received_unix: item.received_at,
            held: item.held,
            notice: item.notice,
            looks_automated,
            size: item.size,
            domains: item.domains,
            mail_from: summary.mail_from,
            rcpt_to: summary.rcpt_to,
            subject: summary.subject,
            from: summary.from,
            date: summary.date,
            message_id: summary.message_id,
            client_ip: summary.client_ip,
            helo: summary.helo,
            tls: summary.tls.is_some(),
            tls_version: summary.tls.as_ref().map(|t| t.version.clone()),
            tls_cipher: summary.tls.map(|t| t.cipher),
            auth: summary.auth,
        }
    }
}
