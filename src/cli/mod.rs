//! The `reclaim` command line: dispatch, the review context the global flags name, and the
//! exit codes scripts rely on. Each subcommand lives in its own file and prints what a
//! step of [`crate::review`] did.

mod approvals;
mod args;
mod audit;
mod check_config;
mod check_dns;
mod desk;
mod exit_rule;
mod export;
mod imap;
mod keygen;
mod list;
mod manage;
mod output;
mod rdap_bootstrap;
mod release;
mod report;
mod reseal;
mod serve;
mod show;
pub mod stdout;
mod store;
mod terminal;
mod verified;

use std::io::Write;
use std::path::PathBuf;

pub use args::{Args, Command, FilterArgs, LogFormat, StoreCommand};

use crate::admin::client::AdminClient;
use crate::clock::unix_now;
use crate::config::{Config, DEFAULT_CONFIG_PATH};
use crate::review::filter::{Criteria, Filter, parse_when};
use crate::review::{Kind, ReviewContext};

/// Environment variable naming the reviewer's identity file.
pub const IDENTITY_ENV: &str = "RECLAIM_IDENTITY";

pub use crate::review::exit;

/// A failure of the command line itself (where it may write) that carries its exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

/// The exit code for an error: the first cause in its chain, outermost first, that says
/// more than a plain failure decides (see [`crate::review::Kind`]).
pub fn exit_code(error: &anyhow::Error) -> u8 {
    error
        .chain()
        .find_map(|cause| match cause.downcast_ref::<Exit>() {
            Some(exit) => Some(exit.code),
            None => Kind::of(cause).map(Kind::exit_code),
        })
        .unwrap_or(exit::FAILURE)
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
            let filter = Filter::new(&filter.criteria(), now)?;
            list::run(&context(&args)?, *json, *limit, &filter)
        }
        Command::Show { id, reason, json } => show::run(&context(&args)?, id, reason, *json),
        Command::Export {
            id,
            output,
            mbox,
            dir,
            force,
            reason,
            request,
            filter,
        } => {
            let context = context(&args)?.under_request(*request);
            match (id, mbox, dir) {
                (Some(id), _, _) => export::one(&context, id, output.as_deref(), *force, reason),
                (None, Some(path), _) => {
                    let filter = Filter::new(&filter.criteria(), now)?;
                    let target = export::Target::Mbox(path);
                    export::bulk(&context, target, &filter, *force, reason)
                }
                (None, None, Some(dir)) => {
                    let filter = Filter::new(&filter.criteria(), now)?;
                    let target = export::Target::Dir(dir);
                    export::bulk(&context, target, &filter, *force, reason)
                }
                (None, None, None) => anyhow::bail!("name a message id, --mbox or --dir"),
            }
        }
        Command::Release {
            id,
            to,
            reason,
            request,
        } => release::run(&context(&args)?.under_request(*request), id, to, reason),
        Command::Delete {
            ids,
            reason,
            request,
            json,
        } => manage::delete(
            &context(&args)?.under_request(*request),
            ids,
            reason.as_deref(),
            *json,
        ),
        Command::Hold { id, reason } => manage::hold(&context(&args)?, id, true, reason.as_deref()),
        Command::Unhold {
            id,
            reason,
            request,
        } => manage::hold(
            &context(&args)?.under_request(*request),
            id,
            false,
            reason.as_deref(),
        ),
        Command::Reseal {
            reason,
            domain,
            json,
        } => reseal::run(&context(&args)?, reason, domain.as_deref(), *json),
        Command::Purge {
            older_than,
            reason,
            request,
            json,
        } => manage::purge(
            &context(&args)?.under_request(*request),
            older_than,
            reason.as_deref(),
            *json,
        ),
        Command::Request {
            action,
            ids,
            older_than,
            to,
            reason,
            json,
        } => approvals::request(
            &context(&args)?,
            action,
            ids,
            older_than.as_deref(),
            to,
            reason,
            *json,
        ),
        Command::Requests { limit, json } => {
            approvals::list(&context(&args)?, usize::from(*limit), *json)
        }
        Command::Approve { number, reason } => {
            approvals::decide(&context(&args)?, *number, true, reason.as_deref())
        }
        Command::Deny { number, reason } => {
            approvals::decide(&context(&args)?, *number, false, reason.as_deref())
        }
        Command::Report {
            exit: true, json, ..
        } => exit_rule::run(&context(&args)?, *json, now),
        Command::Report {
            since, json, csv, ..
        } => {
            let criteria = Criteria {
                since: since.clone(),
                ..Criteria::default()
            };
            let filter = Filter::new(&criteria, now)?;
            report::report(&context(&args)?, &filter, *json, *csv)
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
            desk::run(context(&args)?, *listen, *open, limits)
        }
        Command::Imap {
            listen,
            state,
            reason,
            search_decrypts,
            idle_timeout,
            idle_poll,
            allow_delete,
            request,
        } => {
            let limits = crate::imap::Limits {
                search_decrypts: usize::try_from(*search_decrypts).unwrap_or(usize::MAX),
                idle: *idle_timeout,
                idle_poll: *idle_poll,
                deletes: *allow_delete,
                ..crate::imap::Limits::default()
            };
            let context = context(&args)?.under_request(*request);
            imap::run(context, *listen, state.as_deref(), reason, limits)
        }
        Command::Stats { json } => report::stats(&context(&args)?, *json),
        Command::Audit {
            since,
            verify,
            heads,
            json,
        } => {
            let since = since.as_deref().map(|s| parse_when(s, now)).transpose()?;
            audit::run(&context(&args)?, since, *verify, heads, *json)
        }
    }
}

/// The review context the global flags name.
fn context(args: &Args) -> anyhow::Result<ReviewContext> {
    Ok(ReviewContext::new(&args.access())?)
}

fn config_path(args: &Args) -> PathBuf {
    args.config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::client::ClientError;
    use crate::review::ReviewError;

    #[test]
    fn the_first_deciding_cause_gives_the_exit_code() {
        let missing = anyhow::Error::from(ReviewError::NotFound("x".into())).context("deleting");
        assert_eq!(exit_code(&missing), exit::NOT_FOUND);
        let cut = std::io::Error::other(ClientError::NoAnswer {
            endpoint: "admin.sock".into(),
        });
        let copying = anyhow::Error::from(cut).context("decrypting message x into m.eml");
        assert_eq!(exit_code(&copying), exit::UNREACHABLE);
        let refused = anyhow::Error::from(Exit {
            code: exit::USAGE,
            message: "m.eml exists; pass --force to replace it".into(),
        });
        assert_eq!(exit_code(&refused), exit::USAGE);
        assert_eq!(exit_code(&anyhow::anyhow!("plain")), exit::FAILURE);
    }
}
