//! Fuzzes the admin API request handling: arbitrary bytes go through the head framing,
//! the head parser and the router the way the admin server feeds them. Never a panic; a
//! routed request is always a GET of an absolute path, and refusals carry a 4xx status.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reclaim::admin::MAX_PAGE;
use reclaim::admin::http::{HeadScan, MAX_HEAD, parse_head, response_head, scan_head};
use reclaim::admin::routes::{Route, route};

fuzz_target!(|data: &[u8]| {
    // The server parses a head only when it ends within MAX_HEAD bytes.
    let head = match scan_head(data, MAX_HEAD) {
        HeadScan::Complete(end) => &data[..end],
        HeadScan::Incomplete | HeadScan::TooLarge => return,
    };
    assert!(head.len() <= MAX_HEAD);
    let body = &data[head.len()..];
    match parse_head(head) {
        Ok(parsed) => {
            assert!(parsed.path.starts_with('/'));
            match route(&parsed, body) {
                Ok(Route::List { limit, .. }) => assert!((1..=MAX_PAGE).contains(&limit)),
                Ok(Route::Sealed { reason, .. }) => assert!(!reason.trim().is_empty()),
                Ok(_) => {}
                Err(refusal) => {
                    assert!((400..500).contains(&refusal.status));
                    let wire = response_head(refusal.status, "application/json", 0);
                    assert!(wire.starts_with(b"HTTP/1.1 4"));
                }
            }
        }
        Err(bad) => assert!(!bad.0.is_empty()),
    }
});
