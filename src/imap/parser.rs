//! The IMAP4rev1 commands reclaim answers, parsed from one complete command (its line and
//! any literals already read by the connection): a hand-written parser for that subset
//! that never panics and refuses everything else with a reason.

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
    let mut c = Cursor::new(input);
    let tag = c.tag().map_err(|reason| ParseError { tag: None, reason })?;
    let command = parse_command(&mut c).map_err(|reason| ParseError {
        tag: Some(tag.clone()),
        reason,
    })?;
    Ok(Tagged { tag, command })
}

/// The tag of a line that could not be read whole, if it starts with one.
pub fn tag_of(input: &[u8]) -> Option<String> {
    Cursor::new(input).tag().ok()
}

/// Whether a command whose first line is `input` is refused whatever its literal holds
/// (APPEND), so that the literal need not be asked for.
pub fn refused_before_literal(input: &[u8]) -> bool {
    parse(input).is_ok_and(|t| matches!(t.command, Command::Refused(_)))
}

fn parse_command(c: &mut Cursor<'_>) -> Result<Command, String> {
    c.sp()?;
    let name = c.atom()?.to_ascii_uppercase();
    let command = match name.as_str() {
        "CAPABILITY" => Command::Capability,
        "NOOP" => Command::Noop,
        "IDLE" => Command::Idle,
        "LOGOUT" => Command::Logout,
        "STARTTLS" => Command::StartTls,
        "CHECK" => Command::Check,
        "CLOSE" => Command::Close,
        "UNSELECT" => Command::Unselect,
        "EXPUNGE" => Command::Expunge,
        "LOGIN" => {
            c.sp()?;
            let user = c.astring()?;
            c.sp()?;
            let password = c.astring()?;
            Command::Login { user, password }
        }
        "AUTHENTICATE" => {
            c.sp()?;
            let mechanism = c.atom()?.to_ascii_uppercase();
            let initial = if c.peek() == Some(b' ') {
                c.sp()?;
                Some(c.take_while(|b| b != b'\r' && b != b'\n').to_vec())
            } else {
                None
            };
            Command::Authenticate { mechanism, initial }
        }
        "SELECT" | "EXAMINE" => {
            c.sp()?;
            let mailbox = c.mailbox()?;
            Command::Select {
                mailbox,
                read_only: name == "EXAMINE",
            }
        }
        "LIST" | "LSUB" => {
            c.sp()?;
            let reference = c.mailbox()?;
            c.sp()?;
            let pattern = c.list_mailbox()?;
            Command::List {
                reference,
                pattern,
                lsub: name == "LSUB",
            }
        }
        "STATUS" => {
            c.sp()?;
            let mailbox = c.mailbox()?;
            c.sp()?;
            c.expect(b'(')?;
            let mut items = Vec::new();
            loop {
                let item = match c.atom()?.to_ascii_uppercase().as_str() {
                    "MESSAGES" => StatusItem::Messages,
                    "RECENT" => StatusItem::Recent,
                    "UIDNEXT" => StatusItem::UidNext,
                    "UIDVALIDITY" => StatusItem::UidValidity,
                    "UNSEEN" => StatusItem::Unseen,
                    other => return Err(format!("unknown STATUS item {other}")),
                };
                items.push(item);
                if c.peek() == Some(b')') {
                    c.pos += 1;
                    break;
                }
                c.sp()?;
            }
            Command::Status { mailbox, items }
        }
        "SUBSCRIBE" | "UNSUBSCRIBE" => {
            c.sp()?;
            Command::Subscribe {
                mailbox: c.mailbox()?,
            }
        }
        "SEARCH" => search(c, false)?,
        "FETCH" => fetch(c, false)?,
        "STORE" => store(c, false)?,
        "UID" => {
            c.sp()?;
            let sub = c.atom()?.to_ascii_uppercase();
            match sub.as_str() {
                "SEARCH" => search(c, true)?,
                "FETCH" => fetch(c, true)?,
                "STORE" => store(c, true)?,
                "COPY" | "MOVE" | "EXPUNGE" => {
                    return Ok(Command::Refused(refused_name(&sub)));
                }
                other => return Err(format!("unknown UID command {other}")),
            }
        }
        "APPEND" | "COPY" | "MOVE" | "CREATE" | "DELETE" | "RENAME" => {
            // The rest is not read: the command is refused whatever it says.
            return Ok(Command::Refused(refused_name(&name)));
        }
        other => return Err(format!("unknown command {other}")),
    };
    c.end()?;
    Ok(command)
}

