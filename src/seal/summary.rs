//! Summaries sealed under their message's own file key.
//!
//! A message is an age file: a random file key, wrapped once per reviewer key in the
//! header's stanzas. The summary (envelope, subject, …) used to be a second age file with
//! its own file key, so every message cost two X25519 key agreements on the gateway. Now
//! the summary is encrypted under a key derived from the message's file key, and carries a
//! copy of the message's stanzas so that a reviewer can open it without reading the message:
//!
//! ```text
//! reclaim.summary/v2\n
//! -> X25519 <ephemeral share>\n        the message's stanzas, in age's own encoding
//! <wrapped file key>\n
//! ---\n
//! ChaCha20-Poly1305(HKDF-SHA256(salt "", label "reclaim.summary/v2", file key), zero nonce)
//! ```
//!
//! The file key is random per message and the derived key seals exactly one summary, so the
//! zero nonce is never reused (age's own header MAC and stanza bodies rely on the same rule).
//! Nothing is weaker than before: only a holder of a reviewer key can unwrap the file key,
//! and the gateway forgets the derived key once the summary is sealed, as the stream writer
//! forgets the payload key. Summaries written before this format are plain age files and
//! still open ([`Identities::open_summary`] tells them apart by their first line).

use std::cell::RefCell;
use std::collections::HashSet;
use std::io::Write;

use age::secrecy::{ExposeSecret, SecretBox};
use age_core::format::{FileKey, Stanza};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;

use super::{Identities, SealError, SealWriter, Sealer};

/// First line of a summary sealed under its message's file key.
pub(super) const MAGIC: &[u8] = b"reclaim.summary/v2\n";
/// HKDF label that separates the summary key from age's own uses of the file key
/// ("header", "payload").
const KEY_LABEL: &[u8] = b"reclaim.summary/v2";
/// Ends the stanzas, as in an age header (which follows it with the MAC).
pub(super) const STANZAS_END: &[u8] = b"---\n";
/// First line of an age file: a summary sealed on its own, as before the v2 format.
pub(super) const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";

/// Seals the summary of one message, with the key material of that message.
pub struct SummarySealer {
    stanzas: Vec<u8>,
    key: SecretBox<[u8; 32]>,
}

impl SummarySealer {
    /// Seals the summary; consumes the key.
    pub fn seal(self, plaintext: &[u8]) -> Vec<u8> {
        let ciphertext = age_core::primitives::aead_encrypt(self.key.expose_secret(), plaintext);
        let mut out = Vec::with_capacity(
            MAGIC.len() + self.stanzas.len() + STANZAS_END.len() + ciphertext.len(),
        );
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.stanzas);
        out.extend_from_slice(STANZAS_END);
        out.extend_from_slice(&ciphertext);
        out
    }
}

pub(super) fn summary_key(file_key: &FileKey) -> SecretBox<[u8; 32]> {
    SecretBox::new(Box::new(age_core::primitives::hkdf(
        &[],
        KEY_LABEL,
        file_key.expose_secret(),
    )))
}

/// A recipient that passes the file key on to the real one and keeps what the summary
/// needs: the derived key and the stanzas in their age encoding.
struct Tap<'a> {
    inner: &'a dyn age::Recipient,
    seen: &'a RefCell<Seen>,
}

#[derive(Default)]
struct Seen {
    key: Option<SecretBox<[u8; 32]>>,
    stanzas: Vec<u8>,
}

impl age::Recipient for Tap<'_> {
    fn wrap_file_key(
        &self,
        file_key: &FileKey,
    ) -> Result<(Vec<Stanza>, HashSet<String>), age::EncryptError> {
        let (stanzas, labels) = self.inner.wrap_file_key(file_key)?;
        let mut seen = self.seen.borrow_mut();
        if seen.key.is_none() {
            seen.key = Some(summary_key(file_key));
        }
        for stanza in &stanzas {
            write_stanza(&mut seen.stanzas, stanza);
        }
        Ok((stanzas, labels))
    }
}

