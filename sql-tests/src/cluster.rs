//! A Basin cluster started as a child process (`basin standalone`, with 0..N executor processes)
//! on free loopback ports with a temporary data directory, restartable on the same data directory gracefully (SIGTERM) or with
//! `kill -9`, and killed when dropped.
//!
//! Clients do not hold the port: they hold a [`watch::Receiver`] of the connection settings, which
//! changes on every (re)start, so a [`crate::PgDb`] reconnects by itself after a restart.

use std::env;
use std::fs::{self, File};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::sync::watch;
use tokio_postgres::{Config, NoTls};

use crate::{Error, Result};

/// How long a (re)started server may take to answer `SELECT 1`; override with
/// `BASIN_TEST_STARTUP_TIMEOUT_SECS`. Debug builds on two cores are slow to start.
const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a graceful shutdown may take after SIGTERM before it counts as hung.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts to start when a port picked as free was taken before the server bound it.
const START_ATTEMPTS: usize = 3;
/// Server log filter unless `RUST_LOG` is set: Basin's own crates at info, dependencies quieter.
const DEFAULT_SERVER_LOG: &str =
    "warn,basin=info,basin_coordinator=info,basin_catalog=info,basin_executor=info";
/// Lines of the server log shown when something fails.
const LOG_TAIL_LINES: usize = 60;

/// One running Basin cluster. See the module docs.
pub struct BasinCluster {
    binary: PathBuf,
    /// Executor processes next to the coordinator (`--executors`); 0 runs queries in-process.
    executors: u32,
    /// Holds `data/` (kept across restarts) and one log file per start.
    root: TempDir,
    process: Option<ServerProcess>,
    /// Log of the most recent start, kept after the process is gone for post-mortems.
    last_log: Option<PathBuf>,
    starts: u32,
    endpoint: watch::Sender<Config>,
    /// Working directory of the server process, against which relative paths in SQL resolve.
    current_dir: Option<PathBuf>,
}

struct ServerProcess {
    child: Child,
    pg_port: u16,
}

/// How to stop the running server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM to the server, which must exit within [`SHUTDOWN_TIMEOUT`].
    Graceful,
    /// SIGKILL to the server's whole process group: a crash, nothing gets flushed.
    Kill9,
}

impl BasinCluster {
    /// Starts `binary standalone --executors <executors>` on a fresh temporary data directory and
    /// waits until it answers `SELECT 1` over pgwire.
    pub async fn start(binary: PathBuf, executors: u32) -> Result<Self> {
        Self::start_in(binary, executors, None).await
    }

    /// Like [`Self::start`], with the server's working directory set to `current_dir`, so that
    /// relative file paths in SQL (`LOCATION 'data/x.csv'`) resolve there.
    pub async fn start_in(
        binary: PathBuf,
        executors: u32,
        current_dir: Option<PathBuf>,
    ) -> Result<Self> {
        let root = tempfile::Builder::new()
            .prefix("basin-test-")
            .tempdir()
            .map_err(|err| Error::context("create temporary directory for basin", err))?;
        fs::create_dir_all(root.path().join("data"))
            .map_err(|err| Error::context("create basin data directory", err))?;
        let (endpoint, _) = watch::channel(Config::new());
        let mut cluster = Self {
            binary,
            executors,
            root,
            process: None,
            last_log: None,
            starts: 0,
            endpoint,
            current_dir,
        };
        cluster.launch().await?;
        Ok(cluster)
    }

    /// Connection settings of the current server; changes whenever the server restarts.
    pub fn endpoint(&self) -> watch::Receiver<Config> {
        self.endpoint.subscribe()
    }

    /// The pgwire port of the running server, if one is running.
    pub fn pg_port(&self) -> Option<u16> {
        self.process.as_ref().map(|process| process.pg_port)
    }

    /// The data directory that survives restarts.
    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// Stops the server as `how` says, then starts it again on the same data directory.
    pub async fn restart(&mut self, how: Stop) -> Result<()> {
        self.stop(how).await?;
        self.launch().await
    }