fn refused_name(name: &str) -> &'static str {
    match name {
        "APPEND" => "APPEND",
        "COPY" => "COPY",
        "MOVE" => "MOVE",
        "CREATE" => "CREATE",
        "DELETE" => "DELETE",
        "RENAME" => "RENAME",
        _ => "EXPUNGE",
    }
}

fn search(c: &mut Cursor<'_>, uid: bool) -> Result<Command, String> {
    c.sp()?;
    // CHARSET is accepted for US-ASCII and UTF-8, the two reclaim compares in.
    let save = c.pos;
    if c.atom().is_ok_and(|a| a.eq_ignore_ascii_case("CHARSET")) {
        c.sp()?;
        let charset = String::from_utf8_lossy(&c.astring()?).to_ascii_uppercase();
        if charset != "UTF-8" && charset != "US-ASCII" {
            return Err(format!(
                "[BADCHARSET (UTF-8 US-ASCII)] {charset} is not supported"
            ));
        }
        c.sp()?;
    } else {
        c.pos = save;
    }
    let mut keys = vec![search_key(c, 0)?];
    while c.peek() == Some(b' ') {
        c.sp()?;
        keys.push(search_key(c, 0)?);
    }
    Ok(Command::Search {
        uid,
        key: SearchKey::And(keys),
    })
}

/// Deepest nesting of NOT, OR and parentheses a search may use.
const MAX_SEARCH_DEPTH: usize = 32;

fn search_key(c: &mut Cursor<'_>, depth: usize) -> Result<SearchKey, String> {
    if depth > MAX_SEARCH_DEPTH {
        return Err("search nested too deeply".into());
    }
    if c.peek() == Some(b'(') {
        c.pos += 1;
        let mut keys = vec![search_key(c, depth + 1)?];
        while c.peek() == Some(b' ') {
            c.sp()?;
            keys.push(search_key(c, depth + 1)?);
        }
        c.expect(b')')?;
        return Ok(SearchKey::And(keys));
    }
    if c.peek().is_some_and(|b| b.is_ascii_digit() || b == b'*') {
        return Ok(SearchKey::Sequence(c.sequence_set()?));
    }
    let word = c.atom()?.to_ascii_uppercase();
    let text = |c: &mut Cursor<'_>| -> Result<String, String> {
        c.sp()?;
        Ok(String::from_utf8_lossy(&c.astring()?).into_owned())
    };
    Ok(match word.as_str() {
        "ALL" => SearchKey::All,
        "SEEN" => SearchKey::Seen(true),
        "UNSEEN" => SearchKey::Seen(false),
        "FLAGGED" => SearchKey::Flagged(true),
        "UNFLAGGED" => SearchKey::Flagged(false),
        "NEW" | "RECENT" | "ANSWERED" | "DELETED" | "DRAFT" => SearchKey::Never,
        "OLD" | "UNANSWERED" | "UNDELETED" | "UNDRAFT" => SearchKey::All,
        "FROM" => SearchKey::From(text(c)?),
        "TO" => SearchKey::To(text(c)?),
        "SUBJECT" => SearchKey::Subject(text(c)?),
        "TEXT" => SearchKey::Text(text(c)?),
        "BODY" => SearchKey::Body(text(c)?),
        "SINCE" | "BEFORE" | "ON" | "SENTSINCE" | "SENTBEFORE" | "SENTON" => {
            c.sp()?;
            let day = parse_date(&c.astring()?)?;
            match word.trim_start_matches("SENT") {
                "SINCE" => SearchKey::Since(day),
                "BEFORE" => SearchKey::Before(day),
                _ => SearchKey::On(day),
            }
        }
        "LARGER" | "SMALLER" => {
            c.sp()?;
            let n = c.number()?;
            if word == "LARGER" {
                SearchKey::Larger(u64::from(n))
            } else {
                SearchKey::Smaller(u64::from(n))
            }
        }
        "UID" => {
            c.sp()?;
            SearchKey::Uid(c.sequence_set()?)
        }
        "NOT" => {
            c.sp()?;
            SearchKey::Not(Box::new(search_key(c, depth + 1)?))
        }
        "OR" => {
            c.sp()?;
            let a = search_key(c, depth + 1)?;
            c.sp()?;
            let b = search_key(c, depth + 1)?;
            SearchKey::Or(Box::new(a), Box::new(b))
        }
        other => return Err(format!("search key {other} is not supported")),
    })
}

