//! The config file as serde reads it, before validation: every field optional where the
//! file may leave it out, unknown keys refused. `config.rs` turns it into [`super::Config`].

use std::path::PathBuf;

use serde::Deserialize;

use super::notify::RawNotify;
use super::review::RawRelease;
use super::watch::{RawExit, RawParked, RawRdap};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) server: RawServer,
    pub(super) tls: Option<RawTls>,
    #[serde(default)]
    pub(super) store: RawStore,
    #[serde(default)]
    pub(super) seal: RawSeal,
    #[serde(default)]
    pub(super) admin: RawAdmin,
    #[serde(default)]
    pub(super) dns: RawDns,
    #[serde(default)]
    pub(super) domain: Vec<RawDomain>,
    #[serde(default)]
    pub(super) relocated: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub(super) notify: RawNotify,
    #[serde(default)]
    pub(super) metrics: RawMetrics,
    pub(super) release: Option<RawRelease>,
    #[serde(default)]
    pub(super) rdap: RawRdap,
    #[serde(default)]
    pub(super) parked: RawParked,
    #[serde(default)]
    pub(super) exit: RawExit,
    #[serde(default)]
    pub(super) principal: Vec<super::access::RawPrincipal>,
    #[serde(default)]
    pub(super) audit: super::audit::RawAudit,
    #[serde(default)]
    pub(super) approvals: super::approvals::RawApprovals,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    pub(super) listen: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) hostname: String,
    pub(super) listen: Vec<String>,
    pub(super) max_message_size: Option<String>,
    pub(super) max_recipients: Option<usize>,
    pub(super) max_connections: Option<usize>,
    pub(super) max_connections_per_ip: Option<usize>,
    pub(super) max_line_length: Option<usize>,
    pub(super) max_errors: Option<usize>,
    pub(super) max_received_headers: Option<usize>,
    pub(super) command_timeout: Option<String>,
    pub(super) data_timeout: Option<String>,
    pub(super) session_timeout: Option<String>,
    pub(super) client_prefix_v4: Option<u8>,
    pub(super) client_prefix_v6: Option<u8>,
    pub(super) auth_memory_budget: Option<String>,
    pub(super) tls_handshake_timeout: Option<String>,
    pub(super) shutdown_grace: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub(super) cert: PathBuf,
    pub(super) key: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    #[serde(default = "default_store_path")]
    pub(super) path: PathBuf,
    pub(super) retention: Option<String>,
    pub(super) audit_retention: Option<String>,
    pub(super) purge_interval: Option<String>,
    pub(super) max_size: Option<String>,
    pub(super) min_free: Option<String>,
    pub(super) free_check_interval: Option<String>,
    pub(super) inline_max: Option<String>,
    pub(super) staging_memory: Option<String>,
    pub(super) segment_size: Option<String>,
    pub(super) backend: Option<String>,
    pub(super) url: Option<String>,
    pub(super) url_file: Option<PathBuf>,
    pub(super) url_env: Option<String>,
    pub(super) ca_file: Option<PathBuf>,
    pub(super) pool_size: Option<usize>,
    pub(super) db_timeout: Option<String>,
    pub(super) query_timeout: Option<String>,
    pub(super) outbox_lease: Option<String>,
}

pub(super) fn default_store_path() -> PathBuf {
    PathBuf::from("data")
}

impl Default for RawStore {
    fn default() -> Self {
        Self {
            path: default_store_path(),
            retention: None,
            audit_retention: None,
            purge_interval: None,
            max_size: None,
            min_free: None,
            free_check_interval: None,
            inline_max: None,
            staging_memory: None,
            segment_size: None,
            backend: None,
            url: None,
            url_file: None,
            url_env: None,
            ca_file: None,
            pool_size: None,
            db_timeout: None,
            query_timeout: None,
            outbox_lease: None,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSeal {
    #[serde(default)]
    pub(super) recipients: Vec<String>,
    pub(super) dev_identity: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    pub(super) socket: Option<PathBuf>,
    pub(super) listen: Option<String>,
    pub(super) cert: Option<PathBuf>,
    pub(super) key: Option<PathBuf>,
    pub(super) client_ca: Option<PathBuf>,
    pub(super) tls_handshake_timeout: Option<String>,
    pub(super) max_connections_per_ip: Option<usize>,
    pub(super) client_prefix_v4: Option<u8>,
    pub(super) client_prefix_v6: Option<u8>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDns {
    pub(super) resolver: Option<String>,
    /// `"name TYPE" = ["value", …]` answers for `resolver = "static"` (tests, labs).
    #[serde(default, rename = "static")]
    pub(super) table: std::collections::BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDomain {
    pub(super) name: String,
    pub(super) mode: Option<String>,
    pub(super) new_domain: Option<String>,
    pub(super) contact: Option<String>,
    pub(super) language: Option<String>,
    pub(super) retention: Option<String>,
    /// Who can open this domain's mail, instead of `[seal] recipients`.
    pub(super) readers: Option<Vec<String>>,
}
