//! A small blocking client for the admin API, used by the CLI.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;

/// How long the CLI waits for the server to answer.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest response head the client reads.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// Why a request to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot reach the reclaim server at {path}: {source} (is `reclaim serve` running, and is this the right socket?)"
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
}

/// The admin API at a Unix socket path.
pub struct AdminClient {
    socket: PathBuf,
}

impl AdminClient {
    pub fn new(socket: &Path) -> Self {
        Self {
            socket: socket.to_owned(),
        }
    }

    /// GETs `path` and decodes a JSON body.
    pub fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let mut body = Vec::new();
        self.get(path)?.read_to_end(&mut body)?;
        serde_json::from_slice(&body).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// GETs `path` and returns a reader over the body.
    pub fn get(&self, path: &str) -> Result<impl Read + use<>, ClientError> {
        let mut stream =
            UnixStream::connect(&self.socket).map_err(|source| ClientError::Connect {
                path: self.socket.clone(),
                source,
            })?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )?;
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