/// age's stanza encoding: `-> tag args…`, then the body in unpadded base64, wrapped at 64
/// columns, ending with a short (possibly empty) line.
pub(super) fn write_stanza(out: &mut Vec<u8>, stanza: &Stanza) {
    out.extend_from_slice(b"-> ");
    out.extend_from_slice(stanza.tag.as_bytes());
    for arg in &stanza.args {
        out.push(b' ');
        out.extend_from_slice(arg.as_bytes());
    }
    out.push(b'\n');
    let body = STANDARD_NO_PAD.encode(&stanza.body);
    let mut lines = body.as_bytes().chunks_exact(64);
    for line in lines.by_ref() {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(lines.remainder());
    out.push(b'\n');
}

impl Sealer {
    /// Starts the sealed stream of a message, and returns with it the sealer of its
    /// summary, which reuses the message's file key instead of wrapping a second one.
    pub fn seal_message<W: Write>(
        &self,
        output: W,
    ) -> Result<(SealWriter<W>, SummarySealer), SealError> {
        let seen = RefCell::new(Seen::default());
        let taps: Vec<Tap<'_>> = self
            .recipients
            .0
            .iter()
            .map(|r| Tap {
                inner: r.as_dyn(),
                seen: &seen,
            })
            .collect();
        let encryptor =
            age::Encryptor::with_recipients(taps.iter().map(|t| t as &dyn age::Recipient))?;
        let writer = SealWriter {
            inner: encryptor.wrap_output(output)?,
        };
        drop(taps);
        let Seen { key, stanzas } = seen.into_inner();
        let key = key.ok_or(SealError::Encrypt(age::EncryptError::MissingRecipients))?;
        Ok((writer, SummarySealer { stanzas, key }))
    }
}

/// Why a sealed summary does not open (when its key stanzas do not: [`SealError::Decrypt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryDefect {
    /// Neither this format nor an age file.
    Unknown,
    /// The key stanzas do not parse.
    Stanzas,
    /// Shorter than its authentication tag.
    Truncated,
    /// The tag does not verify: damaged, or sealed under another message's key.
    Undecryptable,
}

impl std::fmt::Display for SummaryDefect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SummaryDefect::Unknown => "neither a reclaim summary nor an age file",
            SummaryDefect::Stanzas => "its key stanzas are malformed",
            SummaryDefect::Truncated => "it is truncated",
            SummaryDefect::Undecryptable => {
                "it does not decrypt (damaged, or not this message's key)"
            }
        })
    }
}

impl Identities {
    /// Opens a sealed summary: one sealed under its message's file key, or (written before
    /// that format) an age file of its own.
    pub fn open_summary(&self, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.starts_with(AGE_MAGIC) {
            return self.open_bytes(sealed);
        }
        let (stanzas, ciphertext) = split(sealed).map_err(SealError::Summary)?;
        let file_key = self.unwrap_file_key(&stanzas)?;
        decrypt(&file_key, ciphertext).map_err(SealError::Summary)
    }
}

/// Most stanzas read from one header: more than a header of [`super::reseal::MAX_HEADER`]
/// bytes can hold.
const MAX_STANZAS: usize = 4096;

/// Reads age stanzas up to a line starting with `end`; `None` if one is malformed, the
/// input ends first, or there are more than any header reclaim writes.
pub(super) fn read_stanzas(rest: &mut &[u8], end: &[u8]) -> Option<Vec<Stanza>> {
    let mut stanzas = Vec::new();
    while !rest.starts_with(end) {
        if stanzas.len() >= MAX_STANZAS {
            return None;
        }
        let (after, stanza) = age_core::format::read::age_stanza(rest).ok()?;
        stanzas.push(Stanza::from(stanza));
        *rest = after;
    }
    Some(stanzas)
}

/// A summary in this format taken apart: its copy of the message's stanzas, and its
/// ciphertext.
pub(super) fn split(sealed: &[u8]) -> Result<(Vec<Stanza>, &[u8]), SummaryDefect> {
    let mut rest = sealed.strip_prefix(MAGIC).ok_or(SummaryDefect::Unknown)?;
    let stanzas = read_stanzas(&mut rest, STANZAS_END).ok_or(SummaryDefect::Stanzas)?;
    Ok((stanzas, &rest[STANZAS_END.len()..]))
}

