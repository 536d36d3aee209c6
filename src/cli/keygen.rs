//! `reclaim keygen`: a new reviewer identity, written with mode 0600, never overwriting.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;

pub fn run(output: &Path) -> anyhow::Result<()> {
    let created = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let identity = crate::seal::keygen::generate(&created);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(output)
        .with_context(|| {
            format!(
                "cannot create {} (an existing file is never overwritten)",
                output.display()
            )
        })?;
    file.write_all(identity.file_text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", output.display()))?;
    eprintln!(
        "identity written to {}; keep it off the gateway",
        output.display()
    );
    writeln!(super::stdout::lock(), "{}", identity.recipient)?;
    Ok(())
}