    /// Stops the server as `how` says. A graceful stop that does not finish in time is an error
    /// (the server is then killed).
    pub async fn stop(&mut self, how: Stop) -> Result<()> {
        let Some(mut process) = self.process.take() else {
            return Ok(());
        };
        let pid = process.child.id();
        match how {
            Stop::Graceful => {
                signal(&format!("{pid}"), "TERM")?;
                let exited = wait_for_exit(&mut process.child, SHUTDOWN_TIMEOUT).await?;
                // Whatever the server left behind in its process group goes too.
                kill_group(pid);
                wait_for_group_exit(pid).await;
                if exited.is_none() {
                    let _ = wait_for_exit(&mut process.child, SHUTDOWN_TIMEOUT).await;
                    return Err(self.failure(format!(
                        "basin did not exit within {}s of SIGTERM",
                        SHUTDOWN_TIMEOUT.as_secs()
                    )));
                }
                Ok(())
            }
            Stop::Kill9 => {
                kill_group(pid);
                let exited = wait_for_exit(&mut process.child, SHUTDOWN_TIMEOUT).await?;
                wait_for_group_exit(pid).await;
                match exited {
                    Some(_) => Ok(()),
                    None => Err(self.failure("basin survived SIGKILL")),
                }
            }
        }
    }

    /// The last lines of the current (or most recent) server log, headed by its path.
    pub fn log_tail(&self) -> String {
        match &self.last_log {
            Some(path) => log_tail(path, LOG_TAIL_LINES),
            None => String::new(),
        }
    }

    fn failure(&self, message: impl Into<String>) -> Error {
        Error::new(message).with_appendix(&self.log_tail())
    }

    async fn launch(&mut self) -> Result<()> {
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match self.launch_once().await {
                Ok(()) => return Ok(()),
                Err(LaunchError::PortTaken(err)) => last_error = Some(err),
                Err(LaunchError::Fatal(err)) => return Err(err),
            }
        }
        Err(last_error.unwrap_or_else(|| Error::new("basin did not start")))
    }

    async fn launch_once(&mut self) -> Result<(), LaunchError> {
        let [pg_port, http_port, control_port] = free_ports().map_err(LaunchError::Fatal)?;
        self.starts += 1;
        let log_path = self.root.path().join(format!("basin-{}.log", self.starts));
        let log = File::create(&log_path)
            .and_then(|log| Ok((log.try_clone()?, log)))
            .map_err(|err| LaunchError::Fatal(Error::context("create basin log file", err)))?;
        self.last_log = Some(log_path.clone());

        let mut command = Command::new(&self.binary);
        command
            .arg("standalone")
            .arg("--pg-listen")
            .arg(format!("127.0.0.1:{pg_port}"))
            .arg("--http-listen")
            .arg(format!("127.0.0.1:{http_port}"))
            .arg("--control-listen")
            .arg(format!("127.0.0.1:{control_port}"))
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--executors")
            .arg(self.executors.to_string())
            // Distribute every query that reads files, in small pieces, so the small test data
            // runs through stages, shuffles and several tasks per executor.
            .arg("--distribute-min-bytes")
            .arg("0")
            .arg("--scan-bytes-per-partition")
            .arg("64KiB")
            .stdin(Stdio::null())
            .stdout(log.0)
            .stderr(log.1)
            // Its own process group, so kill -9 takes any helper processes with it.
            .process_group(0);
        if let Some(dir) = &self.current_dir {
            command.current_dir(dir);
        }
        if env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", DEFAULT_SERVER_LOG);
        }
        // Plain text in the log file, which failures quote.
        command.env("NO_COLOR", "1");
        let child = command.spawn().map_err(|err| {
            LaunchError::Fatal(Error::context(
                format_args!("start {}", self.binary.display()),
                err,
            ))
        })?;
        let mut process = ServerProcess { child, pg_port };

        let config = client_config(pg_port);
        match wait_until_ready(
            &mut process.child,
            &config,
            self.executors,
            startup_timeout(),
        )
        .await
        {
            Ok(()) => {
                self.process = Some(process);
                self.endpoint.send_replace(config);
                Ok(())
            }
            Err(err) => {
                kill_group(process.child.id());
                let _ = wait_for_exit(&mut process.child, SHUTDOWN_TIMEOUT).await;
                let tail = log_tail(&log_path, LOG_TAIL_LINES);
                let err = Error::new(err).with_appendix(&tail);
                if tail.to_ascii_lowercase().contains("address already in use") {
                    Err(LaunchError::PortTaken(err))
                } else {
                    Err(LaunchError::Fatal(err))
                }
            }
        }
    }
}

