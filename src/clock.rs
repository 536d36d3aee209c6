//! Wall-clock time as reclaim stores and shows it: whole seconds since the Unix epoch, and
//! RFC 3339 UTC text for people and JSON.

use std::time::SystemTime;

/// Seconds since the Unix epoch at `at`; 0 for times before it.
pub fn unix(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    unix(SystemTime::now())
}

/// An RFC 3339 UTC time for display and JSON; empty if out of range.
pub fn format_time(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn seconds_and_text() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_910_400);
        assert_eq!(unix(at), 1_795_910_400);
        assert_eq!(unix(SystemTime::UNIX_EPOCH - Duration::from_secs(5)), 0);
        assert_eq!(format_time(1_795_910_400), "2026-11-29T00:00:00Z");
        assert_eq!(format_time(i64::MAX), "");
    }
}
