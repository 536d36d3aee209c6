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
    #[error("PostgreSQL connection string: {0}")]
    Url(String),
    #[error("TLS roots {path}: {message}")]
    Roots { path: String, message: String },
    #[error(
        "the database's schema is version {found}, newer than this reclaim knows ({known}): upgrade reclaim"
    )]
    Schema { found: usize, known: usize },
    #[error("stored data: {0}")]
    Data(String),
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
        let url = config.url.read().map_err(|e| PgError::Url(e.to_string()))?;
        let mut pg: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| PgError::Url(e.to_string()))?;
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
            .build()
            .map_err(|e| PgError::Url(e.to_string()))?;
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
            let roots_err = |message: String| PgError::Roots {
                path: path.display().to_string(),
                message,
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| roots_err(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| roots_err(e.to_string()))?;
            for cert in certs {
                roots.add(cert).map_err(|e| roots_err(e.to_string()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PgError::Roots {
            path: "(built in)".into(),
            message: e.to_string(),
        })?
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
