//! Where decrypted messages may be written: never to a terminal unless asked, never through
//! a symbolic link, never over an existing file without `--force`, and only into files and
//! folders the reviewer alone can read.

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{Exit, exit};

/// Where `export ID` sends the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination<'a> {
    Stdout,
    File(&'a Path),
}

/// Decides where one message goes. Without `-o`, standard output only when it is not a
/// terminal: a raw message may hold escape sequences, and on a terminal they would run.
/// `-o -` asks for standard output whatever it is (as `age` does).
pub fn destination(
    output: Option<&Path>,
    stdout_is_terminal: bool,
) -> Result<Destination<'_>, Exit> {
    match output {
        Some(path) if path.as_os_str() == "-" => Ok(Destination::Stdout),
        Some(path) => Ok(Destination::File(path)),
        None if stdout_is_terminal => Err(usage(
            "refusing to write a raw message to the terminal (it can hold escape sequences): \
             use `reclaim show` to read it, -o FILE to save it, or -o - to force it"
                .into(),
        )),
        None => Ok(Destination::Stdout),
    }
}

/// Refuses a target that is a symbolic link, that exists while `force` is off, or that is
/// not a regular file. Checked before anything is fetched; [`create`] checks again.
pub fn check_target(path: &Path, force: bool) -> Result<(), Exit> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(usage(format!("cannot look at {}: {e}", path.display()))),
        Ok(meta) if meta.file_type().is_symlink() => Err(usage(format!(
            "{} is a symbolic link; reclaim never writes through one (remove it, or choose another name)",
            path.display()
        ))),
        Ok(_) if !force => Err(exists(path)),
        Ok(meta) if !meta.is_file() => Err(usage(format!(
            "{} exists and is not a regular file",
            path.display()
        ))),
        Ok(_) => Ok(()),
    }
}

/// Creates `dir` (and missing parents) with mode 0700; an existing `dir` must be a real
/// folder, not a symbolic link.
pub fn create_dir(dir: &Path) -> anyhow::Result<()> {
    if std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(usage(format!(
            "{} is a symbolic link; reclaim never writes through one",
            dir.display()
        ))
        .into());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// A file being written with plaintext, mode 0600. Until [`PrivateFile::commit`], what it
/// wrote is removed again when it is dropped, so a failed export leaves no half message.
pub struct PrivateFile {
    file: File,
    target: PathBuf,
    /// With `--force`: the new content goes here first and is renamed over the target,
    /// which replaces a link or file at the target instead of writing through it.
    temp: Option<PathBuf>,
    committed: bool,
}

/// Opens `path` for a new private file. Every open uses `create_new` (`O_CREAT|O_EXCL`),
/// which never follows a symbolic link and never truncates what is there.
pub fn create(path: &Path, force: bool) -> anyhow::Result<PrivateFile> {
    check_target(path, force)?;
    let replacing = std::fs::symlink_metadata(path).is_ok();
    let temp = replacing.then(|| {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        path.with_file_name(format!(".{name}.{}.reclaim-tmp", uuid::Uuid::new_v4()))
    });
    let open_at = temp.as_deref().unwrap_or(path);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(open_at)
        .map_err(|e| match e.kind() {
            // Something appeared at the target after the check.
            std::io::ErrorKind::AlreadyExists if temp.is_none() => {
                anyhow::Error::from(exists(path))
            }
            _ => anyhow::Error::from(e).context(format!("cannot create {}", open_at.display())),
        })?;
    Ok(PrivateFile {
        file,
        target: path.to_owned(),
        temp,
        committed: false,
    })
}

impl std::io::Write for PrivateFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl PrivateFile {
    /// Makes the content durable and puts it at the target.
    pub fn commit(mut self) -> anyhow::Result<()> {
        self.file
            .sync_all()
            .with_context(|| format!("writing {}", self.target.display()))?;
        if let Some(temp) = &self.temp {
            std::fs::rename(temp, &self.target)
                .with_context(|| format!("cannot replace {}", self.target.display()))?;
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for PrivateFile {
    fn drop(&mut self) {
        if !self.committed {
            // Only ever a file this process created with create_new.
            let _ = std::fs::remove_file(self.temp.as_deref().unwrap_or(&self.target));
        }
    }
}

fn exists(path: &Path) -> Exit {
    usage(format!(
        "{} exists; pass --force to replace it",
        path.display()
    ))
}

fn usage(message: String) -> Exit {
    Exit {
        code: exit::USAGE,
        message,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn terminal_needs_an_explicit_dash() {
        let file = Path::new("m.eml");
        let err = destination(None, true).expect_err("a terminal is refused");
        assert_eq!(err.code, exit::USAGE);
        assert!(err.message.contains("-o -"), "{}", err.message);
        assert_eq!(destination(None, false).ok(), Some(Destination::Stdout));
        assert_eq!(
            destination(Some(Path::new("-")), true).ok(),
            Some(Destination::Stdout)
        );
        assert_eq!(
            destination(Some(file), true).ok(),
            Some(Destination::File(file))
        );
    }

    #[test]
    fn links_existing_files_and_modes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep me").expect("write");
        let link = dir.path().join("link.eml");
        std::os::unix::fs::symlink(&victim, &link).expect("symlink");
        for force in [false, true] {
            let err = create(&link, force).err().expect("a link is refused");
            assert_eq!(super::super::exit_code(&err), exit::USAGE, "{err:#}");
        }
        assert_eq!(std::fs::read(&victim).expect("read"), b"keep me");

        let err = create(&victim, false)
            .err()
            .expect("an existing file is refused");
        assert!(format!("{err:#}").contains("--force"), "{err:#}");
        let mut replaced = create(&victim, true).expect("--force replaces");
        replaced.write_all(b"new").expect("write");
        replaced.commit().expect("commit");
        assert_eq!(std::fs::read(&victim).expect("read"), b"new");
        let mode = std::fs::metadata(&victim)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        let fresh = dir.path().join("fresh.eml");
        drop(create(&fresh, false).expect("create"));
        assert!(!fresh.exists(), "an uncommitted file is removed");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 2);
    }
}
