//! Which messages a listing keeps (`list`, `export`, `report`, the desk's inbox): the
//! criteria a reviewer gives, split into the part the admin API applies and the part only
//! this side can apply after decryption, and the times they take.

use super::ReviewError;
use super::listed::Listed;
use crate::admin::http::percent_encode;

/// The criteria as the reviewer gave them; each is optional, and all given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Criteria {
    /// Addressed to this retired domain.
    pub domain: Option<String>,
    /// Received at or after this time (see [`parse_when`]).
    pub since: Option<String>,
    /// Received before this time.
    pub until: Option<String>,
    /// The envelope sender or From: contains this text (any case).
    pub from: Option<String>,
    /// An envelope recipient contains this text.
    pub to: Option<String>,
    /// The subject contains this text.
    pub subject: Option<String>,
}

/// A filter ready to use: the server's part as query text, the rest checked here.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    query: String,
    from: Option<String>,
    to: Option<String>,
    subject: Option<String>,
}

impl Filter {
    /// The filter for `criteria`, with ages counted back from `now`.
    pub fn new(criteria: &Criteria, now: i64) -> Result<Self, ReviewError> {
        let mut query = String::new();
        if let Some(domain) = &criteria.domain {
            query.push_str(&format!("&domain={}", percent_encode(domain)));
        }
        if let Some(since) = &criteria.since {
            query.push_str(&format!("&since={}", parse_when(since, now)?));
        }
        if let Some(until) = &criteria.until {
            query.push_str(&format!("&until={}", parse_when(until, now)?));
        }
        let lower = |v: &Option<String>| v.as_ref().map(|s| s.to_lowercase());
        Ok(Self {
            query,
            from: lower(&criteria.from),
            to: lower(&criteria.to),
            subject: lower(&criteria.subject),
        })
    }

    /// Query parameters for `/v1/messages`, each starting with `&`.
    pub fn query(&self) -> &str {
        &self.query
    }

    /// Whether some filters can only be applied here, after decryption.
    pub fn filters_here(&self) -> bool {
        self.from.is_some() || self.to.is_some() || self.subject.is_some()
    }

    /// Whether a decrypted listing matches the filters applied on this side.
    pub fn matches(&self, m: &Listed) -> bool {
        let has = |text: &str, needle: &str| text.to_lowercase().contains(needle);
        self.from
            .as_deref()
            .is_none_or(|n| has(&m.mail_from, n) || m.from.as_deref().is_some_and(|f| has(f, n)))
            && self
                .to
                .as_deref()
                .is_none_or(|n| m.rcpt_to.iter().any(|r| has(r, n)))
            && self
                .subject
                .as_deref()
                .is_none_or(|n| m.subject.as_deref().is_some_and(|s| has(s, n)))
    }
}

/// A point in time as seconds since the epoch: `2026-11-01` (midnight UTC), an RFC 3339
/// time, or an age such as `7d` counted back from `now`.
pub fn parse_when(text: &str, now: i64) -> Result<i64, ReviewError> {
    let text = text.trim();
    if let Ok(date) = time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    ) {
        return Ok(date.midnight().assume_utc().unix_timestamp());
    }
    if let Ok(t) = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
    {
        return Ok(t.unix_timestamp());
    }
    let age = humantime::parse_duration(text).map_err(|source| ReviewError::BadTime {
        text: text.to_owned(),
        source,
    })?;
    Ok(now.saturating_sub(i64::try_from(age.as_secs()).unwrap_or(i64::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let now = 1_795_910_400;
        assert_eq!(parse_when("2026-11-29", now).expect("date"), now);
        assert_eq!(
            parse_when("2026-11-29T01:00:00+01:00", now).expect("t"),
            now
        );
        assert_eq!(parse_when("1d", now).expect("age"), now - 86_400);
        let bad = parse_when("last tuesday", now).expect_err("not a time");
        assert!(bad.to_string().contains("is not a date"), "{bad}");
        assert_eq!(bad.exit_code(), super::super::exit::FAILURE);
    }

    #[test]
    fn client_side_filters() {
        let criteria = Criteria {
            from: Some("PARTNER".into()),
            subject: Some("invoice".into()),
            domain: Some("old.example".into()),
            ..Criteria::default()
        };
        let f = Filter::new(&criteria, 0).expect("filter");
        assert_eq!(f.query(), "&domain=old.example");
        let mut m = Listed {
            mail_from: "a@partner.example".into(),
            subject: Some("Your Invoice".into()),
            ..Listed::default()
        };
        assert!(f.matches(&m));
        m.subject = None;
        assert!(!f.matches(&m));
    }
}