/// An IMAP date (`1-Feb-2026`) as days since the epoch.
fn parse_date(text: &[u8]) -> Result<i64, String> {
    let text = String::from_utf8_lossy(text);
    let bad = || format!("{text:?} is not a date like 1-Feb-2026");
    let mut parts = text.split('-');
    let (Some(d), Some(m), Some(y), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let day: u8 = d.parse().map_err(|_| bad())?;
    let year: i32 = y.parse().map_err(|_| bad())?;
    let month = MONTHS
        .iter()
        .position(|name| name.eq_ignore_ascii_case(m))
        .and_then(|i| time::Month::try_from(u8::try_from(i + 1).ok()?).ok())
        .ok_or_else(bad)?;
    let date = time::Date::from_calendar_date(year, month, day).map_err(|_| bad())?;
    Ok(date
        .midnight()
        .assume_utc()
        .unix_timestamp()
        .div_euclid(86_400))
}

/// Month names as IMAP dates spell them.
pub const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn fetch(c: &mut Cursor<'_>, uid: bool) -> Result<Command, String> {
    c.sp()?;
    let set = c.sequence_set()?;
    c.sp()?;
    let mut atts = Vec::new();
    if c.peek() == Some(b'(') {
        c.pos += 1;
        loop {
            atts.push(fetch_att(c)?);
            if c.peek() == Some(b')') {
                c.pos += 1;
                break;
            }
            c.sp()?;
        }
    } else {
        let save = c.pos;
        match c.atom()?.to_ascii_uppercase().as_str() {
            "ALL" => atts.extend([
                FetchAtt::Flags,
                FetchAtt::InternalDate,
                FetchAtt::Rfc822Size,
                FetchAtt::Envelope,
            ]),
            "FAST" => atts.extend([
                FetchAtt::Flags,
                FetchAtt::InternalDate,
                FetchAtt::Rfc822Size,
            ]),
            "FULL" => atts.extend([
                FetchAtt::Flags,
                FetchAtt::InternalDate,
                FetchAtt::Rfc822Size,
                FetchAtt::Envelope,
                FetchAtt::Body,
            ]),
            _ => {
                c.pos = save;
                atts.push(fetch_att(c)?);
            }
        }
    }
    Ok(Command::Fetch { uid, set, atts })
}

fn fetch_att(c: &mut Cursor<'_>) -> Result<FetchAtt, String> {
    let word = c
        .take_while(|b| b.is_ascii_alphanumeric() || b == b'.')
        .to_ascii_uppercase();
    let word = String::from_utf8_lossy(&word).into_owned();
    Ok(match word.as_str() {
        "FLAGS" => FetchAtt::Flags,
        "UID" => FetchAtt::Uid,
        "INTERNALDATE" => FetchAtt::InternalDate,
        "RFC822.SIZE" => FetchAtt::Rfc822Size,
        "ENVELOPE" => FetchAtt::Envelope,
        "BODYSTRUCTURE" => FetchAtt::BodyStructure,
        "RFC822" => FetchAtt::Rfc822,
        "RFC822.HEADER" => FetchAtt::Rfc822Header,
        "RFC822.TEXT" => FetchAtt::Rfc822Text,
        "BODY" if c.peek() != Some(b'[') => FetchAtt::Body,
        "BODY" | "BODY.PEEK" => {
            let section = section(c)?;
            let partial = if c.peek() == Some(b'<') {
                c.pos += 1;
                let start = c.number()?;
                c.expect(b'.')?;
                let len = c.number()?;
                if len == 0 {
                    return Err("a partial fetch of 0 octets".into());
                }
                c.expect(b'>')?;
                Some((start, len))
            } else {
                None
            };
            FetchAtt::Section {
                peek: word == "BODY.PEEK",
                section,
                partial,
            }
        }
        "" => return Err("expected a FETCH item".into()),
        other => return Err(format!("FETCH item {other} is not supported")),
    })
}

/// Most part numbers a section may name (`1.2.3…`).
const MAX_SECTION_DEPTH: usize = 32;
/// Most header field names a HEADER.FIELDS list may hold.
const MAX_HEADER_FIELDS: usize = 100;

fn section(c: &mut Cursor<'_>) -> Result<Section, String> {
    c.expect(b'[')?;
    let mut part = Vec::new();
    let mut text = None;
    while c.peek().is_some_and(|b| b.is_ascii_digit()) {
        let n = c.number()?;
        if n == 0 || part.len() >= MAX_SECTION_DEPTH {
            return Err("bad section part number".into());
        }
        part.push(n);
        if c.peek() == Some(b'.') {
            c.pos += 1;
        } else {
            break;
        }
    }
    if c.peek() != Some(b']') {
        let word = c
            .take_while(|b| b.is_ascii_alphanumeric() || b == b'.')
            .to_ascii_uppercase();
        text = Some(match word.as_slice() {
            b"HEADER" => SectionText::Header,
            b"TEXT" => SectionText::Text,
            b"MIME" if !part.is_empty() => SectionText::Mime,
            b"HEADER.FIELDS" | b"HEADER.FIELDS.NOT" => {
                c.sp()?;
                c.expect(b'(')?;
                let mut names = Vec::new();
                loop {
                    let name = String::from_utf8_lossy(&c.astring()?).to_ascii_uppercase();
                    if names.len() >= MAX_HEADER_FIELDS {
                        return Err("too many header field names".into());
                    }
                    names.push(name);
                    if c.peek() == Some(b')') {
                        c.pos += 1;
                        break;
                    }
                    c.sp()?;
                }
                SectionText::HeaderFields {
                    not: word.ends_with(b".NOT"),
                    names,
                }
            }
            _ => return Err("bad section".into()),
        });
    }
    c.expect(b']')?;
    Ok(Section { part, text })
}

fn store(c: &mut Cursor<'_>, uid: bool) -> Result<Command, String> {
    c.sp()?;
    let set = c.sequence_set()?;
    c.sp()?;
    let word = c.atom()?.to_ascii_uppercase();
    let (mode, rest) = match word.strip_prefix('+') {
        Some(rest) => (StoreMode::Add, rest),
        None => match word.strip_prefix('-') {
            Some(rest) => (StoreMode::Remove, rest),
            None => (StoreMode::Replace, word.as_str()),
        },
    };
    let silent = match rest {
        "FLAGS" => false,
        "FLAGS.SILENT" => true,
        _ => return Err(format!("STORE {word} is not supported")),
    };
    c.sp()?;
    let mut flags = Vec::new();
    let listed = c.peek() == Some(b'(');
    if listed {
        c.pos += 1;
    }
    while c.peek().is_some_and(|b| b != b')') {
        flags.push(c.flag()?);
        if c.peek() == Some(b' ') {
            c.pos += 1;
        }
    }
    if listed {
        c.expect(b')')?;
    }
    Ok(Command::Store {
        uid,
        set,
        mode,
        silent,
        flags,
    })
}

/// Reads tokens from one command.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// Most bytes a tag may have.
const MAX_TAG_LEN: usize = 64;

impl<'a> Cursor<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
        &self.buf[start..self.pos]
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected {:?}", char::from(byte)))
        }
    }

    fn sp(&mut self) -> Result<(), String> {
        self.expect(b' ')
    }

    fn end(&mut self) -> Result<(), String> {
        match &self.buf[self.pos..] {
            b"\r\n" | b"\n" | b"" => Ok(()),
            _ => Err("unexpected text at the end of the command".into()),
        }
    }

    fn tag(&mut self) -> Result<String, String> {
        let tag = self.take_while(|b| is_atom_char(b) && b != b'+');
        if tag.is_empty() || tag.len() > MAX_TAG_LEN {
            return Err("a command starts with a tag".into());
        }
        Ok(String::from_utf8_lossy(tag).into_owned())
    }

    fn atom(&mut self) -> Result<String, String> {
        let atom = self.take_while(is_atom_char);
        if atom.is_empty() {
            return Err("expected an atom".into());
        }
        Ok(String::from_utf8_lossy(atom).into_owned())
    }

    fn number(&mut self) -> Result<u32, String> {
        let digits = self.take_while(|b| b.is_ascii_digit());
        std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| "expected a number".to_owned())
    }

    /// An atom, a quoted string or a literal.
    fn astring(&mut self) -> Result<Vec<u8>, String> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(),
            _ => Ok(self.take_while(|b| is_atom_char(b) || b == b']').to_vec()).and_then(|a| {
                if a.is_empty() {
                    Err("expected a string".into())
                } else {
                    Ok(a)
                }
            }),
        }
    }

    fn quoted(&mut self) -> Result<Vec<u8>, String> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(b @ (b'"' | b'\\')) => out.push(b),
                        _ => return Err("bad escape in a quoted string".into()),
                    }
                }
                Some(b'\r' | b'\n') | None => return Err("unterminated quoted string".into()),
                Some(b) => out.push(b),
            }
            self.pos += 1;
        }
    }

    fn literal(&mut self) -> Result<Vec<u8>, String> {
        self.expect(b'{')?;
        let n = self.number()? as usize;
        if self.peek() == Some(b'+') {
            self.pos += 1;
        }
        self.expect(b'}')?;
        if self.peek() == Some(b'\r') {
            self.pos += 1;
        }
        self.expect(b'\n')?;
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or("literal shorter than announced")?;
        let bytes = self.buf[self.pos..end].to_vec();
        self.pos = end;
        Ok(bytes)
    }

    /// A mailbox name; `INBOX` in any case is `INBOX`.
    fn mailbox(&mut self) -> Result<String, String> {
        let name = String::from_utf8(self.astring_or_empty()?)
            .map_err(|_| "a mailbox name is 7-bit text".to_owned())?;
        Ok(if name.eq_ignore_ascii_case("INBOX") {
            "INBOX".into()
        } else {
            name
        })
    }

    /// An astring that may be the empty quoted string.
    fn astring_or_empty(&mut self) -> Result<Vec<u8>, String> {
        if self.buf[self.pos..].starts_with(b"\"\"") {
            self.pos += 2;
            return Ok(Vec::new());
        }
        self.astring()
    }

    fn list_mailbox(&mut self) -> Result<String, String> {
        let bytes = match self.peek() {
            Some(b'"' | b'{') => self.astring_or_empty()?,
            _ => self
                .take_while(|b| is_atom_char(b) || b == b'%' || b == b'*' || b == b']')
                .to_vec(),
        };
        String::from_utf8(bytes).map_err(|_| "a mailbox pattern is 7-bit text".to_owned())
    }

    fn flag(&mut self) -> Result<String, String> {
        let start = self.pos;
        if self.peek() == Some(b'\\') {
            self.pos += 1;
        }
        let _ = self.take_while(is_atom_char);
        if self.pos == start {
            return Err("expected a flag".into());
        }
        Ok(String::from_utf8_lossy(&self.buf[start..self.pos]).into_owned())
    }

    fn sequence_set(&mut self) -> Result<SequenceSet, String> {
        let mut ranges = Vec::new();
        loop {
            let a = self.bound()?;
            let b = if self.peek() == Some(b':') {
                self.pos += 1;
                self.bound()?
            } else {
                a
            };
            ranges.push((a, b));
            if self.peek() == Some(b',') {
                self.pos += 1;
            } else {
                break;
            }
        }
        Ok(SequenceSet(ranges))
    }

    fn bound(&mut self) -> Result<Bound, String> {
        if self.peek() == Some(b'*') {
            self.pos += 1;
            return Ok(Bound::Star);
        }
        match self.number()? {
            0 => Err("0 is not a message number".into()),
            n => Ok(Bound::Number(n)),
        }
    }
}

