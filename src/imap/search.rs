//! SEARCH keys and their evaluation: flags, dates and sizes from the index, the sender,
//! recipients and subject from the message's summary (opened, not the message), TEXT and
//! BODY only on messages whose answer is not known without their content, which the caller
//! decrypts within a bound.

use super::mime::split_header;
use super::parser::SequenceSet;
use crate::review::listed::Listed;

/// One search criterion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    Never,
    And(Vec<SearchKey>),
    Or(Box<SearchKey>, Box<SearchKey>),
    Not(Box<SearchKey>),
    Sequence(SequenceSet),
    Uid(SequenceSet),
    Seen(bool),
    Flagged(bool),
    /// Marked \\Deleted in this session (RFC 3501 DELETED and UNDELETED).
    Deleted(bool),
    /// Days since the epoch (UTC) of the arrival time.
    Since(i64),
    Before(i64),
    On(i64),
    Larger(u64),
    Smaller(u64),
    From(String),
    To(String),
    Subject(String),
    Text(String),
    Body(String),
}

/// One message as a search sees it.
pub struct Candidate<'a> {
    pub seq: u32,
    pub uid: u32,
    pub largest_seq: u32,
    pub largest_uid: u32,
    pub seen: bool,
    pub flagged: bool,
    pub deleted: bool,
    pub received_unix: i64,
    pub size: u64,
    /// Its opened summary; the caller opens it when [`SearchKey::needs_summary`]. Without
    /// one (the message left the quarantine meanwhile) FROM, TO and SUBJECT do not match.
    pub summary: Option<&'a Listed>,
}

/// An answer that may need the message's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Yes,
    No,
    /// Only the decrypted message can tell.
    Unknown,
}

impl From<bool> for Answer {
    fn from(b: bool) -> Self {
        if b { Answer::Yes } else { Answer::No }
    }
}

impl SearchKey {
    /// Whether answering it needs the messages' summaries (FROM, TO, SUBJECT).
    pub fn needs_summary(&self) -> bool {
        match self {
            SearchKey::And(keys) => keys.iter().any(SearchKey::needs_summary),
            SearchKey::Or(a, b) => a.needs_summary() || b.needs_summary(),
            SearchKey::Not(key) => key.needs_summary(),
            SearchKey::From(_) | SearchKey::To(_) | SearchKey::Subject(_) => true,
            _ => false,
        }
    }

    /// Whether `m` matches; `plain` is its content when it was decrypted.
    pub fn eval(&self, m: &Candidate<'_>, plain: Option<&[u8]>) -> Answer {
        let has = |hay: &str, needle: &str| hay.to_lowercase().contains(&needle.to_lowercase());
        let day = m.received_unix.div_euclid(86_400);
        match self {
            SearchKey::All => Answer::Yes,
            SearchKey::Never => Answer::No,
            SearchKey::And(keys) => {
                let mut answer = Answer::Yes;
                for key in keys {
                    match key.eval(m, plain) {
                        Answer::No => return Answer::No,
                        Answer::Unknown => answer = Answer::Unknown,
                        Answer::Yes => {}
                    }
                }
                answer
            }
            SearchKey::Or(a, b) => match (a.eval(m, plain), b.eval(m, plain)) {
                (Answer::Yes, _) | (_, Answer::Yes) => Answer::Yes,
                (Answer::No, Answer::No) => Answer::No,
                _ => Answer::Unknown,
            },
            SearchKey::Not(key) => match key.eval(m, plain) {
                Answer::Yes => Answer::No,
                Answer::No => Answer::Yes,
                Answer::Unknown => Answer::Unknown,
            },
            SearchKey::Sequence(set) => set.contains(m.seq, m.largest_seq).into(),
            SearchKey::Uid(set) => set.contains(m.uid, m.largest_uid).into(),
            SearchKey::Seen(want) => (m.seen == *want).into(),
            SearchKey::Deleted(want) => (m.deleted == *want).into(),
            SearchKey::Flagged(want) => (m.flagged == *want).into(),
            SearchKey::Since(d) => (day >= *d).into(),
            SearchKey::Before(d) => (day < *d).into(),
            SearchKey::On(d) => (day == *d).into(),
            SearchKey::Larger(n) => (m.size > *n).into(),
            SearchKey::Smaller(n) => (m.size < *n).into(),
            SearchKey::From(n) => m
                .summary
                .is_some_and(|s| {
                    has(&s.mail_from, n) || s.from.as_deref().is_some_and(|f| has(f, n))
                })
                .into(),
            SearchKey::To(n) => m
                .summary
                .is_some_and(|s| s.rcpt_to.iter().any(|r| has(r, n)))
                .into(),
            SearchKey::Subject(n) => m
                .summary
                .and_then(|s| s.subject.as_deref())
                .is_some_and(|s| has(s, n))
                .into(),
            SearchKey::Text(n) => match plain {
                Some(p) => contains(p, n).into(),
                None => Answer::Unknown,
            },
            SearchKey::Body(n) => match plain {
                Some(p) => contains(split_header(p).1, n).into(),
                None => Answer::Unknown,
            },
        }
    }
}

/// Whether `hay` holds `needle`, ignoring ASCII case (bytes as received; encoded bodies are
/// searched as they are encoded).
fn contains(hay: &[u8], needle: &str) -> bool {
    let needle = needle.as_bytes();
    needle.is_empty()
        || hay
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_keys_answer_and_text_waits_for_content() {
        let listed = Listed {
            mail_from: "a@partner.example".into(),
            rcpt_to: vec!["jan@old.example".into()],
            subject: Some("Invoice 7".into()),
            received_unix: 86_400 * 3 + 5,
            size: 100,
            ..Listed::default()
        };
        let m = Candidate {
            seq: 1,
            uid: 9,
            largest_seq: 1,
            largest_uid: 9,
            seen: false,
            flagged: true,
            deleted: false,
            received_unix: listed.received_unix,
            size: listed.size,
            summary: Some(&listed),
        };
        let and = |keys: Vec<SearchKey>| SearchKey::And(keys);
        assert_eq!(
            and(vec![
                SearchKey::From("PARTNER".into()),
                SearchKey::Subject("invoice".into())
            ])
            .eval(&m, None),
            Answer::Yes
        );
        assert_eq!(
            SearchKey::To("new.example".into()).eval(&m, None),
            Answer::No
        );
        assert_eq!(
            and(vec![
                SearchKey::Since(3),
                SearchKey::Before(4),
                SearchKey::On(3)
            ])
            .eval(&m, None),
            Answer::Yes
        );
        assert_eq!(SearchKey::Seen(true).eval(&m, None), Answer::No);
        let text = SearchKey::Text("secret".into());
        assert_eq!(text.eval(&m, None), Answer::Unknown);
        assert_eq!(
            and(vec![SearchKey::Seen(true), text.clone()]).eval(&m, None),
            Answer::No,
            "no content needed"
        );
        assert_eq!(
            text.eval(&m, Some(b"Subject: x\r\n\r\nthe SECRET\r\n")),
            Answer::Yes
        );
        assert_eq!(
            SearchKey::Body("subject".into()).eval(&m, Some(b"Subject: x\r\n\r\nbody\r\n")),
            Answer::No
        );
        let subject = SearchKey::Not(Box::new(SearchKey::Subject("x".into())));
        assert!(subject.needs_summary());
        assert!(!and(vec![SearchKey::Seen(true), SearchKey::Larger(3)]).needs_summary());
        let gone = Candidate { summary: None, ..m };
        assert_eq!(
            subject.eval(&gone, None),
            Answer::Yes,
            "no summary: no match"
        );
    }
}
