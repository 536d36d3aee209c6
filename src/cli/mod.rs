//! The `reclaim` command line: argument definitions and dispatch. Each subcommand lives in
//! its own file.

mod check_config;
mod export;
mod keygen;
mod list;
mod serve;
mod terminal;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::admin::client::AdminClient;
use crate::config::{Config, DEFAULT_CONFIG_PATH};
use crate::seal::Identities;

/// Environment variable naming the reviewer's identity file.
pub const IDENTITY_ENV: &str = "RECLAIM_IDENTITY";

#[derive(Parser, Debug)]
#[command(
    name = "reclaim",
    version,
    about = "Quarantine MX for retired mail domains",
    after_help = "Examples:\n  reclaim serve -c config/reclaim.toml\n  reclaim keygen -o ~/.reclaim/reviewer.key\n  reclaim list -i ~/.reclaim/reviewer.key\n  reclaim export 0193a5c4-… -i ~/.reclaim/reviewer.key -o message.eml"
)]
pub struct Args {
    /// Config file.
    #[arg(
        short,
        long,
        global = true,
        value_name = "CONFIG",
        env = "RECLAIM_CONFIG"
    )]
    pub config: Option<PathBuf>,
    /// Reviewer identity: an age identity file (plain or passphrase-protected) or an
    /// OpenSSH private key.
    #[arg(short, long, global = true, value_name = "IDENTITY", env = IDENTITY_ENV)]
    pub identity: Option<PathBuf>,
    /// Admin API socket (default: [admin] socket from the config).
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Log format of `serve`.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway (SMTP listener and admin API).
    Serve,
    /// Validate the config as `serve` would (keys, certificate, templates), then exit.
    CheckConfig,
    /// Ask the running gateway over the admin socket whether it is up (for health checks).
    Health,
    /// Create a reviewer identity; prints its public key (age1…) for [seal] recipients.
    Keygen {
        /// Where to write the identity (mode 0600; never overwritten).
        #[arg(short, long, default_value = "reclaim-identity.txt")]
        output: PathBuf,
    },
    /// List quarantined messages, newest first (decrypted on this side).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// At most this many messages (default: all).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Write one decrypted message (trace fields plus the original bytes).
    Export {
        /// Message id, as `reclaim list` shows it.
        id: String,
        /// Output file (default: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

/// Runs the parsed command line.
pub fn run(args: Args) -> anyhow::Result<()> {
    match &args.command {
        Command::Serve => serve::run(&config_path(&args)),
        Command::CheckConfig => check_config::run(&config_path(&args)),
        Command::Health => {
            let socket = match &args.socket {
                Some(socket) => socket.clone(),
                None => Config::load(&config_path(&args))?.admin.socket,
            };
            let health: serde_json::Value = AdminClient::new(&socket).get_json("/v1/health")?;
            println!("{health}");
            Ok(())
        }
        Command::Keygen { output } => keygen::run(output),
        Command::List { json, limit } => {
            let context = ReviewContext::new(&args)?;
            list::run(&context, *json, *limit)
        }
        Command::Export { id, output } => {
            let context = ReviewContext::new(&args)?;
            export::run(&context, id, output.as_deref())
        }
    }
}

fn config_path(args: &Args) -> PathBuf {
    args.config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
}

/// What reviewing commands need: the admin API and the reviewer's identities.
pub struct ReviewContext {
    pub client: AdminClient,
    pub identities: Identities,
}

impl ReviewContext {
    fn new(args: &Args) -> anyhow::Result<Self> {
        // The config is only needed for what the flags do not give.
        let config = if args.socket.is_none() || args.identity.is_none() {
            Some(Config::load(&config_path(args))?)
        } else {
            None
        };
        let socket = args
            .socket
            .clone()
            .or_else(|| config.as_ref().map(|c| c.admin.socket.clone()))
            .context("no admin socket: pass --socket PATH or -c CONFIG")?;
        let identity = args
            .identity
            .clone()
            .or_else(|| config.as_ref().and_then(|c| c.seal.dev_identity.clone()))
            .context("no identity: pass -i IDENTITY or set RECLAIM_IDENTITY")?;
        let identities = load_identities(&identity)?;
        Ok(Self {
            client: AdminClient::new(&socket),
            identities,
        })
    }
}

fn load_identities(path: &Path) -> anyhow::Result<Identities> {
    Ok(Identities::load(path)?)
}
