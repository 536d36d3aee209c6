//! The IMAP commands reclaim answers. imap-codec decodes one complete command (its line
//! and any literals already read by the connection); this module maps what it decoded onto
//! the few shapes the session handles and refuses the rest with a reason. Commands that
//! would change the quarantine are refused by name, whatever their arguments say.

use std::num::NonZeroU32;

use imap_codec::CommandCodec;
use imap_codec::decode::{CommandDecodeError, Decoder};
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::datetime::NaiveDate;
use imap_codec::imap_types::fetch::{
    Macro, MacroOrMessageDataItemNames, MessageDataItemName, Part, Section as CodecSection,
};
use imap_codec::imap_types::flag::{StoreResponse, StoreType};
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::search::SearchKey as CodecKey;
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet as CodecSet};
use imap_codec::imap_types::status::StatusDataItemName;

use super::fetch::{FetchAtt, Section, SectionText};
use super::search::SearchKey;

/// One parsed command and its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    pub tag: String,
    pub command: Command,
}

/// What a command asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Capability,
    Noop,
    /// RFC 2177: the connection waits for DONE, telling the client of changes meanwhile.
    Idle,
    Logout,
    StartTls,
    Login {
        user: Vec<u8>,
        password: Vec<u8>,
    },
    Authenticate {
        mechanism: String,
        /// The initial response (SASL-IR), decoded from base64.
        initial: Option<Vec<u8>>,
    },
    Select {
        mailbox: String,
        read_only: bool,
    },
    List {
        reference: String,
        pattern: String,
        lsub: bool,
    },
    Status {
        mailbox: String,
        items: Vec<StatusItem>,
    },
    Subscribe {
        mailbox: String,
    },
    Check,
    Close,
    Unselect,
    Expunge,
    /// RFC 4315: expunges only those of the set that are marked \\Deleted.
    UidExpunge {
        set: SequenceSet,
    },
    Search {
        uid: bool,
        key: SearchKey,
    },
    Fetch {
        uid: bool,
        set: SequenceSet,
        atts: Vec<FetchAtt>,
    },
    Store {
        uid: bool,
        set: SequenceSet,
        mode: StoreMode,
        silent: bool,
        flags: Vec<String>,
    },
    /// A command that would change the quarantine: refused with this name.
    Refused(&'static str),
}

/// What STATUS reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusItem {
    Messages,
    Recent,
    UidNext,
    UidValidity,
    Unseen,
}

/// How STORE changes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    Replace,
    Add,
    Remove,
}

/// A sequence set: ranges of numbers, `*` standing for the largest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceSet(pub Vec<(Bound, Bound)>);

/// One end of a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Number(u32),
    Star,
}

impl SequenceSet {
    /// Whether `n` is in the set when `*` is `largest`.
    pub fn contains(&self, n: u32, largest: u32) -> bool {
        let value = |b: Bound| match b {
            Bound::Number(v) => v,
            Bound::Star => largest,
        };
        self.0.iter().any(|&(a, b)| {
            let (a, b) = (value(a), value(b));
            a.min(b) <= n && n <= a.max(b)
        })
    }
}

/// Why a command could not be parsed; answered `BAD` with the tag when one was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub tag: Option<String>,
    pub reason: String,
}

/// Parses one whole command: `tag SP command CRLF`, literals inline as `{n}` CRLF bytes.
pub fn parse(input: &[u8]) -> Result<Tagged, ParseError> {
    let (tag, name) = head(input).map_err(|reason| ParseError { tag: None, reason })?;
    let fail = |reason: String| ParseError {
        tag: Some(tag.clone()),
        reason,
    };
    if let Some(refused) = refused_by_name(&name) {
        // The rest is not read: the command is refused whatever it says.
        return Ok(Tagged {
            tag: tag.clone(),
            command: Command::Refused(refused),
        });
    }
    match CommandCodec::default().decode(input) {
        Ok((b"", decoded)) => {
            let command = command(decoded.body).map_err(fail)?;
            Ok(Tagged { tag, command })
        }
        Ok(_) => Err(fail("unexpected text after the command".into())),
        // The connection hands over whole commands, so what is missing is the client's.
        Err(CommandDecodeError::Incomplete | CommandDecodeError::LiteralFound { .. }) => {
            Err(fail("the command ends early".into()))
        }
        Err(CommandDecodeError::Failed) => Err(fail(if name.is_empty() {
            "a command name follows the tag and a space".into()
        } else if KNOWN.contains(&name.as_str()) {
            format!("{name}: the arguments do not follow RFC 3501")
        } else {
            format!("unknown command {name}")
        })),
    }
}

