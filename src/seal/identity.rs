//! Reviewers' identities: age identity files (plain or passphrase-protected) and OpenSSH
//! private keys. Only the CLI loads these; the gateway never holds one (but in dev setups).

use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use age::secrecy::SecretString;

use super::SealError;

/// Environment variable that supplies the passphrase of a protected identity, for scripts.
pub const PASSPHRASE_ENV: &str = "RECLAIM_PASSPHRASE";

/// Asks for passphrases: from `RECLAIM_PASSPHRASE` if set, else on the terminal.
#[derive(Clone, Copy)]
struct PassphrasePrompt;

impl age::Callbacks for PassphrasePrompt {
    fn display_message(&self, message: &str) {
        eprintln!("{message}");
    }

    fn confirm(&self, _: &str, _: &str, _: Option<&str>) -> Option<bool> {
        None
    }

    fn request_public_string(&self, _: &str) -> Option<String> {
        None
    }

    fn request_passphrase(&self, description: &str) -> Option<SecretString> {
        if let Ok(value) = std::env::var(PASSPHRASE_ENV) {
            return Some(SecretString::from(value));
        }
        rpassword::prompt_password(format!("{description}: "))
            .ok()
            .map(SecretString::from)
    }
}

/// One identity, shareable between threads (`reclaim list` decrypts summaries on every
/// core).
type Shared = Box<dyn age::Identity + Send + Sync>;

/// An identity that decrypts itself on first use (passphrase-protected): one thread at a
/// time, so the passphrase is asked once and the decrypted key is cached.
struct Locked<I>(std::sync::Mutex<I>);

impl<I: age::Identity> age::Identity for Locked<I> {
    fn unwrap_stanza(
        &self,
        stanza: &age_core::format::Stanza,
    ) -> Option<Result<age_core::format::FileKey, age::DecryptError>> {
        self.0
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .unwrap_stanza(stanza)
    }

    fn unwrap_stanzas(
        &self,
        stanzas: &[age_core::format::Stanza],
    ) -> Option<Result<age_core::format::FileKey, age::DecryptError>> {
        self.0
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .unwrap_stanzas(stanzas)
    }
}

fn locked<I: age::Identity + Send + 'static>(identity: I) -> Shared {
    Box::new(Locked(std::sync::Mutex::new(identity)))
}

/// Identities that can open sealed files. `Sync`: one set serves many threads.
///
/// ```
/// fn shared<T: Send + Sync>() {}
/// shared::<reclaim::seal::Identities>();
/// ```
pub struct Identities {
    inner: Vec<Shared>,
}

