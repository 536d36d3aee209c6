//! What the PostgreSQL store needs to open: where its connection string comes from, the
//! TLS roots, the pool and the deadlines. `config` validates `[store]` into this type.

use std::path::PathBuf;
use std::time::Duration;

/// `[store]` settings of the PostgreSQL backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    pub url: UrlSource,
    /// PEM roots the server's certificate must chain to (TLS with `sslmode=require`);
    /// the public web roots when not given.
    pub ca_file: Option<PathBuf>,
    /// Most connections this gateway holds (`pool_size`, default 16).
    pub pool_size: usize,
    /// How long a connection, a pooled connection or one statement may take before the
    /// message in hand is answered `451 4.3.0` (`db_timeout`, default 10s).
    pub timeout: Duration,
    /// How long any other database operation (review and admin API, notice worker, purge,
    /// capacity) may take before it fails with an error (`query_timeout`, default 60s).
    pub query_timeout: Duration,
    /// How long a claimed notice stays with the node that claimed it before another node
    /// may deliver it (`outbox_lease`, default 10m; must be longer than
    /// `[notify] attempt_timeout`, so that a live node never loses a lease mid-attempt).
    pub outbox_lease: Duration,
}

/// Where the connection string comes from. It may hold a password, so it is read when the
/// store opens and never printed.
#[derive(Clone, PartialEq, Eq)]
pub enum UrlSource {
    Inline(String),
    File(PathBuf),
    Env(String),
}

impl std::fmt::Debug for UrlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UrlSource::Inline(_) => f.write_str("Inline(..)"),
            UrlSource::File(path) => write!(f, "File({})", path.display()),
            UrlSource::Env(var) => write!(f, "Env({var})"),
        }
    }
}

/// Why a connection string could not be read.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("store.url_file {}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("store.url_env: variable {0} is not set")]
    Env(String),
}

impl UrlSource {
    /// The connection string, without a final line end.
    pub fn read(&self) -> Result<String, UrlError> {
        let text = match self {
            UrlSource::Inline(url) => url.clone(),
            UrlSource::File(path) => {
                std::fs::read_to_string(path).map_err(|source| UrlError::File {
                    path: path.clone(),
                    source,
                })?
            }
            UrlSource::Env(var) => std::env::var(var).map_err(|_| UrlError::Env(var.clone()))?,
        };
        Ok(text.trim_end_matches(['\r', '\n']).to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_string_never_prints() {
        let source = UrlSource::Inline("host=a password=hunter2".into());
        assert!(!format!("{source:?}").contains("hunter2"));
        assert_eq!(source.read().expect("inline"), "host=a password=hunter2");
    }
}