/// Decrypts a summary's ciphertext with its message's file key.
pub(super) fn decrypt(file_key: &FileKey, ciphertext: &[u8]) -> Result<Vec<u8>, SummaryDefect> {
    let size = ciphertext
        .len()
        .checked_sub(16)
        .ok_or(SummaryDefect::Truncated)?;
    age_core::primitives::aead_decrypt(summary_key(file_key).expose_secret(), size, ciphertext)
        .map_err(|_| SummaryDefect::Undecryptable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::Recipients;

    fn sealer_for(ids: &[&age::x25519::Identity]) -> Sealer {
        let mut recipients = Recipients::default();
        for id in ids {
            recipients.push_x25519(id.to_public());
        }
        Sealer::new(recipients).expect("recipients")
    }

    /// The message part of a seal_message pair, and the sealed summary.
    fn seal_pair(sealer: &Sealer, message: &[u8], summary: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let (mut writer, summary_sealer) = sealer.seal_message(Vec::new()).expect("seal");
        writer.write_all(message).expect("write");
        let sealed_message = writer.finish().expect("finish");
        (sealed_message, summary_sealer.seal(summary))
    }

    #[test]
    fn summary_opens_with_any_reviewer_key_and_no_other() {
        let alice = age::x25519::Identity::generate();
        let bob = age::x25519::Identity::generate();
        let eve = age::x25519::Identity::generate();
        let sealer = sealer_for(&[&alice, &bob]);
        let (message, summary) = seal_pair(&sealer, b"the case file", b"{\"subject\":\"x\"}");
        assert!(summary.starts_with(MAGIC));
        assert!(!summary.windows(7).any(|w| w == b"subject"));
        for id in [&alice, &bob] {
            let ids = Identities::from_x25519(vec![id.clone()]);
            assert_eq!(
                ids.open_summary(&summary).expect("open"),
                b"{\"subject\":\"x\"}"
            );
            assert_eq!(ids.open_bytes(&message).expect("message"), b"the case file");
        }
        let eve = Identities::from_x25519(vec![eve]);
        assert!(eve.open_summary(&summary).is_err());
    }

    #[test]
    fn summary_carries_the_message_stanzas_and_no_second_key() {
        let alice = age::x25519::Identity::generate();
        let sealer = sealer_for(&[&alice]);
        let (message, summary) = seal_pair(&sealer, b"body", b"summary");
        // The summary's stanzas are byte for byte those of the message header, so the
        // gateway wrapped one file key, not two.
        let stanzas = &summary[MAGIC.len()..];
        let stanzas = &stanzas[..stanzas
            .windows(STANZAS_END.len())
            .position(|w| w == STANZAS_END)
            .expect("end")];
        assert!(stanzas.starts_with(b"-> X25519 "));
        let header = &message[AGE_MAGIC.len()..];
        assert!(header.starts_with(stanzas), "same stanzas as the message");
        assert_eq!(
            summary.windows(3).filter(|w| w == b"-> ").count(),
            1,
            "one stanza per reviewer key"
        );
    }

    #[test]
    fn damaged_or_foreign_summaries_are_refused_not_misread() {
        let alice = age::x25519::Identity::generate();
        let ids = Identities::from_x25519(vec![alice.clone()]);
        let sealer = sealer_for(&[&alice]);
        let (_, summary) = seal_pair(&sealer, b"body", b"summary text");
        let (_, other) = seal_pair(&sealer, b"body", b"other summary");

        let mut flipped = summary.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(ids.open_summary(&flipped).is_err(), "tag check");

        // Another message's stanzas in front of this ciphertext: a different key.
        let split = |s: &[u8]| {
            let at = s.windows(4).position(|w| w == STANZAS_END).expect("end") + 4;
            (s[..at].to_vec(), s[at..].to_vec())
        };
        let (other_head, _) = split(&other);
        let (_, ciphertext) = split(&summary);
        assert!(
            ids.open_summary(&[other_head, ciphertext].concat())
                .is_err()
        );

        for broken in [
            &summary[..MAGIC.len() + 10],
            &summary[..summary.len() - 17],
            b"reclaim.summary/v2\n---\n0123456789abcdef0123".as_slice(),
            b"something else entirely".as_slice(),
            b"".as_slice(),
        ] {
            assert!(ids.open_summary(broken).is_err(), "{broken:?}");
        }
        let defect = |sealed: &[u8]| match ids.open_summary(sealed) {
            Err(SealError::Summary(defect)) => Some(defect),
            _ => None,
        };
        assert_eq!(defect(&flipped), Some(SummaryDefect::Undecryptable));
        assert_eq!(
            defect(b"something else entirely"),
            Some(SummaryDefect::Unknown)
        );
        let (head, _) = split(&summary);
        let tagless = [head.as_slice(), b"short"].concat();
        assert_eq!(defect(&tagless), Some(SummaryDefect::Truncated));
    }

    #[test]
    fn summaries_sealed_on_their_own_still_open() {
        let alice = age::x25519::Identity::generate();
        let sealer = sealer_for(&[&alice]);
        let old = sealer.seal_bytes(b"an older summary").expect("seal");
        let ids = Identities::from_x25519(vec![alice]);
        assert_eq!(ids.open_summary(&old).expect("open"), b"an older summary");
    }

    #[test]
    fn long_stanza_bodies_round_trip_through_age_encoding() {
        for len in [0, 1, 47, 48, 49, 96, 200] {
            let stanza = Stanza {
                tag: "test".into(),
                args: vec!["a".into(), "b".into()],
                body: (0..len).map(|i| i as u8).collect(),
            };
            let mut text = Vec::new();
            write_stanza(&mut text, &stanza);
            let (rest, parsed) = age_core::format::read::age_stanza(&text).expect("parses");
            assert!(rest.is_empty(), "len {len}");
            assert_eq!(Stanza::from(parsed), stanza, "len {len}");
        }
    }
}
