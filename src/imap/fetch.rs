//! FETCH items and how each is rendered for one message: what comes from the summary
//! (flags, UID, arrival time, size) and what needs the decrypted message (envelope,
//! structure, sections).

use super::mime::{Content, Part, envelope, fields, split_header, structure};
use super::response::{literal, nstring};

/// One FETCH item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAtt {
    Flags,
    Uid,
    InternalDate,
    Rfc822Size,
    Envelope,
    BodyStructure,
    /// BODY without a section: the structure without extension data.
    Body,
    Rfc822,
    Rfc822Header,
    Rfc822Text,
    Section {
        peek: bool,
        section: Section,
        partial: Option<(u32, u32)>,
    },
}

/// Month names as IMAP dates spell them.
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A BODY[…] section: part numbers and what of that part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub part: Vec<u32>,
    pub text: Option<SectionText>,
}

/// The part of a section after its numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    Header,
    HeaderFields { not: bool, names: Vec<String> },
    Text,
    Mime,
}

impl FetchAtt {
    /// Whether rendering it needs the decrypted message.
    pub fn needs_plaintext(&self) -> bool {
        !matches!(
            self,
            FetchAtt::Flags | FetchAtt::Uid | FetchAtt::InternalDate | FetchAtt::Rfc822Size
        )
    }

    /// Whether fetching it marks the message \Seen (RFC 3501 6.4.5).
    pub fn sets_seen(&self) -> bool {
        matches!(
            self,
            FetchAtt::Rfc822 | FetchAtt::Rfc822Text | FetchAtt::Section { peek: false, .. }
        )
    }
}

/// What one message's FETCH response is made of.
pub struct Item<'a> {
    pub uid: u32,
    pub flags: &'a str,
    pub received_unix: i64,
    pub size: u64,
    pub plain: Option<&'a [u8]>,
}

/// Renders one item into `out` (`NAME value`). A needed plaintext that is missing is a
/// bug of the caller, rendered as NIL rather than a panic.
pub fn render(out: &mut Vec<u8>, att: &FetchAtt, item: &Item<'_>) {
    let plain = item.plain.unwrap_or_default();
    match att {
        FetchAtt::Flags => out.extend_from_slice(format!("FLAGS ({})", item.flags).as_bytes()),
        FetchAtt::Uid => out.extend_from_slice(format!("UID {}", item.uid).as_bytes()),
        FetchAtt::InternalDate => out.extend_from_slice(
            format!("INTERNALDATE \"{}\"", internal_date(item.received_unix)).as_bytes(),
        ),
        FetchAtt::Rfc822Size => {
            out.extend_from_slice(format!("RFC822.SIZE {}", item.size).as_bytes())
        }
        FetchAtt::Envelope => {
            out.extend_from_slice(b"ENVELOPE ");
            envelope(out, split_header(plain).0);
        }
        FetchAtt::BodyStructure => {
            out.extend_from_slice(b"BODYSTRUCTURE ");
            structure(out, &Part::parse(plain), true);
        }
        FetchAtt::Body => {
            out.extend_from_slice(b"BODY ");
            structure(out, &Part::parse(plain), false);
        }
        FetchAtt::Rfc822 => {
            out.extend_from_slice(b"RFC822 ");
            literal(out, plain);
        }
        FetchAtt::Rfc822Header => {
            out.extend_from_slice(b"RFC822.HEADER ");
            literal(out, split_header(plain).0);
        }
        FetchAtt::Rfc822Text => {
            out.extend_from_slice(b"RFC822.TEXT ");
            literal(out, split_header(plain).1);
        }
        FetchAtt::Section {
            section, partial, ..
        } => {
            out.extend_from_slice(b"BODY[");
            out.extend_from_slice(section_name(section).as_bytes());
            out.push(b']');
            let tree = Part::parse(plain);
            let bytes = section_bytes(&tree, section);
            match (bytes, partial) {
                (Some(bytes), Some((start, len))) => {
                    out.extend_from_slice(format!("<{start}> ").as_bytes());
                    let start = (*start as usize).min(bytes.len());
                    let end = start.saturating_add(*len as usize).min(bytes.len());
                    literal(out, &bytes[start..end]);
                }
                (Some(bytes), None) => {
                    out.push(b' ');
                    literal(out, &bytes);
                }
                (None, _) => {
                    out.push(b' ');
                    nstring(out, None);
                }
            }
        }
    }
}

