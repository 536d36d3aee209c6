//! A small blocking client for the admin API, used by the CLI: over the Unix socket, or
//! over TCP with mutual TLS (`--admin https://host:port`).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::deadline::{Deadline, Timed, connect_tcp, timed_out};

/// How long the CLI waits for the server to connect, take a request and answer it (the
/// answer's head, all of it), and then for a JSON body (with [`MIN_JSON_RATE`]) or each
/// read of a streamed one, unless a command sets its own ([`AdminClient::with_timeout`]).
pub const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// A JSON body (or a refusal's) must be in within the timeout after the head plus a second
/// for each this many bytes of it, so that a server dripping it cannot hold the call. The
/// largest JSON the API sends is a page of the index, a few MB.
const MIN_JSON_RATE: u64 = 64 * 1024;
/// Largest JSON body, or refusal, the client reads into memory.
const MAX_JSON_ANSWER: u64 = 256 * 1024 * 1024;
/// Largest response head the client reads.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// Why a request to the server failed. Every failure to exchange a request and its whole
/// answer is one of these, never a bare I/O error: the CLI tells a broken pipe on its own
/// standard output (a clean end) from one on the way to the server (a failure) by that.
/// A variant with a cause says what failed and leaves the cause to the error chain, which
/// the CLI and the desk print whole (`{:#}`).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot reach the reclaim server at {path} (is `reclaim serve` running, and is this the right socket?)"
    )]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the reclaim server at {endpoint} did not take the request")]
    Send {
        endpoint: String,
        source: std::io::Error,
    },
    #[error("the reclaim server at {endpoint} closed the connection without an answer")]
    NoAnswer { endpoint: String },
    #[error("the reclaim server at {endpoint} did not answer within {}", humantime::format_duration(*.after))]
    Timeout { endpoint: String, after: Duration },
    #[error("reading the answer of the reclaim server at {endpoint}")]
    Receive {
        endpoint: String,
        source: std::io::Error,
    },
    #[error(
        "the reclaim server at {endpoint} closed the connection {missing} byte(s) before the end of its answer"
    )]
    Truncated { endpoint: String, missing: u64 },
    #[error("talking to the reclaim server: {0}")]
    Io(#[from] std::io::Error),
    #[error("{message}")]
    Status { status: u16, message: String },
    /// The answer's head is not HTTP as the server writes it.
    #[error("unexpected answer from the reclaim server: {0}")]
    Protocol(String),
    /// The answer's body is not the JSON the request expects.
    #[error("unexpected answer from the reclaim server")]
    Decode(#[source] serde_json::Error),
    /// The request's body could not be encoded.
    #[error("encoding the request to the reclaim server")]
    Encode(#[source] serde_json::Error),
    /// `--admin` is not `https://HOST:PORT`, or a PEM file holds no certificate.
    #[error("admin TLS setup: {0}")]
    Tls(String),
    /// A CA, certificate or key file could not be read, or is not PEM.
    #[error("admin TLS setup: {}", path.display())]
    TlsFile {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    /// rustls refused a certificate of the CA file.
    #[error("admin TLS setup: {}", path.display())]
    TlsCa {
        path: PathBuf,
        source: rustls::Error,
    },
    /// The host of `--admin` is not a name or address a certificate can be checked for.
    #[error("admin TLS setup: {host:?}")]
    TlsName {
        host: String,
        source: rustls_pki_types::InvalidDnsNameError,
    },
    /// rustls refused the client certificate and key, or the connection.
    #[error("admin TLS setup")]
    TlsConfig(#[source] rustls::Error),
}

impl ClientError {
    /// Whether the server could not be reached, or did not take the request or answer it
    /// (exit 3), rather than answered with a refusal.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. }
                | ClientError::Send { .. }
                | ClientError::NoAnswer { .. }
                | ClientError::Timeout { .. }
                | ClientError::Receive { .. }
                | ClientError::Truncated { .. }
        )
    }

    /// The client error an I/O error from a body reader carries, if any.
    pub fn inside(error: &std::io::Error) -> Option<&ClientError> {
        error.get_ref().and_then(|inner| inner.downcast_ref())
    }
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

#[derive(Clone)]
enum Endpoint {
    Unix(PathBuf),
    Tls {
        addr: String,
        name: ServerName<'static>,
        config: Arc<rustls::ClientConfig>,
    },
}

impl Endpoint {
    /// How errors name the server.
    fn name(&self) -> String {
        match self {
            Endpoint::Unix(path) => path.display().to_string(),
            Endpoint::Tls { addr, .. } => format!("https://{addr}"),
        }
    }
}

/// The admin API at a Unix socket path or a mutual-TLS address.
#[derive(Clone)]
pub struct AdminClient {
    endpoint: Endpoint,
    /// For connecting, sending the request and reading the answer's head, all together;
    /// then for each read of the body (an export streams for as long as it takes).
    timeout: Duration,
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
            timeout: IO_TIMEOUT,
        }
    }

    /// The same client, waiting at most `timeout` for an answer and for each read of its
    /// body (`health` fails fast instead of hanging a container health check).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A client for `https://HOST:PORT` that proves itself with a client certificate and
    /// trusts only the given CA for the server.
    pub fn tls(url: &str, files: &TlsFiles<'_>) -> Result<Self, ClientError> {
        let addr = url
            .strip_prefix("https://")
            .map(|rest| rest.trim_end_matches('/'))
            .filter(|rest| rest.contains(':') && !rest.contains('/'))
            .ok_or_else(|| ClientError::Tls(format!("{url:?} is not https://HOST:PORT")))?;
        let host = addr
            .rsplit_once(':')
            .map(|(h, _)| h.trim_matches(['[', ']']))
            .unwrap_or(addr);
        let name =
            ServerName::try_from(host.to_owned()).map_err(|source| ClientError::TlsName {
                host: host.to_owned(),
                source,
            })?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in read_certs(files.ca)? {
            roots.add(cert).map_err(|source| ClientError::TlsCa {
                path: files.ca.to_owned(),
                source,
            })?;
        }
        let key =
            PrivateKeyDer::from_pem_file(files.key).map_err(|source| ClientError::TlsFile {
                path: files.key.to_owned(),
                source,
            })?;
        let client_certs = read_certs(files.cert)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| {
                b.with_root_certificates(roots)
                    .with_client_auth_cert(client_certs, key)
            })
            .map_err(ClientError::TlsConfig)?;
        Ok(Self {
            endpoint: Endpoint::Tls {
                addr: addr.to_owned(),
                name,
                config: Arc::new(config),
            },
            timeout: IO_TIMEOUT,
        })
    }

    /// GETs `path` and decodes a JSON body.
    pub fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        decode(self.exchange("GET", path, None, Answer::Json)?)
    }

    /// Sends `body` as JSON with `method` and decodes the JSON answer.
    pub fn send_json<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, ClientError> {
        let body = serde_json::to_vec(body).map_err(ClientError::Encode)?;
        decode(self.exchange(method, path, Some(&body), Answer::Json)?)
    }

    /// GETs `path` and returns a reader over the body.
    pub fn get(&self, path: &str) -> Result<impl Read + use<>, ClientError> {
        self.request("GET", path, None)
    }

    /// Connects within `deadline`; the socket's reads and writes keep to it while it is
    /// set (the TLS handshake's too, since they are the socket's).
    fn connect(&self, deadline: &Deadline) -> Result<Box<dyn Stream>, ClientError> {
        match &self.endpoint {
            Endpoint::Unix(path) => {
                let stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
                    path: path.clone(),
                    source,
                })?;
                Ok(Box::new(Timed::new(stream, self.timeout, deadline)))
            }
            Endpoint::Tls { addr, name, config } => {
                let tcp = connect_tcp(addr, deadline).map_err(|source| ClientError::Connect {
                    path: PathBuf::from(addr),
                    source,
                })?;
                let conn = rustls::ClientConnection::new(config.clone(), name.clone())
                    .map_err(ClientError::TlsConfig)?;
                let tcp = Timed::new(tcp, self.timeout, deadline);
                Ok(Box::new(rustls::StreamOwned::new(conn, tcp)))
            }
        }
    }

    /// Sends one request and returns a reader over a 200 answer's body, streamed: each read
    /// waits the timeout, however long it all takes.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<impl Read + use<>, ClientError> {
        self.exchange(method, path, body, Answer::Streamed)
    }

    /// Sends one request and returns a reader over a 200 answer's body, read as `answer`
    /// says.
    fn exchange(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        answer: Answer,
    ) -> Result<Body<BufReader<Box<dyn Stream>>>, ClientError> {
        // A server that answers a byte at a time cannot stretch the wait for its answer.
        let deadline = Deadline::at(Instant::now() + self.timeout);
        let mut stream = self.connect(&deadline).map_err(|error| match error {
            ClientError::Connect { source, .. } if timed_out(&source) => ClientError::Timeout {
                endpoint: self.endpoint.name(),
                after: self.timeout,
            },
            other => other,
        })?;
        let body = body.unwrap_or_default();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if !body.is_empty() {
            head.push_str("Content-Type: application/json\r\n");
        }
        head.push_str("\r\n");
        let endpoint = self.endpoint.name();
        let sent = stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(body))
            .and_then(|()| stream.flush());
        if let Err(source) = sent {
            return Err(self.failed(source, |source| ClientError::Send {
                endpoint: endpoint.clone(),
                source,
            }));
        }
        let mut reader = BufReader::new(stream);
        let (status, length) = match read_head(&mut reader) {
            Ok(head) => head,
            Err(HeadError::Io(source)) => {
                return Err(self.failed(source, |source| ClientError::Receive {
                    endpoint: endpoint.clone(),
                    source,
                }));
            }
            Err(HeadError::Closed) => return Err(ClientError::NoAnswer { endpoint }),
            Err(HeadError::Bad(message)) => return Err(ClientError::Protocol(message)),
        };
        let whole = status != 200 || answer == Answer::Json;
        if whole && length > MAX_JSON_ANSWER {
            return Err(ClientError::Protocol(format!(
                "an answer of {length} bytes, more than the {MAX_JSON_ANSWER} read whole"
            )));
        }
        let mut body = Body {
            inner: reader.take(length),
            missing: length,
            endpoint,
            timeout: self.timeout,
        };
        if whole {
            let for_size = Duration::from_secs(length / MIN_JSON_RATE);
            deadline.move_to(Instant::now() + self.timeout + for_size);
        }
        if status != 200 {
            let mut text = Vec::new();
            body.read_to_end(&mut text).map_err(unwrap_io)?;
            let message = serde_json::from_slice::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or_else(|| format!("server answered HTTP {status}"));
            return Err(ClientError::Status { status, message });
        }
        if answer == Answer::Streamed {
            deadline.lift();
        }
        Ok(body)
    }

    /// A timeout as such, any other I/O error as `other` makes it.
    fn failed(
        &self,
        source: std::io::Error,
        other: impl FnOnce(std::io::Error) -> ClientError,
    ) -> ClientError {
        if timed_out(&source) {
            ClientError::Timeout {
                endpoint: self.endpoint.name(),
                after: self.timeout,
            }
        } else {
            other(source)
        }
    }
}

