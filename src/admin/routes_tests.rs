//! Table tests of the admin API router.

use super::*;
use crate::admin::http::parse_head;

const ID: &str = "0193a5c4-0000-7000-8000-000000000000";

fn route_of(line: &str) -> Result<Route, u16> {
    route_with(line, "")
}

fn route_with(line: &str, body: &str) -> Result<Route, u16> {
    let head = parse_head(format!("{line}\r\n\r\n").as_bytes()).expect("valid head");
    route(&head, body.as_bytes()).map_err(|r| r.status)
}

fn id() -> MessageId {
    ID.parse().expect("id")
}

#[test]
fn reading_routes() {
    assert_eq!(route_of("GET /v1/health HTTP/1.1"), Ok(Route::Health));
    assert_eq!(
        route_of("GET /v1/messages HTTP/1.1"),
        Ok(Route::List {
            limit: DEFAULT_PAGE,
            before: None,
            filter: ListFilter::default(),
            index: false,
        })
    );
    assert_eq!(
        route_of(&format!(
            "GET /v1/messages?limit=3&before={ID}&domain=OLD.example&since=10&until=20 HTTP/1.1"
        )),
        Ok(Route::List {
            limit: 3,
            before: Some(id()),
            filter: ListFilter {
                domain: Some("old.example".into()),
                since: Some(10),
                until: Some(20),
            },
            index: false,
        })
    );
    assert_eq!(
        route_of("GET /v1/messages?index=1 HTTP/1.1"),
        Ok(Route::List {
            limit: DEFAULT_PAGE,
            before: None,
            filter: ListFilter::default(),
            index: true,
        })
    );
    assert_eq!(route_of("GET /v1/messages?index=yes HTTP/1.1"), Err(400));
    assert_eq!(route_of("GET /v1/messages?limit=5000 HTTP/1.1"), Err(400));
    assert!(matches!(
        route_of("GET /v1/messages?limit=5000&index=1 HTTP/1.1"),
        Ok(Route::List {
            limit: 5000,
            index: true,
            ..
        })
    ));
    assert_eq!(
        route_of("GET /v1/messages?limit=10001&index=1 HTTP/1.1"),
        Err(400)
    );
    let sealed = |body: &str| route_with("POST /v1/sealed HTTP/1.1", body);
    assert_eq!(
        sealed(&format!(
            r#"{{"ids":["{ID}"],"purpose":"show","reason":" case 7 "}}"#
        )),
        Ok(Route::SealedMany {
            ids: vec![id()],
            reason: "case 7".into(),
        })
    );
    for refused in [
        r#"{"ids":[],"purpose":"show","reason":"r"}"#.to_owned(),
        format!(r#"{{"ids":["{ID}"],"purpose":"export","reason":"r"}}"#),
        format!(r#"{{"ids":["{ID}"],"purpose":"show","reason":""}}"#),
        format!(r#"{{"ids":["{ID}"],"purpose":"show"}}"#),
        format!(
            r#"{{"ids":[{}],"purpose":"show","reason":"r"}}"#,
            vec![format!("\"{ID}\""); MAX_SEALED_IDS + 1].join(",")
        ),
    ] {
        assert_eq!(sealed(&refused), Err(400), "{refused}");
    }
    assert_eq!(
        route_of(&format!(
            "GET /v1/messages/{ID}/sealed?purpose=show&reason=case+7 HTTP/1.1"
        )),
        Ok(Route::Sealed {
            id: id(),
            purpose: Purpose::Show,
            reason: "case 7".into(),
            to: vec![],
        })
    );
    assert_eq!(
        route_of(&format!(
            "GET /v1/messages/{ID}/sealed?purpose=release&reason=r&to=b%40new.example&to=A%40new.example&to=b%40new.example HTTP/1.1"
        )),
        Ok(Route::Sealed {
            id: id(),
            purpose: Purpose::Release,
            reason: "r".into(),
            to: vec!["A@new.example".into(), "b@new.example".into()],
        }),
        "recipients sorted, repeats dropped"
    );
    for (query, says) in [
        (
            "purpose=export&reason=r&to=a%40new.example",
            "only a release",
        ),
        (
            "purpose=release&reason=r&to=not-an-address",
            "is not an address",
        ),
    ] {
        let head =
            parse_head(format!("GET /v1/messages/{ID}/sealed?{query} HTTP/1.1\r\n\r\n").as_bytes())
                .expect("valid head");
        let refused = route(&head, b"").expect_err(query);
        assert_eq!(refused.status, 400, "{query}");
        assert!(
            refused.message.contains(says),
            "{query}: {}",
            refused.message
        );
    }
    assert_eq!(
        route_of("GET /v1/audit?after=5&limit=2 HTTP/1.1"),
        Ok(Route::AuditList { after: 5, limit: 2 })
    );
}

#[test]
fn reads_of_a_message_need_a_reason() {
    assert_eq!(
        route_of(&format!("GET /v1/messages/{ID}/sealed HTTP/1.1")),
        Err(400)
    );
    assert_eq!(
        route_of(&format!("GET /v1/messages/{ID}/sealed?reason=+++ HTTP/1.1")),
        Err(400)
    );
    assert_eq!(
        route_of(&format!(
            "GET /v1/messages/{ID}/sealed?reason=x&purpose=peek HTTP/1.1"
        )),
        Err(400)
    );
}

#[test]
fn changing_routes() {
    assert_eq!(
        route_with(
            "POST /v1/delete HTTP/1.1",
            &format!(r#"{{"ids":["{ID}"],"reason":"done"}}"#)
        ),
        Ok(Route::Delete {
            ids: vec![id()],
            reason: Some("done".into()),
        })
    );
    assert_eq!(
        route_of(&format!("DELETE /v1/messages/{ID} HTTP/1.1")),
        Ok(Route::Delete {
            ids: vec![id()],
            reason: None,
        })
    );
    assert_eq!(
        route_of(&format!(
            "POST /v1/messages/{ID}/hold?reason=legal HTTP/1.1"
        )),
        Ok(Route::Hold {
            id: id(),
            held: true,
            reason: Some("legal".into()),
        })
    );
    assert_eq!(
        route_of(&format!("DELETE /v1/messages/{ID}/hold HTTP/1.1")),
        Ok(Route::Hold {
            id: id(),
            held: false,
            reason: None,
        })
    );
    assert_eq!(
        route_with("POST /v1/purge HTTP/1.1", r#"{"older_than":86400}"#),
        Ok(Route::Purge {
            older_than: 86400,
            reason: None,
        })
    );
    assert_eq!(
        route_with(
            "POST /v1/audit HTTP/1.1",
            &format!(r#"{{"action":"release","ids":["{ID}"],"reason":"r"}}"#)
        ),
        Ok(Route::AuditNote {
            ids: vec![id()],
            reason: "r".into(),
            detail: None,
        })
    );
}

#[test]
fn bad_requests_are_refused() {
    assert_eq!(route_of("GET /v1/messages?limit=0 HTTP/1.1"), Err(400));
    assert_eq!(route_of("GET /v1/messages?limit=99999 HTTP/1.1"), Err(400));
    assert_eq!(route_of("GET /v1/messages?evil=1 HTTP/1.1"), Err(400));
    assert_eq!(
        route_of("GET /v1/messages?since=yesterday HTTP/1.1"),
        Err(400)
    );
    assert_eq!(
        route_of("GET /v1/messages/..%2f..%2fetc HTTP/1.1"),
        Err(400)
    );
    assert_eq!(route_of("DELETE /v1/health HTTP/1.1"), Err(405));
    assert_eq!(route_of("POST /v1/messages HTTP/1.1"), Err(405));
    assert_eq!(route_of("GET /etc/passwd HTTP/1.1"), Err(404));
    assert_eq!(route_with("POST /v1/delete HTTP/1.1", "{"), Err(400));
    assert_eq!(
        route_with("POST /v1/delete HTTP/1.1", r#"{"ids":[]}"#),
        Err(400)
    );
    assert_eq!(
        route_with("POST /v1/delete HTTP/1.1", r#"{"ids":["x"],"extra":1}"#),
        Err(400)
    );
    assert_eq!(
        route_with(
            "POST /v1/audit HTTP/1.1",
            &format!(r#"{{"action":"delete","ids":["{ID}"],"reason":"r"}}"#)
        ),
        Err(400)
    );
}