/// The tag of a line that could not be read whole, if it starts with one.
pub fn tag_of(input: &[u8]) -> Option<String> {
    head(input).ok().map(|(tag, _)| tag)
}

/// Whether a command whose first line is `input` is refused whatever its literal holds
/// (APPEND), so that the literal need not be asked for.
pub fn refused_before_literal(input: &[u8]) -> bool {
    head(input).is_ok_and(|(_, name)| refused_by_name(&name).is_some())
}

/// Most bytes a tag may have.
const MAX_TAG_LEN: usize = 64;

/// The commands imap-codec knows that reclaim answers, for the reason a malformed one is
/// refused with.
const KNOWN: &[&str] = &[
    "CAPABILITY",
    "NOOP",
    "IDLE",
    "LOGOUT",
    "STARTTLS",
    "LOGIN",
    "AUTHENTICATE",
    "SELECT",
    "EXAMINE",
    "LIST",
    "LSUB",
    "STATUS",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "CHECK",
    "CLOSE",
    "UNSELECT",
    "EXPUNGE",
    "SEARCH",
    "FETCH",
    "STORE",
    "UID FETCH",
    "UID SEARCH",
    "UID STORE",
    "UID EXPUNGE",
];

/// The tag and the command's name in upper case (`UID FETCH` for the UID forms; empty
/// when there is none): read before decoding so that even a malformed command is
/// answered under its own tag.
fn head(input: &[u8]) -> Result<(String, String), String> {
    let tag_len = input
        .iter()
        .position(|&b| !is_tag_char(b))
        .unwrap_or(input.len());
    if tag_len == 0 || tag_len > MAX_TAG_LEN {
        return Err("a command starts with a tag".into());
    }
    let tag = String::from_utf8_lossy(&input[..tag_len]).into_owned();
    let word = |from: usize| -> (String, usize) {
        let rest = input.get(from..).unwrap_or_default();
        let len = rest
            .iter()
            .position(|&b| !b.is_ascii_alphanumeric())
            .unwrap_or(rest.len());
        (
            String::from_utf8_lossy(&rest[..len]).to_ascii_uppercase(),
            from + len,
        )
    };
    if input.get(tag_len) != Some(&b' ') {
        return Ok((tag, String::new()));
    }
    let (mut name, end) = word(tag_len + 1);
    if name == "UID" && input.get(end) == Some(&b' ') {
        name = format!("UID {}", word(end + 1).0);
    }
    Ok((tag, name))
}

/// tag = 1*<any ASTRING-CHAR except "+"> (RFC 3501 section 9).
fn is_tag_char(b: u8) -> bool {
    (0x21..0x7f).contains(&b)
        && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b'+')
}

/// Commands that would change the quarantine, by name.
fn refused_by_name(name: &str) -> Option<&'static str> {
    Some(match name {
        "APPEND" => "APPEND",
        "COPY" | "UID COPY" => "COPY",
        "MOVE" | "UID MOVE" => "MOVE",
        "CREATE" => "CREATE",
        "DELETE" => "DELETE",
        "RENAME" => "RENAME",
        _ => return None,
    })
}

