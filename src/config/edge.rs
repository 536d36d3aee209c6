//! The SMTP edge's bounds in the config: client network prefixes, the DKIM memory
//! budget, and the store's quota and free-disk floor.

use super::{ConfigError, RawStore, invalid};
use crate::capacity::StorageLimits;
use crate::units::parse_size;

/// The largest `[server] auth_memory_budget` accepted.
pub(super) const MAX_AUTH_MEMORY_BUDGET: u64 = 64 * 1024 * 1024 * 1024;
/// `[store] min_free` unless configured: room for the index, logs and the rest of the system.
const DEFAULT_MIN_FREE: u64 = 1024 * 1024 * 1024;
/// The smallest `[store] max_size` accepted.
const MIN_STORE_QUOTA: u64 = 1024;

/// A network prefix length within `range`.
pub(super) fn prefix(
    key: &'static str,
    value: Option<u8>,
    default: u8,
    range: std::ops::RangeInclusive<u8>,
) -> Result<u8, ConfigError> {
    let value = value.unwrap_or(default);
    if !range.contains(&value) {
        return Err(invalid(
            key,
            format!(
                "{value} is not a prefix length from {} to {}",
                range.start(),
                range.end()
            ),
        ));
    }
    Ok(value)
}

/// A size such as `"64MiB"` within `range`.
pub(super) fn size_in(
    key: &'static str,
    value: Option<&str>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    let size = match value {
        None => default,
        Some(text) => parse_size(text).map_err(|m| invalid(key, m.to_string()))?,
    };
    if !range.contains(&size) {
        return Err(invalid(
            key,
            format!("must be from {} to {} bytes", range.start(), range.end()),
        ));
    }
    Ok(size)
}

/// `[store] max_size` (`"none"` or absent for no quota) and `min_free` (`"0"` for no floor).
pub(super) fn storage_limits(store: &RawStore) -> Result<StorageLimits, ConfigError> {
    let max_size = match store.max_size.as_deref().map(str::trim) {
        None | Some("none") => None,
        Some(text) => Some(size_in(
            "store.max_size",
            Some(text),
            0,
            MIN_STORE_QUOTA..=u64::MAX,
        )?),
    };
    let min_free = size_in(
        "store.min_free",
        store.min_free.as_deref(),
        DEFAULT_MIN_FREE,
        0..=u64::MAX,
    )?;
    Ok(StorageLimits { max_size, min_free })
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::super::tests::{MINIMAL, error_of};

    #[test]
    fn edge_limits_are_read_and_bounded() {
        let text = MINIMAL.replace(
            "[server]",
            "[server]\nclient_prefix_v4 = 24\nclient_prefix_v6 = 48\nauth_memory_budget = \"8MiB\"",
        ) + "[store]\nmax_size = \"10GiB\"\nmin_free = \"0\"\n";
        let c = Config::parse(&text).expect("valid");
        assert_eq!(c.server.limits.client_prefix_v4, 24);
        assert_eq!(c.server.limits.client_prefix_v6, 48);
        assert_eq!(c.server.limits.auth_memory_budget, 8 << 20);
        assert_eq!(c.store.limits.max_size, Some(10 << 30));
        assert_eq!(c.store.limits.min_free, 0);
        for (line, key) in [
            ("client_prefix_v4 = 33", "server.client_prefix_v4"),
            ("client_prefix_v4 = 8", "server.client_prefix_v4"),
            ("client_prefix_v6 = 129", "server.client_prefix_v6"),
            ("client_prefix_v6 = 16", "server.client_prefix_v6"),
            ("auth_memory_budget = \"1TiB\"", "server.auth_memory_budget"),
            (
                "auth_memory_budget = \"65GiB\"",
                "server.auth_memory_budget",
            ),
        ] {
            let err = error_of(&MINIMAL.replace("[server]", &format!("[server]\n{line}")));
            assert!(err.contains(key), "{line}: {err}");
        }
        for (line, key) in [
            ("max_size = \"100\"", "store.max_size"),
            ("min_free = \"lots\"", "store.min_free"),
            ("free_check_interval = \"0s\"", "store.free_check_interval"),
        ] {
            let err = error_of(&format!("{MINIMAL}[store]\n{line}\n"));
            assert!(err.contains(key), "{line}: {err}");
        }
    }
}
