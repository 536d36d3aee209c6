//! The audit chain's witness: after every audit append, the new head (sequence number and
//! hash) goes somewhere the gateway cannot rewrite (an append-only file, a command such
//! as `logger` or a remote log shipper), so that a rewritten chain no longer matches what
//! was witnessed, and `audit --verify --heads FILE` can tell.
//!
//! A head is one line, `audit-head seq=N hash=HEX time=UNIX node=HOST`, found anywhere in
//! a line when read back, so a syslog file with its own prefixes works as well.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::store::audit::{Anchor, hash_hex};
use crate::store::{AuditEntry, QuarantineStore, StoreError};

/// Longest a head line read back may be; a witness file is lines, not a document.
const MAX_LINE: usize = 4096;

/// `[audit]`: where heads go. With neither set, nothing is witnessed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WitnessConfig {
    /// `head_file`: appended to (opened `O_APPEND` each time, so log rotation and
    /// `chattr +a` work), synced before the request is answered.
    pub file: Option<PathBuf>,
    /// `head_command`: run once per head with the line on its standard input.
    pub command: Vec<String>,
    /// `head_timeout`: how long the command may take.
    pub timeout: Duration,
    /// This node's name in the line (several nodes may share one chain).
    pub node: String,
}

#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("audit record #{0} is not in the store right after it was appended")]
    Vanished(u64),
    #[error("cannot append the audit head to {path}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run the audit head command {program}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the audit head command {program} did not finish within {timeout:?}")]
    Timeout { program: String, timeout: Duration },
    #[error("the audit head command {program} failed ({status})")]
    Failed {
        program: String,
        status: std::process::ExitStatus,
    },
}

/// One witnessed head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

impl Head {
    /// The line a head is witnessed as.
    pub fn line(&self, time: i64, node: &str) -> String {
        format!(
            "audit-head seq={} hash={} time={time} node={node}\n",
            self.seq, self.hash
        )
    }
}

impl WitnessConfig {
    pub fn enabled(&self) -> bool {
        self.file.is_some() || !self.command.is_empty()
    }
}

/// Appends `entry` to the chain, then witnesses the new head. Returns the record's
/// sequence number. The record is durable even when witnessing fails; the caller then
/// fails the request, so nothing is handed out past an unwitnessed record.
pub async fn record<S: QuarantineStore>(
    store: &S,
    witness: &WitnessConfig,
    entry: AuditEntry,
) -> Result<u64, WitnessError> {
    let time = entry.time;
    let seq = store.audit(entry).await?;
    if !witness.enabled() {
        return Ok(seq);
    }
    // Read back by sequence number: exact even while other requests append.
    let page = store.audit_page(seq - 1, 1).await?;
    let raw = page.records.first().ok_or(WitnessError::Vanished(seq))?;
    let head = Head {
        seq,
        hash: hash_hex(raw.as_bytes()),
    };
    let line = head.line(time, &witness.node);
    if let Some(path) = &witness.file {
        append(path.clone(), line.clone()).await?;
    }
    if !witness.command.is_empty() {
        run_command(&witness.command, witness.timeout, &line).await?;
    }
    Ok(seq)
}

async fn append(path: PathBuf, line: String) -> Result<(), WitnessError> {
    let result = tokio::task::spawn_blocking({
        let path = path.clone();
        move || -> std::io::Result<()> {
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o640)
                .open(&path)?;
            file.write_all(line.as_bytes())?;
            file.sync_data()
        }
    })
    .await
    .unwrap_or_else(|join| Err(std::io::Error::other(join)));
    result.map_err(|source| WitnessError::File { path, source })
}

/// Runs the command on the blocking pool (the runtime has no process driver): it gets the
/// line on its standard input and must exit 0 within `timeout`, or it is killed.
async fn run_command(argv: &[String], timeout: Duration, line: &str) -> Result<(), WitnessError> {
    let argv = argv.to_vec();
    let line = line.to_owned();
    tokio::task::spawn_blocking(move || run_command_blocking(&argv, timeout, &line))
        .await
        .unwrap_or_else(|join| {
            Err(WitnessError::Spawn {
                program: "audit head command".into(),
                source: std::io::Error::other(join),
            })
        })
}

fn run_command_blocking(
    argv: &[String],
    timeout: Duration,
    line: &str,
) -> Result<(), WitnessError> {
    /// How often a running command is looked at; heads are rare, so a short poll is cheap.
    const POLL: Duration = Duration::from_millis(5);
    let program = argv[0].clone();
    let spawn_error = |source| WitnessError::Spawn {
        program: program.clone(),
        source,
    };
    let mut child = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .spawn()
        .map_err(spawn_error)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input fails by its status, not here; the line
        // is far below a pipe's buffer, so this write cannot block.
        let _ = stdin.write_all(line.as_bytes());
    }
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match child.try_wait().map_err(spawn_error)? {
            Some(status) if status.success() => return Ok(()),
            Some(status) => return Err(WitnessError::Failed { program, status }),
            None if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(WitnessError::Timeout { program, timeout });
            }
            None => std::thread::sleep(POLL),
        }
    }
}

