//! How `reclaim show` prints what the gateway itself verified when a message arrived (SPF,
//! DKIM, DMARC and the domains they were for), apart from anything the message claims.

use std::io::Write;

use crate::review::show::Verified;
use crate::sanitize::sanitize;

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
    use crate::review::show::from_summary;
    use crate::summary::AuthResults;

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