fn identity_error(path: &Path, message: impl Into<String>) -> SealError {
    SealError::Identity {
        path: shown(path),
        message: message.into(),
    }
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

impl Identities {
    /// Loads an identity file: an age identity file (as written by `age-keygen` or
    /// `reclaim keygen`), a passphrase-protected one (binary or armored), or an OpenSSH
    /// private key (possibly passphrase-protected).
    pub fn load(path: &Path) -> Result<Self, SealError> {
        let bytes = std::fs::read(path).map_err(|source| SealError::IdentityRead {
            path: shown(path),
            source,
        })?;
        let name = Some(path.display().to_string());
        let text_start = String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).into_owned();

        let identity: Shared =
            if text_start.starts_with("-----BEGIN OPENSSH")
                || text_start.starts_with("-----BEGIN RSA PRIVATE KEY")
            {
                let key = age::ssh::Identity::from_buffer(BufReader::new(&bytes[..]), name)
                    .map_err(|source| SealError::IdentitySsh {
                        path: shown(path),
                        source,
                    })?;
                if let age::ssh::Identity::Unsupported(kind) = &key {
                    return Err(identity_error(
                        path,
                        format!("unsupported ssh key type ({kind:?}); use ed25519 or rsa"),
                    ));
                }
                match key {
                    age::ssh::Identity::Unencrypted(_) => Box::new(key),
                    encrypted => locked(encrypted.with_callbacks(PassphrasePrompt)),
                }
            } else if text_start.starts_with("age-encryption.org/")
                || text_start.starts_with("-----BEGIN AGE ENCRYPTED FILE-----")
            {
                let reader = age::armor::ArmoredReader::new(io::Cursor::new(bytes));
                let encrypted =
                    age::encrypted::Identity::from_buffer(reader, name, PassphrasePrompt, None)
                        .map_err(|source| SealError::IdentityEncrypted {
                            path: shown(path),
                            source,
                        })?
                        .ok_or_else(|| {
                            identity_error(path, "this age file is not passphrase-protected")
                        })?;
                locked(encrypted)
            } else {
                let file = age::IdentityFile::from_buffer(BufReader::new(&bytes[..])).map_err(
                    |source| SealError::IdentityFile {
                        path: shown(path),
                        source,
                    },
                )?;
                let list =
                    file.into_identities()
                        .map_err(|source| SealError::IdentityUnusable {
                            path: shown(path),
                            source,
                        })?;
                if list.is_empty() {
                    return Err(identity_error(path, "contains no identity"));
                }
                return Ok(Self { inner: list });
            };
        Ok(Self {
            inner: vec![identity],
        })
    }

    /// Identities from X25519 keys already in memory.
    pub fn from_x25519(keys: Vec<age::x25519::Identity>) -> Self {
        Self {
            inner: keys.into_iter().map(|k| Box::new(k) as Shared).collect(),
        }
    }

    /// Opens a sealed stream, returning a reader of the plaintext.
    pub fn open<R: Read>(&self, sealed: R) -> Result<impl Read + use<'_, R>, SealError> {
        let decryptor = age::Decryptor::new(sealed)?;
        Ok(decryptor.decrypt(self.inner.iter().map(|i| i.as_ref() as &dyn age::Identity))?)
    }

    /// Opens a sealed stream from a buffered reader (faster header parsing).
    pub fn open_buffered<R: BufRead>(
        &self,
        sealed: R,
    ) -> Result<impl Read + use<'_, R>, SealError> {
        let decryptor = age::Decryptor::new_buffered(sealed)?;
        Ok(decryptor.decrypt(self.inner.iter().map(|i| i.as_ref() as &dyn age::Identity))?)
    }

    /// Unwraps a file key from age stanzas with the first identity that matches one.
    pub(super) fn unwrap_file_key(
        &self,
        stanzas: &[age_core::format::Stanza],
    ) -> Result<age_core::format::FileKey, SealError> {
        for identity in &self.inner {
            if let Some(unwrapped) = identity.unwrap_stanzas(stanzas) {
                return Ok(unwrapped?);
            }
        }
        Err(SealError::Decrypt(age::DecryptError::NoMatchingKeys))
    }

    /// Opens a small sealed value in memory.
    pub fn open_bytes(&self, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut out = Vec::new();
        self.open_buffered(sealed)?.read_to_end(&mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    /// What the CLI prints for an error: the whole chain.
    fn printed(error: SealError) -> String {
        format!("{:#}", anyhow::Error::from(error))
    }

    #[test]
    fn a_missing_file_keeps_the_io_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("missing.key");
        let Err(error) = Identities::load(&path) else {
            panic!("a missing file loaded");
        };
        let Some(io) = error.source().and_then(|s| s.downcast_ref::<io::Error>()) else {
            panic!("no I/O cause: {error:?}");
        };
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
        let io = io.to_string();
        assert!(matches!(error, SealError::IdentityRead { .. }), "{error:?}");
        assert_eq!(
            printed(error),
            format!("identity file {}: {io}", path.display())
        );
    }

    #[test]
    fn a_file_that_is_no_identity_says_so_and_keeps_the_parse_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, "AGE-SECRET-KEY-NOT-REALLY\n").expect("write");
        let Err(error) = Identities::load(&path) else {
            panic!("a non-identity loaded");
        };
        assert!(matches!(error, SealError::IdentityFile { .. }), "{error:?}");
        assert!(error.source().expect("a source").is::<io::Error>());
        assert!(printed(error).starts_with(&format!(
            "identity file {}: not an age identity file: ",
            path.display()
        )));

        std::fs::write(&path, "").expect("write");
        let Err(error) = Identities::load(&path) else {
            panic!("an empty file loaded");
        };
        assert!(matches!(error, SealError::Identity { .. }), "{error:?}");
        assert_eq!(
            printed(error),
            format!("identity file {}: contains no identity", path.display())
        );
    }
}
