//! The `reclaim` command line: dispatch, what reviewing commands share, and the exit codes
//! scripts rely on. Each subcommand lives in its own file.

mod args;
pub(crate) mod audit;
mod check_config;
mod check_dns;
mod desk;
pub(crate) mod exit_rule;
pub(crate) mod export;
pub(crate) mod filter;
mod keygen;
pub(crate) mod list;
pub(crate) mod listed;
pub(crate) mod manage;
pub(crate) mod mbox;
mod output;
mod rdap_bootstrap;
pub(crate) mod release;
pub(crate) mod render;
pub(crate) mod report;
mod serve;
pub(crate) mod show;
pub mod stdout;
mod store;
pub(crate) mod terminal;
pub(crate) mod verified;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

pub use args::{Args, Command, FilterArgs, LogFormat, StoreCommand};

use crate::admin::client::{AdminClient, ClientError, TlsFiles};
use crate::clock::unix_now;
use crate::config::{Config, DEFAULT_CONFIG_PATH};
use crate::seal::{Identities, SealError};
use crate::store::MessageId;

/// Environment variable naming the reviewer's identity file.
pub const IDENTITY_ENV: &str = "RECLAIM_IDENTITY";

/// Exit codes (also listed in `--help` and the README).
pub mod exit {
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const UNREACHABLE: u8 = 3;
    pub const NOT_FOUND: u8 = 4;
    pub const DECRYPT: u8 = 5;
    pub const AUDIT_BROKEN: u8 = 6;
    pub const RELEASE_REFUSED: u8 = 7;
}

/// A failure that carries its own exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

/// The exit code for an error: the most specific cause in its chain decides.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if let Some(exit) = cause.downcast_ref::<Exit>() {
            return exit.code;
        }
        // A body reader's I/O error carries the client error inside.
        let client = cause.downcast_ref::<ClientError>().or_else(|| {
            cause
                .downcast_ref::<std::io::Error>()
                .and_then(ClientError::inside)
        });
        if let Some(client) = client {
            return match client {
                client if client.is_unreachable() => exit::UNREACHABLE,
                ClientError::Status { status: 404, .. } => exit::NOT_FOUND,
                ClientError::Status { status, .. } if (400..500).contains(status) => exit::USAGE,
                _ => exit::FAILURE,
            };
        }
        if let Some(SealError::Decrypt(_)) = cause.downcast_ref::<SealError>() {
            return exit::DECRYPT;
        }
    }
    exit::FAILURE
}

/// A message id from the command line; a malformed one is bad usage (exit 2).
pub fn parse_id(text: &str) -> Result<MessageId, Exit> {
    text.parse().map_err(|message| Exit {
        code: exit::USAGE,
        message,
    })
}

