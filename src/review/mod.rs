//! The review service the CLI and the desk both use: what a reviewer works with (the admin
//! API, the config when there is one, the reviewer's identities) and every step of a review
//! (listing, showing, exporting, releasing, changing, reporting, auditing), with failures
//! typed in [`ReviewError`]. Nothing here prints or parses a command line.

pub mod approvals;
pub mod audit;
mod error;
pub mod export;
pub mod filter;
pub mod index;
mod kind;
pub mod listed;
pub mod listing;
pub mod manage;
pub mod release;
pub mod render;
pub mod report;
pub mod reseal;
pub mod show;

pub use error::ReviewError;
pub use kind::{Kind, exit};

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use crate::admin::client::{AdminClient, TlsFiles};
use crate::config::{Config, DEFAULT_CONFIG_PATH};
use crate::seal::Identities;
use crate::store::MessageId;

/// Where the admin API, the config and the identity are, as the reviewer named them (the
/// CLI's global flags). What is left out comes from the config.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// The config file; when left out the default path is tried, and only needed when
    /// neither `socket` nor `admin` says where the admin API is.
    pub config: Option<PathBuf>,
    /// The admin API's Unix socket.
    pub socket: Option<PathBuf>,
    /// A remote admin API over mutual TLS (`https://HOST:PORT`), with its files.
    pub admin: Option<String>,
    pub admin_ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The reviewer's identity file.
    pub identity: Option<PathBuf>,
}

/// What reviewing needs: the admin API, the config when there is one, and the reviewer's
/// identities (loaded only by the steps that decrypt, on first use). A clone shares the
/// loaded identities and the count of hidden summaries.
#[derive(Clone)]
pub struct ReviewContext {
    pub client: AdminClient,
    pub config: Option<Config>,
    identity: Option<PathBuf>,
    identities: Arc<OnceLock<Identities>>,
    /// Summaries left out of listings because they are sealed only to other reviewers.
    hidden: Arc<std::sync::atomic::AtomicU64>,
    /// The approved four-eyes request that releases, exports, deletes, purges and hold
    /// lifts are carried out under (`--request N`).
    approval: Option<u64>,
}

impl ReviewContext {
    /// The admin client, config and identity path that `access` names.
    pub fn new(access: &Access) -> Result<Self, ReviewError> {
        let explicit = access.config.is_some();
        let path = access
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
        // The config is only needed for what the flags do not give; a missing default
        // config is fine when they give everything.
        let config = match Config::load(&path) {
            Ok(config) => Some(config),
            Err(e) if explicit || (access.socket.is_none() && access.admin.is_none()) => {
                return Err(e.into());
            }
            Err(_) => None,
        };
        let client = match &access.admin {
            Some(url) => {
                let need = |v: &Option<PathBuf>, flag: &str| {
                    v.clone()
                        .ok_or_else(|| ReviewError::Missing(format!("--admin needs {flag}")))
                };
                let (ca, cert, key) = (
                    need(&access.admin_ca, "--admin-ca")?,
                    need(&access.cert, "--cert")?,
                    need(&access.key, "--key")?,
                );
                AdminClient::tls(
                    url,
                    &TlsFiles {
                        ca: &ca,
                        cert: &cert,
                        key: &key,
                    },
                )?
            }
            None => {
                let socket = access
                    .socket
                    .clone()
                    .or_else(|| config.as_ref().map(|c| c.admin.socket.clone()))
                    .ok_or_else(|| {
                        ReviewError::Missing(
                            "no admin socket: pass --socket PATH or -c CONFIG".into(),
                        )
                    })?;
                AdminClient::new(&socket)
            }
        };
        let identity = access
            .identity
            .clone()
            .or_else(|| config.as_ref().and_then(|c| c.seal.dev_identity.clone()));
        Ok(Self {
            client,
            config,
            identity,
            identities: Arc::new(OnceLock::new()),
            hidden: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            approval: None,
        })
    }

    /// This context, carrying guarded actions out under approved request `number`.
    pub fn under_request(mut self, number: Option<u64>) -> Self {
        self.approval = number;
        self
    }

    /// Whether guarded actions are carried out under an approved request.
    pub fn under_approval(&self) -> bool {
        self.approval.is_some()
    }

    /// `path` with the approved request it is carried out under, if there is one.
    pub fn guarded_path(&self, path: String) -> String {
        match self.approval {
            None => path,
            Some(n) => {
                let sep = if path.contains('?') { '&' } else { '?' };
                format!("{path}{sep}request={n}")
            }
        }
    }

    /// How many summaries listings have left out so far because none of the reviewer's
    /// identities opens them: messages sealed only to other reviewers' keys (a retired
    /// domain whose `readers` do not include this reviewer).
    pub fn hidden(&self) -> u64 {
        self.hidden.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn hide(&self) {
        self.hidden
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The reviewer's identities, loaded on first use.
    pub fn identities(&self) -> Result<&Identities, ReviewError> {
        if let Some(ids) = self.identities.get() {
            return Ok(ids);
        }
        let path = self.identity.as_deref().ok_or_else(|| {
            ReviewError::Missing("no identity: pass -i IDENTITY or set RECLAIM_IDENTITY".into())
        })?;
        let loaded = Identities::load(path).map_err(ReviewError::Identity)?;
        Ok(self.identities.get_or_init(|| loaded))
    }

    /// A context with identities already loaded and an admin socket nobody listens on,
    /// for tests of the steps that only decrypt.
    #[cfg(test)]
    pub(crate) fn with_identities(identities: Identities) -> Self {
        Self {
            client: AdminClient::new(std::path::Path::new("unused.sock")),
            config: None,
            identity: None,
            identities: Arc::new(OnceLock::from(identities)),
            hidden: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            approval: None,
        }
    }
}

/// A message id as the reviewer typed it; a malformed one is bad usage.
pub fn parse_id(text: &str) -> Result<MessageId, ReviewError> {
    text.parse().map_err(ReviewError::Usage)
}
