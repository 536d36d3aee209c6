//! reclaim: the quarantine MX for retired mail domains.
//!
//! Map of the crate:
//! - [`config`]: the TOML file, validated once into a [`config::Config`].
//! - [`domains`]: which recipient domains are retired (catch-all, wildcards, IDN), their
//!   modes and where their people moved.
//! - [`smtp`]: the pure SMTP session state machine (recipients recorded with their
//!   disposition at RCPT time) and the tokio connection driver that carries out its actions.
//! - [`quarantine`]: the message path's one owner: opens an intake for a message,
//!   authenticates the sender, plans notices, commits, counts, wakes the notice worker.
//! - [`seal`]: age encryption of messages, summaries sealed under their message's file key,
//!   and identities for reviewers.
//! - [`intake`]: seals a message as it streams in and commits it to the store;
//!   [`auth_copy`] keeps its plaintext copy for DKIM within a memory budget.
//! - [`capacity`]: room left for new mail (store quota, free-disk floor) and the DKIM
//!   memory budget.
//! - [`store`]: the durable quarantine behind the async [`store::QuarantineStore`]
//!   interface, the only one the rest of the gateway holds a store by (generic over it,
//!   the store chosen once at [`launch`]); the embedded store (small sealed messages appended to segment files,
//!   large ones in files of their own, a redb index, group commit, compaction),
//!   the shared store on PostgreSQL for several nodes ([`store::postgres`]), legal holds,
//!   deletion, the hash-chained audit trail, and copying a quarantine between stores
//!   ([`store::migrate`]).
//! - [`retention`]: how long messages and audit records are kept, and the purge task.
//! - [`summary`]: the small per-message record reviewers see in listings (sealed at rest).
//! - [`server`]: accept loop, connection limits, graceful shutdown; hands each connection
//!   to [`smtp::connection`].
//! - [`admin`]: the internal HTTP+JSON API on a Unix socket (optionally mutual TLS on TCP),
//!   every request audited, and its client; [`admin::access`] holds the roles of each
//!   principal.
//! - [`witness`]: the audit chain's head exported after every append, and the check of a
//!   chain against what was witnessed.
//! - [`notice`]: who gets a notice, what it says, and its delivery worker.
//! - [`smtp_client`]: the outgoing SMTP client of notices and `release`, every step under
//!   a deadline (connect, each reply, the whole attempt).
//! - [`auth`], [`dns`]: SPF/DKIM/DMARC at receive time; DNS off, live or a fixed table.
//! - [`dnscheck`]: what a reclaimed domain's DNS needs (`check-dns`).
//! - [`rdap`]: the registration watch (RDAP lookups, findings, the daily check).
//! - [`exit`]: the exit rule (when a retired domain's mail can end for good), run by the CLI.
//! - [`launch`]: brings a whole gateway up from a validated config.
//! - [`telemetry`]: Prometheus metrics on an internal listener.
//! - [`x509`], [`units`], [`clock`]: small helpers (certificate fields; sizes and
//!   durations; seconds since the epoch and RFC 3339 text).
//! - [`review`]: the review service the CLI and the desk share: the reviewer's context
//!   (admin API, config, identities), listing and filtering decrypted summaries, showing,
//!   exporting and releasing messages, holds and deletion, the senders report and the
//!   audit trail, with its typed failures, their kinds and exit codes.
//! - [`sanitize`]: hostile text made safe for a terminal, a CSV file or a desk page.
//! - [`cli`]: the `reclaim` subcommands: argument parsing, tables, JSON and CSV for the
//!   terminal, prompts, and where exports may write; the review steps come from
//!   [`review`].
//! - [`desk`]: the reviewer's desk, a loopback web server on the reviewer's machine that
//!   shows and acts on the quarantine through the same [`review`] service as the CLI
//!   (secret cookie, Host and CSRF checks, strict CSP, sanitised HTML in a sandboxed frame).
//! - [`imap`]: `reclaim imap`, the quarantine in a mail client: an IMAP4rev1 server
//!   (read-only unless deleting is enabled) on the reviewer's loopback over the same
//!   [`review`] service (password per run, UIDs and flags kept on the reviewer's machine,
//!   every opened message an audited read).
#![forbid(unsafe_code)]

pub mod admin;
pub mod auth;
pub mod auth_copy;
pub mod capacity;
pub mod cli;
pub mod clock;
pub mod config;
pub mod desk;
pub mod dns;
pub mod dnscheck;
pub mod domains;
pub mod exit;
pub mod imap;
pub mod intake;
pub mod launch;
pub mod notice;
pub mod quarantine;
pub mod rdap;
pub mod retention;
pub mod review;
pub mod sanitize;
pub mod seal;
pub mod server;
pub mod smtp;
pub mod smtp_client;
pub mod store;
pub mod summary;
pub mod telemetry;
pub mod units;
pub mod witness;
pub mod x509;
