//! Who still mails the retired domains, from decrypted listings (by sender domain and by
//! sender address, as rows or CSV), and the counts the plaintext index keeps.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use serde::Serialize;

use super::listed::Listed;
use super::{ReviewContext, ReviewError};
use crate::clock::format_time;
use crate::sanitize::sanitize;
use crate::store::Stats;

/// One sender (an address, or a whole domain) in the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SenderRow {
    pub sender: String,
    pub messages: u64,
    /// The retired addresses it wrote to.
    pub retired_addresses: BTreeSet<String>,
    pub first_seen: String,
    pub last_seen: String,
    /// At least one of its messages looked automated.
    pub looks_automated: bool,
}

/// The report: by sender domain and by sender address, busiest first.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub domains: Vec<SenderRow>,
    pub senders: Vec<SenderRow>,
}

/// Builds the report from decrypted listings. Pure.
pub fn build(listed: &[Listed]) -> Report {
    let mut by_domain: BTreeMap<String, (SenderRow, i64, i64)> = BTreeMap::new();
    let mut by_sender: BTreeMap<String, (SenderRow, i64, i64)> = BTreeMap::new();
    for m in listed {
        let sender = if m.mail_from.is_empty() {
            "<>".to_owned()
        } else {
            m.mail_from.to_lowercase()
        };
        let domain = match sender.rsplit_once('@') {
            Some((_, d)) => d.to_owned(),
            None => "(null sender)".to_owned(),
        };
        for (map, key) in [(&mut by_domain, domain), (&mut by_sender, sender.clone())] {
            let (row, first, last) = map.entry(key.clone()).or_insert_with(|| {
                (
                    SenderRow {
                        sender: key,
                        ..SenderRow::default()
                    },
                    i64::MAX,
                    i64::MIN,
                )
            });
            row.messages += 1;
            row.retired_addresses
                .extend(m.rcpt_to.iter().map(|r| r.to_lowercase()));
            row.looks_automated |= m.looks_automated;
            *first = (*first).min(m.received_unix);
            *last = (*last).max(m.received_unix);
        }
    }
    let finish = |map: BTreeMap<String, (SenderRow, i64, i64)>| {
        let mut rows: Vec<SenderRow> = map
            .into_values()
            .map(|(mut row, first, last)| {
                row.first_seen = format_time(first);
                row.last_seen = format_time(last);
                row
            })
            .collect();
        rows.sort_by(|a, b| b.messages.cmp(&a.messages).then(a.sender.cmp(&b.sender)));
        rows
    };
    Report {
        domains: finish(by_domain),
        senders: finish(by_sender),
    }
}

/// The report as CSV, one row per sender domain and per sender address.
pub fn write_csv(out: &mut impl Write, report: &Report) -> std::io::Result<()> {
    writeln!(
        out,
        "kind,sender,messages,retired_addresses,first_seen,last_seen,looks_automated"
    )?;
    for (kind, rows) in [("domain", &report.domains), ("address", &report.senders)] {
        for r in rows {
            let addresses = r.retired_addresses.iter().cloned().collect::<Vec<_>>();
            writeln!(
                out,
                "{kind},{},{},{},{},{},{}",
                csv_field(&r.sender),
                r.messages,
                csv_field(&addresses.join(" ")),
                r.first_seen,
                r.last_seen,
                r.looks_automated
            )?;
        }
    }
    Ok(())
}

/// One CSV field (RFC 4180 quoting). Sender addresses are chosen by strangers and the file
/// is often looked at with `cat` or `less` first: control and bidi characters go as in the
/// table. Text that a spreadsheet would run as a formula (after any leading spaces) gets a
/// leading `'`.
fn csv_field(text: &str) -> String {
    let text = sanitize(text);
    let text = if text.trim_start().starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// The plaintext index's counts and sizes (messages, bytes, held, notices, per domain and
/// per day), as the admin API keeps them.
pub fn stats(context: &ReviewContext) -> Result<Stats, ReviewError> {
    Ok(context.client.get_json("/v1/stats")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(from: &str, to: &str, at: i64, automated: bool) -> Listed {
        Listed {
            mail_from: from.into(),
            rcpt_to: vec![to.into()],
            received_unix: at,
            looks_automated: automated,
            ..Listed::default()
        }
    }

    #[test]
    fn groups_by_domain_and_address() {
        let r = build(&[
            listed("A@partner.example", "jan@old.example", 200, false),
            listed("a@partner.example", "piet@old.example", 100, false),
            listed("b@partner.example", "jan@old.example", 300, false),
            listed("", "postmaster@old.example", 50, true),
        ]);
        assert_eq!(r.domains[0].sender, "partner.example");
        assert_eq!(r.domains[0].messages, 3);
        assert_eq!(r.domains[0].first_seen, format_time(100));
        assert_eq!(r.domains[0].last_seen, format_time(300));
        assert_eq!(r.senders[0].sender, "a@partner.example");
        assert_eq!(r.senders[0].retired_addresses.len(), 2);
        assert!(
            r.domains
                .iter()
                .any(|d| d.sender == "(null sender)" && d.looks_automated)
        );
        assert_eq!(csv_field("=cmd|x"), "'=cmd|x");
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
    }

    #[test]
    fn csv_is_as_safe_as_the_table() {
        let r = build(&[
            listed(
                "\"\x1b]0;owned\x07\"@evil.example",
                "inv\u{202e}fdp.exe@old.example",
                100,
                false,
            ),
            listed(
                "\t=HYPERLINK(\"x\")@evil.example",
                "a\u{9b}31m@old.example",
                50,
                false,
            ),
        ]);
        let mut out = Vec::new();
        write_csv(&mut out, &r).expect("write");
        let text = String::from_utf8(out).expect("utf8");
        for bad in ['\x1b', '\x07', '\u{202e}', '\u{9b}', '\t'] {
            assert!(!text.contains(bad), "{bad:?} in {text:?}");
        }
        assert!(text.contains("\"?]0;owned?\"\"@evil.example"), "{text}");
        assert!(text.contains("inv?fdp.exe@old.example"), "{text}");
        assert!(
            text.contains(",\"' =hyperlink(\"\"x\"\")@evil.example\","),
            "{text}"
        );
        assert_eq!(
            text.lines().count(),
            1 + 1 + 2,
            "one domain, two senders: {text}"
        );
    }
}
