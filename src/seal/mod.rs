//! age encryption at rest: the gateway seals with public keys only; reviewers open with
//! their identities (see [`identity`]).

pub mod groups;
pub mod identity;
pub mod keygen;
pub mod reseal;
pub mod summary;

use std::fmt;
use std::io::{self, Write};
use std::sync::Arc;

pub use groups::ReaderGroups;
pub use identity::Identities;
pub use summary::{SummaryDefect, SummarySealer};

/// Why sealing or opening failed. The identity variants name the file and what is wrong
/// with it, and leave the cause to the error chain, which the CLI and the desk print whole
/// (`{:#}`).
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("writing sealed data: {0}")]
    Io(#[from] io::Error),
    #[error("cannot seal: {0}")]
    Encrypt(#[from] age::EncryptError),
    #[error("cannot decrypt: {0}")]
    Decrypt(#[from] age::DecryptError),
    #[error("summary cannot be opened: {0}")]
    Summary(SummaryDefect),
    /// The identity file could not be read.
    #[error("identity file {path}")]
    IdentityRead { path: String, source: io::Error },
    /// An OpenSSH private key age cannot use.
    #[error("identity file {path}: not a usable ssh private key")]
    IdentitySsh { path: String, source: io::Error },
    /// A passphrase-protected file that is not an age-encrypted identity.
    #[error("identity file {path}: not an age identity")]
    IdentityEncrypted {
        path: String,
        source: age::DecryptError,
    },
    /// Neither an OpenSSH key nor an age file: not an identity file either.
    #[error("identity file {path}: not an age identity file")]
    IdentityFile { path: String, source: io::Error },
    /// An identity in the file that reclaim cannot use (a plugin's, for one).
    #[error("identity file {path}")]
    IdentityUnusable {
        path: String,
        source: age::DecryptError,
    },
    /// What is wrong with the file, when no other error says it.
    #[error("identity file {path}: {message}")]
    Identity { path: String, message: String },
}

/// One public key the gateway seals to.
#[derive(Clone)]
enum SealRecipient {
    X25519(age::x25519::Recipient),
    Ssh(Box<age::ssh::Recipient>),
}

impl SealRecipient {
    fn as_dyn(&self) -> &dyn age::Recipient {
        match self {
            SealRecipient::X25519(r) => r,
            SealRecipient::Ssh(r) => r.as_ref(),
        }
    }

    /// The key as text: `age1…`, or `ssh-ed25519 AAAA…` without the comment.
    fn key_text(&self) -> String {
        match self {
            SealRecipient::X25519(r) => r.to_string(),
            SealRecipient::Ssh(r) => r.to_string(),
        }
    }
}

/// How many hex digits of a key's SHA-256 a message records: enough to tell a handful of
/// reviewers' keys apart, short enough to read.
const FINGERPRINT_HEX_LEN: usize = 16;

/// The short fingerprint a message records for a key it is sealed to: the first 16 hex
/// digits of the SHA-256 of the key as text (`age1…`, or `ssh-ed25519 AAAA…` without the
/// comment), so `printf %s KEY | sha256sum | cut -c1-16` gives it too.
pub fn fingerprint(key_text: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key_text.as_bytes());
    let mut hex = String::with_capacity(FINGERPRINT_HEX_LEN);
    for byte in digest.iter().take(FINGERPRINT_HEX_LEN / 2) {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// The reviewers' public keys: X25519 `age1…` recipients and OpenSSH `ssh-ed25519` /
/// `ssh-rsa` public keys. Every sealed file can be opened by any one of them.
#[derive(Clone, Default)]
pub struct Recipients(Vec<SealRecipient>);

impl fmt::Debug for Recipients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self.0.iter().map(SealRecipient::key_text).collect();
        f.debug_tuple("Recipients").field(&keys).finish()
    }
}

impl Recipients {
    /// Parses recipient strings; the error names the one that is not a supported key.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let entry = entry.trim();
            let parsed = if entry.starts_with("age1") {
                entry
                    .parse::<age::x25519::Recipient>()
                    .map(SealRecipient::X25519)
                    .map_err(|e| format!("{entry:?} is not a valid age recipient: {e}"))
            } else if entry.starts_with("ssh-") {
                entry
                    .parse::<age::ssh::Recipient>()
                    .map(|r| SealRecipient::Ssh(Box::new(r)))
                    .map_err(|e| format!("{entry:?} is not a supported ssh public key: {e:?}"))
            } else {
                Err(format!(
                    "{entry:?} is neither an age recipient (age1…) nor an ssh-ed25519/ssh-rsa public key"
                ))
            }?;
            out.push(parsed);
        }
        Ok(Self(out))
    }

    /// Adds an X25519 recipient (used for the dev identity).
    pub fn push_x25519(&mut self, recipient: age::x25519::Recipient) {
        self.0.push(SealRecipient::X25519(recipient));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The fingerprints of these keys (see [`fingerprint`]), in order.
    pub fn fingerprints(&self) -> Vec<String> {
        self.0.iter().map(|r| fingerprint(&r.key_text())).collect()
    }
}

