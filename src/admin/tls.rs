//! The optional TCP admin listener: mutual TLS only. Client certificates must chain to the
//! configured admin CA; anything else is refused during the handshake. The audit trail
//! names the client by its certificate subject.

use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::handler::serve;
use super::peer::Peer;
use super::server::MAX_CLIENTS;
use crate::config::AdminTcpConfig;
use crate::store::Store;

/// How long a client has to finish the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the admin TLS listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AdminTlsError {
    #[error("admin TLS file {path}: {message}")]
    File { path: String, message: String },
    #[error("admin TLS: {0}")]
    Config(String),
    #[error("admin listener {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

fn file_err(path: &std::path::Path, message: impl ToString) -> AdminTlsError {
    AdminTlsError::File {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

fn certs(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, AdminTlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| file_err(path, e))?;
    if certs.is_empty() {
        return Err(file_err(path, "no certificate in file"));
    }
    Ok(certs)
}

/// Builds the acceptor: the server's certificate, and a verifier that demands a client
/// certificate issued by `client_ca`.
pub fn acceptor(config: &AdminTcpConfig) -> Result<TlsAcceptor, AdminTlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in certs(&config.client_ca)? {
        roots.add(ca).map_err(|e| file_err(&config.client_ca, e))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| AdminTlsError::Config(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_file(&config.key).map_err(|e| file_err(&config.key, e))?;
    let server_certs = certs(&config.cert)?;
    let server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| {
            b.with_client_cert_verifier(verifier)
                .with_single_cert(server_certs, key)
        })
        .map_err(|e| AdminTlsError::Config(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// Binds the TCP admin listener.
pub async fn bind(config: &AdminTcpConfig) -> Result<TcpListener, AdminTlsError> {
    TcpListener::bind(config.listen)
        .await
        .map_err(|source| AdminTlsError::Listen {
            addr: config.listen,
            source,
        })
}

/// Serves mutual-TLS admin requests until `shutdown`.
pub async fn run(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    store: Arc<Store>,
    shutdown: CancellationToken,
) {
    let tracker = TaskTracker::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CLIENTS));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => break,
        };
        let Ok((tcp, addr)) = accepted else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let acceptor = acceptor.clone();
        let store = store.clone();
        tracker.spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    let subject = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .and_then(|c| subject_of(c.as_ref()))
                        .unwrap_or_else(|| "unnamed client certificate".into());
                    let peer = Peer {
                        who: format!("cert {subject}"),
                        uid: None,
                    };
                    serve(tls, store, peer).await;
                }
                Ok(Err(error)) => {
                    tracing::warn!(%addr, %error, "admin TLS handshake refused");
                }
                Err(_) => tracing::warn!(%addr, "admin TLS handshake timed out"),
            }
            drop(slot);
        });
    }
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
}

/// One DER element: tag, contents, and what follows it.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The subject of a DER certificate as `CN=…,O=…` (common attributes named, others as
/// dotted-hex OIDs). `None` when the certificate cannot be walked.
pub fn subject_of(der: &[u8]) -> Option<String> {
    let (_, cert, _) = tlv(der)?;
    let (_, mut tbs, _) = tlv(cert)?;
    // Optional explicit version [0].
    if tbs.first() == Some(&0xa0) {
        tbs = tlv(tbs)?.2;
    }
    // serial, signature algorithm, issuer, validity; then the subject.
    for _ in 0..4 {
        tbs = tlv(tbs)?.2;
    }
    let (_, mut rdns, _) = tlv(tbs)?;
    let mut parts = Vec::new();
    while !rdns.is_empty() {
        let (_, set, rest) = tlv(rdns)?;
        rdns = rest;
        let (_, pair, _) = tlv(set)?;
        let (_, oid, rest) = tlv(pair)?;
        let (_, value, _) = tlv(rest)?;
        let name = match oid {
            [0x55, 0x04, 0x03] => "CN".to_owned(),
            [0x55, 0x04, 0x06] => "C".to_owned(),
            [0x55, 0x04, 0x0a] => "O".to_owned(),
            [0x55, 0x04, 0x0b] => "OU".to_owned(),
            other => other.iter().map(|b| format!("{b:02x}")).collect(),
        };
        let value: String = String::from_utf8_lossy(value)
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        parts.push(format!("{name}={value}"));
    }
    Some(parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_read_and_garbage_is_not() {
        let mut params = rcgen::CertificateParams::new(vec!["a.example".into()]).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "alice reviewer");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Old Org");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        assert_eq!(
            subject_of(cert.der()).as_deref(),
            Some("CN=alice reviewer,O=Old Org")
        );
        assert_eq!(subject_of(b""), None);
        assert_eq!(subject_of(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        for cut in 0..cert.der().len() {
            let _ = subject_of(&cert.der()[..cut]);
        }
    }
}
