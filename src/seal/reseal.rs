//! Re-seal: a message's file key rewrapped for a new set of reviewer keys, on the
//! reviewer's machine, so that a retired reviewer's key stops opening past mail.
//!
//! An age file is a header (the file key wrapped once per key, then a MAC keyed by the
//! file key) followed by the payload, encrypted under a key derived from the same file key
//! and the payload's own nonce. Rewrapping the file key for other keys therefore changes
//! the header only: the payload's bytes stay as they are, and so does the summary's
//! ciphertext, whose key is derived from the file key too ([`super::summary`]); only the
//! summary's copy of the stanzas is replaced. The old header's MAC is checked before
//! anything is rewritten, so a damaged or forged header is refused, not blessed with a
//! fresh MAC.

use age::secrecy::ExposeSecret;
use age_core::format::{FileKey, Stanza};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hmac::Mac;

use super::summary::{
    self, AGE_MAGIC, MAGIC, STANZAS_END, SummaryDefect, read_stanzas, write_stanza,
};
use super::{Identities, SealError, Sealer};

/// The line that ends an age header's stanzas; the MAC follows it after a space.
const MAC_PREFIX: &[u8] = b"---";
/// HKDF label of the header MAC key (age's own).
const HEADER_KEY_LABEL: &[u8] = b"header";
/// A header larger than this is refused: it would take thousands of keys.
pub const MAX_HEADER: usize = 64 * 1024;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Why a message or summary cannot be rewrapped.
#[derive(Debug, thiserror::Error)]
pub enum ResealError {
    /// The sealed bytes do not start with an age header this code can read.
    #[error("not an age file header: {0}")]
    Header(&'static str),
    /// The header's MAC does not verify: damaged or forged.
    #[error("the header's MAC does not verify (damaged, or not written by reclaim)")]
    Mac,
    /// None of the reviewer's identities unwraps the file key, or wrapping failed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The summary does not open with the message's file key, or is not in a form this
    /// code can rewrap.
    #[error("summary cannot be rewrapped: {0}")]
    Summary(SummaryDefect),
}

/// The header of a sealed message, as its first bytes carry it.
pub struct Header<'a> {
    /// The header's bytes, MAC line included.
    pub bytes: &'a [u8],
    stanzas: Vec<Stanza>,
}

impl<'a> Header<'a> {
    /// Reads the header at the start of `sealed` (the whole message, or at least its first
    /// [`MAX_HEADER`] bytes).
    pub fn parse(sealed: &'a [u8]) -> Result<Self, ResealError> {
        let mut rest = sealed
            .strip_prefix(AGE_MAGIC)
            .ok_or(ResealError::Header("no age-encryption.org/v1 line"))?;
        let stanzas = read_stanzas(&mut rest, MAC_PREFIX).ok_or(ResealError::Header(
            "its stanzas are malformed or incomplete",
        ))?;
        // "--- " then the MAC, 32 bytes in unpadded base64 (43 characters), then "\n".
        let mac_line = rest
            .get(..MAC_PREFIX.len() + 1 + 43 + 1)
            .ok_or(ResealError::Header("it ends before its MAC"))?;
        if !mac_line.starts_with(b"--- ") || !mac_line.ends_with(b"\n") {
            return Err(ResealError::Header("its MAC line is malformed"));
        }
        let len = sealed.len() - rest.len() + mac_line.len();
        if len > MAX_HEADER {
            return Err(ResealError::Header("it is larger than reclaim writes"));
        }
        Ok(Self {
            bytes: &sealed[..len],
            stanzas,
        })
    }

    /// The MAC as the header carries it.
    fn mac(&self) -> Result<Vec<u8>, ResealError> {
        let encoded = &self.bytes[self.bytes.len() - 44..self.bytes.len() - 1];
        STANDARD_NO_PAD
            .decode(encoded)
            .map_err(|_| ResealError::Header("its MAC is not base64"))
    }

    /// What the MAC covers: everything up to and including `---`.
    fn covered(&self) -> &[u8] {
        &self.bytes[..self.bytes.len() - 45]
    }
}

/// How long the age header at the start of `sealed` is, if there is a whole one: what a
/// store checks a re-seal against, so that it replaces exactly the header (not a prefix
/// of it, nor header and payload).
pub fn header_length(sealed: &[u8]) -> Option<usize> {
    Header::parse(sealed).ok().map(|h| h.bytes.len())
}

fn header_mac(file_key: &FileKey, covered: &[u8]) -> HmacSha256 {
    let key = age_core::primitives::hkdf(&[], HEADER_KEY_LABEL, file_key.expose_secret());
    let mut mac = <HmacSha256 as Mac>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(covered);
    mac
}

