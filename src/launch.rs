//! Brings up a whole gateway from a validated config: store (with reconciliation),
//! sealing keys, TLS, SMTP listeners and the admin socket.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::admin;
use crate::capacity::MemoryBudget;
use crate::config::Config;
use crate::config::StoreBackend;
use crate::dns::Dns;
use crate::domains::Mode;
use crate::notice::Templates;
use crate::notice::transport::{Route, Transport};
use crate::notice::worker::Worker;
use crate::quarantine::Quarantine;
use crate::seal::{ReaderGroups, Recipients, SealError, Sealer};
use crate::server;
use crate::smtp::SessionConfig;
use crate::smtp::connection::Gateway;
use crate::smtp::tls::{self, TlsError, TlsReloader};
use crate::store::postgres::{PgError, PgStore, PostgresConfig};
use crate::store::{QuarantineStore, Store, StoreError};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot open the store on PostgreSQL: {0}")]
    Database(PgError),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Admin(#[from] admin::server::AdminError),
    #[error(transparent)]
    AdminTls(#[from] admin::tls::AdminTlsError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Template(#[from] crate::notice::template::TemplateError),
    #[error(transparent)]
    Telemetry(#[from] crate::telemetry::TelemetryError),
    #[error("DNS: {0}")]
    Dns(#[from] crate::dns::DnsError),
    #[error("RDAP: {0}")]
    Rdap(#[from] crate::rdap::RdapError),
    #[error("dev identity {path}: {source}")]
    DevIdentity {
        path: String,
        source: std::io::Error,
    },
}

/// A running gateway.
pub struct Running {
    /// The SMTP addresses actually bound (useful with port 0).
    pub smtp_addrs: Vec<SocketAddr>,
    /// Reloads the STARTTLS certificate (SIGHUP).
    pub tls: Option<Arc<TlsReloader>>,
    /// The TCP admin address actually bound, when `[admin] listen` is set.
    pub admin_addr: Option<SocketAddr>,
    /// Completes once SMTP and admin have shut down.
    pub task: JoinHandle<()>,
}

/// What `check-config` verified.
#[derive(Debug)]
pub struct CheckReport {
    pub domains: usize,
    pub recipients: usize,
    pub tls: bool,
    pub dev_identity: bool,
}

/// Validates everything `serve` would before it binds anything: the config itself, that
/// someone can read the quarantine, the TLS certificate and key, the notice templates and
/// the DNS settings. Creates and changes nothing.
pub fn check(config: &Config) -> Result<CheckReport, LaunchError> {
    config.require_recipients()?;
    if let Some(t) = &config.tls {
        tls::acceptor(&t.cert, &t.key)?;
    }
    load_templates(config)?;
    if let crate::config::DnsResolver::Static(table) = &config.dns {
        crate::dns::StaticTable::new(table.clone()).map_err(LaunchError::Dns)?;
    }
    Ok(CheckReport {
        domains: config.domains.modes().count(),
        recipients: config.seal.recipients.len(),
        tls: config.tls.is_some(),
        dev_identity: config.seal.recipients.is_empty() && config.seal.dev_identity.is_some(),
    })
}

/// Starts everything on the store `[store] backend` names; cancelling `shutdown` stops it
/// (see [`server::run`]).
pub async fn launch(config: &Config, shutdown: CancellationToken) -> Result<Running, LaunchError> {
    config.require_recipients()?;
    let mut recipients = config.seal.recipients.clone();
    if recipients.is_empty()
        && let Some(path) = &config.seal.dev_identity
    {
        dev_recipient(path, &mut recipients)?;
    }
    let sealer = ReaderGroups::new(Sealer::new(recipients)?, &config.seal.readers)?;

    // The one place that names both stores: the rest of the gateway is generic over the
    // one it is handed.
    match &config.store.backend {
        StoreBackend::Embedded => {
            start(config, open_embedded(config).await?, sealer, shutdown).await
        }
        StoreBackend::Postgres(pg) => {
            start(config, open_postgres(config, pg).await?, sealer, shutdown).await
        }
    }
}

/// Starts SMTP, the notice worker, the purger, the watches and the admin API on `store`.
async fn start<S: QuarantineStore>(
    config: &Config,
    store: S,
    sealer: ReaderGroups,
    shutdown: CancellationToken,
) -> Result<Running, LaunchError> {
    let store = Arc::new(store);
    if let Some(addr) = config.metrics_listen {
        crate::telemetry::serve(addr, shutdown.clone())?;
        tracing::info!(%addr, "metrics listening");
    }
    metrics::gauge!(crate::telemetry::STORE_MESSAGES).set(store.count().await? as f64);

    let tls = match &config.tls {
        Some(t) => Some(Arc::new(TlsReloader::load(&t.cert, &t.key)?)),
        None => None,
    };

    let mut listeners = Vec::new();
    let mut smtp_addrs = Vec::new();
    for addr in &config.server.listen {
        let listener =
            bind_smtp(*addr, config.server.limits.max_connections).map_err(|source| {
                LaunchError::Listen {
                    addr: *addr,
                    source,
                }
            })?;
        let local = listener
            .local_addr()
            .map_err(|source| LaunchError::Listen {
                addr: *addr,
                source,
            })?;
        smtp_addrs.push(local);
        listeners.push(listener);
    }
    let admin_listener = admin::server::bind(&config.admin.socket)?;
    let admin_tcp = match &config.admin.tcp {
        Some(tcp) => Some((
            admin::tls::bind(tcp).await?,
            admin::tls::acceptor(tcp)?,
            tcp.limits,
        )),
        None => None,
    };

    let dns = Dns::from_config(&config.dns).map_err(LaunchError::Dns)?;
    let templates = load_templates(config)?;
    let notices_queued = Arc::new(tokio::sync::Notify::new());
    let notify = Arc::new(config.notify.clone());
    let gateway = Arc::new(Gateway {
        session: Arc::new(SessionConfig {
            hostname: config.server.hostname.clone(),
            limits: config.server.limits.clone(),
            domains: config.domains.clone(),
            tls_available: tls.is_some(),
            storage: store.storage(),
        }),
        quarantine: Arc::new(Quarantine {
            store: store.clone(),
            readers: sealer,
            hostname: config.server.hostname.clone(),
            domains: config.domains.clone(),
            dns: dns.clone(),
            notify: notify.clone(),
            templates,
            retention: config.store.retention.clone(),
            notices_queued: notices_queued.clone(),
            auth_budget: MemoryBudget::new(
                usize::try_from(config.server.limits.auth_memory_budget).unwrap_or(usize::MAX),
            ),
        }),
        tls: tls.clone(),
        tls_handshake_timeout: config.server.tls_handshake_timeout,
        shutdown_grace: config.server.shutdown_grace,
    });
    let worker = Worker {
        store: store.clone(),
        transport: Transport {
            route: match &config.notify.relay {
                Some(relay) => Route::Relay(relay.clone()),
                None => Route::Direct {
                    dns,
                    port: config.notify.mx_port,
                },
            },
            limits: config.notify.delivery.clone(),
        },
        hostname: config.server.hostname.clone(),
        max_age: config.notify.max_age,
        retry_base: config.notify.retry_base,
        wake: notices_queued,
        shutdown_grace: config.server.shutdown_grace,
    };
    let worker_task = tokio::spawn(worker.run(shutdown.clone()));
    for addr in &smtp_addrs {
        tracing::info!(%addr, "SMTP listening");
    }
    tracing::info!(socket = %config.admin.socket.display(), "admin API listening");

    let oversight = Arc::new(admin::Oversight {
        access: config.admin.access.clone(),
        approvals: config.admin.approvals.clone(),
        witness: config.admin.witness.clone(),
    });
    if oversight.access.enforced() {
        tracing::info!(
            principals = oversight.access.principals.len(),
            "admin API roles enforced"
        );
    } else {
        tracing::warn!("no [[principal]] configured: every admin API client is an admin");
    }
    let admin_task = tokio::spawn(admin::server::run(
        admin_listener,
        config.admin.socket.clone(),
        store.clone(),
        oversight.clone(),
        shutdown.clone(),
    ));
    let admin_addr = admin_tcp
        .as_ref()
        .and_then(|(listener, _, _)| listener.local_addr().ok());
    if let Some(addr) = admin_addr {
        tracing::info!(%addr, "admin API listening (mutual TLS)");
    }
    let admin_tcp_task = admin_tcp.map(|(listener, acceptor, limits)| {
        tokio::spawn(admin::tls::run(
            listener,
            acceptor,
            limits,
            store.clone(),
            oversight.clone(),
            shutdown.clone(),
        ))
    });
    let purge_task = tokio::spawn(crate::retention::run_purger(
        store.clone(),
        config.store.retention.clone(),
        config.store.audit_retention,
        config.admin.witness.clone(),
        crate::notice::rate_limits(&config.notify),
        config.store.purge_interval,
        shutdown.clone(),
    ));
    let watch_task = tokio::spawn(registration_watch(config)?.run(shutdown.clone()));
    let space_task = tokio::spawn(watch_free_space(
        store.clone(),
        config.store.free_check_interval,
        shutdown.clone(),
    ));
    let task = tokio::spawn(async move {
        server::run(listeners, gateway, shutdown).await;
        let _ = watch_task.await;
        let _ = space_task.await;
        let _ = admin_task.await;
        let _ = worker_task.await;
        let _ = purge_task.await;
        if let Some(task) = admin_tcp_task {
            let _ = task.await;
        }
    });
    Ok(Running {
        smtp_addrs,
        admin_addr,
        tls,
        task,
    })
}

/// Opens the embedded store at `[store] path`, reconciled against its files (which is
/// reported).
pub async fn open_embedded(config: &Config) -> Result<Store, LaunchError> {
    let store_path = config.store.path.clone();
    let storage_limits = config.store.limits;
    let staging = config.store.staging;
    let (store, report) = tokio::task::spawn_blocking(move || {
        Store::open_tuned(&store_path, storage_limits, staging)
    })
    .await
    .map_err(|e| StoreError::task("store open", e))??;
    log_reconciliation(&report);
    Ok(store)
}

/// Opens the shared store on PostgreSQL that `pg` (from `config`'s `[store]`) names,
/// migrated to this version.
pub async fn open_postgres(config: &Config, pg: &PostgresConfig) -> Result<PgStore, LaunchError> {
    let store = PgStore::open(pg, config.store.limits)
        .await
        .map_err(LaunchError::Database)?;
    tracing::info!("store opened on PostgreSQL");
    Ok(store)
}

/// The daily registration watch over every retired domain (it does nothing when `[rdap]`
/// plans no lookup).
fn registration_watch(config: &Config) -> Result<crate::rdap::watch::Watch, LaunchError> {
    Ok(crate::rdap::watch::Watch {
        client: crate::rdap::Client::from_config(&config.rdap).map_err(LaunchError::Rdap)?,
        config: config.rdap.clone(),
        dns: config.dns.clone(),
        domains: config.domains.names().map(str::to_owned).collect(),
    })
}

/// Binds an SMTP listener whose accept queue holds a burst of `max_connections` connects
/// (at least [`MIN_LISTEN_BACKLOG`]; the kernel caps it at `net.core.somaxconn`). When the queue
/// overflows, Linux drops the client's handshake ACK; a client then believes it is
/// connected and waits for a greeting that never comes, since in SMTP the server speaks first.
fn bind_smtp(addr: SocketAddr, max_connections: usize) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(u32::try_from(max_connections.max(MIN_LISTEN_BACKLOG)).unwrap_or(u32::MAX))
}

/// The smallest SMTP accept queue: a burst of connects from many clients at once must not
/// overflow it while the accept loop catches up.
const MIN_LISTEN_BACKLOG: usize = 4096;

/// Measures the store's free disk space every `interval` until shutdown, so that the
/// `min_free` floor also sees space taken or freed by others.
async fn watch_free_space<S: QuarantineStore>(
    store: Arc<S>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        if let Err(error) = store.refresh_capacity().await {
            tracing::warn!(%error, "cannot measure the store's free disk space");
        }
    }
}

/// Loads notice templates when some domain sends notices; warns when notices are wanted
/// but `[notify] from` is missing (those domains then behave as silent).
fn load_templates(config: &Config) -> Result<Templates, LaunchError> {
    let notifying = config.domains.modes().any(|mode| mode == Mode::Notify);
    if !notifying {
        return Ok(Templates::default());
    }
    if config.notify.from.is_none() {
        tracing::warn!(
            "domains in notify mode, but [notify] from is not set: no notices will be sent"
        );
        return Ok(Templates::default());
    }
    Ok(Templates::load(config.notify.templates.as_deref())?)
}

fn log_reconciliation(report: &crate::store::Reconciliation) {
    tracing::info!(
        messages = report.messages,
        stale_temp_removed = report.stale_temp_removed,
        stale_segments_removed = report.stale_segments_removed,
        "store opened"
    );
    for name in &report.orphan_blobs {
        tracing::warn!(file = %name, "ORPHAN sealed file in the store with no index entry; kept for manual review, not deleted");
    }
    for id in &report.missing_blobs {
        tracing::error!(%id, "MISSING sealed data (its file, or its segment range) for an indexed message; the index entry is kept");
    }
    if !report.is_clean() {
        tracing::warn!(
            orphans = report.orphan_blobs.len(),
            missing = report.missing_blobs.len(),
            "store reconciliation found mismatches; see the lines above"
        );
    }
}

/// Loads the dev identity, creating it on first start, and adds its public key.
fn dev_recipient(path: &Path, recipients: &mut Recipients) -> Result<(), LaunchError> {
    let io_err = |source| LaunchError::DevIdentity {
        path: path.display().to_string(),
        source,
    };
    if !path.exists() {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(io_err)?;
        }
        let created = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let identity = crate::seal::keygen::generate(&created);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io_err)?;
        file.write_all(identity.file_text.as_bytes())
            .map_err(io_err)?;
        file.sync_all().map_err(io_err)?;
        tracing::warn!(path = %path.display(), "DEV ONLY: generated a dev identity on the gateway");
    }
    let text = std::fs::read_to_string(path).map_err(io_err)?;
    let recipient = text
        .lines()
        .find_map(|line| line.strip_prefix("# public key: "))
        .and_then(|key| key.trim().parse::<age::x25519::Recipient>().ok())
        .ok_or_else(|| {
            io_err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "no '# public key:' line",
            ))
        })?;
    tracing::warn!(
        path = %path.display(),
        "DEV ONLY: sealing to a dev identity whose private key is on this machine; \
         configure [seal] recipients with reviewers' public keys for production"
    );
    recipients.push_x25519(recipient);
    Ok(())
}
