//! The shared store on PostgreSQL: several gateways, one quarantine. Sealed messages are
//! streamed into `sealed_chunks` as they are sealed, under a `messages` row that stays
//! invisible until the commit transaction flips it; the notice outbox is claimed with
//! leases; the audit chain is appended under a row lock on its head; purges run on one
//! node at a time. PostgreSQL only ever holds sealed bytes and plaintext metadata.

mod audit;
mod config;
mod messages;
mod notices;
mod quarantine;
mod requests;
mod schema;
mod staged;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::capacity::{StorageLimits, StorageState};
pub use config::{PostgresConfig, UrlError, UrlSource};
pub use staged::PgStaged;

/// Advisory lock keys, one per job that must run on one node at a time.
mod lock {
    /// Schema migration at start.
    pub const MIGRATE: i64 = 0x7265_636c_0001;
    /// The retention purge.
    pub const PURGE: i64 = 0x7265_636c_0002;
    /// Admitting notices against the shared rate limits.
    pub const NOTICES: i64 = 0x7265_636c_0003;
    /// Filing an approval request: its number and the cap on open requests.
    pub const REQUESTS: i64 = 0x7265_636c_0004;
}

/// How long a message may stay staged before the purge takes it for the leftover of a
/// node that died mid-message. Far longer than any SMTP transaction can last.
const STALE_STAGING_SECS: i64 = 24 * 3600;

/// Why a PostgreSQL operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("PostgreSQL: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("PostgreSQL connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// The connection string could not be read (`url_file`, `url_env`).
    #[error("PostgreSQL connection string: {0}")]
    Url(#[from] UrlError),
    /// The connection string does not parse.
    #[error("PostgreSQL connection string: {0}")]
    UrlParse(#[source] tokio_postgres::Error),
    /// The connection pool could not be built from the settings.
    #[error("PostgreSQL connection string: {0}")]
    PoolBuild(#[from] deadpool_postgres::BuildError),
    /// `ca_file` could not be read, or is not PEM.
    #[error("TLS roots {path}: {source}")]
    RootsFile {
        path: String,
        source: rustls_pki_types::pem::Error,
    },
    /// A certificate of `ca_file` is not one rustls can trust.
    #[error("TLS roots {path}: {source}")]
    RootsCertificate { path: String, source: rustls::Error },
    /// The TLS client could not be configured.
    #[error("TLS roots (built in): {0}")]
    Tls(#[source] rustls::Error),
    #[error(
        "the database's schema is version {found}, newer than this reclaim knows ({known}): upgrade reclaim"
    )]
    Schema { found: usize, known: usize },
    /// The stored rows are not what this reclaim expects.
    #[error("stored data: {0}")]
    Data(String),
    /// A notice could not be encoded for the outbox.
    #[error("stored data: {0}")]
    Encode(#[source] serde_json::Error),
    /// A notice or audit record does not encode or decode.
    #[error("stored data: {what} record: {source}")]
    Record {
        what: &'static str,
        source: serde_json::Error,
    },
    #[error("PostgreSQL did not answer within {0:?}")]
    Timeout(Duration),
}

/// A quarantine store on PostgreSQL. Cheap to share: the pool is shared.
pub struct PgStore {
    pool: Pool,
    pair_salt: Vec<u8>,
    outbox_lease: Duration,
    /// `db_timeout`: the deadline of each database step of the message path.
    timeout: Duration,
    /// `query_timeout`: the deadline of every other operation.
    query_timeout: Duration,
    storage: Arc<StorageState>,
}

impl PgStore {
    /// Connects, creates or migrates the schema, and reads the shared settings. Fails with
    /// a clear error when the database cannot be reached.
    pub async fn open(config: &PostgresConfig, limits: StorageLimits) -> Result<Self, PgError> {
        let url = config.url.read()?;
        let mut pg: tokio_postgres::Config = url.parse().map_err(PgError::UrlParse)?;
        pg.connect_timeout(config.timeout);
        if pg.get_application_name().is_none() {
            pg.application_name("reclaim");
        }
        let manager = Manager::from_config(
            pg,
            tls_connector(config.ca_file.as_deref())?,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.timeout))
            .create_timeout(Some(config.timeout))
            .recycle_timeout(Some(config.timeout))
            .build()?;
        let mut client = pool.get().await?;
        schema::migrate(&mut client).await?;
        let pair_salt = notices::salt(&client).await?;
        let used = messages::sealed_bytes(&client).await?;
        // No local disk to watch: the quota (`max_size`) counts sealed bytes in the
        // database, and free space is the database server's business.
        let storage = Arc::new(StorageState::new(
            StorageLimits {
                max_size: limits.max_size,
                min_free: 0,
            },
            used,
        ));
        Ok(Self {
            pool,
            pair_salt,
            outbox_lease: config.outbox_lease,
            timeout: config.timeout,
            query_timeout: config.query_timeout,
            storage,
        })
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, PgError> {
        Ok(self.pool.get().await?)
    }
}

/// TLS for `sslmode=require` (and `prefer`), verifying the server against `ca_file` or
/// the public web roots.
fn tls_connector(
    ca_file: Option<&std::path::Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, PgError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let file_err = |source| PgError::RootsFile {
                path: path.display().to_string(),
                source,
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(file_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(file_err)?;
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|source| PgError::RootsCertificate {
                        path: path.display().to_string(),
                        source,
                    })?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(PgError::Tls)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Runs one database step of the message path under a deadline: a database that stops
/// answering (a cut network, a lost synchronous standby) costs the message in hand a
/// `451 4.3.0`, never the session. A commit cut off this way may still complete; the sender
/// then retries and the message is stored twice, never lost.
async fn within<T>(
    limit: Duration,
    step: impl std::future::Future<Output = Result<T, PgError>>,
) -> Result<T, PgError> {
    tokio::time::timeout(limit, step)
        .await
        .map_err(|_| PgError::Timeout(limit))?
}

/// A count or size from the database, which stores them as `bigint`.
fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn a_bad_ca_file_keeps_what_refused_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.pem");
        match tls_connector(Some(&missing)) {
            Err(error @ PgError::RootsFile { .. }) => {
                let source = error.source().expect("a source");
                assert!(source.is::<rustls_pki_types::pem::Error>(), "{source:?}");
                assert!(error.to_string().starts_with("TLS roots "), "{error}");
            }
            other => panic!("{:?}", other.err()),
        }
        // PEM, but not a certificate: rustls refuses it.
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        match tls_connector(Some(&garbage)) {
            Err(error @ PgError::RootsCertificate { .. }) => {
                let source = error.source().expect("a source");
                assert!(source.is::<rustls::Error>(), "{source:?}");
            }
            other => panic!("{:?}", other.err()),
        }
    }
}