fn command(body: CommandBody<'_>) -> Result<Command, String> {
    Ok(match body {
        CommandBody::Capability => Command::Capability,
        CommandBody::Noop => Command::Noop,
        CommandBody::Idle => Command::Idle,
        CommandBody::Logout => Command::Logout,
        CommandBody::StartTLS => Command::StartTls,
        CommandBody::Check => Command::Check,
        CommandBody::Close => Command::Close,
        CommandBody::Unselect => Command::Unselect,
        CommandBody::Expunge => Command::Expunge,
        CommandBody::ExpungeUid { sequence_set } => Command::UidExpunge {
            set: sequence(sequence_set),
        },
        CommandBody::Login { username, password } => Command::Login {
            user: username.as_ref().to_vec(),
            password: password.declassify().as_ref().to_vec(),
        },
        CommandBody::Authenticate {
            mechanism,
            initial_response,
        } => Command::Authenticate {
            mechanism: mechanism.as_ref().to_ascii_uppercase(),
            initial: initial_response.map(|r| r.declassify().to_vec()),
        },
        CommandBody::Select { mailbox, .. } => Command::Select {
            mailbox: mailbox_name(mailbox)?,
            read_only: false,
        },
        CommandBody::Examine { mailbox, .. } => Command::Select {
            mailbox: mailbox_name(mailbox)?,
            read_only: true,
        },
        CommandBody::List {
            reference,
            mailbox_wildcard,
        } => list(reference, mailbox_wildcard, false)?,
        CommandBody::Lsub {
            reference,
            mailbox_wildcard,
        } => list(reference, mailbox_wildcard, true)?,
        CommandBody::Status {
            mailbox,
            item_names,
        } => Command::Status {
            mailbox: mailbox_name(mailbox)?,
            items: item_names
                .iter()
                .map(|item| {
                    Ok(match item {
                        StatusDataItemName::Messages => StatusItem::Messages,
                        StatusDataItemName::Recent => StatusItem::Recent,
                        StatusDataItemName::UidNext => StatusItem::UidNext,
                        StatusDataItemName::UidValidity => StatusItem::UidValidity,
                        StatusDataItemName::Unseen => StatusItem::Unseen,
                        other => return Err(format!("STATUS item {other:?} is not supported")),
                    })
                })
                .collect::<Result<_, String>>()?,
        },
        CommandBody::Subscribe { mailbox } | CommandBody::Unsubscribe { mailbox } => {
            Command::Subscribe {
                mailbox: mailbox_name(mailbox)?,
            }
        }
        CommandBody::Search {
            charset,
            criteria,
            uid,
        } => {
            // Compared as UTF-8; US-ASCII is a subset of it.
            if let Some(charset) = charset {
                let name = charset.as_ref().to_ascii_uppercase();
                if name != "UTF-8" && name != "US-ASCII" {
                    return Err(format!(
                        "[BADCHARSET (UTF-8 US-ASCII)] {name} is not supported"
                    ));
                }
            }
            Command::Search {
                uid,
                key: SearchKey::And(all_keys(criteria)?),
            }
        }
        CommandBody::Fetch {
            sequence_set,
            macro_or_item_names,
            uid,
            ..
        } => Command::Fetch {
            uid,
            set: sequence(sequence_set),
            atts: match macro_or_item_names {
                MacroOrMessageDataItemNames::Macro(m) => expand(m)?,
                MacroOrMessageDataItemNames::MessageDataItemNames(names) => names
                    .into_iter()
                    .map(fetch_att)
                    .collect::<Result<_, String>>()?,
            },
        },
        CommandBody::Store {
            sequence_set,
            kind,
            response,
            flags,
            uid,
            ..
        } => Command::Store {
            uid,
            set: sequence(sequence_set),
            mode: match kind {
                StoreType::Replace => StoreMode::Replace,
                StoreType::Add => StoreMode::Add,
                StoreType::Remove => StoreMode::Remove,
            },
            silent: matches!(response, StoreResponse::Silent),
            flags: flags.iter().map(ToString::to_string).collect(),
        },
        CommandBody::Append { .. } => Command::Refused("APPEND"),
        CommandBody::Copy { .. } => Command::Refused("COPY"),
        CommandBody::Move { .. } => Command::Refused("MOVE"),
        CommandBody::Create { .. } => Command::Refused("CREATE"),
        CommandBody::Delete { .. } => Command::Refused("DELETE"),
        CommandBody::Rename { .. } => Command::Refused("RENAME"),
        other => return Err(format!("{} is not supported", other.name())),
    })
}

/// LIST, or LSUB when `lsub`: every mailbox is always subscribed, so both answer alike.
fn list(reference: Mailbox<'_>, wildcard: ListMailbox<'_>, lsub: bool) -> Result<Command, String> {
    Ok(Command::List {
        reference: mailbox_name(reference)?,
        pattern: pattern(wildcard)?,
        lsub,
    })
}

