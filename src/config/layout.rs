//! `[store]` keys of how the embedded store lays messages out: which go into segment
//! files, how much memory staging them may take, and how large a segment grows.

use super::edge::size_in;
use super::{ConfigError, RawStore, invalid};
use crate::store::StagingLimits;

/// Larger messages gain nothing from segments: their own file costs little per byte.
const MAX_INLINE: u64 = 16 * 1024 * 1024;

pub(super) fn staging_limits(store: &RawStore) -> Result<StagingLimits, ConfigError> {
    let d = StagingLimits::default();
    let inline_max = size_in(
        "store.inline_max",
        store.inline_max.as_deref(),
        d.inline_max as u64,
        0..=MAX_INLINE,
    )?;
    let memory = size_in(
        "store.staging_memory",
        store.staging_memory.as_deref(),
        d.memory as u64,
        1024 * 1024..=64 * 1024 * 1024 * 1024,
    )?;
    let segment_size = size_in(
        "store.segment_size",
        store.segment_size.as_deref(),
        d.segment_size,
        1024 * 1024..=64 * 1024 * 1024 * 1024,
    )?;
    if inline_max > memory {
        return Err(invalid(
            "store.inline_max",
            "must not be larger than store.staging_memory".to_owned(),
        ));
    }
    Ok(StagingLimits {
        inline_max: usize::try_from(inline_max).unwrap_or(usize::MAX),
        memory: usize::try_from(memory).unwrap_or(usize::MAX),
        segment_size,
    })
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::super::tests::{MINIMAL, error_of};

    #[test]
    fn layout_keys_are_read_and_bounded() {
        let c = Config::parse(MINIMAL).expect("valid");
        assert_eq!(c.store.staging, crate::store::StagingLimits::default());
        let text = MINIMAL.to_owned()
            + "[store]\ninline_max = \"0\"\nstaging_memory = \"4MiB\"\nsegment_size = \"8MiB\"\n";
        let c = Config::parse(&text).expect("valid");
        assert_eq!(
            (
                c.store.staging.inline_max,
                c.store.staging.memory,
                c.store.staging.segment_size
            ),
            (0, 4 << 20, 8 << 20)
        );
        for (bad, key) in [
            ("inline_max = \"17MiB\"", "store.inline_max"),
            ("staging_memory = \"1KiB\"", "store.staging_memory"),
            ("segment_size = \"0\"", "store.segment_size"),
            (
                "inline_max = \"2MiB\"\nstaging_memory = \"1MiB\"",
                "store.inline_max",
            ),
        ] {
            let text = MINIMAL.to_owned() + "[store]\n" + bad + "\n";
            assert!(error_of(&text).contains(key), "{bad}: {}", error_of(&text));
        }
    }
}