/// Runs the parsed command line.
pub fn run(args: Args) -> anyhow::Result<()> {
    let now = unix_now();
    match &args.command {
        Command::Serve => serve::run(&config_path(&args)),
        Command::CheckConfig => check_config::run(&config_path(&args)),
        Command::Store {
            command: StoreCommand::Migrate { to, json },
        } => store::migrate_to(&config_path(&args), to, *json),
        Command::CheckDns { domains, mx, json } => {
            check_dns::run(&config_path(&args), domains, mx.as_deref(), *json)
        }
        Command::RdapBootstrap { url, output } => {
            rdap_bootstrap::run(&config_path(&args), url.as_deref(), output.as_deref())
        }
        Command::Health { timeout } => {
            let socket = match &args.socket {
                Some(socket) => socket.clone(),
                None => Config::load(&config_path(&args))?.admin.socket,
            };
            let health: serde_json::Value = AdminClient::new(&socket)
                .with_timeout(*timeout)
                .get_json("/v1/health")?;
            let mut out = stdout::lock();
            writeln!(out, "{health}")?;
            out.flush()?;
            Ok(())
        }
        Command::Keygen { output } => keygen::run(output),
        Command::List {
            json,
            limit,
            filter,
        } => {
            let filter = filter::Filter::new(filter, now)?;
            list::run(&ReviewContext::new(&args)?, *json, *limit, &filter)
        }
        Command::Show { id, reason, json } => {
            show::run(&ReviewContext::new(&args)?, id, reason, *json)
        }
        Command::Export {
            id,
            output,
            mbox,
            dir,
            force,
            reason,
            filter,
        } => {
            let context = ReviewContext::new(&args)?;
            match (id, mbox, dir) {
                (Some(id), _, _) => export::one(&context, id, output.as_deref(), *force, reason),
                (None, Some(path), _) => {
                    let filter = filter::Filter::new(filter, now)?;
                    let target = export::Target::Mbox(path);
                    export::bulk(&context, target, &filter, *force, reason)
                }
                (None, None, Some(dir)) => {
                    let filter = filter::Filter::new(filter, now)?;
                    let target = export::Target::Dir(dir);
                    export::bulk(&context, target, &filter, *force, reason)
                }
                (None, None, None) => anyhow::bail!("name a message id, --mbox or --dir"),
            }
        }
        Command::Release { id, to, reason } => {
            release::run(&ReviewContext::new(&args)?, id, to, reason)
        }
        Command::Delete { ids, reason, json } => {
            manage::delete(&ReviewContext::new(&args)?, ids, reason.as_deref(), *json)
        }
        Command::Hold { id, reason } => {
            manage::hold(&ReviewContext::new(&args)?, id, true, reason.as_deref())
        }
        Command::Unhold { id, reason } => {
            manage::hold(&ReviewContext::new(&args)?, id, false, reason.as_deref())
        }
        Command::Purge {
            older_than,
            reason,
            json,
        } => manage::purge(
            &ReviewContext::new(&args)?,
            older_than,
            reason.as_deref(),
            *json,
        ),
        Command::Report {
            exit: true, json, ..
        } => exit_rule::run(&ReviewContext::new(&args)?, *json, now),
        Command::Report {
            since, json, csv, ..
        } => {
            let filter = filter::Filter::new(
                &args::FilterArgs {
                    since: since.clone(),
                    ..Default::default()
                },
                now,
            )?;
            report::report(&ReviewContext::new(&args)?, &filter, *json, *csv)
        }
        Command::Desk {
            listen,
            open,
            page_size,
            scan,
            idle_timeout,
            session_lifetime,
        } => {
            let limits = crate::desk::Limits {
                page_size: usize::from(*page_size),
                scan: usize::try_from(*scan).unwrap_or(usize::MAX),
                sessions: crate::desk::Lifetimes {
                    idle: *idle_timeout,
                    absolute: *session_lifetime,
                },
                ..crate::desk::Limits::default()
            };
            desk::run(ReviewContext::new(&args)?, *listen, *open, limits)
        }
        Command::Stats { json } => report::stats(&ReviewContext::new(&args)?, *json),
        Command::Audit {
            since,
            verify,
            json,
        } => {
            let since = since
                .as_deref()
                .map(|s| filter::parse_when(s, now))
                .transpose()?;
            audit::run(&ReviewContext::new(&args)?, since, *verify, *json)
        }
    }
}

fn config_path(args: &Args) -> PathBuf {
    args.config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
}

/// What reviewing commands need: the admin API, the config when there is one, and the
/// reviewer's identities (loaded only by the commands that decrypt).
pub struct ReviewContext {
    pub client: AdminClient,
    pub config: Option<Config>,
    identity: Option<PathBuf>,
    identities: std::sync::OnceLock<Identities>,
}

impl ReviewContext {
    /// The admin client, config and identity path the global flags name.
    pub fn new(args: &Args) -> anyhow::Result<Self> {
        let explicit = args.config.is_some();
        let path = config_path(args);
        // The config is only needed for what the flags do not give; a missing default
        // config is fine when they give everything.
        let config = match Config::load(&path) {
            Ok(config) => Some(config),
            Err(e) if explicit || (args.socket.is_none() && args.admin.is_none()) => {
                return Err(e.into());
            }
            Err(_) => None,
        };
        let client = match &args.admin {
            Some(url) => {
                let need = |v: &Option<PathBuf>, flag: &str| {
                    v.clone().with_context(|| format!("--admin needs {flag}"))
                };
                let (ca, cert, key) = (
                    need(&args.admin_ca, "--admin-ca")?,
                    need(&args.cert, "--cert")?,
                    need(&args.key, "--key")?,
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
                let socket = args
                    .socket
                    .clone()
                    .or_else(|| config.as_ref().map(|c| c.admin.socket.clone()))
                    .context("no admin socket: pass --socket PATH or -c CONFIG")?;
                AdminClient::new(&socket)
            }
        };
        let identity = args
            .identity
            .clone()
            .or_else(|| config.as_ref().and_then(|c| c.seal.dev_identity.clone()));
        Ok(Self {
            client,
            config,
            identity,
            identities: std::sync::OnceLock::new(),
        })
    }

    /// The reviewer's identities, loaded on first use.
    pub fn identities(&self) -> anyhow::Result<&Identities> {
        if let Some(ids) = self.identities.get() {
            return Ok(ids);
        }
        let path = self
            .identity
            .as_deref()
            .context("no identity: pass -i IDENTITY or set RECLAIM_IDENTITY")?;
        let loaded = load_identities(path)?;
        Ok(self.identities.get_or_init(|| loaded))
    }
}

fn load_identities(path: &Path) -> anyhow::Result<Identities> {
    Ok(Identities::load(path)?)
}
