//! Message filters of `list`, `export` and `report`, and the times they take.

use anyhow::Context;

use super::args::FilterArgs;
use super::listed::Listed;
use crate::admin::http::percent_encode;

/// A filter ready to use: the server's part as query text, the rest checked here.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    query: String,
    from: Option<String>,
    to: Option<String>,
    subject: Option<String>,
}

impl Filter {
    pub fn new(args: &FilterArgs, now: i64) -> anyhow::Result<Self> {
        let mut query = String::new();
        if let Some(domain) = &args.domain {
            query.push_str(&format!("&domain={}", percent_encode(domain)));
        }
        if let Some(since) = &args.since {
            query.push_str(&format!("&since={}", parse_when(since, now)?));
        }
        if let Some(until) = &args.until {
            query.push_str(&format!("&until={}", parse_when(until, now)?));
        }
        let lower = |v: &Option<String>| v.as_ref().map(|s| s.to_lowercase());
        Ok(Self {
            query,
            from: lower(&args.from),
            to: lower(&args.to),
            subject: lower(&args.subject),
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
pub fn parse_when(text: &str, now: i64) -> anyhow::Result<i64> {
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
    let age = humantime::parse_duration(text).with_context(|| {
        format!("{text:?} is not a date (2026-11-01), an RFC 3339 time, or an age (7d)")
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
        assert!(parse_when("last tuesday", now).is_err());
    }

    #[test]
    fn client_side_filters() {
        let args = FilterArgs {
            from: Some("PARTNER".into()),
            subject: Some("invoice".into()),
            domain: Some("old.example".into()),
            ..FilterArgs::default()
        };
        let f = Filter::new(&args, 0).expect("filter");
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
