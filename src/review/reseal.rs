//! Re-sealing the quarantine for the reader groups the config names now: after a reviewer's
//! key leaves `[seal] recipients` or a domain's `readers`, every message still sealed to
//! the old set of keys gets its file key rewrapped here, on the reviewer's machine, and
//! the admin API swaps in the new header and summary. The gateway never sees a key.
//!
//! A run works from what each message records it is sealed to (`sealed_to`): a message
//! whose fingerprints already are its group's is left alone, so a run that stopped (or
//! was stopped) is resumed by running it again, and a second run finds nothing to do.
//! Each message is one audited fetch of its header (`reseal-fetch`) and one audited
//! `reseal`, both with the reviewer's reason.

use std::io::Read;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::export::sealed_path;
use super::{ReviewContext, ReviewError};
use crate::admin::client::ClientError;
use crate::admin::http::percent_encode;
use crate::admin::{MessageItem, MessagePage};
use crate::seal::reseal::{MAX_HEADER, ResealError, rewrap};
use crate::seal::{ReaderGroups, Recipients, SealError, Sealer};
use crate::store::MessageId;

/// Messages asked for per listing page.
const PAGE: usize = 500;

/// How far a run has got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Messages whose keys are not their group's, found by the listing.
    pub due: u64,
    /// Of those, re-sealed now.
    pub resealed: u64,
    /// Already sealed to their group (left alone).
    pub current: u64,
    /// Sealed only to keys this reviewer does not hold: another reader of their domain
    /// has to re-seal them.
    pub not_ours: u64,
    /// Deleted, or re-sealed by someone else, while the run went on.
    pub skipped: u64,
    /// Could not be re-sealed (each reported to `failed` as it happens).
    pub failed: u64,
}

impl Progress {
    /// Messages still sealed to keys that are not their group's after this run.
    pub fn left(&self) -> u64 {
        self.not_ours + self.failed
    }
}

/// The reader groups the config names, as the gateway builds them.
pub fn groups(context: &ReviewContext) -> Result<ReaderGroups, ReviewError> {
    let config = context.config.as_ref().ok_or_else(|| {
        ReviewError::Missing(
            "re-seal needs the gateway's config (-c CONFIG): its [seal] recipients and \
             [[domain]] readers say whom each message is sealed to from now on"
                .into(),
        )
    })?;
    if config.seal.recipients.is_empty() {
        return Err(ReviewError::Missing(
            "the config has no [seal] recipients to re-seal to".into(),
        ));
    }
    let fallback: Recipients = config.seal.recipients.clone();
    let fallback = Sealer::new(fallback).map_err(ReviewError::Readers)?;
    ReaderGroups::new(fallback, &config.seal.readers).map_err(ReviewError::Readers)
}

/// Re-seals every message (of `domain`, if given) whose keys are not its group's.
/// `progress` hears after each message; `failed` hears of each that could not be done.
/// The run goes on past a message that fails; it stops at the first failure of the admin
/// API itself (unreachable, refused), which would fail every message after it too.
pub fn reseal_all(
    context: &ReviewContext,
    domain: Option<&str>,
    reason: &str,
    progress: &mut dyn FnMut(&Progress),
    failed: &mut dyn FnMut(&ReviewError),
) -> Result<Progress, ReviewError> {
    let groups = groups(context)?;
    context.identities()?;
    let mut done = Progress::default();
    let mut due: Vec<(MessageItem, Sealer)> = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let mut path = format!("/v1/messages?limit={PAGE}");
        if let Some(domain) = domain {
            path.push_str(&format!("&domain={}", percent_encode(domain)));
        }
        if let Some(b) = &before {
            path.push_str(&format!("&before={}", percent_encode(b)));
        }
        let page: MessagePage = context.client.get_json(&path)?;
        for item in page.messages {
            let sealer = groups
                .sealer_for(item.domains.iter().map(String::as_str))
                .map_err(ReviewError::Readers)?;
            if item.sealed_to == sealer.fingerprints() {
                done.current += 1;
            } else {
                due.push((item, sealer));
            }
        }
        before = page.next_before;
        if before.is_none() {
            break;
        }
    }
    done.due = due.len() as u64;
    progress(&done);
    // Oldest first: an interrupted run has done the oldest mail, which is the most likely
    // to have been read by the retired reviewer.
    for (item, sealer) in due.into_iter().rev() {
        match reseal_one(context, &item, &sealer, reason) {
            Ok(Outcome::Resealed) => done.resealed += 1,
            Ok(Outcome::Gone) => done.skipped += 1,
            Err(error) if error.is_not_for_this_reviewer() => done.not_ours += 1,
            Err(ReviewError::Admin(error)) if !answered_for_the_message(&error) => {
                return Err(ReviewError::Admin(error));
            }
            Err(error) => {
                done.failed += 1;
                failed(&error);
            }
        }
        progress(&done);
    }
    Ok(done)
}

/// Whether the admin API's refusal was about this message (so the next may go), rather
/// than about the caller or the API (so every next one would fail too).
fn answered_for_the_message(error: &ClientError) -> bool {
    matches!(error, ClientError::Status { status, .. } if ![401, 403, 500, 503].contains(status))
}

enum Outcome {
    Resealed,
    /// Deleted meanwhile, or no longer as listed (someone else re-sealed it).
    Gone,
}

fn reseal_one(
    context: &ReviewContext,
    item: &MessageItem,
    sealer: &Sealer,
    reason: &str,
) -> Result<Outcome, ReviewError> {
    let id: MessageId = item.id.parse().map_err(ReviewError::ServerId)?;
    let summary = STANDARD
        .decode(&item.summary)
        .map_err(|source| ReviewError::NotBase64 {
            id: item.id.clone(),
            source,
        })?;
    // Only the header is needed: read that much and hang up.
    let start = match context.client.get(&sealed_path(id, "reseal", reason)) {
        Ok(body) => {
            let mut start = Vec::new();
            body.take(MAX_HEADER as u64)
                .read_to_end(&mut start)
                .map_err(ReviewError::Write)?;
            start
        }
        Err(ClientError::Status { status: 404, .. }) => return Ok(Outcome::Gone),
        Err(error) => return Err(error.into()),
    };
    let rewrapped =
        rewrap(context.identities()?, sealer, &start, &summary).map_err(|e| match e {
            // Said as a decryption failure, so that a message for other reviewers is told
            // apart from a damaged one.
            ResealError::Seal(seal @ SealError::Decrypt(_)) => {
                ReviewError::decrypt(format!("message {id}"), seal)
            }
            source => ReviewError::Reseal { id, source },
        })?;
    let body = serde_json::json!({
        "old_header": STANDARD.encode(&rewrapped.old_header),
        "header": STANDARD.encode(&rewrapped.header),
        "summary": STANDARD.encode(&rewrapped.summary),
        "sealed_to": sealer.fingerprints(),
        "reason": reason,
    });
    match context.client.send_json::<serde_json::Value>(
        "POST",
        &format!("/v1/messages/{id}/reseal"),
        &body,
    ) {
        Ok(_) => Ok(Outcome::Resealed),
        Err(ClientError::Status {
            status: 404 | 409, ..
        }) => Ok(Outcome::Gone),
        Err(error) => Err(error.into()),
    }
}
