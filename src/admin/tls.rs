//! The optional TCP admin listener: mutual TLS only. Client certificates must chain to the
//! configured admin CA; anything else is refused during the handshake. The audit trail
//! names the client by its certificate subject. A connection must finish its handshake
//! within `[admin] tls_handshake_timeout`, and one client network holds at most
//! `max_connections_per_ip` connections, so that sockets that never authenticate cannot
//! hold the API's slots and lock reviewers out.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::Oversight;
use super::handler::serve;
use super::networks::{NetworkPermit, Networks};
use super::peer::Peer;
use super::server::{Listener, MAX_CLIENTS, accept_loop};
use crate::config::{AdminTcpConfig, AdminTcpLimits, MAX_ADMIN_CONNECTIONS_PER_IP};
use crate::store::QuarantineStore;

// One network must never be able to hold every slot, whatever the config says.
const _: () = assert!(MAX_ADMIN_CONNECTIONS_PER_IP < MAX_CLIENTS);

/// Why the admin TLS listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AdminTlsError {
    /// A PEM file holds no certificate.
    #[error("admin TLS file {path}: {message}")]
    File { path: String, message: String },
    /// A certificate or key file could not be read, or is not PEM.
    #[error("admin TLS file {path}: {source}")]
    Pem {
        path: String,
        source: rustls_pki_types::pem::Error,
    },
    /// rustls refused a certificate of the client CA file.
    #[error("admin TLS file {path}: {source}")]
    Certificate { path: String, source: rustls::Error },
    /// The client-certificate verifier could not be built from the client CA.
    #[error("admin TLS: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// rustls refused the server certificate and key.
    #[error("admin TLS: {0}")]
    Config(#[from] rustls::Error),
    #[error("admin listener {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

fn shown(path: &std::path::Path) -> String {
    path.display().to_string()
}

fn certs(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, AdminTlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|source| AdminTlsError::Pem {
            path: shown(path),
            source,
        })?;
    if certs.is_empty() {
        return Err(AdminTlsError::File {
            path: shown(path),
            message: "no certificate in file".to_owned(),
        });
    }
    Ok(certs)
}

/// Builds the acceptor: the server's certificate, and a verifier that demands a client
/// certificate issued by `client_ca`.
pub fn acceptor(config: &AdminTcpConfig) -> Result<TlsAcceptor, AdminTlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in certs(&config.client_ca)? {
        roots.add(ca).map_err(|source| AdminTlsError::Certificate {
            path: shown(&config.client_ca),
            source,
        })?;
    }
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
    let key = PrivateKeyDer::from_pem_file(&config.key).map_err(|source| AdminTlsError::Pem {
        path: shown(&config.key),
        source,
    })?;
    let server_certs = certs(&config.cert)?;
    let server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| {
            b.with_client_cert_verifier(verifier)
                .with_single_cert(server_certs, key)
        })?;
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
pub async fn run<S: QuarantineStore>(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    limits: AdminTcpLimits,
    store: Arc<S>,
    oversight: Arc<Oversight>,
    shutdown: CancellationToken,
) {
    let listener = PerNetwork {
        listener,
        networks: Networks::new(limits),
    };
    accept_loop(listener, shutdown, move |tcp: Counted, addr| {
        let acceptor = acceptor.clone();
        let store = store.clone();
        let oversight = oversight.clone();
        async move {
            // The deadline covers the whole handshake, client certificate included: until
            // it is done the peer is nobody, and must not keep a slot any longer.
            let handshake =
                tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await;
            match handshake {
                Ok(Ok(tls)) => {
                    // The verifier requires a client certificate, so there is one.
                    let peer = match tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
                        Some(cert) => Peer::certificate(cert.as_ref()),
                        None => Peer::unknown(),
                    };
                    serve(tls, store, &oversight, peer).await;
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

/// The TCP listener behind the per-network count: a connection whose network already holds
/// its share is closed here, before the accept loop gives it one of the API's slots.
struct PerNetwork {
    listener: TcpListener,
    networks: Arc<Networks>,
}

impl Listener for PerNetwork {
    type Stream = Counted;
    type Addr = SocketAddr;

    async fn accept(&self) -> std::io::Result<(Counted, SocketAddr)> {
        loop {
            let (tcp, addr) = self.listener.accept().await?;
            match self.networks.try_enter(addr.ip()) {
                Some(permit) => {
                    let stream = Counted {
                        _permit: permit,
                        tcp,
                    };
                    return Ok((stream, addr));
                }
                // Debug only: these closes come as fast as a client can connect, and the
                // log must not grow at that rate.
                None => tracing::debug!(%addr, "admin connection over its network's share closed"),
            }
        }
    }
}

/// A connection holding its network's place. The permit is declared before the socket so
/// that it is given back before the socket closes: a client that sees the close and
/// connects again at once finds its network's count already lowered.
struct Counted {
    _permit: NetworkPermit,
    tcp: TcpStream,
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::path::{Path, PathBuf};

    use super::*;

    fn dev(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("certs")
            .join(name)
    }

    fn config(client_ca: PathBuf, key: PathBuf) -> AdminTcpConfig {
        AdminTcpConfig {
            listen: "127.0.0.1:0".parse().expect("address"),
            cert: dev("dev-cert.pem"),
            key,
            client_ca,
            limits: AdminTcpLimits::default(),
        }
    }

    #[test]
    fn refused_files_keep_their_cause() {
        let dir = tempfile::tempdir().expect("tempdir");
        let garbage = dir.path().join("ca.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        let Err(error) = acceptor(&config(garbage, dev("dev-key.pem"))) else {
            panic!("a garbage client CA was accepted");
        };
        assert!(
            matches!(error, AdminTlsError::Certificate { .. }),
            "{error:?}"
        );
        assert!(error.source().expect("a source").is::<rustls::Error>());

        let missing = dir.path().join("missing-key.pem");
        let Err(error) = acceptor(&config(dev("dev-cert.pem"), missing)) else {
            panic!("a missing key was accepted");
        };
        assert!(matches!(error, AdminTlsError::Pem { .. }), "{error:?}");
        assert!(
            error
                .source()
                .expect("a source")
                .is::<rustls_pki_types::pem::Error>()
        );
    }
}
