//! What can go wrong while reviewing: one error for every review step, each variant
//! keeping the error it came from as its source (what it means to callers is in
//! [`super::Kind`]).

use std::error::Error;
use std::path::PathBuf;

use crate::admin::client::ClientError;
use crate::config::{ConfigError, PasswordError};
use crate::seal::SealError;
use crate::smtp_client::{Deadlines, DeliveryError};
use crate::store::MessageId;

/// Why a review step failed. Each variant keeps the error it came from as its source, so
/// the whole chain can be printed, and [`ReviewError::kind`] can look into it.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The admin API could not be reached, refused the request or answered oddly.
    #[error(transparent)]
    Admin(#[from] ClientError),
    /// The config the reviewer named (or the default one, when nothing else says where
    /// the admin API is) could not be loaded.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Something the reviewer has to give is not there: an admin socket, an identity, a
    /// certificate for `--admin`, the `[release]` section.
    #[error("{0}")]
    Missing(String),
    /// Bad usage: a malformed message id, a bad age, no address to release to.
    #[error("{0}")]
    Usage(String),
    /// A time that is neither a date, an RFC 3339 time nor an age. A plain failure, not
    /// bad usage: `reclaim` has always answered it with exit 1.
    #[error("{text:?} is not a date (2026-11-01), an RFC 3339 time, or an age (7d)")]
    BadTime {
        text: String,
        #[source]
        source: humantime::DurationError,
    },
    /// No message has the id (or ids) named.
    #[error("no such message: {0}")]
    NotFound(String),
    /// The reviewer's identity file could not be loaded (or its passphrase was wrong).
    #[error(transparent)]
    Identity(SealError),
    /// A summary or a message could not be decrypted, or not read while decrypting.
    /// (Boxed: an age error is large, and this enum is in every review step's result.)
    #[error("{what}")]
    Decrypt {
        what: String,
        #[source]
        source: Box<SealError>,
    },
    /// A sealed summary as the admin API sent it is not base64.
    #[error("message {id}: summary is not base64")]
    NotBase64 {
        id: String,
        #[source]
        source: base64::DecodeError,
    },
    /// An id the admin API listed that is not a message id.
    #[error("{0}")]
    ServerId(String),
    /// An opened summary is not the JSON of a summary.
    #[error("{what}")]
    BadSummary {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// The audit trail's hash chain does not verify: where and why it breaks.
    #[error("audit chain broken: {0}")]
    AuditBroken(String),
    /// The submission server did not take a released message (its own words, and for a
    /// deadline, which one and how long it is).
    #[error(
        "the submission server {relay} did not take message {id}: {}",
        explain(.refusal, .deadlines)
    )]
    ReleaseRefused {
        relay: String,
        id: MessageId,
        refusal: Box<DeliveryError>,
        deadlines: Deadlines,
    },
    /// A message was released, but the admin API did not take its audit record.
    #[error("released, but the audit record could not be written; report this")]
    Unrecorded(#[source] ClientError),
    /// An address in `[release]` or one to release to does not parse.
    #[error("{what}")]
    Address {
        what: String,
        #[source]
        source: lettre::address::AddressError,
    },
    /// The `[release]` password could not be read.
    #[error("[release] password")]
    Password(#[source] PasswordError),
    /// A file the review needs could not be read.
    #[error("{what} {}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The `[release] ca` file is not a PEM certificate.
    #[error("[release] ca {}", .path.display())]
    Certificate {
        path: PathBuf,
        #[source]
        source: lettre::transport::smtp::Error,
    },
    /// The TLS settings for the submission server cannot be built.
    #[error(transparent)]
    Tls(lettre::transport::smtp::Error),
    /// The envelope of a release cannot be built from its addresses.
    #[error("cannot build the release envelope")]
    Envelope(#[source] lettre::error::Error),
    /// Writing what the caller asked for (an mbox, a CSV) failed; the caller names where.
    #[error(transparent)]
    Write(std::io::Error),
    /// The config's `[seal] recipients` and `[[domain]] readers` do not make reader
    /// groups to re-seal for.
    #[error("the config's [seal] recipients and [[domain]] readers")]
    Readers(#[source] SealError),
    /// One message could not be rewrapped.
    #[error("message {id} cannot be re-sealed")]
    Reseal {
        id: MessageId,
        #[source]
        source: crate::seal::reseal::ResealError,
    },
    /// A run over many messages left some undone (each is reported as it happens).
    #[error("{0}")]
    Unfinished(String),
    /// The work stopped before it finished: a worker thread panicked, or the desk is
    /// stopping.
    #[error("{0}")]
    Interrupted(String),
}

impl ReviewError {
    /// A decryption failure, saying what could not be decrypted.
    pub fn decrypt(what: impl Into<String>, source: SealError) -> Self {
        ReviewError::Decrypt {
            what: what.into(),
            source: Box::new(source),
        }
    }

    /// Whether this is a summary or message sealed only to keys the reviewer does not
    /// hold (as opposed to a damaged one).
    pub fn is_not_for_this_reviewer(&self) -> bool {
        matches!(
            self,
            ReviewError::Decrypt { source, .. }
                if matches!(**source, SealError::Decrypt(age::DecryptError::NoMatchingKeys))
        )
    }

    /// The error and every cause under it, joined by `: `, as the CLI prints it.
    pub fn with_causes(&self) -> String {
        let mut text = self.to_string();
        let mut cause = self.source();
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
        text
    }
}

/// A refused submission for the reviewer: the server's own words (this is their terminal
/// or their browser, not a log), and for a deadline, which one and how long it is.
fn explain(refusal: &DeliveryError, deadlines: &Deadlines) -> String {
    let mut text = refusal.to_string();
    if let Some(detail) = refusal.detail() {
        text.push_str(&format!(" ({detail})"));
    }
    for (key, limit) in [
        ("connect_timeout", deadlines.connect),
        ("reply_timeout", deadlines.reply),
        ("attempt_timeout", deadlines.attempt),
    ] {
        if text.contains(key) {
            text.push_str(&format!("; [release] {key} is {limit:?}"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn bad_time() -> ReviewError {
        let text = "last tuesday".to_owned();
        let source = humantime::parse_duration(&text).expect_err("not an age");
        ReviewError::BadTime { text, source }
    }

    #[test]
    fn causes_are_printed_in_order() {
        let error = bad_time();
        let text = error.with_causes();
        assert!(
            text.starts_with(
                "\"last tuesday\" is not a date (2026-11-01), an RFC 3339 time, or an age (7d): "
            ),
            "{text}"
        );
        let refused = ReviewError::ReleaseRefused {
            relay: "relay.new.example:587".into(),
            id: MessageId::new(),
            refusal: Box::new(DeliveryError::temporary("no reply within reply_timeout")),
            deadlines: Deadlines {
                connect: Duration::from_secs(1),
                reply: Duration::from_secs(2),
                attempt: Duration::from_secs(3),
            },
        };
        assert!(
            refused.with_causes().ends_with(
                "temporary failure: no reply within reply_timeout; [release] reply_timeout is 2s"
            ),
            "{}",
            refused.with_causes()
        );
    }
}
