//! One message opened for reading (`reclaim show`, the desk's message page): fetched with
//! the reviewer's reason, its summary and content decrypted here and rendered, and what
//! the gateway itself verified on arrival kept apart from what the message claims.

use base64::Engine;
use serde::Serialize;

use super::export::fetch_plain;
use super::render::{Rendered, render};
use super::{ReviewContext, ReviewError};
use crate::admin::MessageItem;
use crate::clock::format_time;
use crate::store::MessageId;
use crate::summary::{AuthResults, Summary};

/// One message as `show` and the desk present it (and `show --json` prints it).
#[derive(Debug, Serialize)]
pub struct Shown {
    pub id: String,
    pub received_at: String,
    pub held: bool,
    pub domains: Vec<String>,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub client_ip: String,
    pub helo: String,
    pub tls: Option<String>,
    /// What the gateway itself checked on arrival; `null` when it checked nothing.
    pub gateway_auth: Option<Verified>,
    #[serde(flatten)]
    pub message: Rendered,
}

/// Fetches one message (the fetch recorded with `reason` as a `show`), decrypts its
/// summary and content here, and renders it.
pub fn load(context: &ReviewContext, id: MessageId, reason: &str) -> Result<Shown, ReviewError> {
    let item: MessageItem = context.client.get_json(&format!("/v1/messages/{id}"))?;
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(&item.summary)
        .map_err(|source| ReviewError::NotBase64 {
            id: id.to_string(),
            source,
        })?;
    let unreadable = || format!("cannot decrypt the summary of message {id}");
    let plain = context
        .identities()?
        .open_summary(&sealed)
        .map_err(|e| ReviewError::decrypt(unreadable(), e))?;
    let raw: serde_json::Value =
        serde_json::from_slice(&plain).map_err(|source| ReviewError::BadSummary {
            what: unreadable(),
            source,
        })?;
    let summary: Summary =
        serde_json::from_value(raw.clone()).map_err(|source| ReviewError::BadSummary {
            what: format!("message {id}: the summary does not parse"),
            source,
        })?;
    // The raw form tells a summary without domain fields from one with empty ones.
    let gateway_auth = from_summary(summary.auth.as_ref(), &raw["auth"]);
    let plain = fetch_plain(context, id, "show", reason)?;
    Ok(Shown {
        id: id.to_string(),
        received_at: format_time(item.received_at),
        held: item.held,
        domains: item.domains,
        mail_from: summary.mail_from,
        rcpt_to: summary.rcpt_to,
        client_ip: summary.client_ip,
        helo: summary.helo,
        tls: summary.tls.map(|t| format!("{} {}", t.version, t.cipher)),
        gateway_auth,
        message: render(&plain),
    })
}

/// One check and the domain it was for; `domain` is `None` when the summary predates
/// recording it (shown as unknown, never guessed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub result: String,
    pub domain: Option<String>,
}

/// DKIM and the `d=` domains of the signatures that passed; `None` as for [`Check`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DkimCheck {
    pub result: String,
    pub domains: Option<Vec<String>>,
}

/// The gateway's own verdict: SPF, DKIM and DMARC and the domains they were for, read
/// from the sealed summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    pub spf: Check,
    pub dkim: DkimCheck,
    pub dmarc: Check,
}

/// The verdict from a summary's `auth` results; `raw_auth` is the same object as sealed,
/// which tells whether its domain fields were recorded at all. `None` when the gateway
/// checked nothing (DNS off).
pub fn from_summary(auth: Option<&AuthResults>, raw_auth: &serde_json::Value) -> Option<Verified> {
    let auth = auth?;
    let recorded = |key: &str| raw_auth.get(key).is_some();
    Some(Verified {
        spf: Check {
            result: auth.spf.clone(),
            domain: recorded("spf_domain").then(|| auth.spf_domain.clone()),
        },
        dkim: DkimCheck {
            result: auth.dkim.clone(),
            domains: recorded("dkim_domains").then(|| auth.dkim_domains.clone()),
        },
        dmarc: Check {
            result: auth.dmarc.clone(),
            domain: recorded("dmarc_domain").then(|| auth.dmarc_domain.clone()),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(raw: &str) -> Option<Verified> {
        let raw: serde_json::Value = serde_json::from_str(raw).expect("JSON");
        let auth: AuthResults = serde_json::from_value(raw.clone()).expect("auth results");
        from_summary(Some(&auth), &raw)
    }

    #[test]
    fn domains_are_kept_and_unknown_when_not_recorded() {
        let v = verdict(
            r#"{"spf":"pass","dkim":"pass","dmarc":"fail","spf_domain":"partner.example","dkim_domains":["partner.example","esp.example"],"dmarc_domain":""}"#,
        )
        .expect("checked");
        assert_eq!(v.spf.domain.as_deref(), Some("partner.example"));
        assert_eq!(
            v.dkim.domains.as_deref(),
            Some(&["partner.example".to_owned(), "esp.example".to_owned()][..])
        );
        assert_eq!(
            (v.dmarc.result.as_str(), v.dmarc.domain.as_deref()),
            ("fail", Some(""))
        );
        let old = verdict(r#"{"spf":"pass","dkim":"fail","dmarc":"none"}"#).expect("checked");
        assert_eq!(
            (old.spf.domain, old.dkim.domains, old.dmarc.domain),
            (None, None, None),
            "an older summary's domains are unknown, not empty"
        );
        assert_eq!(from_summary(None, &serde_json::Value::Null), None);
    }
}