/// ATOM-CHAR of RFC 3501: printable ASCII except the specials.
fn is_atom_char(b: u8) -> bool {
    (0x21..0x7f).contains(&b)
        && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Command {
        parse(line.as_bytes())
            .unwrap_or_else(|e| panic!("{line}: {e:?}"))
            .command
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
            ok("b select inbox\r\n"),
            Command::Select {
                mailbox: "INBOX".into(),
                read_only: false
            }
        );
        assert!(matches!(
            ok("c UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From Subject)]<0.100>)\r\n"),
            Command::Fetch { uid: true, ref atts, .. } if atts.len() == 2
        ));
        assert!(
            matches!(ok("d LIST \"\" *\r\n"), Command::List { ref pattern, .. } if pattern == "*")
        );
        assert!(matches!(
            ok("e STORE 1,3:5 +FLAGS.SILENT (\\Seen)\r\n"),
            Command::Store { mode: StoreMode::Add, silent: true, ref flags, .. } if flags == &["\\Seen"]
        ));
        assert!(matches!(
            ok("f SEARCH CHARSET UTF-8 OR FROM a SUBJECT \"b c\" SINCE 1-Feb-2026\r\n"),
            Command::Search { .. }
        ));
        assert_eq!(ok("g APPEND INBOX {10}\r\n"), Command::Refused("APPEND"));
        assert_eq!(ok("h idle\r\n"), Command::Idle);
        assert!(parse(b"h IDLE now\r\n").is_err());
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
            "a SELECT \"unterminated",
            "* FOO",
            "a UID",
            "a STORE 1 FLAGS (",
            "a SEARCH SINCE 99-Foo-1",
            "a FETCH 1:* BODY[HEADER.FIELDS (]",
        ] {
            assert!(parse(line.as_bytes()).is_err(), "{line:?} parses");
        }
        let deep = format!("a SEARCH {}ALL{}\r\n", "(".repeat(100), ")".repeat(100));
        assert!(parse(deep.as_bytes()).is_err());
    }

    #[test]
    fn sets_and_dates() {
        let Command::Fetch { set, .. } = ok("a FETCH 2:4,7:* FLAGS\r\n") else {
            panic!()
        };
        assert!(set.contains(3, 10) && set.contains(9, 10) && !set.contains(5, 10));
        assert_eq!(parse_date(b"1-Jan-1970"), Ok(0));
        assert_eq!(parse_date(b"2-jan-1970"), Ok(1));
    }
}
