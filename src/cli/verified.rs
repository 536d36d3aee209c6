//! What the gateway itself verified when a message arrived (SPF, DKIM, DMARC and the domains
//! they were for), read from the sealed summary and kept apart from anything the message
//! claims about itself.

use std::io::Write;

use serde::Serialize;

use super::terminal::sanitize;
use crate::summary::AuthResults;

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

/// The gateway's own verdict.
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

const UNKNOWN: &str = "domain unknown (summary from an older reclaim)";

/// The text block `show` prints; every domain came from the message and is sanitised.
pub fn write_text(out: &mut impl Write, verified: Option<&Verified>) -> std::io::Result<()> {
    let Some(v) = verified else {
        return writeln!(
            out,
            "Verified    nothing: reclaim checked no SPF, DKIM or DMARC (DNS was off)"
        );
    };
    writeln!(out, "Verified by reclaim when the message arrived:")?;
    let spf_for = match v.spf.domain.as_deref() {
        None => UNKNOWN.to_owned(),
        Some("") => "no domain (no MAIL FROM domain or HELO name)".to_owned(),
        Some(d) => format!("for {} (MAIL FROM, or HELO for <>)", sanitize(d)),
    };
    writeln!(out, "  SPF       {}, {spf_for}", sanitize(&v.spf.result))?;
    let dkim_for = match v.dkim.domains.as_deref() {
        None => format!(", {UNKNOWN}"),
        Some([]) => String::new(),
        Some(domains) => format!(
            ", passed for {}",
            domains
                .iter()
                .map(|d| format!("d={}", sanitize(d)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    writeln!(out, "  DKIM      {}{dkim_for}", sanitize(&v.dkim.result))?;
    let dmarc_for = match v.dmarc.domain.as_deref() {
        None => UNKNOWN.to_owned(),
        Some("") => "no From: domain".to_owned(),
        Some(d) => format!("for {} (From:)", sanitize(d)),
    };
    writeln!(
        out,
        "  DMARC     {}, {dmarc_for}",
        sanitize(&v.dmarc.result)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(raw: &str) -> String {
        let raw: serde_json::Value = serde_json::from_str(raw).expect("JSON");
        let auth: AuthResults = serde_json::from_value(raw.clone()).expect("auth results");
        let mut out = Vec::new();
        write_text(&mut out, from_summary(Some(&auth), &raw).as_ref()).expect("write");
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn domains_are_named_and_unknown_when_not_recorded() {
        let text = shown(
            r#"{"spf":"pass","dkim":"pass","dmarc":"pass","spf_domain":"partner.example","dkim_domains":["partner.example","esp.example"],"dmarc_domain":"partner.example"}"#,
        );
        assert_eq!(
            text,
            "Verified by reclaim when the message arrived:\n  SPF       pass, for partner.example (MAIL FROM, or HELO for <>)\n  DKIM      pass, passed for d=partner.example, d=esp.example\n  DMARC     pass, for partner.example (From:)\n"
        );
        let old = shown(r#"{"spf":"pass","dkim":"fail","dmarc":"none"}"#);
        assert_eq!(old.matches(UNKNOWN).count(), 3, "{old}");
        let raw: serde_json::Value =
            serde_json::from_str(r#"{"spf":"pass","dkim":"fail","dmarc":"none"}"#).expect("JSON");
        let auth: AuthResults = serde_json::from_value(raw.clone()).expect("auth");
        let v = from_summary(Some(&auth), &raw).expect("checked");
        assert_eq!(
            (v.spf.domain, v.dkim.domains, v.dmarc.domain),
            (None, None, None)
        );
        let hostile = shown(
            r#"{"spf":"fail","dkim":"none","dmarc":"fail","spf_domain":"a\u001b]0;x\u0007.example","dkim_domains":[],"dmarc_domain":""}"#,
        );
        assert!(!hostile.contains('\x1b') && hostile.contains("no From: domain"));
        assert!(hostile.contains("  DKIM      none\n"), "{hostile}");
    }

    #[test]
    fn nothing_checked_says_so() {
        let mut out = Vec::new();
        write_text(
            &mut out,
            from_summary(None, &serde_json::Value::Null).as_ref(),
        )
        .expect("write");
        assert!(
            String::from_utf8(out)
                .expect("utf8")
                .contains("DNS was off")
        );
    }
}