/// The file key of a header, unwrapped with the reviewer's identities, after checking
/// the header's MAC with it.
fn file_key(identities: &Identities, header: &Header<'_>) -> Result<FileKey, ResealError> {
    let file_key = identities.unwrap_file_key(&header.stanzas)?;
    header_mac(&file_key, header.covered())
        .verify_slice(&header.mac()?)
        .map_err(|_| ResealError::Mac)?;
    Ok(file_key)
}

/// The file key wrapped for `sealer`'s keys: stanzas in age's encoding, and as a header.
struct Wrapped {
    stanzas: Vec<u8>,
    header: Vec<u8>,
}

fn wrap(file_key: &FileKey, sealer: &Sealer) -> Result<Wrapped, ResealError> {
    let mut stanzas = Vec::new();
    for recipient in &sealer.recipients.0 {
        let (wrapped, _labels) = recipient
            .as_dyn()
            .wrap_file_key(file_key)
            .map_err(SealError::Encrypt)?;
        for stanza in &wrapped {
            write_stanza(&mut stanzas, stanza);
        }
    }
    // As age does: a random extra stanza that readers must skip, so that they keep doing so.
    let mut header = Vec::with_capacity(AGE_MAGIC.len() + stanzas.len() + 128);
    header.extend_from_slice(AGE_MAGIC);
    header.extend_from_slice(&stanzas);
    write_stanza(&mut header, &age_core::format::grease_the_joint());
    header.extend_from_slice(MAC_PREFIX);
    let mac = header_mac(file_key, &header).finalize().into_bytes();
    header.push(b' ');
    header.extend_from_slice(STANDARD_NO_PAD.encode(mac).as_bytes());
    header.push(b'\n');
    Ok(Wrapped { stanzas, header })
}

/// A message rewrapped for new keys: the header to put in place of the old one, and the
/// summary to put in place of the old summary.
pub struct Rewrapped {
    /// The header being replaced, byte for byte (the store checks it is still there).
    pub old_header: Vec<u8>,
    pub header: Vec<u8>,
    pub summary: Vec<u8>,
}

/// Rewraps a message for `sealer`'s keys: `sealed_start` is the start of the sealed
/// message (its header at least), `summary` its sealed summary.
pub fn rewrap(
    identities: &Identities,
    sealer: &Sealer,
    sealed_start: &[u8],
    summary: &[u8],
) -> Result<Rewrapped, ResealError> {
    let header = Header::parse(sealed_start)?;
    let file_key = file_key(identities, &header)?;
    let wrapped = wrap(&file_key, sealer)?;
    let summary = if summary.starts_with(MAGIC) {
        rewrap_summary(&file_key, &wrapped, summary)?
    } else if summary.starts_with(AGE_MAGIC) {
        // A summary sealed as an age file of its own, before summaries shared the message's
        // file key: its own key, rewrapped the same way; its payload stays.
        let old = Header::parse(summary)?;
        let key = self::file_key(identities, &old)?;
        let new = wrap(&key, sealer)?;
        [new.header.as_slice(), &summary[old.bytes.len()..]].concat()
    } else {
        return Err(ResealError::Summary(SummaryDefect::Unknown));
    };
    Ok(Rewrapped {
        old_header: header.bytes.to_vec(),
        header: wrapped.header,
        summary,
    })
}

