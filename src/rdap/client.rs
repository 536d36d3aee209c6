//! An RDAP client that cannot hang or be flooded: one deadline over connect, request and
//! body, a cap on the body, and redirects only to HTTPS (or within the same origin).

use std::time::Duration;

use reqwest::Url;
use reqwest::redirect::{Attempt, Policy};

use super::RdapError;

/// Redirects followed per lookup (RFC 7480 5.2 uses them to refer to another server).
const MAX_REDIRECTS: usize = 3;

/// The RDAP client, built once per process (it holds a connection pool).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    timeout: Duration,
    max_size: u64,
}

impl Client {
    /// A client whose every lookup ends within `timeout` and reads at most `max_size` bytes.
    pub fn new(timeout: Duration, max_size: u64) -> Result<Self, RdapError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("reclaim/", env!("CARGO_PKG_VERSION"), " (RDAP)"))
            .redirect(Policy::custom(redirect))
            .connect_timeout(timeout)
            .timeout(timeout)
            // A proxy from the environment would see which domains are watched and could
            // route a loopback test server elsewhere; reclaim talks to registries directly.
            .no_proxy()
            .https_only(false)
            .build()
            .map_err(RdapError::Client)?;
        Ok(Self {
            http,
            timeout,
            max_size,
        })
    }

    /// The client `[rdap]` asks for.
    pub fn from_config(config: &crate::config::RdapConfig) -> Result<Self, RdapError> {
        Self::new(config.timeout, config.max_response_size)
    }

    /// Fetches `{base}domain/{domain}` (RFC 9082 3.1.3) as JSON.
    pub async fn domain(&self, base: &str, domain: &str) -> Result<serde_json::Value, RdapError> {
        self.json(domain_url(base, domain)?).await
    }

    /// Fetches any JSON document under the same deadline, size cap and redirect rules (the
    /// bootstrap file).
    pub async fn document(&self, url: &str) -> Result<serde_json::Value, RdapError> {
        let url = Url::parse(url).map_err(|e| RdapError::Url(format!("URL {url:?}: {e}")))?;
        self.json(url).await
    }

    async fn json(&self, url: Url) -> Result<serde_json::Value, RdapError> {
        match tokio::time::timeout(self.timeout, self.fetch(url)).await {
            Ok(result) => result,
            Err(_) => Err(RdapError::Timeout(self.timeout)),
        }
    }

    async fn fetch(&self, url: Url) -> Result<serde_json::Value, RdapError> {
        let mut response = self
            .http
            .get(url)
            .header(
                reqwest::header::ACCEPT,
                "application/rdap+json, application/json",
            )
            .send()
            .await
            .map_err(|e| self.request_error(e))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(RdapError::NotFound);
        }
        if status.is_redirection() {
            let to = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("(no Location)");
            return Err(RdapError::Redirect(format!("HTTP {status} to {to}")));
        }
        if !status.is_success() {
            return Err(RdapError::Status(status.as_u16()));
        }
        if response.content_length().is_some_and(|n| n > self.max_size) {
            return Err(RdapError::TooLarge(self.max_size));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.request_error(e))? {
            if (body.len() + chunk.len()) as u64 > self.max_size {
                return Err(RdapError::TooLarge(self.max_size));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body)
            .map_err(|e| RdapError::Malformed(format!("invalid JSON: {e}")))
    }

    fn request_error(&self, e: reqwest::Error) -> RdapError {
        if e.is_timeout() {
            return RdapError::Timeout(self.timeout);
        }
        if e.is_redirect() {
            return RdapError::Redirect(chain(&e));
        }
        RdapError::Request(e)
    }
}

/// The error with its causes, which is where reqwest puts the useful part.
pub(super) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A redirect is followed only to HTTPS, or to the same scheme, host and port: a hostile
/// server must not turn reclaim into a client of plain-HTTP hosts elsewhere.
fn redirect(attempt: Attempt) -> reqwest::redirect::Action {
    if attempt.previous().len() > MAX_REDIRECTS {
        return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
    }
    let to = attempt.url().clone();
    let from = attempt.previous().last().cloned();
    let same_origin = from.as_ref().is_some_and(|f| {
        f.scheme() == to.scheme()
            && f.host_str() == to.host_str()
            && f.port_or_known_default() == to.port_or_known_default()
    });
    let downgrade = from.as_ref().is_some_and(|f| f.scheme() == "https") && to.scheme() != "https";
    if downgrade || !(same_origin || to.scheme() == "https") {
        return attempt.error(format!("to {to} (only HTTPS, or the same server)"));
    }
    attempt.follow()
}

/// `base` + `domain/` + the name, whatever `base` ends with.
fn domain_url(base: &str, domain: &str) -> Result<Url, RdapError> {
    let mut base = base.trim().to_owned();
    if !base.ends_with('/') {
        base.push('/');
    }
    let url = Url::parse(&base)
        .and_then(|b| b.join(&format!("domain/{domain}")))
        .map_err(|e| RdapError::Url(format!("RDAP URL {base:?}: {e}")))?;
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_urls() {
        for base in [
            "https://rdap.example/v1",
            "https://rdap.example/v1/",
            " https://rdap.example/v1/ ",
        ] {
            assert_eq!(
                domain_url(base, "old.example").expect("url").as_str(),
                "https://rdap.example/v1/domain/old.example"
            );
        }
        assert!(matches!(
            domain_url("not a url", "old.example"),
            Err(RdapError::Url(_))
        ));
    }

    #[tokio::test]
    async fn a_failed_request_keeps_the_reqwest_error() {
        // A loopback listener closed again: the port refuses the connection.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        drop(listener);
        let client = Client::new(Duration::from_secs(5), 1024).expect("client");
        let error = client
            .domain(&format!("http://{addr}/"), "old.example")
            .await
            .expect_err("nothing listens");
        let RdapError::Request(reqwest) = &error else {
            panic!("{error:?}");
        };
        assert!(reqwest.is_connect(), "{reqwest:?}");
        let source = std::error::Error::source(&error).expect("a source");
        assert!(source.is::<reqwest::Error>(), "{source:?}");
        // The message still spells out the causes below reqwest's own words.
        assert_eq!(
            error.to_string(),
            format!("request failed: {}", chain(reqwest))
        );
        assert_ne!(chain(reqwest), reqwest.to_string());
    }
}
