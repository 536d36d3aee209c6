//! A small blocking client for the admin API, used by the CLI: over the Unix socket, or
//! over TCP with mutual TLS (`--admin https://host:port`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// How long the CLI waits for the server to answer.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest response head the client reads.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// Why a request to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot reach the reclaim server at {path} (is `reclaim serve` running, and is this the right socket?)"
    )]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("talking to the reclaim server: {0}")]
    Io(#[from] std::io::Error),
    #[error("{message}")]
    Status { status: u16, message: String },
    #[error("unexpected answer from the reclaim server: {0}")]
    Protocol(String),
    #[error("admin TLS setup: {0}")]
    Tls(String),
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

enum Endpoint {
    Unix(PathBuf),
    Tls {
        addr: String,
        name: ServerName<'static>,
        config: Arc<rustls::ClientConfig>,
    },
}

/// The admin API at a Unix socket path or a mutual-TLS address.
pub struct AdminClient {
    endpoint: Endpoint,
}

/// PEM files for `--admin https://…`.
pub struct TlsFiles<'a> {
    pub ca: &'a Path,
    pub cert: &'a Path,
    pub key: &'a Path,
}

impl AdminClient {
    pub fn new(socket: &Path) -> Self {
        Self {
            endpoint: Endpoint::Unix(socket.to_owned()),
        }
    }

    /// A client for `https://HOST:PORT` that proves itself with a client certificate and
    /// trusts only the given CA for the server.
    pub fn tls(url: &str, files: &TlsFiles<'_>) -> Result<Self, ClientError> {
        let tls_err = |m: String| ClientError::Tls(m);
        let addr = url
            .strip_prefix("https://")
            .map(|rest| rest.trim_end_matches('/'))
            .filter(|rest| rest.contains(':') && !rest.contains('/'))
            .ok_or_else(|| tls_err(format!("{url:?} is not https://HOST:PORT")))?;
        let host = addr
            .rsplit_once(':')
            .map(|(h, _)| h.trim_matches(['[', ']']))
            .unwrap_or(addr);
        let name =
            ServerName::try_from(host.to_owned()).map_err(|e| tls_err(format!("{host:?}: {e}")))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in read_certs(files.ca)? {
            roots
                .add(cert)
                .map_err(|e| tls_err(format!("{}: {e}", files.ca.display())))?;
        }
        let key = PrivateKeyDer::from_pem_file(files.key)
            .map_err(|e| tls_err(format!("{}: {e}", files.key.display())))?;
        let client_certs = read_certs(files.cert)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| {
                b.with_root_certificates(roots)
                    .with_client_auth_cert(client_certs, key)
            })
            .map_err(|e| tls_err(e.to_string()))?;
        Ok(Self {
            endpoint: Endpoint::Tls {
                addr: addr.to_owned(),
                name,
                config: Arc::new(config),
            },
        })
    }

    /// GETs `path` and decodes a JSON body.
    pub fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        decode(self.request("GET", path, None)?)
    }

    /// Sends `body` as JSON with `method` and decodes the JSON answer.
    pub fn send_json<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, ClientError> {
        let body = serde_json::to_vec(body).map_err(|e| ClientError::Protocol(e.to_string()))?;
        decode(self.request(method, path, Some(&body))?)
    }

    /// GETs `path` and returns a reader over the body.
    pub fn get(&self, path: &str) -> Result<impl Read + use<>, ClientError> {
        self.request("GET", path, None)
    }

    fn connect(&self) -> Result<Box<dyn Stream>, ClientError> {
        match &self.endpoint {
            Endpoint::Unix(path) => {
                let stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
                    path: path.clone(),
                    source,
                })?;
                stream.set_read_timeout(Some(IO_TIMEOUT))?;
                stream.set_write_timeout(Some(IO_TIMEOUT))?;
                Ok(Box::new(stream))
            }
            Endpoint::Tls { addr, name, config } => {
                let tcp = TcpStream::connect(addr).map_err(|source| ClientError::Connect {
                    path: PathBuf::from(addr),
                    source,
                })?;
                tcp.set_read_timeout(Some(IO_TIMEOUT))?;
                tcp.set_write_timeout(Some(IO_TIMEOUT))?;
                let conn = rustls::ClientConnection::new(config.clone(), name.clone())
                    .map_err(|e| ClientError::Tls(e.to_string()))?;
                Ok(Box::new(rustls::StreamOwned::new(conn, tcp)))
            }
        }
    }

    /// Sends one request and returns a reader over a 200 answer's body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<impl Read + use<>, ClientError> {
        let mut stream = self.connect()?;
        let body = body.unwrap_or_default();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if !body.is_empty() {
            head.push_str("Content-Type: application/json\r\n");
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        stream.flush()?;
        let mut reader = BufReader::new(stream);
        let (status, length) = read_head(&mut reader)?;
        let mut body = reader.take(length);
        if status != 200 {
            let mut text = Vec::new();
            body.read_to_end(&mut text)?;
            let message = serde_json::from_slice::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or_else(|| format!("server answered HTTP {status}"));
            return Err(ClientError::Status { status, message });
        }
        Ok(body)
    }
}

fn decode<T: DeserializeOwned>(mut reader: impl Read) -> Result<T, ClientError> {
    let mut body = Vec::new();
    reader.read_to_end(&mut body)?;
    serde_json::from_slice(&body).map_err(|e| ClientError::Protocol(e.to_string()))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ClientError::Tls(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(ClientError::Tls(format!(
            "{}: no certificate in file",
            path.display()
        )));
    }
    Ok(certs)
}

fn read_head(reader: &mut impl BufRead) -> Result<(u16, u64), ClientError> {
    let mut status = None;
    let mut length = None;
    let mut total = 0;
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line)?;
        total += n;
        if n == 0 || total > MAX_RESPONSE_HEAD {
            return Err(ClientError::Protocol("incomplete response head".into()));
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if status.is_none() {
            status = line
                .strip_prefix("HTTP/1.1 ")
                .and_then(|rest| rest.get(..3))
                .and_then(|code| code.parse::<u16>().ok());
            if status.is_none() {
                return Err(ClientError::Protocol(format!("bad status line {line:?}")));
            }
        } else if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse::<u64>().ok();
        }
    }
    match (status, length) {
        (Some(s), Some(l)) => Ok((s, l)),
        _ => Err(ClientError::Protocol(
            "response without status or Content-Length".into(),
        )),
    }
}
