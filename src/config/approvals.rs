//! `[approvals]`: which admin actions need a second principal's approval (four eyes) and
//! how long a request stays good, validated into the admin API's [`ApprovalPolicy`].

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, duration, invalid};
use crate::admin::approvals::ApprovalPolicy;
use crate::store::GuardedAction;

/// The shortest `expiry`: a second reviewer needs time to read the request.
const MIN_EXPIRY: Duration = Duration::from_secs(5 * 60);
/// The longest `expiry`: an approval is for a case at hand, not a standing permission.
const MAX_EXPIRY: Duration = Duration::from_secs(30 * 86_400);
/// `expiry` when the config says nothing.
const DEFAULT_EXPIRY: Duration = Duration::from_secs(24 * 3600);
/// Bounds of `max_open`: each filing counts the open ones.
const MAX_OPEN: std::ops::RangeInclusive<usize> = 1..=10_000;
/// Bounds of `keep`.
const MIN_KEEP: Duration = Duration::from_secs(86_400);
const MAX_KEEP: Duration = Duration::from_secs(3650 * 86_400);

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApprovals {
    #[serde(default)]
    actions: Vec<String>,
    expiry: Option<String>,
    max_open: Option<usize>,
    keep: Option<String>,
}

pub(super) fn approval_policy(raw: RawApprovals) -> Result<ApprovalPolicy, ConfigError> {
    let actions = raw
        .actions
        .iter()
        .map(|a| {
            a.parse::<GuardedAction>()
                .map_err(|m| invalid("approvals.actions", m))
        })
        .collect::<Result<BTreeSet<_>, _>>()?;
    let expiry = duration("approvals.expiry", raw.expiry, DEFAULT_EXPIRY)?;
    if !(MIN_EXPIRY..=MAX_EXPIRY).contains(&expiry) {
        return Err(invalid(
            "approvals.expiry",
            "between 5m and 30d (how long a request can be approved and used)",
        ));
    }
    let defaults = ApprovalPolicy::default();
    let max_open = raw.max_open.unwrap_or(defaults.max_open);
    if !MAX_OPEN.contains(&max_open) {
        return Err(invalid(
            "approvals.max_open",
            "between 1 and 10000 (requests open at once)",
        ));
    }
    let keep = duration("approvals.keep", raw.keep, defaults.keep)?;
    if !(MIN_KEEP..=MAX_KEEP).contains(&keep) {
        return Err(invalid(
            "approvals.keep",
            "between 1d and 3650d (how long an ended request stays listed)",
        ));
    }
    Ok(ApprovalPolicy {
        actions,
        expiry,
        max_open,
        keep,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ApprovalPolicy, ConfigError> {
        approval_policy(toml::from_str(text).map_err(|e| invalid("approvals", e.to_string()))?)
    }

    #[test]
    fn defaults_need_no_approval_and_a_day_of_expiry() {
        let policy = parse("").expect("empty");
        assert!(policy.actions.is_empty());
        assert_eq!(policy.expiry, DEFAULT_EXPIRY);
    }

    #[test]
    fn actions_and_expiry_are_checked() {
        let policy = parse("actions = [\"release\", \"hold-lift\", \"release\"]\nexpiry = \"2h\"")
            .expect("valid");
        assert_eq!(
            policy.actions.iter().copied().collect::<Vec<_>>(),
            vec![GuardedAction::Release, GuardedAction::HoldLift]
        );
        assert_eq!(policy.expiry, Duration::from_secs(7200));
        let err = parse("actions = [\"shred\"]")
            .expect_err("unknown")
            .to_string();
        assert!(
            err.contains("approvals.actions") && err.contains("\"shred\""),
            "{err}"
        );
        assert!(err.contains("hold-lift"), "{err}");
        for bad in ["1m", "31d", "soon"] {
            let err = parse(&format!("expiry = {bad:?}"))
                .expect_err(bad)
                .to_string();
            assert!(err.contains("approvals.expiry"), "{bad}: {err}");
        }
        assert!(parse("approve = true").is_err());
        let policy = parse("max_open = 5\nkeep = \"7d\"").expect("valid");
        assert_eq!((policy.max_open, policy.keep.as_secs()), (5, 7 * 86_400));
        for (bad, key) in [
            ("max_open = 0", "approvals.max_open"),
            ("max_open = 10001", "approvals.max_open"),
            ("keep = \"1h\"", "approvals.keep"),
            ("keep = \"3651d\"", "approvals.keep"),
        ] {
            let err = parse(bad).expect_err(bad).to_string();
            assert!(err.contains(key), "{bad}: {err}");
        }
    }
}
