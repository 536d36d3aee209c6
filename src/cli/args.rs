//! The command line as clap sees it: global options, subcommands and their flags.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use super::IDENTITY_ENV;
use crate::review::Access;
use crate::review::filter::Criteria;

const EXAMPLES: &str = "Examples:
  reclaim serve -c config/reclaim.toml
  reclaim keygen -o ~/.reclaim/reviewer.key
  reclaim list --domain old.example --since 7d --from partner.example
  reclaim show ID --reason 'ticket 4711: find the sender'
  reclaim export ID -o message.eml --reason 'ticket 4711'
  reclaim export --mbox partner.mbox --from partner.example --reason 'hand-over to case team'
  reclaim release ID --to case-team@new.example --reason 'ticket 4711'
  reclaim hold ID --reason 'legal hold 2026-17'
  reclaim delete ID... --reason 'reviewed, nothing to keep'
  reclaim purge --older-than 90d --reason 'clean-up'
  reclaim report --since 30d --csv > senders.csv
  reclaim audit --verify
  reclaim desk --open
  reclaim imap --reason 'ticket 4711: read in Thunderbird'
  reclaim store migrate -c embedded.toml --to postgres.toml

Exit codes:
  0  success
  1  any other failure
  2  bad usage, a request the server refused as malformed, or an output export will not
     write (a terminal without -o -, an existing file without --force, a symbolic link)
  3  the admin API could not be reached, did not take the request, or did not answer
  4  no such message (for delete: at least one id named no message)
  5  a message could not be decrypted with the given identity
  6  the audit chain does not verify
  7  the submission server could not be reached, did not answer within a [release]
     deadline, or refused a released message
  8  the admin API refused the action: the caller's roles ([[principal]]) do not grant it";

#[derive(Parser, Debug)]
#[command(
    name = "reclaim",
    version,
    about = "Quarantine MX for retired mail domains",
    after_help = EXAMPLES
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
    /// Remote admin API, mutual TLS: https://HOST:PORT (needs --cert, --key, --admin-ca).
    #[arg(long, global = true, value_name = "URL", env = "RECLAIM_ADMIN")]
    pub admin: Option<String>,
    /// Client certificate (PEM) for --admin.
    #[arg(long, global = true, value_name = "PEM")]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM) for --admin.
    #[arg(long, global = true, value_name = "PEM")]
    pub key: Option<PathBuf>,
    /// CA that issued the admin server's certificate (PEM), for --admin.
    #[arg(long, global = true, value_name = "PEM")]
    pub admin_ca: Option<PathBuf>,
    /// Log format of `serve`.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

