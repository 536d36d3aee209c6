//! The HTML body of a message made safe to look at: sanitised with ammonia so nothing in
//! it can fetch, navigate or run, and kept in memory only until its frame is shown.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

/// Style properties an HTML body may keep: layout and colour only. None of them can carry
/// a `url()` that the frame's Content-Security-Policy would have to stop.
const STYLE_PROPERTIES: [&str; 22] = [
    "color",
    "background-color",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "text-align",
    "text-decoration",
    "line-height",
    "margin",
    "margin-top",
    "margin-bottom",
    "margin-left",
    "margin-right",
    "padding",
    "border",
    "border-collapse",
    "width",
    "max-width",
    "height",
    "vertical-align",
    "white-space",
];

/// Sanitises a message's HTML body: no scripts, forms, styles sheets, event handlers or
/// links; images only from `data:` URLs (a remote one loses its `src`, so a tracking pixel
/// has nothing to load); style attributes only with [`STYLE_PROPERTIES`].
pub fn sanitise(html: &str) -> String {
    ammonia::Builder::default()
        .url_schemes(HashSet::from(["data"]))
        .url_relative(ammonia::UrlRelative::Deny)
        .rm_tag_attributes("a", &["href", "hreflang"])
        .rm_tag_attributes("area", &["href"])
        .add_generic_attributes(&["style"])
        .filter_style_properties(HashSet::from(STYLE_PROPERTIES))
        .link_rel(None)
        .clean(html)
        .to_string()
}

/// Sanitised bodies waiting for their frame, by random token: memory only, the newest
/// `capacity` kept.
pub struct Frames {
    capacity: usize,
    entries: Mutex<VecDeque<(String, Arc<String>)>>,
}

impl Frames {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Mutex::new(VecDeque::new()),
        }
    }

    /// Keeps `html` and returns the token its frame is fetched with.
    pub fn put(&self, html: String) -> String {
        let token = super::session::random_token();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        while entries.len() >= self.capacity {
            entries.pop_front();
        }
        entries.push_back((token.clone(), Arc::new(html)));
        token
    }

    /// The body kept under `token`, if it is still there.
    pub fn get(&self, token: &str) -> Option<Arc<String>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .find(|(t, _)| super::session::same(t, token))
            .map(|(_, html)| html.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_html_loses_everything_that_could_reach_out() {
        let dirty = r#"<p onclick="x()" style="color:red;background:url(http://t.example/a)">Hi</p>
<img src="http://t.example/pixel.gif" onerror="alert(1)"><img src="data:image/png;base64,AAAA">
<script>document.title='owned'</script><form action="http://t.example/f"><input name=q></form>
<a href="http://t.example/click">click</a><style>body{background:url(http://t.example/s)}</style>
<iframe src="http://t.example/i"></iframe><link rel=stylesheet href="http://t.example/c.css">"#;
        let clean = sanitise(dirty);
        assert!(!clean.contains("t.example"), "{clean}");
        for gone in [
            "<script", "onerror", "onclick", "<form", "<iframe", "<style", "<link", "owned",
        ] {
            assert!(!clean.contains(gone), "{gone} in {clean}");
        }
        assert!(clean.contains("style=\"color:red\""), "{clean}");
        assert!(
            clean.contains("src=\"data:image/png;base64,AAAA\""),
            "{clean}"
        );
        assert!(clean.contains("click"), "{clean}");
    }

    #[test]
    fn frames_keep_the_newest() {
        let frames = Frames::new(2);
        let a = frames.put("a".into());
        let b = frames.put("b".into());
        let c = frames.put("c".into());
        assert!(frames.get(&a).is_none());
        assert_eq!(frames.get(&b).as_deref().map(String::as_str), Some("b"));
        assert_eq!(frames.get(&c).as_deref().map(String::as_str), Some("c"));
        assert!(frames.get("nonsense").is_none());
    }
}