/// A v2 summary with the new stanzas in place of the old; its ciphertext is kept. The old
/// stanzas must be for the same file key: a summary from another message is refused.
fn rewrap_summary(
    file_key: &FileKey,
    wrapped: &Wrapped,
    summary: &[u8],
) -> Result<Vec<u8>, ResealError> {
    let (_, ciphertext) = summary::split(summary).map_err(ResealError::Summary)?;
    summary::decrypt(file_key, ciphertext).map_err(ResealError::Summary)?;
    Ok([MAGIC, &wrapped.stanzas, STANZAS_END, ciphertext].concat())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::seal::Recipients;

    fn sealer_for(ids: &[&age::x25519::Identity]) -> Sealer {
        let mut recipients = Recipients::default();
        for id in ids {
            recipients.push_x25519(id.to_public());
        }
        Sealer::new(recipients).expect("recipients")
    }

    fn seal(sealer: &Sealer, body: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let (mut writer, summary) = sealer.seal_message(Vec::new()).expect("seal");
        writer.write_all(body).expect("write");
        (
            writer.finish().expect("finish"),
            summary.seal(b"the summary"),
        )
    }

    fn opens(id: &age::x25519::Identity, message: &[u8], summary: &[u8]) -> bool {
        let ids = Identities::from_x25519(vec![id.clone()]);
        ids.open_bytes(message).is_ok() && ids.open_summary(summary).is_ok()
    }

    #[test]
    fn a_retired_key_opens_nothing_after_and_the_payload_is_unchanged() {
        let (alice, bob, carol) = (
            age::x25519::Identity::generate(),
            age::x25519::Identity::generate(),
            age::x25519::Identity::generate(),
        );
        let body = vec![7u8; 200_000];
        let (message, summary) = seal(&sealer_for(&[&alice, &bob]), &body);
        let by_alice = Identities::from_x25519(vec![alice.clone()]);
        let new = rewrap(
            &by_alice,
            &sealer_for(&[&alice, &carol]),
            &message,
            &summary,
        )
        .expect("rewrap");
        assert!(message.starts_with(&new.old_header));
        let resealed = [&new.header, &message[new.old_header.len()..]].concat();
        assert!(!opens(&bob, &resealed, &new.summary), "retired key");
        assert!(opens(&alice, &resealed, &new.summary));
        assert!(opens(&carol, &resealed, &new.summary), "new key");
        let ids = Identities::from_x25519(vec![carol]);
        assert_eq!(ids.open_bytes(&resealed).expect("open"), body);
        assert_eq!(
            ids.open_summary(&new.summary).expect("open"),
            b"the summary"
        );
        // The payload is byte for byte the one the gateway wrote.
        assert_eq!(
            &resealed[new.header.len()..],
            &message[new.old_header.len()..]
        );
    }

    #[test]
    fn summaries_sealed_on_their_own_are_rewrapped_too() {
        let (alice, bob) = (
            age::x25519::Identity::generate(),
            age::x25519::Identity::generate(),
        );
        let old = sealer_for(&[&alice, &bob]);
        let (message, _) = seal(&old, b"body");
        let summary = old.seal_bytes(b"an older summary").expect("seal");
        let new = rewrap(
            &Identities::from_x25519(vec![alice.clone()]),
            &sealer_for(&[&alice]),
            &message,
            &summary,
        )
        .expect("rewrap");
        let bob = Identities::from_x25519(vec![bob]);
        assert!(bob.open_summary(&new.summary).is_err());
        let alice = Identities::from_x25519(vec![alice]);
        assert_eq!(
            alice.open_summary(&new.summary).expect("open"),
            b"an older summary"
        );
    }

    #[test]
    fn forged_foreign_or_broken_input_is_refused() {
        let alice = age::x25519::Identity::generate();
        let eve = age::x25519::Identity::generate();
        let sealer = sealer_for(&[&alice]);
        let ids = Identities::from_x25519(vec![alice.clone()]);
        let (message, summary) = seal(&sealer, b"body");
        let (other, other_summary) = seal(&sealer, b"other");

        // A flipped bit in the stanzas' arguments fails the MAC (or the unwrap).
        let mut forged = message.clone();
        forged[AGE_MAGIC.len() + 12] ^= 1;
        assert!(rewrap(&ids, &sealer, &forged, &summary).is_err());
        // A flipped MAC.
        let header_len = Header::parse(&message).expect("parse").bytes.len();
        let mut forged = message.clone();
        forged[header_len - 3] ^= 1;
        assert!(matches!(
            rewrap(&ids, &sealer, &forged, &summary),
            Err(ResealError::Mac) | Err(ResealError::Header(_))
        ));
        // Another message's summary.
        assert!(matches!(
            rewrap(&ids, &sealer, &message, &other_summary),
            Err(ResealError::Summary(_))
        ));
        assert!(rewrap(&ids, &sealer, &other, &other_summary).is_ok());
        // Not this reviewer's message.
        let eves = Identities::from_x25519(vec![eve]);
        assert!(matches!(
            rewrap(&eves, &sealer, &message, &summary),
            Err(ResealError::Seal(_))
        ));
        for broken in [
            &message[..10],
            &message[..header_len - 5],
            b"".as_slice(),
            b"age-encryption.org/v1\n-> X25519\n".as_slice(),
        ] {
            assert!(rewrap(&ids, &sealer, broken, &summary).is_err());
        }
        assert!(rewrap(&ids, &sealer, &message, b"garbage").is_err());
    }

    #[test]
    fn the_new_header_is_what_age_itself_reads() {
        let alice = age::x25519::Identity::generate();
        let (message, summary) = seal(&sealer_for(&[&alice]), b"plain words");
        let ids = Identities::from_x25519(vec![alice.clone()]);
        let new = rewrap(&ids, &sealer_for(&[&alice]), &message, &summary).expect("rewrap");
        let resealed = [&new.header, &message[new.old_header.len()..]].concat();
        let parsed = Header::parse(&resealed).expect("parse");
        assert_eq!(parsed.bytes, new.header.as_slice());
        // age's own decryptor checks the MAC.
        let decryptor = age::Decryptor::new(&resealed[..]).expect("header");
        let mut out = Vec::new();
        std::io::Read::read_to_end(
            &mut decryptor
                .decrypt(std::iter::once(&alice as &dyn age::Identity))
                .expect("decrypt"),
            &mut out,
        )
        .expect("read");
        assert_eq!(out, b"plain words");
    }
}
