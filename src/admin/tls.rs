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

use super::handler::serve;
use super::peer::Peer;
use super::server::accept_loop;
use crate::config::AdminTcpConfig;
use crate::store::Backend;

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
    store: Arc<Backend>,
    shutdown: CancellationToken,
) {
    accept_loop(listener, shutdown, move |tcp, addr| {
        let acceptor = acceptor.clone();
        let store = store.clone();
        async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    let subject = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .and_then(|c| crate::x509::subject(c.as_ref()))
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
        }
    })
    .await;
}
