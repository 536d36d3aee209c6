//! A real Chromium for tests, driven over WebDriver by a chromedriver the test starts on a
//! loopback port. The browser can reach nothing but loopback: every other request goes to
//! a proxy address where nothing listens, and host names do not resolve.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::process::free_port;

/// Debian's chromium and chromium-driver (`.ci/run` installs both).
pub const CHROMIUM: &str = "/usr/lib/chromium/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A running browser session and its driver (killed when dropped).
pub struct Browser {
    pub client: fantoccini::Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium. Fails (never skips) when either is
    /// missing: these tests are how the desk's safety is shown.
    pub async fn start() -> Self {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: the desk's browser tests need Debian's chromium and \
                 chromium-driver (apt-get install chromium chromium-driver; .ci/run does this)"
            );
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not listen"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let args = vec![
            "--headless=new".to_owned(),
            // Chromium runs as root here, where its own sandbox cannot start.
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
            "--window-size=1280,900".to_owned(),
            "--lang=en-US".to_owned(),
            "--accept-lang=en-US".to_owned(),
            // Nothing may leave the machine, even in a bug: loopback bypasses the proxy
            // (Chromium's implicit rule), everything else goes to a port nobody serves.
            "--proxy-server=http://127.0.0.1:1".to_owned(),
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"
                .to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-default-apps".to_owned(),
            "--disable-extensions".to_owned(),
            "--disable-sync".to_owned(),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), "chrome".into());
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": CHROMIUM, "args": args }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = fantoccini::ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        Self {
            client,
            driver,
            _profile: profile,
        }
    }

    /// Ends the session and the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
