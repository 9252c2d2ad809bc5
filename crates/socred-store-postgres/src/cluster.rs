//! A throwaway PostgreSQL cluster started from the server binaries, for
//! tests and benchmarks (feature `cluster`): `initdb` into a temporary
//! directory, trust authentication for user `postgres`, listening on
//! 127.0.0.1 on a free port with its socket in that directory, fsync on
//! (as in production: the tests and benchmarks measure durable writes).
//!
//! The binaries are found through `SOCRED_PG_BIN` (a directory), then
//! `PATH`, then `/usr/lib/postgresql/*/bin` (newest version first);
//! `scripts/ensure-postgres` installs them. PostgreSQL refuses to run as
//! root, so as root the cluster runs as the `postgres` user.
//!
//! A cluster stops when dropped; a watchdog process also stops it and
//! removes its directory when the process that started it exits, because
//! a cluster kept in a `static` is never dropped.

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

/// The directory holding `initdb`, `pg_ctl` and `postgres`, if installed.
pub fn find_binaries() -> Option<PathBuf> {
    let complete = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|name| dir.join(name).is_file())
    };
    if let Some(dir) = std::env::var_os("SOCRED_PG_BIN").map(PathBuf::from) {
        if complete(&dir) {
            return Some(dir);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            // Follow a symlink to the real directory, where the other
            // binaries are (Debian links only some into PATH).
            let Ok(initdb) = dir.join("initdb").canonicalize() else {
                continue;
            };
            if let Some(real) = initdb.parent() {
                if complete(real) {
                    return Some(real.to_path_buf());
                }
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort();
    versions
        .into_iter()
        .rev()
        .map(|(_, dir)| dir)
        .find(|dir| complete(dir))
}

/// The uid and gid of `user`, from /etc/passwd.
fn user_ids(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        match fields.as_slice() {
            [name, _, uid, gid, ..] if *name == user => {
                Some((uid.parse().ok()?, gid.parse().ok()?))
            }
            _ => None,
        }
    })
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

/// A free TCP port on 127.0.0.1 (free when asked; taken by the cluster
/// right after).
fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port on 127.0.0.1: {e}"))?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

/// A running throwaway cluster.
#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    dir: TempDir,
    port: u16,
    /// The user the server runs as, when not the current one.
    run_as: Option<&'static str>,
}

impl Cluster {
    /// Creates and starts a cluster. The error says what is missing or
    /// what failed, with the server's log when it did not start.
    pub fn start() -> Result<Cluster, String> {
        let bin = find_binaries().ok_or(
            "the PostgreSQL server binaries (initdb, pg_ctl, postgres) are not installed: run \
             scripts/ensure-postgres, or set SOCRED_PG_BIN to their directory",
        )?;
        let dir = tempfile::Builder::new()
            .prefix("socred-pg-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let run_as = if running_as_root() {
            let (uid, gid) = user_ids("postgres").ok_or(
                "running as root, and PostgreSQL refuses root: there is no `postgres` user to run it as",
            )?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .map_err(|e| format!("cannot give {} to postgres: {e}", dir.path().display()))?;
            Some("postgres")
        } else {
            None
        };
        let cluster = Cluster {
            bin,
            dir,
            port: free_port()?,
            run_as,
        };
        let data = cluster.data_dir();
        cluster.tool(
            "initdb",
            &[
                "-D",
                &data,
                "--auth=trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                // Only initdb's own final sync is skipped: the server runs
                // with fsync on.
                "--no-sync",
            ],
        )?;
        cluster.watch();
        cluster.start_again()?;
        Ok(cluster)
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The command running `tool` as the cluster's user.
    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        match self.run_as {
            Some(user) => {
                let runuser = ["/usr/sbin/runuser", "/sbin/runuser"]
                    .into_iter()
                    .find(|path| Path::new(path).is_file())
                    .unwrap_or("runuser");
                let mut command = Command::new(runuser);
                command.args(["-u", user, "--"]).arg(path);
                command
            }
            None => Command::new(path),
        }
    }