/// Seals data to a fixed set of recipients. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Sealer {
    recipients: Arc<Recipients>,
    /// The keys' fingerprints, sorted: what a message sealed here records it was sealed to.
    fingerprints: Arc<[String]>,
}

impl Sealer {
    /// A sealer for these recipients; there must be at least one. A key listed twice is
    /// sealed to once.
    pub fn new(recipients: Recipients) -> Result<Self, SealError> {
        if recipients.is_empty() {
            return Err(SealError::Encrypt(age::EncryptError::MissingRecipients));
        }
        let mut keys: Vec<(String, SealRecipient)> = recipients
            .0
            .into_iter()
            .map(|r| (fingerprint(&r.key_text()), r))
            .collect();
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        keys.dedup_by(|a, b| a.0 == b.0);
        let (fingerprints, recipients): (Vec<String>, Vec<SealRecipient>) =
            keys.into_iter().unzip();
        Ok(Self {
            recipients: Arc::new(Recipients(recipients)),
            fingerprints: fingerprints.into(),
        })
    }

    /// A sealer for every key of these sealers (each key once).
    pub fn union<'a>(sealers: impl IntoIterator<Item = &'a Sealer>) -> Result<Self, SealError> {
        let mut all = Recipients::default();
        for sealer in sealers {
            all.0.extend(sealer.recipients.0.iter().cloned());
        }
        Self::new(all)
    }

    /// The fingerprints of the keys it seals to, sorted (see [`fingerprint`]).
    pub fn fingerprints(&self) -> &[String] {
        &self.fingerprints
    }

    fn encryptor(&self) -> Result<age::Encryptor, SealError> {
        Ok(age::Encryptor::with_recipients(
            self.recipients.0.iter().map(SealRecipient::as_dyn),
        )?)
    }

    /// Starts a sealed stream into `output`. Plaintext written to the returned writer is
    /// encrypted in 64 KiB chunks as it arrives, so memory stays bounded whatever the size.
    pub fn seal_to<W: Write>(&self, output: W) -> Result<SealWriter<W>, SealError> {
        Ok(SealWriter {
            inner: self.encryptor()?.wrap_output(output)?,
        })
    }

    /// Seals a small value (such as a summary) in memory.
    pub fn seal_bytes(&self, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut writer = self.seal_to(Vec::with_capacity(plaintext.len() + 256))?;
        writer.write_all(plaintext)?;
        writer.finish()
    }
}

/// A sealed stream in progress. [`SealWriter::finish`] must be called: without it the last
/// chunk is never written and the file does not decrypt.
#[must_use = "a sealed stream is incomplete until finish() is called"]
pub struct SealWriter<W: Write> {
    inner: age::stream::StreamWriter<W>,
}

impl<W: Write> SealWriter<W> {
    /// Writes the final chunk and returns the underlying writer.
    pub fn finish(self) -> Result<W, SealError> {
        Ok(self.inner.finish()?)
    }
}

impl<W: Write> Write for SealWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_bytes_open_with_the_identity_only() {
        let id = age::x25519::Identity::generate();
        let other = age::x25519::Identity::generate();
        let mut recipients = Recipients::default();
        recipients.push_x25519(id.to_public());
        let sealer = Sealer::new(recipients).expect("one recipient");
        let sealed = sealer.seal_bytes(b"secret case file").expect("seal");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        let opened = Identities::from_x25519(vec![id])
            .open_bytes(&sealed)
            .expect("open");
        assert_eq!(opened, b"secret case file");
        assert!(
            Identities::from_x25519(vec![other])
                .open_bytes(&sealed)
                .is_err()
        );
    }

    #[test]
    fn ssh_and_age_recipients_parse() {
        let ok = Recipients::parse(&[
            "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p".into(),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN alice@rust".into(),
        ])
        .expect("valid keys");
        assert_eq!(ok.len(), 2);
        assert!(Recipients::parse(&["ecdsa-sha2-nistp256 AAAA".into()]).is_err());
        assert!(Recipients::parse(&["ssh-ed25519 garbage".into()]).is_err());
        assert!(Sealer::new(Recipients::default()).is_err());
    }
}
