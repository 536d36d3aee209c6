//! Builds a notice message: RFC 3834 headers around a filled-in template. Nothing from the
//! original message is quoted; only its Message-ID, checked, goes into In-Reply-To, and
//! addresses only when the planner found them plain.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use base64::Engine;

use super::template::Template;
use crate::domains::Language;
use crate::smtp::trace::rfc5322_date;

/// One retired recipient a notice answers, as far as it may be quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move<'a> {
    /// The retired address, only if it is a plain address (else the text names the domain).
    pub old: Option<&'a str>,
    /// The configured retired domain it falls under.
    pub domain: &'a str,
    /// Where to write instead, only if known and a plain address.
    pub new: Option<&'a str>,
}

/// Everything a notice says.
pub struct NoticeFacts<'a> {
    pub template: &'a Template,
    pub language: Language,
    pub from: &'a str,
    pub organisation: &'a str,
    /// The envelope sender of the quarantined message.
    pub to: &'a str,
    /// The retired recipients it answers (at least one, each different).
    pub moves: &'a [Move<'a>],
    pub retention: Duration,
    pub received_at: SystemTime,
    pub original_message_id: Option<&'a str>,
    pub notice_id: &'a str,
    pub hostname: &'a str,
}

/// The complete notice, CRLF line ends, UTF-8 text/plain.
pub fn compose(facts: &NoticeFacts<'_>) -> String {
    let original_id = facts
        .original_message_id
        .filter(|id| is_safe_message_id(id));
    let language = facts.language;
    let mut domains: Vec<&str> = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    for m in facts.moves {
        if !domains.contains(&m.domain) {
            domains.push(m.domain);
        }
        let (old, new) = (old_text(m, language), new_text(m.new, language));
        let line = match language {
            Language::En => format!("- {old}: write to {new}"),
            Language::Nl => format!("- {old}: schrijf aan {new}"),
        };
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    let domain_list = domains.join(", ");
    let (old_address, new_address) = match facts.moves {
        [only] => (old_text(only, language), new_text(only.new, language)),
        several => (
            match language {
                Language::En => format!("{} addresses at {domain_list}", several.len()),
                Language::Nl => format!("{} adressen bij {domain_list}", several.len()),
            },
            new_text(None, language),
        ),
    };
    let values = HashMap::from([
        ("old_address", clean(&old_address)),
        ("new_address", clean(&new_address)),
        ("addresses", clean_lines(&lines.join("\n"))),
        ("retired_domain", clean(&domain_list)),
        ("organisation", clean(facts.organisation)),
        ("retention", retention_text(facts.retention, facts.language)),
        ("received_at", rfc5322_date(facts.received_at)),
    ]);
    let (subject, body) = facts.template.fill(&values);

    let from = if facts.organisation.is_empty() {
        format!("<{}>", facts.from)
    } else {
        format!(
            "{} <{}>",
            encode_word(&clean(facts.organisation)),
            facts.from
        )
    };
    let mut out = String::new();
    out.push_str(&format!("From: {from}\r\n"));
    out.push_str(&format!("To: <{}>\r\n", clean(facts.to)));
    out.push_str(&format!("Subject: {}\r\n", encode_word(&clean(&subject))));
    out.push_str(&format!("Date: {}\r\n", rfc5322_date(SystemTime::now())));
    out.push_str(&format!(
        "Message-ID: <{}@{}>\r\n",
        facts.notice_id, facts.hostname
    ));
    if let Some(id) = original_id {
        out.push_str(&format!("In-Reply-To: {id}\r\nReferences: {id}\r\n"));
    }
    out.push_str("Auto-Submitted: auto-replied\r\n");
    out.push_str("X-Auto-Response-Suppress: All\r\n");
    out.push_str("MIME-Version: 1.0\r\n");
    out.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    out.push_str("Content-Transfer-Encoding: 8bit\r\n\r\n");
    for line in body.lines() {
        // A line of just "." is harmless with a correct SMTP client, but keep lines short
        // and free of stray CRs.
        out.push_str(line.trim_end_matches('\r'));
        out.push_str("\r\n");
    }
    out
}

/// Only a plain `<id@host>` from the sender is echoed, so a forged one cannot inject
/// header lines or anything long.
fn is_safe_message_id(id: &str) -> bool {
    id.len() <= 250
        && id.starts_with('<')
        && id.ends_with('>')
        && id.contains('@')
        && id[1..id.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
}

/// Strips control characters (no header or line injection through a value).
fn clean(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

/// [`clean`] for a value of several lines.
fn clean_lines(text: &str) -> String {
    text.lines().map(clean).collect::<Vec<_>>().join("\n")
}

/// The retired address, or words that name only its domain.
fn old_text(m: &Move<'_>, language: Language) -> String {
    match (m.old, language) {
        (Some(address), _) => address.to_owned(),
        (None, Language::En) => format!("an address at {}", m.domain),
        (None, Language::Nl) => format!("een adres bij {}", m.domain),
    }
}

/// The new address, or words that point to the organisation.
fn new_text(new: Option<&str>, language: Language) -> String {
    match (new, language) {
        (Some(address), _) => address.to_owned(),
        (None, Language::En) => "the organisation's current address".to_owned(),
        (None, Language::Nl) => "het huidige adres van de organisatie".to_owned(),
    }
}

/// RFC 2047 encoded-word for non-ASCII header text.
fn encode_word(text: &str) -> String {
    if text.is_ascii() {
        return text.to_owned();
    }
    format!(
        "=?utf-8?b?{}?=",
        base64::engine::general_purpose::STANDARD.encode(text)
    )
}

fn retention_text(retention: Duration, language: Language) -> String {
    let days = retention.as_secs().div_ceil(86400).max(1);
    match (language, days) {
        (Language::En, 1) => "1 day".to_owned(),
        (Language::En, n) => format!("{n} days"),
        (Language::Nl, 1) => "1 dag".to_owned(),
        (Language::Nl, n) => format!("{n} dagen"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOVES: &[Move<'static>] = &[Move {
        old: Some("jan@old.example"),
        domain: "old.example",
        new: Some("j.jansen@new.example"),
    }];

    fn facts<'a>(template: &'a Template, original: Option<&'a str>) -> NoticeFacts<'a> {
        NoticeFacts {
            template,
            language: Language::Nl,
            from: "postmaster@new.example",
            organisation: "Gemeente Voorbeeld",
            to: "partner@partner.example",
            moves: MOVES,
            retention: Duration::from_secs(30 * 86400),
            received_at: SystemTime::UNIX_EPOCH,
            original_message_id: original,
            notice_id: "N1",
            hostname: "mx.old.example",
        }
    }

    #[test]
    fn headers_and_body() {
        let t = Template::parse(
            "Subject: {retired_domain} verhuisd\n\nSchrijf aan {new_address}; bewaard {retention}.\n",
        )
        .expect("valid");
        let text = compose(&facts(&t, Some("<abc@partner.example>")));
        assert!(text.starts_with("From: Gemeente Voorbeeld <postmaster@new.example>\r\nTo: <partner@partner.example>\r\nSubject: old.example verhuisd\r\n"), "{text}");
        assert!(text.contains(
            "\r\nIn-Reply-To: <abc@partner.example>\r\nReferences: <abc@partner.example>\r\n"
        ));
        assert!(text.contains("\r\nAuto-Submitted: auto-replied\r\n"));
        assert!(text.contains("\r\nMessage-ID: <N1@mx.old.example>\r\n"));
        assert!(text.ends_with("\r\n\r\nSchrijf aan j.jansen@new.example; bewaard 30 dagen.\r\n"));
    }

    #[test]
    fn forged_message_ids_are_not_echoed() {
        let t = Template::parse("Subject: s\n\nbody\n").expect("valid");
        for bad in [
            "<a@b>\r\nBcc: victim@x",
            "no-brackets@x",
            "<a b@c>",
            &format!("<{}@x>", "a".repeat(300)),
        ] {
            let text = compose(&facts(&t, Some(bad)));
            assert!(!text.contains("In-Reply-To"), "{bad:?}");
            assert!(!text.contains("Bcc"), "{bad:?}");
        }
    }
}