/// The section as the response names it (upper case, field names as asked).
fn section_name(section: &Section) -> String {
    let mut name: Vec<String> = section.part.iter().map(u32::to_string).collect();
    match &section.text {
        None => {}
        Some(SectionText::Header) => name.push("HEADER".into()),
        Some(SectionText::Text) => name.push("TEXT".into()),
        Some(SectionText::Mime) => name.push("MIME".into()),
        Some(SectionText::HeaderFields { not, names }) => {
            let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
            let word = if *not {
                "HEADER.FIELDS.NOT"
            } else {
                "HEADER.FIELDS"
            };
            name.push(format!("{word} ({})", quoted.join(" ")));
        }
    }
    name.join(".")
}

/// The bytes a section names; `None` when the message has no such part.
fn section_bytes(tree: &Part<'_>, section: &Section) -> Option<Vec<u8>> {
    let part = tree.find(&section.part)?;
    // HEADER, TEXT and HEADER.FIELDS of a part are those of the message it holds.
    let message = if section.part.is_empty() {
        Some(part)
    } else if let Content::Message(inner) = &part.content {
        Some(&**inner)
    } else {
        None
    };
    Some(match &section.text {
        None if section.part.is_empty() => {
            let mut whole = part.header.to_vec();
            whole.extend_from_slice(part.body);
            whole
        }
        None => part.body.to_vec(),
        Some(SectionText::Mime) => part.header.to_vec(),
        Some(SectionText::Header) => message?.header.to_vec(),
        Some(SectionText::Text) => message?.body.to_vec(),
        Some(SectionText::HeaderFields { not, names }) => {
            let mut out = Vec::new();
            for (name, field) in fields(message?.header) {
                let listed = names.iter().any(|n| n.eq_ignore_ascii_case(name));
                if listed != *not {
                    out.extend_from_slice(field);
                }
            }
            out.extend_from_slice(b"\r\n");
            out
        }
    })
}

/// An INTERNALDATE: `03-Dec-2026 10:20:00 +0000`.
pub fn internal_date(unix: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:02}-{}-{:04} {:02}:{:02}:{:02} +0000",
        t.day(),
        MONTHS[usize::from(u8::from(t.month())) - 1],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &[u8] =
        b"Return-Path: <a@p.example>\r\nFrom: a@p.example\r\nSubject: hi\r\n\r\nhello\r\nworld\r\n";

    fn fetch(att: FetchAtt) -> String {
        let item = Item {
            uid: 7,
            flags: "\\Seen",
            received_unix: 0,
            size: MESSAGE.len() as u64,
            plain: Some(MESSAGE),
        };
        let mut out = Vec::new();
        render(&mut out, &att, &item);
        String::from_utf8(out).expect("ascii")
    }

    fn section(part: &[u32], text: Option<SectionText>, partial: Option<(u32, u32)>) -> FetchAtt {
        FetchAtt::Section {
            peek: true,
            section: Section {
                part: part.to_vec(),
                text,
            },
            partial,
        }
    }

    #[test]
    fn sections() {
        assert_eq!(
            fetch(FetchAtt::InternalDate),
            "INTERNALDATE \"01-Jan-1970 00:00:00 +0000\""
        );
        let whole = fetch(section(&[], None, None));
        assert_eq!(
            whole.as_bytes(),
            [
                format!("BODY[] {{{}}}\r\n", MESSAGE.len()).as_bytes(),
                MESSAGE
            ]
            .concat()
        );
        assert_eq!(
            fetch(section(&[], Some(SectionText::Text), None)),
            "BODY[TEXT] {14}\r\nhello\r\nworld\r\n"
        );
        assert_eq!(
            fetch(section(&[], None, Some((1, 4)))),
            "BODY[]<1> {4}\r\netur"
        );
        assert_eq!(
            fetch(section(&[], None, Some((500, 4)))),
            "BODY[]<500> {0}\r\n"
        );
        assert_eq!(
            fetch(section(
                &[],
                Some(SectionText::HeaderFields {
                    not: false,
                    names: vec!["SUBJECT".into()]
                }),
                None
            )),
            "BODY[HEADER.FIELDS (\"SUBJECT\")] {15}\r\nSubject: hi\r\n\r\n"
        );
        assert_eq!(
            fetch(section(&[1], None, None)),
            "BODY[1] {14}\r\nhello\r\nworld\r\n"
        );
        assert_eq!(fetch(section(&[2], None, None)), "BODY[2] NIL");
    }
}