/// A mailbox name; `INBOX` in any case is `INBOX`.
fn mailbox_name(mailbox: Mailbox<'_>) -> Result<String, String> {
    match mailbox {
        Mailbox::Inbox => Ok("INBOX".into()),
        Mailbox::Other(other) => String::from_utf8(other.as_ref().to_vec())
            .map_err(|_| "a mailbox name is 7-bit text".to_owned()),
    }
}

fn pattern(pattern: ListMailbox<'_>) -> Result<String, String> {
    let bytes = match &pattern {
        ListMailbox::Token(token) => token.as_ref(),
        ListMailbox::String(string) => string.as_ref(),
    };
    String::from_utf8(bytes.to_vec()).map_err(|_| "a mailbox pattern is 7-bit text".to_owned())
}

fn sequence(set: CodecSet) -> SequenceSet {
    let bound = |b: &SeqOrUid| match b {
        SeqOrUid::Value(n) => Bound::Number(n.get()),
        SeqOrUid::Asterisk => Bound::Star,
    };
    SequenceSet(
        set.0
            .as_ref()
            .iter()
            .map(|s| match s {
                Sequence::Single(a) => (bound(a), bound(a)),
                Sequence::Range(a, b) => (bound(a), bound(b)),
            })
            .collect(),
    )
}

fn all_keys(keys: Vec1<CodecKey<'_>>) -> Result<Vec<SearchKey>, String> {
    keys.into_inner().into_iter().map(search_key).collect()
}

fn search_key(key: CodecKey<'_>) -> Result<SearchKey, String> {
    let text = |s: &[u8]| String::from_utf8_lossy(s).into_owned();
    Ok(match key {
        CodecKey::And(keys) => SearchKey::And(all_keys(keys)?),
        CodecKey::Or(a, b) => SearchKey::Or(Box::new(search_key(*a)?), Box::new(search_key(*b)?)),
        CodecKey::Not(key) => SearchKey::Not(Box::new(search_key(*key)?)),
        CodecKey::SequenceSet(set) => SearchKey::Sequence(sequence(set)),
        CodecKey::Uid(set) => SearchKey::Uid(sequence(set)),
        CodecKey::All => SearchKey::All,
        CodecKey::Seen => SearchKey::Seen(true),
        CodecKey::Unseen => SearchKey::Seen(false),
        CodecKey::Flagged => SearchKey::Flagged(true),
        CodecKey::Unflagged => SearchKey::Flagged(false),
        CodecKey::Deleted => SearchKey::Deleted(true),
        CodecKey::Undeleted => SearchKey::Deleted(false),
        // Nothing is answered, drafted or recent here, and no keyword can be set.
        CodecKey::New | CodecKey::Recent | CodecKey::Answered | CodecKey::Draft => SearchKey::Never,
        CodecKey::Keyword(_) => SearchKey::Never,
        CodecKey::Old | CodecKey::Unanswered | CodecKey::Undraft | CodecKey::Unkeyword(_) => {
            SearchKey::All
        }
        CodecKey::From(s) => SearchKey::From(text(s.as_ref())),
        CodecKey::To(s) => SearchKey::To(text(s.as_ref())),
        CodecKey::Subject(s) => SearchKey::Subject(text(s.as_ref())),
        CodecKey::Text(s) => SearchKey::Text(text(s.as_ref())),
        CodecKey::Body(s) => SearchKey::Body(text(s.as_ref())),
        // The date a message was sent is not in the index: its arrival stands in for it.
        CodecKey::Since(d) | CodecKey::SentSince(d) => SearchKey::Since(days(&d)),
        CodecKey::Before(d) | CodecKey::SentBefore(d) => SearchKey::Before(days(&d)),
        CodecKey::On(d) | CodecKey::SentOn(d) => SearchKey::On(days(&d)),
        CodecKey::Larger(n) => SearchKey::Larger(u64::from(n)),
        CodecKey::Smaller(n) => SearchKey::Smaller(u64::from(n)),
        CodecKey::Bcc(_) => return Err("search key BCC is not supported".into()),
        CodecKey::Cc(_) => return Err("search key CC is not supported".into()),
        CodecKey::Header(..) => return Err("search key HEADER is not supported".into()),
    })
}

/// An IMAP date as days since the epoch.
fn days(date: &NaiveDate) -> i64 {
    /// `num_days_from_ce` of 1970-01-01.
    const EPOCH_FROM_CE: i64 = 719_163;
    i64::from(chrono::Datelike::num_days_from_ce(date.as_ref())) - EPOCH_FROM_CE
}

