//! Human-friendly sizes ("25MiB") and durations ("5m") as they appear in the config.

use std::time::Duration;

/// Why a size or a duration could not be read; the message quotes the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("{0:?} is not a size (expected e.g. \"25MiB\")")]
    NotASize(String),
    #[error("{0:?} is too large")]
    TooLarge(String),
    #[error("unknown size unit {unit:?} in {text:?} (use B, kB, KiB, MB, MiB, GB or GiB)")]
    UnknownUnit { unit: String, text: String },
    #[error("{text:?} is not a duration ({reason}; expected e.g. \"5m\")")]
    NotADuration { text: String, reason: String },
}

/// Parses a byte size such as `25MiB`, `10MB`, `512KiB` or `1048576`.
///
/// Decimal suffixes (`kB`, `MB`, `GB`) are powers of 1000, binary ones (`KiB`, `MiB`, `GiB`)
/// powers of 1024, as in IEC 80000-13.
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(split);
    if digits.is_empty() {
        return Err(UnitError::NotASize(text.to_owned()));
    }
    let number: u64 = digits
        .parse()
        .map_err(|_| UnitError::TooLarge(text.to_owned()))?;
    let factor: u64 = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => {
            return Err(UnitError::UnknownUnit {
                unit: other.to_owned(),
                text: text.to_owned(),
            });
        }
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| UnitError::TooLarge(text.to_owned()))
}

/// Parses a duration such as `30s`, `5m`, `7d` or `2y`.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    humantime::parse_duration(text.trim()).map_err(|err| UnitError::NotADuration {
        text: text.to_owned(),
        reason: err.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("25MiB"), Ok(25 * 1024 * 1024));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("512 KiB"), Ok(512 * 1024));
        assert_eq!(parse_size("1234"), Ok(1234));
        assert_eq!(parse_size("MiB"), Err(UnitError::NotASize("MiB".into())));
        assert_eq!(
            parse_size("12 parsecs"),
            Err(UnitError::UnknownUnit {
                unit: "parsecs".into(),
                text: "12 parsecs".into()
            })
        );
        assert!(matches!(
            parse_size("99999999999999999999"),
            Err(UnitError::TooLarge(_))
        ));
        assert_eq!(
            parse_size("18446744073709551615GiB")
                .expect_err("overflows")
                .to_string(),
            "\"18446744073709551615GiB\" is too large"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert!(parse_duration("soon").is_err());
    }
}
