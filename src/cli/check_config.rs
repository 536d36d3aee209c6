//! `reclaim check-config`: validates a config as `serve` would, without starting anything.

use std::io::Write as _;
use std::path::Path;

use crate::config::Config;

pub fn run(config_path: &Path) -> anyhow::Result<()> {
    let config = Config::load(config_path)?;
    let report = crate::launch::check(&config)?;
    writeln!(
        super::stdout::lock(),
        "{}: OK ({} retired domain(s), {} recipient key(s){}, STARTTLS {})",
        config_path.display(),
        report.domains,
        report.recipients,
        if report.dev_identity {
            ", DEV identity"
        } else {
            ""
        },
        if report.tls { "on" } else { "off" },
    )?;
    Ok(())
}