/// How a 200 answer's body is read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Whole, within the timeout and the time [`MIN_JSON_RATE`] gives its size.
    Json,
    /// For as long as it keeps coming (an export).
    Streamed,
}

/// The body of an answer: exactly its Content-Length, or an error. Its I/O errors carry a
/// [`ClientError`] (see [`ClientError::inside`]), so that what the server failed to send is
/// never taken for something the caller's own output did.
struct Body<R> {
    inner: std::io::Take<R>,
    missing: u64,
    endpoint: String,
    timeout: Duration,
}

impl<R: Read> Read for Body<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let wrap = |kind, error: ClientError| std::io::Error::new(kind, error);
        match self.inner.read(buf) {
            Ok(0) if self.missing > 0 && !buf.is_empty() => Err(wrap(
                std::io::ErrorKind::UnexpectedEof,
                ClientError::Truncated {
                    endpoint: self.endpoint.clone(),
                    missing: self.missing,
                },
            )),
            Ok(n) => {
                self.missing -= n as u64;
                Ok(n)
            }
            Err(e) if timed_out(&e) => Err(wrap(
                e.kind(),
                ClientError::Timeout {
                    endpoint: self.endpoint.clone(),
                    after: self.timeout,
                },
            )),
            Err(e) => Err(wrap(
                e.kind(),
                ClientError::Receive {
                    endpoint: self.endpoint.clone(),
                    source: e,
                },
            )),
        }
    }
}

