//! Message ids: UUIDv7, so that ids sort by arrival time.

use std::fmt;
use std::str::FromStr;

/// A quarantined message's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(uuid::Uuid);

impl MessageId {
    /// A new id for a message arriving now.
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7())
    }

    /// The index key: the UUID as a big-endian integer, which orders v7 ids by time.
    pub fn key(self) -> u128 {
        self.0.as_u128()
    }

    pub fn from_key(key: u128) -> Self {
        Self(uuid::Uuid::from_u128(key))
    }

    /// The UUID itself (PostgreSQL's `uuid` orders the same way as [`Self::key`]).
    pub fn uuid(self) -> uuid::Uuid {
        self.0
    }

    pub fn from_uuid(uuid: uuid::Uuid) -> Self {
        Self(uuid)
    }

    /// Milliseconds since the Unix epoch encoded in the id.
    pub fn unix_millis(self) -> Option<u64> {
        self.0.get_timestamp().map(|ts| {
            let (secs, nanos) = ts.to_unix();
            secs * 1000 + u64::from(nanos) / 1_000_000
        })
    }
}

impl Default for MessageId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.as_hyphenated().fmt(f)
    }
}

impl FromStr for MessageId {
    type Err = String;

    /// Accepts only the canonical hyphenated form, so ids cannot smuggle path syntax.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = s.len() == 36
            && s.chars().enumerate().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => c == '-',
                _ => c.is_ascii_hexdigit(),
            });
        if !valid {
            return Err(format!(
                "{s:?} is not a message id (expected a UUID such as 0193a5c4-…)"
            ));
        }
        uuid::Uuid::parse_str(s)
            .map(Self)
            .map_err(|e| format!("{s:?} is not a message id: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_sort_by_time() {
        let a = MessageId::new();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = MessageId::new();
        assert!(a.key() < b.key());
        assert_eq!(a.to_string().parse::<MessageId>(), Ok(a));
        assert_eq!(MessageId::from_key(a.key()), a);
        assert!("../../etc/passwd".parse::<MessageId>().is_err());
        assert!(
            "0193a5c4-0000-7000-8000-00000000000"
                .parse::<MessageId>()
                .is_err()
        );
        assert!(
            "{0193a5c4-0000-7000-8000-000000000000}"
                .parse::<MessageId>()
                .is_err()
        );
    }
}
