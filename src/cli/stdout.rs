//! The CLI's standard output, whose closing by its reader (`reclaim list | head`) is told
//! apart from every other broken pipe: only that one ends a command as a success.

use std::io::{ErrorKind, Write};

/// Standard output was closed by whoever reads it: the command stops there and exits 0.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed")]
pub struct StdoutClosed;

/// Standard output, locked, with a broken pipe on it marked as [`StdoutClosed`].
pub struct Stdout(std::io::StdoutLock<'static>);

/// Locks standard output for a command's output.
pub fn lock() -> Stdout {
    Stdout(std::io::stdout().lock())
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf).map_err(mark)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush().map_err(mark)
    }
}

fn mark(error: std::io::Error) -> std::io::Error {
    if error.kind() == ErrorKind::BrokenPipe {
        std::io::Error::new(ErrorKind::BrokenPipe, StdoutClosed)
    } else {
        error
    }
}

/// Whether `error` is standard output closed by its reader, and nothing else: a broken
/// pipe to the admin API, a relay or a database is a failure like any other.
pub fn closed(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.is::<StdoutClosed>()
            || cause
                .downcast_ref::<std::io::Error>()
                .and_then(|e| e.get_ref())
                .is_some_and(|inner| inner.is::<StdoutClosed>())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_marked_broken_pipe_is_a_closed_stdout() {
        let bare = anyhow::Error::from(std::io::Error::from(ErrorKind::BrokenPipe));
        assert!(!closed(&bare));
        let marked = anyhow::Error::from(mark(std::io::Error::from(ErrorKind::BrokenPipe)))
            .context("writing the table");
        assert!(closed(&marked));
        let other = mark(std::io::Error::from(ErrorKind::PermissionDenied));
        assert!(!closed(&anyhow::Error::from(other)));
    }
}
