//! A throwaway PostgreSQL cluster for tests: Debian's server binaries, a data directory in
//! a temp folder, listening on 127.0.0.1 at a free port, stopped (immediately) when the
//! test ends. `initdb` refuses to run as root, so as root the cluster runs as `postgres`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian's `postgresql` package puts the server binaries.
const BIN: &str = "/usr/lib/postgresql/15/bin";

/// A running test cluster; stopped when dropped.
pub struct Postgres {
    dir: tempfile::TempDir,
    pub port: u16,
    as_postgres: bool,
}

/// Whether the server binaries are installed. Tests skip without them locally; in CI
/// (`.ci/run` installs `postgresql`) their absence fails the test.
pub fn available() -> bool {
    let found = Path::new(BIN).join("initdb").exists();
    assert!(
        found || std::env::var_os("CI").is_none(),
        "PostgreSQL 15 is missing; .ci/run installs the postgresql package"
    );
    found
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

impl Postgres {
    /// Creates and starts a cluster with `extra` lines for `postgresql.conf`.
    pub fn start_with(extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let as_postgres = is_root();
        if as_postgres {
            chown_to_postgres(dir.path());
        }
        let pg = Self {
            dir,
            port: super::process::free_port(),
            as_postgres,
        };
        let data = pg.data();
        pg.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ],
        );
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .expect("postgresql.conf");
        std::io::Write::write_all(
            &mut conf,
            format!(
                "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\nmax_connections = 300\n{extra}\n",
                pg.port,
                path_str(&data)
            )
            .as_bytes(),
        )
        .expect("write postgresql.conf");
        pg.start();
        pg
    }

    /// Creates and starts a streaming standby of `primary` (from `pg_basebackup -R`), on a
    /// port of its own. With `synchronous_standby_names` set on the primary, a commit
    /// there returns only once this standby has the commit record.
    pub fn standby_of(primary: &Postgres) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let as_postgres = is_root();
        if as_postgres {
            chown_to_postgres(dir.path());
        }
        let standby = Self {
            dir,
            port: super::process::free_port(),
            as_postgres,
        };
        let data = standby.data();
        let primary_port = primary.port.to_string();
        standby.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &primary_port,
                "-U",
                "postgres",
                "-D",
                path_str(&data),
                "-R",
                "--no-sync",
            ],
        );
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .expect("postgresql.conf");
        std::io::Write::write_all(
            &mut conf,
            format!(
                "port = {}
unix_socket_directories = '{}'
",
                standby.port,
                path_str(&data)
            )
            .as_bytes(),
        )
        .expect("write postgresql.conf");
        standby.start();
        standby
    }

    /// Promotes a standby to primary and waits until it takes writes.
    pub fn promote(&self) {
        let data = self.data();
        self.run("pg_ctl", &["-D", path_str(&data), "-w", "promote"]);
    }

    /// Creates and starts a cluster with the default settings.
    pub fn start_new() -> Self {
        Self::start_with("")
    }

    /// The data directory.
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A connection string for `[store] url`.
    pub fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    /// `[store]` lines that put a gateway on this cluster.
    pub fn store_lines(&self) -> String {
        format!(
            "backend = \"postgres\"\nurl = \"{}\"\ndb_timeout = \"3s\"\n",
            self.url()
        )
    }

    /// Starts the (stopped) server and waits until it accepts connections.
    pub fn start(&self) {
        let data = self.data();
        let log = self.dir.path().join("server.log");
        self.run(
            "pg_ctl",
            &["-D", path_str(&data), "-l", path_str(&log), "-w", "start"],
        );
    }

    /// Stops the server at once, as a crash would: clients are cut off mid-statement.
    pub fn stop_now(&self) {
        let data = self.data();
        self.run(
            "pg_ctl",
            &["-D", path_str(&data), "-m", "immediate", "-w", "stop"],
        );
    }

    /// Holds an exclusive lock on `table` from another session for `seconds` (end it with
    /// `pg_terminate_backend`). Returns once the lock is granted.
    pub fn hold_lock(&self, table: &str, seconds: u32) -> std::process::Child {
        let port = self.port.to_string();
        let sql = format!(
            "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep({seconds}); COMMIT;"
        );
        let mut child = self
            .command("psql")
            .args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-c", &sql])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("psql");
        let granted = format!(
            "SELECT count(*) FROM pg_locks WHERE relation = '{table}'::regclass \
             AND mode = 'AccessExclusiveLock' AND granted"
        );
        for _ in 0..200 {
            if self.psql(&granted).trim() == "1" {
                return child;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the lock on {table} was never granted");
    }

    /// Runs SQL through `psql` and returns its unaligned output.
    pub fn psql(&self, sql: &str) -> String {
        let port = self.port.to_string();
        let out = self
            .command("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-At",
                "-c",
                sql,
            ])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8")
    }

    fn command(&self, tool: &str) -> Command {
        let program = format!("{BIN}/{tool}");
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", &program]);
            c
        } else {
            Command::new(program)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self.command(tool).args(args).output().expect(tool);
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args(["-D", path_str(&data), "-m", "immediate", "stop"])
            .output();
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

fn chown_to_postgres(dir: &Path) {
    let status = Command::new("chown")
        .args(["postgres:postgres", path_str(dir)])
        .status()
        .expect("chown");
    assert!(status.success(), "chown {}", dir.display());
}