fn expand(m: Macro) -> Result<Vec<FetchAtt>, String> {
    let mut atts = vec![
        FetchAtt::Flags,
        FetchAtt::InternalDate,
        FetchAtt::Rfc822Size,
    ];
    match m {
        Macro::Fast => {}
        Macro::All => atts.push(FetchAtt::Envelope),
        Macro::Full => atts.extend([FetchAtt::Envelope, FetchAtt::Body]),
        other => return Err(format!("FETCH {other:?} is not supported")),
    }
    Ok(atts)
}

/// Most part numbers a section may name (`1.2.3…`).
const MAX_SECTION_DEPTH: usize = 32;
/// Most header field names a HEADER.FIELDS list may hold.
const MAX_HEADER_FIELDS: usize = 100;

fn fetch_att(name: MessageDataItemName<'_>) -> Result<FetchAtt, String> {
    Ok(match name {
        MessageDataItemName::Flags => FetchAtt::Flags,
        MessageDataItemName::Uid => FetchAtt::Uid,
        MessageDataItemName::InternalDate => FetchAtt::InternalDate,
        MessageDataItemName::Rfc822Size => FetchAtt::Rfc822Size,
        MessageDataItemName::Envelope => FetchAtt::Envelope,
        MessageDataItemName::BodyStructure => FetchAtt::BodyStructure,
        MessageDataItemName::Body => FetchAtt::Body,
        MessageDataItemName::Rfc822 => FetchAtt::Rfc822,
        MessageDataItemName::Rfc822Header => FetchAtt::Rfc822Header,
        MessageDataItemName::Rfc822Text => FetchAtt::Rfc822Text,
        MessageDataItemName::BodyExt {
            section,
            partial,
            peek,
        } => FetchAtt::Section {
            peek,
            section: match section {
                None => Section {
                    part: Vec::new(),
                    text: None,
                },
                Some(section) => self::section(section)?,
            },
            partial: partial.map(|(start, len): (u32, NonZeroU32)| (start, len.get())),
        },
        other => return Err(format!("FETCH item {other:?} is not supported")),
    })
}

