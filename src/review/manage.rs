//! Changes to the quarantine through the admin API, each recorded there in the audit trail
//! with the reviewer's reason: deleting messages, placing and lifting legal holds, and
//! purging what is older than an age.

use serde_json::json;

use super::{ReviewContext, ReviewError};
use crate::admin::DeleteResult;
use crate::admin::http::percent_encode;
use crate::store::{MessageId, PurgeReport};

/// Deletes messages through the admin API, which records the reason. Ids that named no
/// message come back in [`DeleteResult::missing`] (see [`found_all`]).
pub fn delete(
    context: &ReviewContext,
    ids: &[MessageId],
    reason: Option<&str>,
) -> Result<DeleteResult, ReviewError> {
    let body = json!({
        "ids": ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "reason": reason,
    });
    let path = context.guarded_path("/v1/delete".into());
    Ok(context.client.send_json("POST", &path, &body)?)
}

/// Deletes one message; that there was none is [`ReviewError::NotFound`].
pub fn delete_one(context: &ReviewContext, id: MessageId, reason: &str) -> Result<(), ReviewError> {
    let result = delete(context, &[id], Some(reason))?;
    if result.deleted.is_empty() {
        return Err(ReviewError::NotFound(id.to_string()));
    }
    Ok(())
}

/// [`ReviewError::NotFound`] naming every id a deletion found no message for.
pub fn found_all(result: &DeleteResult) -> Result<(), ReviewError> {
    if result.missing.is_empty() {
        return Ok(());
    }
    Err(ReviewError::NotFound(result.missing.join(", ")))
}

/// Places (`held`) or lifts a legal hold through the admin API, which records the reason.
pub fn set_hold(
    context: &ReviewContext,
    id: MessageId,
    held: bool,
    reason: Option<&str>,
) -> Result<(), ReviewError> {
    let mut path = format!("/v1/messages/{id}/hold");
    if let Some(reason) = reason {
        path.push_str(&format!("?reason={}", percent_encode(reason)));
    }
    if !held {
        path = context.guarded_path(path);
    }
    let method = if held { "POST" } else { "DELETE" };
    let _: serde_json::Value = context.client.send_json(method, &path, &json!({}))?;
    Ok(())
}

/// Deletes every message older than `older_than` (an age such as `90d`) that is not held;
/// a malformed age is bad usage.
pub fn purge(
    context: &ReviewContext,
    older_than: &str,
    reason: Option<&str>,
) -> Result<PurgeReport, ReviewError> {
    let age = crate::units::parse_duration(older_than)
        .map_err(|m| ReviewError::Usage(format!("--older-than: {m}")))?;
    let body = json!({ "older_than": age.as_secs(), "reason": reason });
    let path = context.guarded_path("/v1/purge".into());
    Ok(context.client.send_json("POST", &path, &body)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::exit;

    #[test]
    fn missing_ids_are_not_found_and_a_bad_age_is_usage() {
        let all = DeleteResult {
            deleted: vec!["a".into()],
            missing: Vec::new(),
        };
        assert!(found_all(&all).is_ok());
        let some = DeleteResult {
            deleted: vec!["a".into()],
            missing: vec!["b".into(), "c".into()],
        };
        let error = found_all(&some).expect_err("b and c are missing");
        assert_eq!(error.to_string(), "no such message: b, c");
        assert_eq!(error.exit_code(), exit::NOT_FOUND);
        let context =
            ReviewContext::with_identities(crate::seal::Identities::from_x25519(Vec::new()));
        let error = purge(&context, "soon", None).expect_err("not an age");
        assert_eq!(error.exit_code(), exit::USAGE);
        assert!(error.to_string().starts_with("--older-than: "), "{error}");
    }
}
