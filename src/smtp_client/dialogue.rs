//! One SMTP conversation that hands over a message: connect within `connect_timeout`, then
//! greeting, EHLO, STARTTLS, AUTH and the transaction over a [`DeadlineStream`], so that
//! every reply (and the TLS handshake) is waited for at most `reply_timeout`.

use std::net::SocketAddr;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;

use super::DeliveryError;
use super::deadline::DeadlineStream;

/// Whether and how to start TLS after EHLO.
#[derive(Clone)]
pub enum StartTls {
    Never,
    /// When the server offers it.
    Offered(TlsParameters),
    /// Or fail the attempt.
    Required(TlsParameters),
}

/// What one conversation needs besides the connection.
#[derive(Clone, Copy)]
pub struct Handover<'a> {
    pub hello: &'a ClientId,
    pub tls: &'a StartTls,
    pub credentials: Option<&'a Credentials>,
    pub envelope: &'a Envelope,
    pub message: &'a [u8],
}

/// A message the server took.
pub struct Accepted {
    /// Still open: the caller says goodbye without holding up the result.
    pub conn: AsyncSmtpConnection,
    /// The server's reply to the end of the data.
    pub reply: Response,
}

/// Connects to `addr` and hands the message over.
pub async fn deliver_to(
    addr: SocketAddr,
    connect_timeout: Duration,
    reply_timeout: Duration,
    handover: &Handover<'_>,
) -> Result<Accepted, DeliveryError> {
    let tcp =
        match tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Err(DeliveryError::temporary(format!("connect failed: {e}"))),
            Err(_) => {
                return Err(DeliveryError::temporary(
                    "connect took longer than connect_timeout",
                ));
            }
        };
    converse(Box::new(DeadlineStream::new(tcp, reply_timeout)), handover).await
}

/// The conversation itself, over a stream that is already connected.
pub async fn converse(
    stream: Box<dyn AsyncTokioStream>,
    handover: &Handover<'_>,
) -> Result<Accepted, DeliveryError> {
    let mut conn = AsyncSmtpConnection::connect_with_transport(stream, handover.hello)
        .await
        .map_err(classify)?;
    match handover.tls {
        StartTls::Offered(params) if conn.can_starttls() => conn
            .starttls(params.clone(), handover.hello)
            .await
            .map_err(classify)?,
        StartTls::Required(params) => conn
            .starttls(params.clone(), handover.hello)
            .await
            .map_err(classify)?,
        StartTls::Offered(_) | StartTls::Never => {}
    }
    if let Some(credentials) = handover.credentials {
        conn.auth(DEFAULT_MECHANISMS, credentials)
            .await
            .map_err(classify)?;
    }
    let reply = conn
        .send(handover.envelope, handover.message)
        .await
        .map_err(classify)?;
    Ok(Accepted { conn, reply })
}

/// Sorts a client error into temporary or permanent. The summary never holds the
/// server's text (replies often echo addresses); the detail does, for debug logs.
fn classify(error: lettre::transport::smtp::Error) -> DeliveryError {
    let detail = error.to_string();
    let summary = match error.status() {
        Some(code) => match std::error::Error::source(&error)
            .map(|text| text.to_string())
            .and_then(|text| enhanced_code(&text))
        {
            Some(enhanced) => format!("reply {code} {enhanced}"),
            None => format!("reply {code}"),
        },
        None if error.is_timeout() => "the server stopped answering (reply_timeout)".to_owned(),
        None if error.is_response() => "unreadable reply".to_owned(),
        None => detail.clone(),
    };
    if error.is_permanent() {
        DeliveryError::Permanent { summary, detail }
    } else {
        DeliveryError::Temporary { summary, detail }
    }
}

/// The RFC 3463 enhanced status code that opens a reply text, if it has one.
fn enhanced_code(text: &str) -> Option<String> {
    let first = text.split_whitespace().next()?;
    let mut parts = first.split('.');
    let class = parts.next()?;
    let ok = matches!(class, "2" | "4" | "5")
        && parts.clone().count() == 2
        && parts.all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    ok.then(|| first.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp_client::deadline::Peer;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
    use tokio::time::Instant;

    impl Peer for DuplexStream {
        fn peer(&self) -> std::io::Result<SocketAddr> {
            Ok(SocketAddr::from(([127, 0, 0, 1], 25)))
        }
    }

    const REPLY: Duration = Duration::from_secs(60);

    fn envelope() -> Envelope {
        let to = "partner@partner.example".parse().expect("address");
        Envelope::new(None, vec![to]).expect("envelope")
    }

    async fn run(server: impl Future<Output = ()> + Send + 'static) -> Result<(), DeliveryError> {
        let (ours, theirs) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            let _keep_open = theirs;
            server.await;
            std::future::pending::<()>().await;
        });
        let hello = ClientId::Domain("mx.old.example".into());
        let envelope = envelope();
        let handover = Handover {
            hello: &hello,
            tls: &StartTls::Never,
            credentials: None,
            envelope: &envelope,
            message: b"Subject: x\r\n\r\nnotice\r\n",
        };
        converse(Box::new(DeadlineStream::new(ours, REPLY)), &handover)
            .await
            .map(drop)
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_that_never_greets_is_a_temporary_failure_after_reply_timeout() {
        let started = Instant::now();
        let outcome = run(async {}).await;
        assert!(
            matches!(&outcome, Err(DeliveryError::Temporary { summary, .. }) if summary.contains("reply_timeout")),
            "{outcome:?}"
        );
        assert_eq!(started.elapsed(), REPLY);
    }

    #[tokio::test(start_paused = true)]
    async fn rejections_are_summarised_without_the_servers_text() {
        let (ours, theirs) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            let (read, mut write) = tokio::io::split(theirs);
            let mut lines = BufReader::new(read).lines();
            write.write_all(b"220 hi\r\n").await.expect("greet");
            while let Ok(Some(line)) = lines.next_line().await {
                let reply: &[u8] = if line.starts_with("RCPT") {
                    b"550 5.1.1 <partner@partner.example>: no such user\r\n"
                } else {
                    b"250 ok\r\n"
                };
                write.write_all(reply).await.expect("reply");
            }
        });
        let hello = ClientId::Domain("mx.old.example".into());
        let envelope = envelope();
        let handover = Handover {
            hello: &hello,
            tls: &StartTls::Never,
            credentials: None,
            envelope: &envelope,
            message: b"x\r\n",
        };
        let outcome = converse(Box::new(DeadlineStream::new(ours, REPLY)), &handover).await;
        let Err(DeliveryError::Permanent { summary, detail }) = outcome.map(drop) else {
            panic!("a 550 is permanent");
        };
        assert_eq!(summary, "reply 550 5.1.1");
        assert!(detail.contains("partner@partner.example"), "{detail}");
    }

    #[test]
    fn enhanced_codes() {
        assert_eq!(enhanced_code("4.7.1 later").as_deref(), Some("4.7.1"));
        assert_eq!(enhanced_code("5.1.10 null MX").as_deref(), Some("5.1.10"));
        for text in [
            "<a@b.example> unknown",
            "4.7 x",
            "6.1.1 x",
            "5.1.1000 x",
            "",
        ] {
            assert_eq!(enhanced_code(text), None, "{text}");
        }
    }
}
