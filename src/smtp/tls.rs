//! STARTTLS: loading the certificate into a rustls acceptor, and describing a session's TLS.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::summary::TlsInfo;

/// Why the TLS certificate could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file holds no certificate.
    #[error("TLS certificate {path}: {message}")]
    Certificate { path: String, message: String },
    /// The certificate file could not be read, or is not PEM.
    #[error("TLS certificate {path}: {source}")]
    CertificateFile {
        path: String,
        source: rustls_pki_types::pem::Error,
    },
    /// The key file could not be read, or holds no PEM private key.
    #[error("TLS key {path}: {source}")]
    Key {
        path: String,
        source: rustls_pki_types::pem::Error,
    },
    #[error("TLS certificate and key do not fit together: {0}")]
    Config(#[from] rustls::Error),
}

/// Builds a STARTTLS acceptor from PEM files (certificate chain, private key).
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::CertificateFile {
            path: cert.display().to_string(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::Certificate {
            path: cert.display().to_string(),
            message: "no certificate in file".to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Key {
        path: key.display().to_string(),
        source,
    })?;
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Protocol version and cipher suite of an established server connection.
pub fn describe(conn: &rustls::ServerConnection) -> TlsInfo {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
        Some(other) => format!("{other:?}"),
        None => "unknown".to_owned(),
    };
    let cipher = conn
        .negotiated_cipher_suite()
        .and_then(|s| s.suite().as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned());
    TlsInfo { version, cipher }
}

/// The STARTTLS acceptor, replaceable at run time (SIGHUP after a certificate renewal).
/// Connections already in TLS keep the configuration they started with.
pub struct TlsReloader {
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    current: std::sync::RwLock<TlsAcceptor>,
}

impl TlsReloader {
    /// Loads the certificate and key; logs and exports the certificate's expiry.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let acceptor = acceptor(cert, key)?;
        report_expiry(cert);
        Ok(Self {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: std::sync::RwLock::new(acceptor),
        })
    }

    /// The acceptor for a new handshake (a cheap clone).
    pub fn acceptor(&self) -> TlsAcceptor {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reads the files again. On error the old certificate stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = acceptor(&self.cert, &self.key)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        report_expiry(&self.cert);
        Ok(())
    }
}

fn report_expiry(cert: &Path) {
    let Some(not_after) = CertificateDer::pem_file_iter(cert)
        .ok()
        .and_then(|mut iter| iter.next())
        .and_then(Result::ok)
        .and_then(|der| crate::x509::not_after(der.as_ref()))
    else {
        tracing::warn!(path = %cert.display(), "cannot read the certificate's expiry date");
        return;
    };
    let expires = time::OffsetDateTime::from_unix_timestamp(not_after)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let days_left = (not_after - time::OffsetDateTime::now_utc().unix_timestamp()) / 86400;
    if days_left < 14 {
        tracing::warn!(path = %cert.display(), %expires, days_left, "TLS certificate expires soon");
    } else {
        tracing::info!(path = %cert.display(), %expires, days_left, "TLS certificate loaded");
    }
    metrics::gauge!(crate::telemetry::TLS_CERT_EXPIRY).set(not_after as f64);
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn a_missing_key_keeps_the_pem_error() {
        let cert = Path::new(env!("CARGO_MANIFEST_DIR")).join("certs/dev-cert.pem");
        let dir = tempfile::tempdir().expect("tempdir");
        let Err(error) = acceptor(&cert, &dir.path().join("missing.pem")) else {
            panic!("a missing key was accepted");
        };
        assert!(matches!(error, TlsError::Key { .. }), "{error:?}");
        assert!(
            matches!(
                error.source().and_then(|s| s.downcast_ref()),
                Some(rustls_pki_types::pem::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound
            ),
            "{error:?}"
        );
    }
}
