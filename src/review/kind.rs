//! What a review failure means to the one who asked: the kind of failure (the desk turns
//! it into an HTTP status) and the CLI's exit code, decided by the first cause in the
//! error's chain that says more than a plain failure.

use std::error::Error;

use super::ReviewError;
use crate::admin::client::ClientError;
use crate::seal::SealError;

/// Exit codes (also listed in `--help` and the README).
pub mod exit {
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const UNREACHABLE: u8 = 3;
    pub const NOT_FOUND: u8 = 4;
    pub const DECRYPT: u8 = 5;
    pub const AUDIT_BROKEN: u8 = 6;
    pub const RELEASE_REFUSED: u8 = 7;
    pub const FORBIDDEN: u8 = 8;
}

/// What a failure means to the one who asked, whatever step it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bad usage, or a request the admin API refused as malformed (a 4xx answer).
    Usage,
    /// The admin API could not be reached, did not take the request or did not answer.
    Unreachable,
    /// No such message (the admin API answered 404, or a deletion found nothing).
    NotFound,
    /// A message or summary could not be decrypted with the reviewer's identity.
    Decrypt,
    /// The audit chain does not verify.
    AuditBroken,
    /// The submission server did not take a released message.
    ReleaseRefused,
    /// The admin API refused the caller's principal the action (403): its roles do not
    /// grant it.
    Forbidden,
    /// Any other failure.
    Other,
}

impl Kind {
    /// The exit code `reclaim` ends with.
    pub fn exit_code(self) -> u8 {
        match self {
            Kind::Usage => exit::USAGE,
            Kind::Unreachable => exit::UNREACHABLE,
            Kind::NotFound => exit::NOT_FOUND,
            Kind::Decrypt => exit::DECRYPT,
            Kind::AuditBroken => exit::AUDIT_BROKEN,
            Kind::ReleaseRefused => exit::RELEASE_REFUSED,
            Kind::Forbidden => exit::FORBIDDEN,
            Kind::Other => exit::FAILURE,
        }
    }

