//! The SMTP client both notices and `reclaim release` hand messages over with: every step
//! bounded (connect, each reply, the whole attempt), so no remote server can hold a worker
//! slot or a reviewer's terminal for longer than the configured deadlines.

pub mod deadline;
pub mod dialogue;

use std::net::SocketAddr;
use std::time::Duration;

pub use dialogue::{Accepted, Handover, StartTls};

/// Why a hand-over failed. `summary` is safe to log at any level (reply codes, never the
/// server's text); `detail` may echo addresses and is for debug logs only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth trying again later (4xx, timeouts, connection trouble, DNS trouble).
    #[error("temporary failure: {summary}")]
    Temporary { summary: String, detail: String },
    /// Will never work (5xx, invalid recipient, no reachable mail exchanger).
    #[error("permanent failure: {summary}")]
    Permanent { summary: String, detail: String },
}

impl DeliveryError {
    pub fn temporary(summary: impl Into<String>) -> Self {
        let summary = summary.into();
        Self::Temporary {
            detail: summary.clone(),
            summary,
        }
    }

    pub fn permanent(summary: impl Into<String>) -> Self {
        let summary = summary.into();
        Self::Permanent {
            detail: summary.clone(),
            summary,
        }
    }

    /// The server's own words, when they say more than the summary.
    pub fn detail(&self) -> Option<&str> {
        let (Self::Temporary { summary, detail } | Self::Permanent { summary, detail }) = self;
        (detail != summary).then_some(detail.as_str())
    }
}

/// The three deadlines of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// Longest wait for one TCP connection to be established.
    pub connect: Duration,
    /// Longest wait for any read or write to make progress.
    pub reply: Duration,
    /// Longest the whole attempt may take, lookups and every address tried included.
    pub attempt: Duration,
}

/// Runs one whole attempt under its overall deadline; running out is a temporary failure.
pub async fn within<T>(
    limit: Duration,
    attempt: impl Future<Output = Result<T, DeliveryError>>,
) -> Result<T, DeliveryError> {
    tokio::time::timeout(limit, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(DeliveryError::temporary(
                "the attempt took longer than attempt_timeout",
            ))
        })
}

/// The addresses of an operator's relay (its own host: they are not filtered).
pub async fn relay_addresses(host: &str, port: u16) -> Result<Vec<SocketAddr>, DeliveryError> {
    Ok(tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| DeliveryError::temporary(format!("relay host lookup failed: {e}")))?
        .collect())
}

/// Offers the message to each address in turn until one takes it. A permanent refusal ends
/// the attempt (another address of the same relay would answer the same); after temporary
/// failures the last one is returned.
pub async fn hand_to_first(
    addrs: &[SocketAddr],
    deadlines: Deadlines,
    handover: &Handover<'_>,
) -> Result<Accepted, DeliveryError> {
    let mut last = DeliveryError::temporary("the relay host has no address");
    for &addr in addrs {
        match dialogue::deliver_to(addr, deadlines.connect, deadlines.reply, handover).await {
            Ok(accepted) => return Ok(accepted),
            Err(permanent @ DeliveryError::Permanent { .. }) => return Err(permanent),
            Err(temporary) => last = temporary,
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::deadline::DeadlineStream;
    use super::*;
    use lettre::address::Envelope;
    use lettre::transport::smtp::extension::ClientId;
    use tokio::io::AsyncWriteExt;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn a_trickling_server_is_cut_off_by_attempt_timeout() {
        let (reply, whole) = (Duration::from_secs(60), Duration::from_secs(300));
        let (ours, mut theirs) = tokio::io::duplex(4096);
        // One byte well within each reply deadline, and never a whole greeting.
        tokio::spawn(async move {
            loop {
                if theirs.write_all(b"2").await.is_err() {
                    return;
                }
                tokio::time::sleep(reply - Duration::from_secs(10)).await;
            }
        });
        let hello = ClientId::Domain("mx.old.example".into());
        let to = "partner@partner.example".parse().expect("address");
        let envelope = Envelope::new(None, vec![to]).expect("envelope");
        let handover = Handover {
            hello: &hello,
            tls: &StartTls::Never,
            credentials: None,
            envelope: &envelope,
            message: b"x\r\n",
        };
        let started = Instant::now();
        let outcome = within(
            whole,
            dialogue::converse(Box::new(DeadlineStream::new(ours, reply)), &handover),
        )
        .await;
        assert!(
            matches!(&outcome, Err(DeliveryError::Temporary { summary, .. }) if summary.contains("attempt_timeout")),
            "{:?}",
            outcome.map(drop)
        );
        assert_eq!(started.elapsed(), whole);
    }

    #[test]
    fn detail_only_when_it_adds_something() {
        assert_eq!(DeliveryError::temporary("connect failed").detail(), None);
        let refused = DeliveryError::Permanent {
            summary: "reply 550 5.7.1".into(),
            detail: "relaying denied".into(),
        };
        assert_eq!(refused.detail(), Some("relaying denied"));
    }
}