/// The client error inside an I/O error from [`Body`].
fn unwrap_io(error: std::io::Error) -> ClientError {
    if ClientError::inside(&error).is_none() {
        return ClientError::Io(error);
    }
    let kind = error.kind();
    match error
        .into_inner()
        .map(|inner| inner.downcast::<ClientError>())
    {
        Some(Ok(client)) => *client,
        Some(Err(other)) => ClientError::Io(std::io::Error::new(kind, other)),
        None => ClientError::Io(kind.into()),
    }
}

fn decode<T: DeserializeOwned>(mut reader: impl Read) -> Result<T, ClientError> {
    let mut body = Vec::new();
    reader.read_to_end(&mut body).map_err(unwrap_io)?;
    serde_json::from_slice(&body).map_err(ClientError::Decode)
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|source| ClientError::TlsFile {
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(ClientError::Tls(format!(
            "{}: no certificate in file",
            path.display()
        )));
    }
    Ok(certs)
}

/// Why no response head was read.
enum HeadError {
    Io(std::io::Error),
    /// The connection ended before a whole head.
    Closed,
    Bad(String),
}

fn read_head(reader: &mut impl BufRead) -> Result<(u16, u64), HeadError> {
    let mut status = None;
    let mut length = None;
    let mut total = 0;
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).map_err(HeadError::Io)?;
        total += n;
        if n == 0 {
            return Err(HeadError::Closed);
        }
        if total > MAX_RESPONSE_HEAD {
            return Err(HeadError::Bad("response head too long".into()));
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
                return Err(HeadError::Bad(format!("bad status line {line:?}")));
            }
        } else if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse::<u64>().ok();
        }
    }
    match (status, length) {
        (Some(s), Some(l)) => Ok((s, l)),
        _ => Err(HeadError::Bad(
            "response without status or Content-Length".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    fn dev(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("certs")
            .join(name)
    }

    #[test]
    fn a_refused_ca_certificate_keeps_the_rustls_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        // PEM, but not a certificate: rustls refuses it when it is added to the roots.
        let ca = dir.path().join("ca.pem");
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        let (cert, key) = (dev("dev-cert.pem"), dev("dev-key.pem"));
        let files = TlsFiles {
            ca: &ca,
            cert: &cert,
            key: &key,
        };
        let error = match AdminClient::tls("https://127.0.0.1:1", &files) {
            Ok(_) => panic!("a garbage CA was accepted"),
            Err(error) => error,
        };
        let Some(rustls) = error
            .source()
            .and_then(|s| s.downcast_ref::<rustls::Error>())
            .map(ToString::to_string)
        else {
            panic!("no rustls cause: {error:?}");
        };
        assert!(matches!(error, ClientError::TlsCa { .. }), "{error:?}");
        // The chain reads as the single message did before it kept the cause.
        assert_eq!(
            format!("{:#}", anyhow::Error::from(error)),
            format!("admin TLS setup: {}: {rustls}", ca.display())
        );
    }

    #[test]
    fn a_key_that_does_not_fit_its_certificate_keeps_the_rustls_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let other_key = dir.path().join("other-key.pem");
        let pair = rcgen::KeyPair::generate().expect("key");
        std::fs::write(&other_key, pair.serialize_pem()).expect("write");
        let (ca, cert) = (dev("dev-cert.pem"), dev("dev-cert.pem"));
        let files = TlsFiles {
            ca: &ca,
            cert: &cert,
            key: &other_key,
        };
        match AdminClient::tls("https://localhost:1", &files) {
            Err(ClientError::TlsConfig(rustls::Error::InconsistentKeys(_))) => {}
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("a key of another certificate was accepted"),
        }
    }

    #[test]
    fn a_missing_file_keeps_the_io_error() {
        let missing = Path::new("/nonexistent/reclaim-admin-ca.pem");
        let files = TlsFiles {
            ca: missing,
            cert: missing,
            key: missing,
        };
        let error = match AdminClient::tls("https://localhost:1", &files) {
            Ok(_) => panic!("a missing CA file was accepted"),
            Err(error) => error,
        };
        assert!(matches!(error, ClientError::TlsFile { .. }), "{error:?}");
        assert!(
            matches!(
                error.source().and_then(|s| s.downcast_ref()),
                Some(rustls_pki_types::pem::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound
            ),
            "{error:?}"
        );
    }

    /// A server for one connection on a Unix socket in `dir`: it reads the request's head,
    /// writes `at_once`, then `drip` in pieces of `piece` bytes `gap` apart.
    fn slow_server(
        dir: &Path,
        at_once: Vec<u8>,
        drip: Vec<u8>,
        piece: usize,
        gap: Duration,
    ) -> (PathBuf, std::thread::JoinHandle<()>) {
        let path = dir.join("admin.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        let server = std::thread::spawn(move || {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            // Writes fail once the client has given up; that ends the server.
            if stream.write_all(&at_once).is_err() {
                return;
            }
            for chunk in drip.chunks(piece) {
                std::thread::sleep(gap);
                if stream.write_all(chunk).is_err() {
                    return;
                }
            }
        });
        (path, server)
    }

    #[test]
    fn an_answer_head_sent_a_little_at_a_time_runs_into_the_deadline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
        for _ in 0..40 {
            head.extend_from_slice(b"X-Pad: 1\r\n");
        }
        head.extend_from_slice(b"Content-Length: 2\r\n\r\n{}");
        // Each piece comes well within the timeout; the whole head takes 2 s.
        let gap = Duration::from_millis(20);
        let (path, server) = slow_server(dir.path(), Vec::new(), head, 4, gap);
        let timeout = Duration::from_millis(300);
        let client = AdminClient::new(&path).with_timeout(timeout);
        let error = client
            .get_json::<serde_json::Value>("/v1/health")
            .expect_err("a head that takes 2 s is not waited for with a 300 ms timeout");
        assert!(
            matches!(&error, ClientError::Timeout { after, .. } if *after == timeout),
            "{error:?}"
        );
        assert!(error.is_unreachable());
        server.join().expect("server");
    }

    #[test]
    fn a_body_is_streamed_for_longer_than_the_timeout_while_it_keeps_coming() {
        let dir = tempfile::tempdir().expect("tempdir");
        let body = vec![b'x'; 200];
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
        let gap = Duration::from_millis(50);
        let (path, server) = slow_server(dir.path(), head.into_bytes(), body.clone(), 10, gap);
        let timeout = Duration::from_millis(300);
        let started = Instant::now();
        let mut reader = AdminClient::new(&path)
            .with_timeout(timeout)
            .get("/v1/export")
            .expect("the head comes at once");
        let mut read = Vec::new();
        reader
            .read_to_end(&mut read)
            .expect("the body keeps coming");
        assert_eq!(read, body);
        assert!(
            started.elapsed() > timeout,
            "the body took longer than the timeout"
        );
        server.join().expect("server");
    }

    #[test]
    fn a_json_body_sent_a_little_at_a_time_runs_into_the_deadline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let body = format!("[{}0]", "0,".repeat(100));
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
        // The head comes at once, then each piece well within the timeout; the whole body
        // takes 2 s.
        let gap = Duration::from_millis(20);
        let (path, server) = slow_server(dir.path(), head.into_bytes(), body.into_bytes(), 2, gap);
        let timeout = Duration::from_millis(300);
        let error = AdminClient::new(&path)
            .with_timeout(timeout)
            .get_json::<Vec<u32>>("/v1/messages")
            .expect_err("a JSON body that takes 2 s is not waited for with a 300 ms timeout");
        assert!(
            matches!(&error, ClientError::Timeout { after, .. } if *after == timeout),
            "{error:?}"
        );
        server.join().expect("server");
    }

    #[test]
    fn a_json_answer_too_big_to_read_whole_is_refused_before_its_body() {
        let dir = tempfile::tempdir().expect("tempdir");
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n[",
            MAX_JSON_ANSWER + 1
        );
        let (path, server) =
            slow_server(dir.path(), head.into_bytes(), Vec::new(), 1, Duration::ZERO);
        let error = AdminClient::new(&path)
            .get_json::<serde_json::Value>("/v1/messages")
            .expect_err("too big");
        assert!(
            matches!(&error, ClientError::Protocol(m) if m.contains("more than the")),
            "{error:?}"
        );
        server.join().expect("server");
    }

    #[test]
    fn an_answer_that_is_not_json_keeps_the_json_error() {
        let error = decode::<serde_json::Value>(&b"not json"[..]).expect_err("not JSON");
        assert!(matches!(error, ClientError::Decode(_)), "{error:?}");
        assert!(
            format!("{:#}", anyhow::Error::from(error))
                .starts_with("unexpected answer from the reclaim server: expected ")
        );
    }
}
