//! The quarantine's index without opening every summary: which messages this reviewer can
//! open, told from whom each records it is sealed to (`sealed_to`). Messages sealed to the
//! same keys are opened by the same identities, so one summary of each distinct set of keys
//! is opened to find out, and the answer is remembered. Only messages stored before
//! `sealed_to` was recorded have their summaries opened one by one.
//!
//! Opening a summary costs an X25519 agreement; over 100,000 messages that is seconds on
//! two cores, where the index alone takes a fraction of it (docs/BENCHMARKS.md).

use std::collections::HashMap;
use std::sync::Mutex;

use super::listed::Listed;
use super::listing::{decrypt, decrypt_all};
use super::{ReviewContext, ReviewError};
use crate::admin::http::percent_encode;
use crate::admin::{MAX_INDEX_PAGE, MessageItem, MessagePage};

/// One message as the index shows it.
#[derive(Debug, Clone, Default)]
pub struct Indexed {
    pub id: String,
    pub received_unix: i64,
    pub size: u64,
    pub domains: Vec<String>,
    /// Its opened summary, when finding out whether it can be opened meant opening it.
    pub summary: Option<Listed>,
}

/// Summaries of one set of keys tried before the set's answer is left open (each trial
/// may meet a message deleted meanwhile).
const TRIALS: usize = 3;

/// Whether this reviewer's identities open messages sealed to a set of keys, per set
/// (sorted fingerprints), as found out so far.
#[derive(Debug, Default)]
pub struct Openable(Mutex<HashMap<Vec<String>, bool>>);

impl Openable {
    fn known(&self, keys: &[String]) -> Option<bool> {
        self.0.lock().ok()?.get(keys).copied()
    }

    fn learn(&self, keys: Vec<String>, opens: bool) {
        if let Ok(mut known) = self.0.lock() {
            known.insert(keys, opens);
        }
    }
}

/// Every message this reviewer can open (in no particular order), from index pages of the
/// admin API.
pub fn fetch(context: &ReviewContext, openable: &Openable) -> Result<Vec<Indexed>, ReviewError> {
    let mut items: Vec<MessageItem> = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let mut path = format!("/v1/messages?limit={MAX_INDEX_PAGE}&index=1");
        if let Some(b) = &before {
            path.push_str(&format!("&before={}", percent_encode(b)));
        }
        let page: MessagePage = context.client.get_json(&path)?;
        items.extend(page.messages);
        match page.next_before {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    learn_sets(context, openable, &items)?;
    let (unlabelled, labelled): (Vec<_>, Vec<_>) = items
        .into_iter()
        .partition(|item| item.sealed_to.is_empty());
    let mut kept: Vec<Indexed> = Vec::with_capacity(labelled.len() + unlabelled.len());
    for item in labelled {
        if openable.known(&item.sealed_to) == Some(true) {
            kept.push(Indexed {
                id: item.id,
                received_unix: item.received_at,
                size: item.size,
                domains: item.domains,
                summary: None,
            });
        } else {
            context.hide();
        }
    }
    // Stored before `sealed_to` was recorded: only opening the summary tells (and
    // `decrypt_all` counts the ones left out as hidden).
    let (opened, _) = decrypt_all(context, unlabelled)?;
    kept.extend(opened.into_iter().map(Indexed::from));
    Ok(kept)
}

/// Finds out, for every set of keys not yet known, whether it opens.
fn learn_sets(
    context: &ReviewContext,
    openable: &Openable,
    items: &[MessageItem],
) -> Result<(), ReviewError> {
    let mut unknown: HashMap<&[String], Vec<&MessageItem>> = HashMap::new();
    for item in items {
        if !item.sealed_to.is_empty() && openable.known(&item.sealed_to).is_none() {
            unknown.entry(&item.sealed_to).or_default().push(item);
        }
    }
    for (keys, members) in unknown {
        let mut last_error = None;
        for member in members.into_iter().take(TRIALS) {
            let whole: Result<MessageItem, ReviewError> = context
                .client
                .get_json(&format!("/v1/messages/{}", percent_encode(&member.id)))
                .map_err(ReviewError::from);
            match whole.and_then(|item| decrypt(context, item)) {
                Ok(_) => {
                    openable.learn(keys.to_vec(), true);
                    last_error = None;
                    break;
                }
                Err(error) if error.is_not_for_this_reviewer() => {
                    openable.learn(keys.to_vec(), false);
                    last_error = None;
                    break;
                }
                Err(error) => last_error = Some(error),
            }
        }
        if let Some(error) = last_error {
            return Err(error);
        }
    }
    Ok(())
}

impl From<Listed> for Indexed {
    fn from(listed: Listed) -> Self {
        Indexed {
            id: listed.id.clone(),
            received_unix: listed.received_unix,
            size: listed.size,
            domains: listed.domains.clone(),
            summary: Some(listed),
        }
    }
}
