//! `[store] backend`: the embedded store on this machine (the default), or one quarantine
//! shared by several gateways on PostgreSQL, with how to reach it.

use std::time::Duration;

use super::{ConfigError, RawStore, duration, invalid};
use crate::store::postgres::{PostgresConfig, UrlSource};

/// Most pooled PostgreSQL connections one gateway may hold.
const MAX_POOL_SIZE: usize = 1024;

/// Which store a gateway runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreBackend {
    /// redb index plus sealed files under `[store] path`.
    Embedded,
    /// A PostgreSQL database shared by every node.
    Postgres(PostgresConfig),
}

/// Checks that a lease outlasts one delivery attempt.
pub(super) fn check_lease(
    backend: &StoreBackend,
    attempt_timeout: Duration,
) -> Result<(), ConfigError> {
    match backend {
        StoreBackend::Postgres(pg) if pg.outbox_lease <= attempt_timeout => Err(invalid(
            "store.outbox_lease",
            "must be longer than notify.attempt_timeout",
        )),
        _ => Ok(()),
    }
}

pub(super) fn store_backend(store: &RawStore) -> Result<StoreBackend, ConfigError> {
    let postgres_keys = store.url.is_some()
        || store.url_file.is_some()
        || store.url_env.is_some()
        || store.ca_file.is_some()
        || store.pool_size.is_some();
    match store.backend.as_deref() {
        None | Some("embedded") => {
            if postgres_keys {
                return Err(invalid(
                    "store.backend",
                    "url, url_file, url_env, ca_file and pool_size need backend = \"postgres\"",
                ));
            }
            Ok(StoreBackend::Embedded)
        }
        Some("postgres") => {
            let url = match (&store.url, &store.url_file, &store.url_env) {
                (Some(url), None, None) => UrlSource::Inline(url.clone()),
                (None, Some(path), None) => UrlSource::File(path.clone()),
                (None, None, Some(var)) => UrlSource::Env(var.clone()),
                _ => {
                    return Err(invalid(
                        "store.url",
                        "give exactly one of url, url_file and url_env",
                    ));
                }
            };
            let pool_size = store.pool_size.unwrap_or(16);
            if !(1..=MAX_POOL_SIZE).contains(&pool_size) {
                return Err(invalid(
                    "store.pool_size",
                    format!("must be 1 to {MAX_POOL_SIZE}"),
                ));
            }
            let timeout = duration(
                "store.db_timeout",
                store.db_timeout.clone(),
                Duration::from_secs(10),
            )?;
            let outbox_lease = duration(
                "store.outbox_lease",
                store.outbox_lease.clone(),
                Duration::from_secs(600),
            )?;
            if timeout.is_zero() {
                return Err(invalid("store.db_timeout", "must be above zero"));
            }
            let query_timeout = duration(
                "store.query_timeout",
                store.query_timeout.clone(),
                Duration::from_secs(60),
            )?;
            if query_timeout.is_zero() || query_timeout > Duration::from_secs(3600) {
                return Err(invalid(
                    "store.query_timeout",
                    "must be above zero and at most 1h",
                ));
            }
            Ok(StoreBackend::Postgres(PostgresConfig {
                url,
                ca_file: store.ca_file.clone(),
                pool_size,
                timeout,
                query_timeout,
                outbox_lease,
            }))
        }
        Some(other) => Err(invalid(
            "store.backend",
            format!("{other:?} is not embedded or postgres"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::super::tests::{MINIMAL, error_of};
    use super::*;

    fn with_store(lines: &str) -> String {
        format!("{MINIMAL}\n[store]\n{lines}\n")
    }

    #[test]
    fn embedded_is_the_default_and_postgres_needs_one_url() {
        let c = Config::parse(MINIMAL).expect("valid");
        assert_eq!(c.store.backend, StoreBackend::Embedded);

        let c = Config::parse(&with_store(
            "backend = \"postgres\"\nurl_env = \"RECLAIM_DB\"",
        ))
        .expect("valid");
        let StoreBackend::Postgres(pg) = c.store.backend else {
            panic!("postgres expected");
        };
        assert_eq!(pg.url, UrlSource::Env("RECLAIM_DB".into()));
        assert_eq!(pg.pool_size, 16);
        assert_eq!(pg.outbox_lease, Duration::from_secs(600));

        assert!(error_of(&with_store("backend = \"postgres\"")).contains("store.url"));
        assert!(
            error_of(&with_store(
                "backend = \"postgres\"\nurl = \"host=a\"\nurl_env = \"X\""
            ))
            .contains("exactly one")
        );
        assert!(error_of(&with_store("url = \"host=a\"")).contains("store.backend"));
        assert!(error_of(&with_store("backend = \"mysql\"")).contains("store.backend"));
        assert!(
            error_of(&with_store(
                "backend = \"postgres\"\nurl = \"host=a\"\npool_size = 0"
            ))
            .contains("store.pool_size")
        );
    }

    #[test]
    fn a_lease_must_outlast_a_delivery_attempt() {
        let text = with_store("backend = \"postgres\"\nurl = \"host=a\"\noutbox_lease = \"4m\"");
        assert!(
            error_of(&text).contains("store.outbox_lease"),
            "default attempt_timeout is 5m"
        );
        let text = format!("{text}\n[notify]\nattempt_timeout = \"3m\"\n");
        Config::parse(&text).expect("a 4m lease outlasts a 3m attempt");
    }
}
