//! Getting whole messages out: each sealed file fetched with its purpose and the reviewer's
//! reason (the admin API records both in the audit trail) and decrypted on this side.

use std::io::{BufReader, Read};

use super::{ReviewContext, ReviewError};
use crate::admin::http::percent_encode;
use crate::store::MessageId;

/// The sealed-file path of the admin API, with purpose and reason for the audit trail.
pub fn sealed_path(id: MessageId, purpose: &str, reason: &str) -> String {
    format!(
        "/v1/messages/{id}/sealed?purpose={purpose}&reason={}",
        percent_encode(reason)
    )
}

/// Fetches and decrypts one whole message into memory.
pub fn fetch_plain(
    context: &ReviewContext,
    id: MessageId,
    purpose: &str,
    reason: &str,
) -> Result<Vec<u8>, ReviewError> {
    let sealed = context.client.get(&sealed_path(id, purpose, reason))?;
    let mut plain = Vec::new();
    context
        .identities()?
        .open_buffered(BufReader::new(sealed))
        .and_then(|mut r| Ok(r.read_to_end(&mut plain)?))
        .map_err(|e| {
            ReviewError::decrypt(
                format!("cannot decrypt message {id} (is this the right identity?)"),
                e,
            )
        })?;
    Ok(plain)
}
