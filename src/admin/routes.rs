//! Maps an admin API request to what it asks for. Pure, so it can be tested and fuzzed.

use super::MAX_PAGE;
use super::http::RequestHead;
use crate::store::MessageId;

/// Default page size of `/v1/messages`.
pub const DEFAULT_PAGE: usize = 100;

/// A valid admin API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    List {
        limit: usize,
        before: Option<MessageId>,
    },
    Message(MessageId),
    Sealed(MessageId),
}

/// A refused request: HTTP status and a message for the JSON error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

fn refuse(status: u16, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
    }
}

/// Routes a request.
pub fn route(head: &RequestHead) -> Result<Route, Refusal> {
    let segments: Vec<&str> = head.path.trim_end_matches('/').split('/').skip(1).collect();
    let route = match segments.as_slice() {
        ["v1", "health"] => Route::Health,
        ["v1", "messages"] => list(head)?,
        ["v1", "messages", id] => Route::Message(parse_id(id)?),
        ["v1", "messages", id, "sealed"] => Route::Sealed(parse_id(id)?),
        _ => return Err(refuse(404, format!("no such endpoint: {}", head.path))),
    };
    if head.method != "GET" {
        return Err(refuse(
            405,
            format!("{} is not allowed here; use GET", head.method),
        ));
    }
    Ok(route)
}

fn parse_id(text: &str) -> Result<MessageId, Refusal> {
    text.parse().map_err(|e: String| refuse(400, e))
}

fn list(head: &RequestHead) -> Result<Route, Refusal> {
    let mut limit = DEFAULT_PAGE;
    let mut before = None;
    for (key, value) in &head.query {
        match key.as_str() {
            "limit" => {
                limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        refuse(400, format!("limit must be between 1 and {MAX_PAGE}"))
                    })?;
            }
            "before" => before = Some(parse_id(value)?),
            other => return Err(refuse(400, format!("unknown query parameter {other:?}"))),
        }
    }
    Ok(Route::List { limit, before })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::http::parse_head;

    fn route_of(line: &str) -> Result<Route, u16> {
        let head = parse_head(format!("{line}\r\n\r\n").as_bytes()).expect("valid head");
        route(&head).map_err(|r| r.status)
    }

    #[test]
    fn routes() {
        let id = "0193a5c4-0000-7000-8000-000000000000";
        assert_eq!(route_of("GET /v1/health HTTP/1.1"), Ok(Route::Health));
        assert_eq!(
            route_of("GET /v1/messages HTTP/1.1"),
            Ok(Route::List {
                limit: DEFAULT_PAGE,
                before: None
            })
        );
        assert_eq!(
            route_of(&format!("GET /v1/messages?limit=3&before={id} HTTP/1.1")),
            Ok(Route::List {
                limit: 3,
                before: Some(id.parse().expect("id"))
            })
        );
        assert_eq!(
            route_of(&format!("GET /v1/messages/{id}/sealed HTTP/1.1")),
            Ok(Route::Sealed(id.parse().expect("id")))
        );
        assert_eq!(route_of("GET /v1/messages?limit=0 HTTP/1.1"), Err(400));
        assert_eq!(route_of("GET /v1/messages?limit=99999 HTTP/1.1"), Err(400));
        assert_eq!(route_of("GET /v1/messages?evil=1 HTTP/1.1"), Err(400));
        assert_eq!(
            route_of("GET /v1/messages/..%2f..%2fetc HTTP/1.1"),
            Err(400)
        );
        assert_eq!(route_of("DELETE /v1/health HTTP/1.1"), Err(405));
        assert_eq!(route_of("GET /etc/passwd HTTP/1.1"), Err(404));
    }
}
