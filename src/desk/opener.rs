//! The login file `reclaim desk --open` hands to the browser: the one-time URL inside a
//! file only the reviewer can read, so that it never appears in a process's arguments
//! (which every local user can read in /proc) as it would on `xdg-open URL`. Jupyter
//! opens its notebooks the same way.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::session::random_token;

/// A 0600 HTML file in a fresh 0700 directory that moves the browser on to the login URL;
/// removed with its directory when dropped.
pub struct LoginFile {
    dir: PathBuf,
    path: PathBuf,
}

impl LoginFile {
    /// Writes the file for `url` in a new directory under `parent` (the user's runtime
    /// directory or the temp directory).
    pub fn create(parent: &Path, url: &str) -> std::io::Result<Self> {
        let dir = parent.join(format!("reclaim-desk-{}", &random_token()[..16]));
        // `create`, not `create_all`: the directory must be new, made here with its mode
        // (whatever the umask), and so not one another user prepared.
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let path = dir.join("open.html");
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut file| {
                file.write_all(page(url).as_bytes())?;
                file.sync_all()
            });
        if let Err(e) = written {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        Ok(Self { dir, path })
    }

    /// The file to give the browser.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where login files go: `$XDG_RUNTIME_DIR` (the user's own, 0700) when it is set,
    /// else the temp directory (the new directory's own mode protects the file there).
    pub fn default_parent() -> PathBuf {
        std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|dir| dir.is_dir())
            .unwrap_or_else(std::env::temp_dir)
    }
}

impl Drop for LoginFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn page(url: &str) -> String {
    // The URL is the desk's own: digits, dots, a colon, a path and hex. Escape it anyway.
    let url = url
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;");
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\">\n\
         <meta http-equiv=\"refresh\" content=\"0; url={url}\">\n\
         <title>reclaim desk</title></head>\n\
         <body><p><a href=\"{url}\">Open the reclaim desk</a></p></body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn only_the_owner_can_read_it_and_it_goes_when_dropped() {
        let parent = std::env::temp_dir();
        let url = "http://127.0.0.1:8123/login?secret=abc";
        let file = LoginFile::create(&parent, url).expect("login file");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(file.path()), 0o600);
        assert_eq!(mode(file.path().parent().expect("dir")), 0o700);
        let text = std::fs::read_to_string(file.path()).expect("read");
        assert!(text.contains(&format!("url={url}\"")), "{text}");
        let dir = file.path().parent().expect("dir").to_owned();
        drop(file);
        assert!(!dir.exists());
    }
}
