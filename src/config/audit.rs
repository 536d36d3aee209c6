//! `[audit]`: where the audit chain's head is witnessed after every append.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, duration, invalid};
use crate::witness::WitnessConfig;

/// The longest `head_timeout`: the admin request waits for the command.
const MAX_HEAD_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudit {
    head_file: Option<PathBuf>,
    #[serde(default)]
    head_command: Vec<String>,
    head_timeout: Option<String>,
}

pub(super) fn witness_config(raw: RawAudit, node: &str) -> Result<WitnessConfig, ConfigError> {
    if let Some(path) = &raw.head_file
        && !path.is_absolute()
    {
        return Err(invalid(
            "audit.head_file",
            "an absolute path, outside the store (an append-only file the gateway cannot rewrite)",
        ));
    }
    if let Some(program) = raw.head_command.first()
        && !program.starts_with('/')
    {
        return Err(invalid(
            "audit.head_command",
            "the program as an absolute path, then its arguments: [\"/usr/bin/logger\", \"-t\", \"reclaim-audit\"]",
        ));
    }
    let timeout = duration(
        "audit.head_timeout",
        raw.head_timeout,
        Duration::from_secs(5),
    )?;
    if timeout > MAX_HEAD_TIMEOUT {
        return Err(invalid("audit.head_timeout", "at most 60s"));
    }
    Ok(WitnessConfig {
        file: raw.head_file,
        command: raw.head_command,
        timeout,
        node: node.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<WitnessConfig, ConfigError> {
        witness_config(toml::from_str(text).expect("toml"), "mx1")
    }

    #[test]
    fn heads_go_to_a_file_and_a_command() {
        let w = parse(
            "head_file = \"/var/log/reclaim/heads\"\nhead_command = [\"/usr/bin/logger\", \"-t\", \"x\"]\nhead_timeout = \"2s\"",
        )
        .expect("valid");
        assert!(w.enabled());
        assert_eq!(w.command.len(), 3);
        assert_eq!(w.timeout, Duration::from_secs(2));
        assert!(!parse("").expect("valid").enabled());
    }

    #[test]
    fn relative_paths_and_long_timeouts_are_refused() {
        for (text, key) in [
            ("head_file = \"heads\"", "audit.head_file"),
            ("head_command = [\"logger\"]", "audit.head_command"),
            ("head_timeout = \"5m\"", "audit.head_timeout"),
            ("head_timeout = \"0s\"", "audit.head_timeout"),
        ] {
            match parse(text) {
                Err(ConfigError::Invalid { key: got, .. }) => assert_eq!(got, key, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
