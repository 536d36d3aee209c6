//! What an RDAP domain object (RFC 9083 5.3) says about a registration: the expiration
//! event, the status values and the registrar. Read from untrusted JSON without panicking.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::RdapError;

/// The registration facts reclaim watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// `ldhName` as the registry spells it.
    pub name: String,
    /// The `expiration` event, when the registry publishes one.
    pub expires: Option<SystemTime>,
    /// Status values (RFC 9083 10.2.2), lower-case.
    pub statuses: Vec<String>,
    /// The entity with the `registrar` role: its name, else its handle.
    pub registrar: Option<String>,
}

/// The status values that together make a registry lock.
pub const REGISTRY_LOCK: [&str; 3] = [
    "server delete prohibited",
    "server transfer prohibited",
    "server update prohibited",
];

/// Status values that mean the registration is ending.
pub const ALARMS: [&str; 3] = ["pending delete", "redemption period", "inactive"];

impl Registration {
    pub fn has(&self, status: &str) -> bool {
        self.statuses.iter().any(|s| s == status)
    }

    /// Whether every registry-lock status is set.
    pub fn registry_locked(&self) -> bool {
        REGISTRY_LOCK.iter().all(|s| self.has(s))
    }

    /// The alarming status values present.
    pub fn alarms(&self) -> Vec<&str> {
        ALARMS.iter().copied().filter(|s| self.has(s)).collect()
    }
}

/// Reads a domain object; `domain` is the name asked for.
pub fn parse(value: &Value, domain: &str) -> Result<Registration, RdapError> {
    let malformed = |m: &str| RdapError::Malformed(m.to_owned());
    let object = value
        .as_object()
        .ok_or_else(|| malformed("the answer is not a JSON object"))?;
    match object.get("objectClassName").and_then(Value::as_str) {
        Some("domain") => {}
        Some(other) => return Err(malformed(&format!("objectClassName is {other:?}"))),
        None => return Err(malformed("objectClassName is missing")),
    }
    let name = object
        .get("ldhName")
        .and_then(Value::as_str)
        .unwrap_or(domain)
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if name != domain {
        return Err(malformed(&format!("the answer is about {name:?}")));
    }
    let mut expires = None;
    for event in array(object.get("events")) {
        let action = event.get("eventAction").and_then(Value::as_str);
        if action.is_some_and(|a| a.eq_ignore_ascii_case("expiration")) {
            let date = event.get("eventDate").and_then(Value::as_str).unwrap_or("");
            expires = Some(parse_date(date).ok_or_else(|| {
                malformed(&format!("expiration eventDate {date:?} is not RFC 3339"))
            })?);
        }
    }
    let statuses = array(object.get("status"))
        .filter_map(Value::as_str)
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    let registrar = array(object.get("entities"))
        .find(|e| array(e.get("roles")).any(|r| r.as_str().is_some_and(|r| r == "registrar")))
        .and_then(|e| {
            vcard_fn(e).or_else(|| e.get("handle").and_then(Value::as_str).map(str::to_owned))
        });
    Ok(Registration {
        name,
        expires,
        statuses,
        registrar,
    })
}

fn array(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    value
        .and_then(Value::as_array)
        .map(|a| a.iter())
        .into_iter()
        .flatten()
}

/// The `fn` property of a jCard (`["vcard", [["fn", {}, "text", "Name"], …]]`, RFC 7095).
fn vcard_fn(entity: &Value) -> Option<String> {
    let properties = entity.get("vcardArray")?.get(1)?.as_array()?;
    properties
        .iter()
        .find(|p| p.get(0).and_then(Value::as_str) == Some("fn"))
        .and_then(|p| p.get(3))
        .and_then(Value::as_str)
        .map(|s| s.chars().filter(|c| !c.is_control()).take(200).collect())
}

fn parse_date(text: &str) -> Option<SystemTime> {
    let parsed =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    let seconds = parsed.unix_timestamp();
    if seconds >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(seconds as u64))
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(Duration::from_secs(seconds.unsigned_abs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_registry_answer() {
        let v: Value = serde_json::json!({
            "objectClassName": "domain",
            "ldhName": "OLD.EXAMPLE",
            "status": ["client transfer prohibited", "Server Delete Prohibited",
                       "server transfer prohibited", "server update prohibited"],
            "events": [
                {"eventAction": "registration", "eventDate": "2001-05-01T00:00:00Z"},
                {"eventAction": "expiration", "eventDate": "2027-05-01T00:00:00Z"}
            ],
            "entities": [
                {"objectClassName": "entity", "roles": ["technical"], "handle": "T1"},
                {"objectClassName": "entity", "roles": ["registrar"], "handle": "R1",
                 "vcardArray": ["vcard", [["version", {}, "text", "4.0"],
                                          ["fn", {}, "text", "Example Registrar B.V."]]]}
            ]
        });
        let r = parse(&v, "old.example").expect("valid");
        assert_eq!(
            r.expires,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_809_129_600))
        );
        assert!(r.registry_locked());
        assert!(r.alarms().is_empty());
        assert_eq!(r.registrar.as_deref(), Some("Example Registrar B.V."));
    }

    #[test]
    fn refuses_what_is_not_this_domain() {
        for bad in [
            serde_json::json!([1, 2]),
            serde_json::json!({"objectClassName": "entity"}),
            serde_json::json!({"ldhName": "old.example"}),
            serde_json::json!({"objectClassName": "domain", "ldhName": "other.example"}),
            serde_json::json!({"objectClassName": "domain", "events": [
                {"eventAction": "expiration", "eventDate": "next year"}]}),
        ] {
            assert!(
                matches!(parse(&bad, "old.example"), Err(RdapError::Malformed(_))),
                "{bad}"
            );
        }
        let odd = serde_json::json!({"objectClassName": "domain", "status": "active",
            "events": {"x": 1}, "entities": [{"roles": "registrar"}, 7]});
        let r = parse(&odd, "old.example").expect("odd but readable");
        assert_eq!(r.expires, None);
        assert!(r.statuses.is_empty() && r.registrar.is_none());
    }
}