/// The heads witnessed in `text`, by sequence number. Lines without a head are skipped
/// (a syslog file holds other lines too); two different hashes for one sequence number
/// is an error, since only a rewritten chain would be witnessed twice differently.
pub fn parse_heads(text: &str) -> Result<BTreeMap<u64, String>, String> {
    let mut heads = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.len() > MAX_LINE {
            return Err(format!("line {} is longer than {MAX_LINE} bytes", n + 1));
        }
        let Some(at) = line.find("audit-head ") else {
            continue;
        };
        let fields = &line[at + "audit-head ".len()..];
        let field = |name: &str| {
            fields
                .split_whitespace()
                .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
        };
        let seq = field("seq").and_then(|s| s.parse::<u64>().ok());
        let hash =
            field("hash").filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        let (Some(seq), Some(hash)) = (seq, hash) else {
            return Err(format!("line {}: a malformed audit head", n + 1));
        };
        let hash = hash.to_ascii_lowercase();
        if let Some(other) = heads.insert(seq, hash.clone())
            && other != hash
        {
            return Err(format!(
                "record #{seq} was witnessed with two different hashes"
            ));
        }
    }
    Ok(heads)
}

/// Reads a witness file back.
pub fn read_heads(path: &Path) -> Result<BTreeMap<u64, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_heads(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// What checking a chain against its witnessed heads found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witnessing {
    /// Heads that matched a record still in the chain (or its anchor).
    pub matched: usize,
    /// Heads of records pruned since, which cannot be checked any more.
    pub pruned: usize,
    /// Records newer than the newest witnessed head (appended while witnessing failed,
    /// or while it was not configured).
    pub unwitnessed: u64,
}

/// Checks the chain's record hashes (`hashes`: sequence number to hex hash of every record
/// still stored, its `anchor` if pruned) against `heads`. A head whose record has another
/// hash means the chain was rewritten; a head past the chain's end means records were
/// removed from its end.
pub fn check(
    heads: &BTreeMap<u64, String>,
    anchor: Option<&Anchor>,
    hashes: &BTreeMap<u64, String>,
) -> Result<Witnessing, String> {
    let last = hashes
        .keys()
        .next_back()
        .copied()
        .or(anchor.map(|a| a.seq))
        .unwrap_or(0);
    let mut found = Witnessing {
        matched: 0,
        pruned: 0,
        unwitnessed: 0,
    };
    for (seq, hash) in heads {
        if *seq > last {
            return Err(format!(
                "record #{seq} was witnessed but the chain ends at #{last} (records were removed from its end)"
            ));
        }
        let stored = match anchor {
            Some(a) if a.seq == *seq => Some(&a.hash),
            Some(a) if a.seq > *seq => {
                found.pruned += 1;
                continue;
            }
            _ => hashes.get(seq),
        };
        match stored {
            Some(stored) if stored == hash => found.matched += 1,
            Some(_) => {
                return Err(format!(
                    "record #{seq} is not the record that was witnessed (the chain was rewritten)"
                ));
            }
            None => return Err(format!("record #{seq} was witnessed but is missing")),
        }
    }
    let newest = heads.keys().next_back().copied().unwrap_or(0);
    found.unwitnessed = last.saturating_sub(newest);
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u64) -> String {
        hash_hex(n.to_string().as_bytes())
    }

    fn chain(range: std::ops::RangeInclusive<u64>) -> BTreeMap<u64, String> {
        range.map(|n| (n, h(n))).collect()
    }

    #[test]
    fn head_lines_read_back_also_inside_syslog_lines() {
        let text = format!(
            "{}Dec  2 16:00:00 mx reclaim-audit: {}unrelated line\n",
            Head { seq: 1, hash: h(1) }.line(10, "mx1"),
            Head { seq: 2, hash: h(2) }.line(11, "mx2"),
        );
        let heads = parse_heads(&text).expect("parses");
        assert_eq!(heads.len(), 2);
        assert_eq!(heads[&2], h(2));
        assert!(parse_heads("audit-head seq=x hash=00\n").is_err());
        let twice = format!(
            "audit-head seq=1 hash={}\naudit-head seq=1 hash={}\n",
            h(1),
            h(2)
        );
        assert!(parse_heads(&twice).unwrap_err().contains("two different"));
        assert!(parse_heads(&"a".repeat(MAX_LINE + 1)).is_err());
    }

    #[test]
    fn an_intact_chain_matches_its_heads() {
        let heads = chain(1..=3);
        let got = check(&heads, None, &chain(1..=5)).expect("intact");
        assert_eq!(
            got,
            Witnessing {
                matched: 3,
                pruned: 0,
                unwitnessed: 2
            }
        );
        // After pruning #1-#2, #2 is the anchor and #1 cannot be checked.
        let anchor = Anchor { seq: 2, hash: h(2) };
        let got = check(&heads, Some(&anchor), &chain(3..=5)).expect("intact");
        assert_eq!((got.matched, got.pruned), (2, 1));
    }

    #[test]
    fn a_rewritten_or_shortened_chain_is_caught() {
        let heads = chain(1..=4);
        let mut rewritten = chain(1..=4);
        rewritten.insert(3, h(33));
        assert!(
            check(&heads, None, &rewritten)
                .unwrap_err()
                .contains("rewritten")
        );
        assert!(
            check(&heads, None, &chain(1..=3))
                .unwrap_err()
                .contains("removed from its end")
        );
        let forged_anchor = Anchor {
            seq: 2,
            hash: h(22),
        };
        assert!(check(&heads, Some(&forged_anchor), &chain(3..=4)).is_err());
        let mut holed = chain(1..=4);
        holed.remove(&2);
        assert!(check(&heads, None, &holed).unwrap_err().contains("missing"));
    }
}