    /// The kind of a whole chain: that of the first cause, outermost first, that decides
    /// one ([`Kind::of`]); [`Kind::Other`] when none does.
    pub fn of_chain(error: &(dyn Error + 'static)) -> Kind {
        std::iter::successors(Some(error), |e| (*e).source())
            .find_map(Kind::of)
            .unwrap_or(Kind::Other)
    }

    /// The kind one cause decides on its own, if any: a review failure that knows its
    /// kind, an admin API client error (also the one a body reader's I/O error carries
    /// inside), or an age decryption failure. Anything else leaves it to its sources.
    pub fn of(cause: &(dyn Error + 'static)) -> Option<Kind> {
        if let Some(review) = cause.downcast_ref::<ReviewError>() {
            return review.own_kind();
        }
        let client = cause.downcast_ref::<ClientError>().or_else(|| {
            cause
                .downcast_ref::<std::io::Error>()
                .and_then(ClientError::inside)
        });
        if let Some(client) = client {
            return Some(Kind::of_client(client));
        }
        cause.downcast_ref::<SealError>().and_then(Kind::of_seal)
    }

    fn of_client(error: &ClientError) -> Kind {
        match error {
            error if error.is_unreachable() => Kind::Unreachable,
            ClientError::Status { status: 404, .. } => Kind::NotFound,
            ClientError::Status { status: 403, .. } => Kind::Forbidden,
            ClientError::Status { status, .. } if (400..500).contains(status) => Kind::Usage,
            _ => Kind::Other,
        }
    }

    fn of_seal(error: &SealError) -> Option<Kind> {
        matches!(error, SealError::Decrypt(_)).then_some(Kind::Decrypt)
    }
}

impl ReviewError {
    /// What kind of failure this is: the first cause in its chain, outermost first, that
    /// says something more specific than a plain failure decides.
    pub fn kind(&self) -> Kind {
        Kind::of_chain(self)
    }

    /// The CLI's exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        self.kind().exit_code()
    }

    /// The kind this error decides by itself. A transparent variant stands in its chain
    /// for the error it wraps, so it answers for that one.
    fn own_kind(&self) -> Option<Kind> {
        match self {
            ReviewError::Admin(client) => Some(Kind::of_client(client)),
            ReviewError::Identity(seal) => Kind::of_seal(seal),
            // A boxed source stands in the chain as the box, which no downcast sees
            // through: the variant answers for what it holds.
            ReviewError::Decrypt { source, .. } => Kind::of_seal(source),
            ReviewError::Write(io) => ClientError::inside(io).map(Kind::of_client),
            ReviewError::Usage(_) => Some(Kind::Usage),
            ReviewError::NotFound(_) => Some(Kind::NotFound),
            ReviewError::AuditBroken(_) => Some(Kind::AuditBroken),
            ReviewError::ReleaseRefused { .. } => Some(Kind::ReleaseRefused),
            ReviewError::Reseal {
                source: crate::seal::reseal::ResealError::Seal(seal),
                ..
            } => Kind::of_seal(seal),
            ReviewError::Reseal { .. }
            | ReviewError::Readers(_)
            | ReviewError::Unfinished(_)
            | ReviewError::Config(_)
            | ReviewError::Missing(_)
            | ReviewError::BadTime { .. }
            | ReviewError::ServerId(_)
            | ReviewError::NotBase64 { .. }
            | ReviewError::BadSummary { .. }
            | ReviewError::Unrecorded(_)
            | ReviewError::Address { .. }
            | ReviewError::Password(_)
            | ReviewError::Io { .. }
            | ReviewError::Certificate { .. }
            | ReviewError::Tls(_)
            | ReviewError::Envelope(_)
            | ReviewError::Interrupted(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::smtp_client::{Deadlines, DeliveryError};
    use crate::store::MessageId;

    fn connect() -> ClientError {
        ClientError::Connect {
            path: PathBuf::from("/run/reclaim/admin.sock"),
            source: std::io::Error::from(ErrorKind::NotFound),
        }
    }

    fn status(status: u16) -> ClientError {
        ClientError::Status {
            status,
            message: format!("answered {status}"),
        }
    }

    /// A body reader's I/O error with the client error that ended the body inside.
    fn carrying(client: ClientError) -> std::io::Error {
        std::io::Error::other(client)
    }

    fn timeout() -> ClientError {
        ClientError::Timeout {
            endpoint: "/run/reclaim/admin.sock".into(),
            after: Duration::from_secs(60),
        }
    }

    fn decrypt(source: SealError) -> ReviewError {
        ReviewError::decrypt("cannot decrypt message x", source)
    }

    fn bad_time() -> ReviewError {
        let text = "last tuesday".to_owned();
        let source = humantime::parse_duration(&text).expect_err("not an age");
        ReviewError::BadTime { text, source }
    }

    #[test]
    fn admin_api_failures_keep_their_exit_codes() {
        let cases = [
            (connect(), exit::UNREACHABLE),
            (timeout(), exit::UNREACHABLE),
            (status(404), exit::NOT_FOUND),
            (status(400), exit::USAGE),
            (status(409), exit::USAGE),
            (status(403), exit::FORBIDDEN),
            (status(500), exit::FAILURE),
            (ClientError::Protocol("no JSON".into()), exit::FAILURE),
            (ClientError::Tls("bad CA".into()), exit::FAILURE),
        ];
        for (client, code) in cases {
            let text = client.to_string();
            let error = ReviewError::from(client);
            assert_eq!(error.exit_code(), code, "{text}");
            assert_eq!(error.to_string(), text, "the client's words, unchanged");
        }
        let recorded = ReviewError::Unrecorded(status(404));
        assert_eq!(recorded.exit_code(), exit::NOT_FOUND);
        assert_eq!(
            ReviewError::Unrecorded(connect()).exit_code(),
            exit::UNREACHABLE
        );
    }

    #[test]
    fn a_client_error_inside_an_io_error_decides() {
        // Reading a sealed body that the server stopped sending, while decrypting it.
        let read = decrypt(SealError::Io(carrying(timeout())));
        assert_eq!(read.kind(), Kind::Unreachable);
        assert_eq!(read.exit_code(), exit::UNREACHABLE);
        let refused = decrypt(SealError::Io(carrying(status(404))));
        assert_eq!(refused.exit_code(), exit::NOT_FOUND);
        assert_eq!(
            ReviewError::Write(carrying(connect())).exit_code(),
            exit::UNREACHABLE
        );
        let plain = std::io::Error::from(ErrorKind::PermissionDenied);
        assert_eq!(decrypt(SealError::Io(plain)).exit_code(), exit::FAILURE);
        let full = std::io::Error::from(ErrorKind::StorageFull);
        assert_eq!(ReviewError::Write(full).exit_code(), exit::FAILURE);
    }

    #[test]
    fn every_kind_has_its_exit_code() {
        let no_key = || SealError::Decrypt(age::DecryptError::NoMatchingKeys);
        let cases = [
            (ReviewError::Usage("bad id".into()), exit::USAGE),
            (bad_time(), exit::FAILURE),
            (ReviewError::NotFound("x".into()), exit::NOT_FOUND),
            (decrypt(no_key()), exit::DECRYPT),
            (
                decrypt(SealError::Summary(crate::seal::SummaryDefect::Truncated)),
                exit::FAILURE,
            ),
            (ReviewError::Identity(no_key()), exit::DECRYPT),
            (
                ReviewError::Identity(SealError::Identity {
                    path: "key.txt".into(),
                    message: "no identity in it".into(),
                }),
                exit::FAILURE,
            ),
            (
                ReviewError::AuditBroken("record 3".into()),
                exit::AUDIT_BROKEN,
            ),
            (
                ReviewError::ReleaseRefused {
                    relay: "relay.new.example:587".into(),
                    id: MessageId::new(),
                    refusal: Box::new(DeliveryError::permanent("reply 550 5.7.1")),
                    deadlines: Deadlines {
                        connect: Duration::from_secs(1),
                        reply: Duration::from_secs(2),
                        attempt: Duration::from_secs(3),
                    },
                },
                exit::RELEASE_REFUSED,
            ),
            (ReviewError::Missing("no identity".into()), exit::FAILURE),
            (
                ReviewError::Interrupted("a thread panicked".into()),
                exit::FAILURE,
            ),
            (
                ReviewError::Io {
                    what: "[release] ca",
                    path: PathBuf::from("/etc/reclaim/ca.pem"),
                    source: std::io::Error::from(ErrorKind::NotFound),
                },
                exit::FAILURE,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(error.exit_code(), code, "{}", error.with_causes());
        }
    }

    #[test]
    fn the_outermost_deciding_cause_wins() {
        // A body reader's failure inside an age error is still a decryption failure, as
        // the first cause that decides is the age error.
        let age = age::DecryptError::Io(carrying(timeout()));
        assert_eq!(decrypt(SealError::Decrypt(age)).kind(), Kind::Decrypt);
        // A cause that decides nothing passes the question on to its own sources.
        assert_eq!(Kind::of(&bad_time()), None);
        assert_eq!(Kind::of(&ReviewError::Usage("x".into())), Some(Kind::Usage));
        assert_eq!(Kind::of_chain(&std::io::Error::other("plain")), Kind::Other);
    }
}