impl Args {
    /// Where the admin API, the config and the identity are, as the global flags say.
    pub fn access(&self) -> Access {
        Access {
            config: self.config.clone(),
            socket: self.socket.clone(),
            admin: self.admin.clone(),
            admin_ca: self.admin_ca.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            identity: self.identity.clone(),
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Which messages a command works on. `--domain`, `--since` and `--until` are applied by
/// the server on plaintext index fields; `--from`, `--to` and `--subject` on this side
/// after decryption (case-insensitive substring matches).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Only messages to this retired domain.
    #[arg(long)]
    pub domain: Option<String>,
    /// Received at or after: a date (2026-11-01), an RFC 3339 time, or an age (7d).
    #[arg(long)]
    pub since: Option<String>,
    /// Received before: a date, an RFC 3339 time, or an age.
    #[arg(long)]
    pub until: Option<String>,
    /// Envelope sender or From: contains this text.
    #[arg(long)]
    pub from: Option<String>,
    /// An envelope recipient contains this text.
    #[arg(long)]
    pub to: Option<String>,
    /// Subject contains this text.
    #[arg(long)]
    pub subject: Option<String>,
}

impl FilterArgs {
    /// The criteria these flags give.
    pub fn criteria(&self) -> Criteria {
        Criteria {
            domain: self.domain.clone(),
            since: self.since.clone(),
            until: self.until.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            subject: self.subject.clone(),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway (SMTP listener and admin API).
    Serve,
    /// Validate the config as `serve` would (keys, certificate, templates), then exit.
    CheckConfig,
    /// Work on the store itself, with no gateway running on it.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Ask the running gateway over the admin socket whether it is up (for health checks):
    /// exits 0 only when it answers, 3 when it cannot be reached or does not answer.
    Health {
        /// Fail when the gateway has not taken the request or answered within this long.
        #[arg(long, default_value = "5s", value_parser = health_timeout)]
        timeout: std::time::Duration,
    },
    /// Check the retired domains' DNS (MX, SPF, DMARC, wildcards, MTA-STS) and print fixes.
    CheckDns {
        /// Domains to check (default: every configured retired domain).
        domains: Vec<String>,
        /// The gateway's MX host name (default: [server] hostname).
        #[arg(long)]
        mx: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Fetch a current copy of IANA's RDAP bootstrap file into [rdap] bootstrap, so that
    /// the registration watch knows every registry (run it monthly, e.g. from a timer).
    RdapBootstrap {
        /// Where to fetch it (default: IANA's https://data.iana.org/rdap/dns.json).
        #[arg(long)]
        url: Option<String>,
        /// Where to write it (default: [rdap] bootstrap from the config).
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
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
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Show one message safely: envelope, main fields, auth results, text, attachments.
    Show {
        /// Message id, as `reclaim list` shows it.
        id: String,
        /// Why you read it (recorded in the audit trail).
        #[arg(long)]
        reason: String,
        #[arg(long)]
        json: bool,
    },
    /// Write decrypted messages: one (ID), or every match as mbox or a folder of .eml.
    Export {
        /// Message id; leave out with --mbox or --dir.
        #[arg(required_unless_present_any = ["mbox", "dir"])]
        id: Option<String>,
        /// Output file for one message, created with mode 0600; `-` for standard output
        /// (default: standard output, refused when it is a terminal).
        #[arg(short, long, conflicts_with_all = ["mbox", "dir"])]
        output: Option<PathBuf>,
        /// Write every matching message into this mboxrd file.
        #[arg(long, conflicts_with_all = ["id", "dir"])]
        mbox: Option<PathBuf>,
        /// Write every matching message as DIR/ID.eml (DIR made with mode 0700).
        #[arg(long, conflicts_with = "id")]
        dir: Option<PathBuf>,
        /// Replace existing output files (a symbolic link at a target is still refused).
        #[arg(long)]
        force: bool,
        /// Why you export (recorded in the audit trail).
        #[arg(long)]
        reason: String,
        /// Carry it out under this approved four-eyes request (`reclaim request`).
        #[arg(long, value_name = "N")]
        request: Option<u64>,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Decrypt a message here and submit it to the [release] relay, with Resent-* fields.
    Release {
        id: String,
        /// Who receives it (repeat for several).
        #[arg(long, required = true)]
        to: Vec<String>,
        /// Why it is released (recorded in the audit trail).
        #[arg(long)]
        reason: String,
        /// Carry it out under this approved four-eyes request (`reclaim request`).
        #[arg(long, value_name = "N")]
        request: Option<u64>,
    },
    /// Delete messages now (sealed file, index entry and summary).
    Delete {
        #[arg(required = true)]
        ids: Vec<String>,
        #[arg(long)]
        reason: Option<String>,
        /// Carry it out under this approved four-eyes request (`reclaim request`).
        #[arg(long, value_name = "N")]
        request: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Place a legal hold: the message is kept whatever its retention.
    Hold {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Lift a legal hold.
    Unhold {
        id: String,
        #[arg(long)]
        reason: Option<String>,
        /// Carry it out under this approved four-eyes request (`reclaim request`).
        #[arg(long, value_name = "N")]
        request: Option<u64>,
    },
    /// After a reviewer's key left `[seal] recipients` or a domain's `readers`: rewrap
    /// every message still sealed to the old keys for the keys the config names now, on
    /// this machine (needs -c CONFIG and an identity that opens them). Resumable: run it
    /// again to go on; messages already sealed to their group are left alone.
    Reseal {
        /// Why, for the audit trail (each message's fetch and re-seal are recorded).
        #[arg(long)]
        reason: String,
        /// Only messages to this retired domain.
        #[arg(long)]
        domain: Option<String>,
        /// Print the totals as JSON at the end.
        #[arg(long)]
        json: bool,
    },
    /// Delete every message older than DURATION that is not held.
    Purge {
        /// Age such as 90d or 12h.
        #[arg(long)]
        older_than: String,
        #[arg(long)]
        reason: Option<String>,
        /// Carry it out under this approved four-eyes request (`reclaim request`).
        #[arg(long, value_name = "N")]
        request: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Ask for a four-eyes approval: another principal approves, then you run the action
    /// with --request N.
    Request {
        /// release, export, delete, purge or hold-lift.
        action: String,
        /// The messages it is for (none for purge).
        ids: Vec<String>,
        /// A purge's age, such as 90d.
        #[arg(long)]
        older_than: Option<String>,
        /// A release's recipients (repeat for several): the approver approves these, and
        /// the release must go to exactly them.
        #[arg(long)]
        to: Vec<String>,
        /// Why (recorded in the audit trail and shown to the approver).
        #[arg(long)]
        reason: String,
        #[arg(long)]
        json: bool,
    },
    /// The four-eyes requests, newest first, with their state.
    Requests {
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
        limit: u16,
        #[arg(long)]
        json: bool,
    },
    /// Approve another principal's four-eyes request.
    Approve {
        number: u64,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Deny a four-eyes request (or withdraw an approval not yet used).
    Deny {
        number: u64,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Who still mails the retired domains: per sender domain and address.
    Report {
        /// Only messages received since (date, RFC 3339 time, or age such as 30d).
        #[arg(long)]
        since: Option<String>,
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        #[arg(long)]
        csv: bool,
        /// The exit rule per retired domain: last legitimate sender, weekly trend, who was
        /// told and stopped or still writes, and the records that end its mail when quiet.
        #[arg(long, conflicts_with_all = ["csv", "since"])]
        exit: bool,
    },
    /// The reviewer's desk: the quarantine in a browser, served on this machine's loopback
    /// and decrypted here; prints a URL with a one-time secret.
    Desk {
        /// Where to listen: a loopback address and port (default: 127.0.0.1 on a free port).
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<std::net::SocketAddr>,
        /// Open the URL in the browser (xdg-open).
        #[arg(long)]
        open: bool,
        /// Messages per inbox page.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=1000))]
        page_size: u16,
        /// Summaries one inbox page may decrypt looking for matches of --from/--to/--subject
        /// style filters before it offers the next page instead.
        #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        scan: u32,
        /// End the browser session after this long without a request (then a new one-time
        /// URL is printed here).
        #[arg(long, default_value = "30m", value_parser = session_duration)]
        idle_timeout: std::time::Duration,
        /// End the browser session this long after its login, however busy.
        #[arg(long, default_value = "12h", value_parser = session_duration)]
        session_lifetime: std::time::Duration,
    },
    /// The quarantine in a mail client: an IMAP server on this machine's loopback that
    /// decrypts here, read-only unless --allow-delete; prints its port and a password for
    /// this run.
    Imap {
        /// Where to listen: a loopback address and port (default: 127.0.0.1 on a free port).
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<std::net::SocketAddr>,
        /// Why the quarantine is read: recorded in the audit trail with every message a
        /// client opens.
        #[arg(long)]
        reason: String,
        /// Where UIDs and \Seen/\Flagged flags are kept (message ids and numbers only;
        /// default: $XDG_STATE_HOME/reclaim or ~/.local/state/reclaim).
        #[arg(long, value_name = "DIR")]
        state: Option<PathBuf>,
        /// Messages one SEARCH TEXT or BODY may decrypt; a search needing more is refused.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        search_decrypts: u32,
        /// Log a client out after this long without a command (at least 30m, RFC 3501).
        #[arg(long, default_value = "30m", value_parser = imap_idle)]
        idle_timeout: std::time::Duration,
        /// While a client IDLEs, look for new and removed messages this often (5s..=30m).
        #[arg(long, default_value = "30s", value_parser = imap_idle_poll)]
        idle_poll: std::time::Duration,
        /// Let a client delete: messages marked \Deleted are deleted from the quarantine at
        /// EXPUNGE or CLOSE, through the admin API with --reason, under the same roles and
        /// four-eyes rules as `reclaim delete` (a guarded delete files a request instead).
        #[arg(long)]
        allow_delete: bool,
        /// With --allow-delete: carry deletes out under this approved four-eyes request.
        #[arg(long, value_name = "N", requires = "allow_delete")]
        request: Option<u64>,
    },
    /// Counts and bytes per domain and per day, and holds.
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// The audit trail: who did what, when and why.
    Audit {
        /// Only records since (date, RFC 3339 time, or age such as 7d).
        #[arg(long)]
        since: Option<String>,
        /// Check the hash chain from its anchor to its head; exit 6 if it is broken.
        #[arg(long)]
        verify: bool,
        /// With --verify: also check the chain against the heads witnessed in FILE
        /// ([audit] head_file, or a log fed by head_command); repeatable.
        #[arg(long, value_name = "FILE", requires = "verify")]
        heads: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

/// `reclaim store …`.
#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Copy the whole quarantine of this config's store (messages, holds, queued notices,
    /// audit trail) into the empty store TO names, checking every sealed message's hash and
    /// both audit chains. Embedded to PostgreSQL or back; stop the gateways first.
    Migrate {
        /// The config whose `[store]` receives the copy.
        #[arg(long, value_name = "CONFIG")]
        to: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

/// A desk session duration such as `30m` or `8h`: from one minute to a week.
fn health_timeout(text: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    let (min, max) = (
        std::time::Duration::from_millis(100),
        std::time::Duration::from_secs(3600),
    );
    if d < min || d > max {
        return Err(format!("{text} is outside 100ms..=1h"));
    }
    Ok(d)
}

/// An IMAP idle timeout: from 30 minutes (RFC 3501 5.4) to a day.
fn imap_idle(text: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if d < std::time::Duration::from_secs(30 * 60) || d > std::time::Duration::from_secs(86_400) {
        return Err(format!("{text} is outside 30m..=1d"));
    }
    Ok(d)
}

fn imap_idle_poll(text: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if d < std::time::Duration::from_secs(5) || d > std::time::Duration::from_secs(30 * 60) {
        return Err(format!("{text} is outside 5s..=30m"));
    }
    Ok(d)
}

fn session_duration(text: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    let (min, max) = (
        std::time::Duration::from_secs(60),
        std::time::Duration::from_secs(7 * 24 * 3600),
    );
    if d < min || d > max {
        return Err(format!("{text} is outside 1m..=7d"));
    }
    Ok(d)
}