    fn tool(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let output = self
            .command(tool)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| match self.run_as {
                Some(user) => format!("cannot run {tool} as {user} with runuser: {e}"),
                None => format!("cannot run {tool}: {e}"),
            })?;
        if output.status.success() {
            return Ok(());
        }
        let log = std::fs::read_to_string(self.log_file()).unwrap_or_default();
        Err(format!(
            "{tool} failed ({}): {}{}\n{log}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }

    /// Starts a watchdog that stops the cluster and removes its directory
    /// once this process has exited.
    fn watch(&self) {
        let pg_ctl = self.bin.join("pg_ctl").display().to_string();
        let run_as = self
            .run_as
            .map_or(String::new(), |user| format!("runuser -u {user} -- "));
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             {run_as}'{pg_ctl}' -D '{data}' stop -m immediate >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            data = self.data_dir(),
            dir = self.dir.path().display(),
        );
        // Not waited for: it outlives this process on purpose.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }

    /// Starts the server (again, after [`Cluster::stop`]) on the same port.
    pub fn start_again(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on",
            self.port,
            self.dir.path().display()
        );
        let log = self.log_file().display().to_string();
        self.tool(
            "pg_ctl",
            &[
                "-D",
                &self.data_dir(),
                "-l",
                &log,
                "-w",
                "-t",
                "60",
                "-o",
                &options,
                "start",
            ],
        )
    }

    /// Stops the server, ending every connection at once (`-m fast`).
    pub fn stop(&self) -> Result<(), String> {
        self.tool(
            "pg_ctl",
            &[
                "-D",
                &self.data_dir(),
                "-w",
                "-t",
                "60",
                "-m",
                "fast",
                "stop",
            ],
        )
    }

    /// Stops the server as a crash would (`-m immediate`): every process
    /// exits at once, nothing is cleaned up, the next start recovers from
    /// the write-ahead log.
    pub fn kill(&self) -> Result<(), String> {
        self.tool(
            "pg_ctl",
            &[
                "-D",
                &self.data_dir(),
                "-w",
                "-t",
                "60",
                "-m",
                "immediate",
                "stop",
            ],
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection string for `database`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Turns TLS on with `cert_pem` and `key_pem` (the server's
    /// certificate and key): written into the data directory as
    /// `server.crt` and `server.key`, then `ssl = on` and a reload. Returns
    /// once a new connection sees `ssl` on.
    pub async fn enable_tls(&self, cert_pem: &str, key_pem: &str) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt as _;
        let data = self.dir.path().join("data");
        for (name, text) in [("server.crt", cert_pem), ("server.key", key_pem)] {
            let path = data.join(name);
            std::fs::write(&path, text)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            // The server refuses a key that others may read.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| format!("cannot restrict {}: {e}", path.display()))?;
            if let Some(user) = self.run_as {
                let (uid, gid) = user_ids(user).ok_or(format!("no user `{user}`"))?;
                std::os::unix::fs::chown(&path, Some(uid), Some(gid))
                    .map_err(|e| format!("cannot give {} to {user}: {e}", path.display()))?;
            }
        }
        for sql in ["ALTER SYSTEM SET ssl = on", "SELECT pg_reload_conf()"] {
            self.admin(sql).await?;
        }
        for _ in 0..100 {
            if self.admin("SHOW ssl").await?.as_deref() == Some("on") {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Err(format!(
            "the server did not turn TLS on; its log: {}",
            self.log_file().display()
        ))
    }

    /// Runs one statement on database `postgres` over a plain connection;
    /// returns the first column of its first row, if any.
    pub async fn admin(&self, sql: &str) -> Result<Option<String>, String> {
        self.admin_in("postgres", sql).await
    }

    /// Runs one statement on `database`, as [`Cluster::admin`] does.
    pub async fn admin_in(&self, database: &str, sql: &str) -> Result<Option<String>, String> {
        let (client, connection) =
            tokio_postgres::connect(&self.url(database), tokio_postgres::NoTls)
                .await
                .map_err(|e| format!("cannot connect to the throwaway cluster: {e}"))?;
        let connection = tokio::spawn(connection);
        let result = client
            .simple_query(sql)
            .await
            .map_err(|e| format!("`{sql}` failed: {}", crate::pool::describe(&e)));
        drop(client);
        let _ = connection.await;
        Ok(result?.iter().find_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        }))
    }

    /// Creates an empty database; returns its connection string.
    pub async fn create_database(&self, name: &str) -> Result<String, String> {
        self.admin(&format!("CREATE DATABASE \"{name}\""))
            .await
            .map_err(|e| format!("cannot create database {name}: {e}"))?;
        Ok(self.url(name))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D", &self.data_dir(), "-m", "immediate", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