fn section(section: CodecSection<'_>) -> Result<Section, String> {
    let numbers = |part: Option<Part>| -> Result<Vec<u32>, String> {
        let numbers: Vec<u32> = part
            .map(|p| p.0.as_ref().iter().map(|n| n.get()).collect())
            .unwrap_or_default();
        if numbers.len() > MAX_SECTION_DEPTH {
            return Err("a section names too many part numbers".into());
        }
        Ok(numbers)
    };
    let fields = |names: Vec1<_>, not: bool| -> Result<SectionText, String> {
        let names: Vec<imap_codec::imap_types::core::AString<'_>> = names.into_inner();
        if names.len() > MAX_HEADER_FIELDS {
            return Err("too many header field names".into());
        }
        Ok(SectionText::HeaderFields {
            not,
            names: names
                .iter()
                .map(|n| String::from_utf8_lossy(n.as_ref()).to_ascii_uppercase())
                .collect(),
        })
    };
    let (part, text) = match section {
        CodecSection::Part(part) => (numbers(Some(part))?, None),
        CodecSection::Header(part) => (numbers(part)?, Some(SectionText::Header)),
        CodecSection::HeaderFields(part, names) => (numbers(part)?, Some(fields(names, false)?)),
        CodecSection::HeaderFieldsNot(part, names) => (numbers(part)?, Some(fields(names, true)?)),
        CodecSection::Text(part) => (numbers(part)?, Some(SectionText::Text)),
        CodecSection::Mime(part) => (numbers(Some(part))?, Some(SectionText::Mime)),
    };
    Ok(Section { part, text })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Command {
        parse(line.as_bytes())
            .unwrap_or_else(|e| panic!("{line}: {e:?}"))
            .command
    }

    fn reason(line: &str) -> String {
        let e = parse(line.as_bytes()).expect_err(line);
        assert_eq!(
            e.tag.as_deref(),
            Some("a"),
            "{line}: answered under its tag"
        );
        e.reason
    }

    #[test]
    fn commands_parse() {
        assert_eq!(
            ok("a1 LOGIN jan \"pa ss\"\r\n"),
            Command::Login {
                user: b"jan".to_vec(),
                password: b"pa ss".to_vec()
            }
        );
        assert_eq!(
            ok("a LOGIN {3}\r\njan {2}\r\npw\r\n"),
            Command::Login {
                user: b"jan".to_vec(),
                password: b"pw".to_vec()
            }
        );
        assert_eq!(
            ok("a AUTHENTICATE plain AGphbgBwdw==\r\n"),
            Command::Authenticate {
                mechanism: "PLAIN".into(),
                initial: Some(b"\0jan\0pw".to_vec())
            }
        );
        assert_eq!(
            ok("b select inbox\r\n"),
            Command::Select {
                mailbox: "INBOX".into(),
                read_only: false
            }
        );
        assert_eq!(
            ok("b EXAMINE old.example\n"),
            Command::Select {
                mailbox: "old.example".into(),
                read_only: true
            }
        );
        let Command::Fetch { uid, atts, .. } =
            ok("c UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From Subject)]<0.100>)\r\n")
        else {
            panic!("a fetch")
        };
        assert!(uid);
        assert_eq!(
            atts,
            [
                FetchAtt::Flags,
                FetchAtt::Section {
                    peek: true,
                    section: Section {
                        part: vec![],
                        text: Some(SectionText::HeaderFields {
                            not: false,
                            names: vec!["FROM".into(), "SUBJECT".into()]
                        })
                    },
                    partial: Some((0, 100))
                }
            ]
        );
        let Command::Fetch { atts, .. } = ok("c FETCH 1 (BODY[1.2.MIME] BODY[2]<5.9>)\r\n") else {
            panic!("a fetch")
        };
        assert!(matches!(
            &atts[0],
            FetchAtt::Section { peek: false, section: Section { part, text: Some(SectionText::Mime) }, .. }
                if part == &[1, 2]
        ));
        assert!(matches!(
            &atts[1],
            FetchAtt::Section { section: Section { part, text: None }, partial: Some((5, 9)), .. }
                if part == &[2]
        ));
        let Command::Fetch { atts, .. } = ok("c FETCH 1 FAST\r\n") else {
            panic!("a fetch")
        };
        assert_eq!(
            atts,
            [
                FetchAtt::Flags,
                FetchAtt::InternalDate,
                FetchAtt::Rfc822Size
            ]
        );
        assert!(
            matches!(ok("d LIST \"\" *\r\n"), Command::List { ref pattern, lsub: false, .. } if pattern == "*")
        );
        assert!(
            matches!(ok("d LSUB \"\" %\r\n"), Command::List { ref pattern, lsub: true, .. } if pattern == "%")
        );
        assert_eq!(
            ok("d STATUS INBOX (MESSAGES UIDNEXT)\r\n"),
            Command::Status {
                mailbox: "INBOX".into(),
                items: vec![StatusItem::Messages, StatusItem::UidNext]
            }
        );
        assert!(matches!(
            ok("e STORE 1,3:5 +FLAGS.SILENT (\\Seen)\r\n"),
            Command::Store { mode: StoreMode::Add, silent: true, ref flags, .. } if flags == &["\\Seen"]
        ));
        assert!(matches!(
            ok("e UID STORE 7 -FLAGS \\Deleted\r\n"),
            Command::Store { uid: true, mode: StoreMode::Remove, silent: false, ref flags, .. }
                if flags == &["\\Deleted"]
        ));
        assert_eq!(
            ok("f SEARCH CHARSET UTF-8 OR FROM a SUBJECT \"b c\" UNDELETED\r\n"),
            Command::Search {
                uid: false,
                key: SearchKey::And(vec![
                    SearchKey::Or(
                        Box::new(SearchKey::From("a".into())),
                        Box::new(SearchKey::Subject("b c".into()))
                    ),
                    SearchKey::Deleted(false)
                ])
            }
        );
        assert_eq!(ok("g APPEND INBOX {10}\r\n"), Command::Refused("APPEND"));
        assert_eq!(ok("g uid move 1 Trash\r\n"), Command::Refused("MOVE"));
        assert_eq!(ok("g COPY 1 Trash\r\n"), Command::Refused("COPY"));
        assert_eq!(ok("h idle\r\n"), Command::Idle);
        assert_eq!(ok("h STARTTLS\r\n"), Command::StartTls);
        assert!(matches!(
            ok("i UID EXPUNGE 3:5,9\r\n"),
            Command::UidExpunge { ref set } if set.contains(4, 9) && !set.contains(6, 9)
        ));
        assert!(parse(b"h IDLE now\r\n").is_err());
    }

    #[test]
    fn literals_and_refusals_before_them() {
        assert!(refused_before_literal(b"a APPEND INBOX {10}\r\n"));
        assert!(refused_before_literal(b"a uid copy 1 {5}\r\n"));
        assert!(!refused_before_literal(b"a LOGIN {3}\r\n"));
        assert_eq!(tag_of(b"a.1 LOGIN {3}\r\n").as_deref(), Some("a.1"));
        assert_eq!(tag_of(b"+x LOGIN\r\n"), None);
        assert_eq!(reason("a LOGIN {9}\r\njan\r\n"), "the command ends early");
        assert_eq!(reason("a LOGIN {3}\r\n"), "the command ends early");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for line in [
            "",
            "\r\n",
            "a",
            "a ",
            "a FETCH",
            "a FETCH 1 (",
            "a FETCH 0 FLAGS",
            "a LOGIN {99}\r\nx",
            "a LOGIN {18446744073709551615}\r\n",
            "a SEARCH ((((",
            "a STATUS INBOX (",
            "a FETCH 1 BODY[1.",
            "a FETCH 1 BODY[]<5.",
            "a FETCH 1 BODY[]<5.0>\r\n",
            "a SELECT \"unterminated",
            "* FOO",
            "a UID",
            "a STORE 1 FLAGS (",
            "a SEARCH SINCE 99-Foo-1",
            "a FETCH 1:* BODY[HEADER.FIELDS (]",
            "a NOOP\r\nb NOOP\r\n",
        ] {
            assert!(parse(line.as_bytes()).is_err(), "{line:?} parses");
        }
        let deep = format!("a SEARCH {}ALL{}\r\n", "(".repeat(100), ")".repeat(100));
        assert!(parse(deep.as_bytes()).is_err());
        let long_tag = format!("{} NOOP\r\n", "t".repeat(65));
        assert_eq!(parse(long_tag.as_bytes()).expect_err("long tag").tag, None);
    }

    #[test]
    fn reasons_name_the_command() {
        assert_eq!(reason("a XYZZY\r\n"), "unknown command XYZZY");
        assert_eq!(reason("a UID FROB 1\r\n"), "unknown command UID FROB");
        assert_eq!(
            reason("a FETCH x FLAGS\r\n"),
            "FETCH: the arguments do not follow RFC 3501"
        );
        assert_eq!(
            reason("a\r\n"),
            "a command name follows the tag and a space"
        );
        assert!(reason("a SEARCH CHARSET KOI8-R ALL\r\n").starts_with("[BADCHARSET"));
        assert_eq!(
            reason("a SEARCH HEADER X-Spam yes\r\n"),
            "search key HEADER is not supported"
        );
        assert!(reason("a GETQUOTAROOT INBOX\r\n").contains("not supported"));
        let fields = (0..=MAX_HEADER_FIELDS)
            .map(|i| format!("X-{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(
            reason(&format!("a FETCH 1 BODY[HEADER.FIELDS ({fields})]\r\n")),
            "too many header field names"
        );
    }

    #[test]
    fn sets_and_dates() {
        let Command::Fetch { set, .. } = ok("a FETCH 2:4,7:* FLAGS\r\n") else {
            panic!()
        };
        assert!(set.contains(3, 10) && set.contains(9, 10) && !set.contains(5, 10));
        let day = |line: &str| match ok(line) {
            Command::Search {
                key: SearchKey::And(keys),
                ..
            } => keys,
            other => panic!("{other:?}"),
        };
        assert_eq!(day("a SEARCH SINCE 1-Jan-1970\r\n"), [SearchKey::Since(0)]);
        assert_eq!(
            day("a SEARCH BEFORE 2-jan-1970\r\n"),
            [SearchKey::Before(1)]
        );
        assert_eq!(
            day("a SEARCH SENTON \"1-Feb-2026\"\r\n"),
            [SearchKey::On(20_485)]
        );
    }
}
