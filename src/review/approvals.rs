//! Four-eyes requests through the admin API: filing one for an action on messages (or a
//! purge by age), listing them, approving and denying. The server decides who may; a
//! refusal comes back as the API's answer and keeps its kind (403 is exit 8).

use serde_json::json;

use super::{ReviewContext, ReviewError};
use crate::admin::approvals::{RequestList, RequestView};
use crate::admin::http::percent_encode;
use crate::store::{GuardedAction, MessageId, NewRequest};

/// What a request asks for.
pub struct Asked<'a> {
    pub action: GuardedAction,
    pub ids: &'a [MessageId],
    /// A purge's age, such as `90d`.
    pub older_than: Option<&'a str>,
    /// A release's recipients.
    pub to: &'a [String],
    pub reason: &'a str,
}

/// Files a request; the answer carries its number.
pub fn file(context: &ReviewContext, asked: &Asked<'_>) -> Result<RequestView, ReviewError> {
    let older_than = asked
        .older_than
        .map(|age| {
            crate::units::parse_duration(age)
                .map(|d| d.as_secs())
                .map_err(|m| ReviewError::Usage(format!("--older-than: {m}")))
        })
        .transpose()?;
    match (asked.action, older_than.is_some(), asked.ids.is_empty()) {
        (GuardedAction::Purge, false, _) => {
            return Err(ReviewError::Usage(
                "a purge request needs --older-than".into(),
            ));
        }
        (GuardedAction::Purge, true, false) => {
            return Err(ReviewError::Usage("a purge request names no ids".into()));
        }
        (GuardedAction::Purge, true, true) => {}
        (_, true, _) => {
            return Err(ReviewError::Usage(
                "only a purge request takes --older-than".into(),
            ));
        }
        (action, false, true) => {
            return Err(ReviewError::Usage(format!(
                "a {action} request names the messages"
            )));
        }
        (_, false, false) => {}
    }
    match (asked.action, asked.to.is_empty()) {
        (GuardedAction::Release, true) => {
            return Err(ReviewError::Usage(
                "a release request names its recipients: --to ADDRESS".into(),
            ));
        }
        (GuardedAction::Release, false) | (_, true) => {}
        (action, false) => {
            return Err(ReviewError::Usage(format!(
                "only a release request takes --to, not a {action} request"
            )));
        }
    }
    let body = json!({
        "action": asked.action.as_str(),
        "ids": asked.ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "older_than": older_than,
        "to": asked.to,
        "reason": asked.reason,
    });
    Ok(context.client.send_json("POST", "/v1/requests", &body)?)
}

/// What a request covers, in a line: its messages (and where a release sends them), or a
/// purge's age.
pub fn what(filed: &NewRequest) -> String {
    match filed.older_than {
        Some(age) => format!("older than {age}s"),
        None if filed.to.is_empty() => filed.ids.join(" "),
        None => format!("{} → {}", filed.ids.join(" "), filed.to.join(", ")),
    }
}

/// The newest `limit` requests the caller may see, newest first, and the actions that
/// need one.
pub fn list(context: &ReviewContext, limit: usize) -> Result<RequestList, ReviewError> {
    Ok(context
        .client
        .get_json(&format!("/v1/requests?limit={limit}"))?)
}

/// Approves (`approve`) or denies request `number`, with an optional reason.
pub fn decide(
    context: &ReviewContext,
    number: u64,
    approve: bool,
    reason: Option<&str>,
) -> Result<RequestView, ReviewError> {
    let verb = if approve { "approve" } else { "deny" };
    let mut path = format!("/v1/requests/{number}/{verb}");
    if let Some(reason) = reason {
        path.push_str(&format!("?reason={}", percent_encode(reason)));
    }
    Ok(context.client.send_json("POST", &path, &json!({}))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::exit;

    #[test]
    fn a_purge_needs_an_age_and_the_others_need_ids() {
        let context =
            ReviewContext::with_identities(crate::seal::Identities::from_x25519(Vec::new()));
        let id = [MessageId::from_key(1)];
        for (action, ids, older_than, says) in [
            (GuardedAction::Purge, &[][..], None, "needs --older-than"),
            (GuardedAction::Purge, &id[..], Some("1d"), "names no ids"),
            (GuardedAction::Delete, &[][..], None, "names the messages"),
            (GuardedAction::Release, &id[..], Some("1d"), "only a purge"),
            (
                GuardedAction::Purge,
                &[][..],
                Some("soon"),
                "--older-than: ",
            ),
        ] {
            let asked = Asked {
                action,
                ids,
                older_than,
                to: &[],
                reason: "r",
            };
            let error = file(&context, &asked).expect_err(says);
            assert_eq!(error.exit_code(), exit::USAGE, "{error}");
            assert!(error.to_string().contains(says), "{error}");
        }
        let to = ["a@new.example".to_owned()];
        for (action, to, says) in [
            (GuardedAction::Release, &[][..], "names its recipients"),
            (
                GuardedAction::Delete,
                &to[..],
                "only a release request takes --to",
            ),
        ] {
            let asked = Asked {
                action,
                ids: &id,
                older_than: None,
                to,
                reason: "r",
            };
            let error = file(&context, &asked).expect_err(says);
            assert_eq!(error.exit_code(), exit::USAGE, "{error}");
            assert!(error.to_string().contains(says), "{error}");
        }
    }
}