impl Drop for BasinCluster {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            kill_group(process.child.id());
            let _ = process.child.wait();
        }
    }
}

enum LaunchError {
    PortTaken(Error),
    Fatal(Error),
}

/// Settings for a client of the server on `port`: trust auth on loopback, any user, database
/// `basin`.
pub fn client_config(port: u16) -> Config {
    let mut config = Config::new();
    config
        .host("127.0.0.1")
        .port(port)
        .user("basin")
        .dbname("basin")
        .application_name("basin-sql-tests")
        .connect_timeout(Duration::from_secs(10));
    config
}

fn startup_timeout() -> Duration {
    env::var("BASIN_TEST_STARTUP_TIMEOUT_SECS")
        .ok()
        .and_then(|secs| secs.parse().ok())
        .map_or(DEFAULT_STARTUP_TIMEOUT, Duration::from_secs)
}

/// Three distinct free loopback ports. Held open together so they differ, then released for the
/// server; another process may grab one in between, which [`BasinCluster::launch`] retries.
fn free_ports() -> Result<[u16; 3]> {
    let listeners = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|err| Error::context("find a free port", err))?;
    let mut ports = [0; 3];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener
            .local_addr()
            .map_err(|err| Error::context("find a free port", err))?
            .port();
    }
    Ok(ports)
}

/// Polls until the server answers `SELECT 1`, failing early if it exits.
/// Waits until basin answers queries and all `executors` are live.
async fn wait_until_ready(
    child: &mut Child,
    config: &Config,
    executors: u32,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|err| format!("wait for basin: {err}"))?
        {
            return Err(format!("basin exited during startup with {status}"));
        }
        let last_error = match probe(config, executors).await {
            Ok(()) => return Ok(()),
            Err(err) => err,
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "basin was not ready within {}s: {last_error}",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn probe(config: &Config, executors: u32) -> Result<(), String> {
    let attempt = async {
        let (client, connection) = config.connect(NoTls).await.map_err(|e| e.to_string())?;
        let connection = tokio::spawn(connection);
        let result = client
            .query_one(
                "SELECT count(*) FROM basin.executors WHERE state = 'live'",
                &[],
            )
            .await
            .map_err(|e| e.to_string())
            .and_then(|row| {
                let live: i64 = row.try_get(0).map_err(|e| e.to_string())?;
                if live == i64::from(executors) {
                    Ok(())
                } else {
                    Err(format!("{live} of {executors} executors live"))
                }
            });
        drop(client);
        let _ = connection.await;
        result
    };
    tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .map_err(|_| "readiness query timed out".to_string())?
}

async fn wait_for_exit(child: &mut Child, timeout: Duration) -> Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|err| Error::context("wait for basin", err))?
        {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends `signal` to `target` (a pid, or `-pgid` for a process group) with kill(1), as the
/// workspace forbids the `unsafe` a direct kill(2) would need.
fn signal(target: &str, signal: &str) -> Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(target)
        .stderr(Stdio::null())
        .status()
        .map_err(|err| Error::context(format_args!("send SIG{signal} to {target}"), err))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::new(format!(
            "send SIG{signal} to {target}: {status}"
        )))
    }
}

/// Waits (briefly) until no process of the group led by `pid` is left, so a restart does not
/// race helpers of the old server for ports or files.
async fn wait_for_group_exit(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && signal(&format!("-{pid}"), "0").is_ok() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// SIGKILL to the process group led by `pid`; it may already be gone.
fn kill_group(pid: u32) {
    let _ = signal(&format!("-{pid}"), "KILL");
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let tail = &all[all.len().saturating_sub(lines)..];
    format!(
        "--- last {} lines of {} ---\n{}",
        tail.len(),
        path.display(),
        tail.join("\n")
    )
}
