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
    /// `Auto-Submitted:` as sent (RFC 3834), if any.
    #[serde(default)]
    pub auto_submitted: Option<String>,
    /// `Precedence:` as sent, if any.
    #[serde(default)]
    pub precedence: Option<String>,
    /// `List-Id:` as sent, if any.
    #[serde(default)]
    pub list_id: Option<String>,
    /// Whether a `List-Unsubscribe:` field was present.
    #[serde(default)]
    pub list_unsubscribe: bool,
    /// SPF, DKIM and DMARC results at receive time; `None` when DNS is off.
    #[serde(default)]
    pub auth: Option<AuthResults>,
}

/// Sender authentication results, as words (`pass`, `fail`, `none`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthResults {
    pub spf: String,
    pub dkim: String,
    pub dmarc: String,
    /// The domain SPF was checked for: the MAIL FROM domain, or the HELO name for `<>`.
    #[serde(default)]
    pub spf_domain: String,
    /// The `d=` domains of the DKIM signatures that passed.
    #[serde(default)]
    pub dkim_domains: Vec<String>,
    /// The `From:` domain DMARC was evaluated for; empty when there was none.
    #[serde(default)]
    pub dmarc_domain: String,
}

impl Summary {
    /// Whether the message looks machine-sent (RFC 3834 and list conventions): such mail
    /// never gets an automatic answer.
    pub fn looks_automated(&self) -> bool {
        let auto = self
            .auto_submitted
            .as_deref()
            .is_some_and(|v| !v.trim().eq_ignore_ascii_case("no"));
        let bulk = self.precedence.as_deref().is_some_and(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "bulk" | "junk" | "list"
            )
        });
        self.mail_from.is_empty() || auto || bulk || self.list_id.is_some() || self.list_unsubscribe
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_summaries_still_parse_and_automation_is_recognised() {
        let old = r#"{"mail_from":"a@p.example","rcpt_to":["b@old.example"],"client_ip":"192.0.2.1","helo":"h","tls":null,"subject":null,"from":null,"date":null,"message_id":null}"#;
        let s: Summary = serde_json::from_str(old).expect("old summary parses");
        assert!(!s.looks_automated());
        let null_sender = Summary::default();
        assert!(null_sender.looks_automated());
        for (auto, list, prec, expected) in [
            (Some("auto-replied"), None, None, true),
            (Some("no"), None, None, false),
            (None, Some("<l.example>"), None, true),
            (None, None, Some("Bulk"), true),
            (None, None, Some("first-class"), false),
        ] {
            let s = Summary {
                mail_from: "a@p.example".into(),
                auto_submitted: auto.map(Into::into),
                list_id: list.map(Into::into),
                precedence: prec.map(Into::into),
                ..Summary::default()
            };
            assert_eq!(s.looks_automated(), expected, "{auto:?} {list:?} {prec:?}");
        }
    }
}
