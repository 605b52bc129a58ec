//! The Basin side of a run: a `basin standalone` cluster started on fixed loopback ports with a
//! fresh data directory (or an existing server to connect to), a client that times queries
//! over the Postgres wire, and the peak resident memory (VmHWM) of the coordinator and its
//! executor processes read from `/proc`.

use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use tokio_postgres::{Client, Config, NoTls, SimpleQueryMessage};

use crate::compare::Rows;
use crate::duckdb_peer::PeerRun;

const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Where Basin runs: started here, or already running elsewhere.
pub struct BasinServer {
    pub host: String,
    pub port: u16,
    process: Option<Child>,
    log: Option<PathBuf>,
    _data: Option<tempfile::TempDir>,
}

/// Peak resident memory of one process of the cluster.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessMemory {
    pub role: String,
    pub pid: u32,
    pub peak_rss_kib: u64,
}

impl BasinServer {
    /// Starts `binary standalone` with `executors` executor processes, Postgres on
    /// `127.0.0.1:port` and HTTP/control on the two ports after it, and waits until it answers
    /// and every executor is live.
    pub async fn start(binary: &Path, executors: usize, port: u16) -> anyhow::Result<Self> {
        let data = tempfile::Builder::new()
            .prefix("basin-bench-")
            .tempdir()
            .context("create a data directory for basin")?;
        let log_path = data.path().join("basin.log");
        let log = File::create(&log_path).context("create the basin log")?;
        let log_err = log.try_clone().context("create the basin log")?;
        let child = Command::new(binary)
            .arg("standalone")
            .arg("--pg-listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--http-listen")
            .arg(format!("127.0.0.1:{}", port + 1))
            .arg("--control-listen")
            .arg(format!("127.0.0.1:{}", port + 2))
            .arg("--data-dir")
            .arg(data.path().join("data"))
            .arg("--executors")
            .arg(executors.to_string())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .process_group(0)
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        let mut server = Self {
            host: "127.0.0.1".into(),
            port,
            process: Some(child),
            log: Some(log_path),
            _data: Some(data),
        };
        if let Err(err) = server.wait_ready(executors).await {
            let tail = server.log_tail();
            server.stop().await;
            bail!("{err:#}\n{tail}");
        }
        Ok(server)
    }

    /// A server someone else runs; nothing is started or stopped, no memory is read.
    pub fn connect(address: &str) -> anyhow::Result<Self> {
        let (host, port) = address
            .rsplit_once(':')
            .with_context(|| format!("--connect wants host:port, got {address:?}"))?;
        let port = port
            .parse()
            .with_context(|| format!("bad port in --connect {address:?}"))?;
        Ok(Self {
            host: host.to_owned(),
            port,
            process: None,
            log: None,
            _data: None,
        })
    }

    pub fn config(&self) -> Config {
        let mut config = Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user("basin")
            .dbname("basin")
            .application_name("basin-bench")
            .connect_timeout(Duration::from_secs(10));
        config
    }

    pub async fn client(&self) -> anyhow::Result<BasinClient> {
        BasinClient::connect(&self.config()).await
    }

    async fn wait_ready(&mut self, executors: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(child) = self.process.as_mut()
                && let Some(status) = child.try_wait().context("wait for basin")?
            {
                bail!("basin exited during startup with {status}");
            }
            let error = match self.live_executors().await {
                Ok(live) if live >= executors => return Ok(()),
                Ok(live) => format!("{live} of {executors} executors live"),
                Err(err) => format!("{err:#}"),
            };
            if Instant::now() > deadline {
                bail!("basin was not ready within {STARTUP_TIMEOUT:?}: {error}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn live_executors(&self) -> anyhow::Result<usize> {
        let client = self.client().await?;
        let rows = client
            .rows("SELECT count(*) FROM basin.executors WHERE state = 'live'")
            .await?;
        let live = rows
            .first()
            .and_then(|row| row.first().cloned().flatten())
            .and_then(|text| text.parse().ok())
            .unwrap_or(0);
        Ok(live)
    }

    /// Peak resident memory of the coordinator and of every process it started (the
    /// executors), from `VmHWM` in `/proc/<pid>/status`. Empty for a server not started here.
    pub fn peak_memory(&self) -> Vec<ProcessMemory> {
        let Some(child) = &self.process else {
            return Vec::new();
        };
        let coordinator = child.id();
        let mut out = Vec::new();
        if let Some(kib) = peak_rss_kib(coordinator) {
            out.push(ProcessMemory {
                role: "coordinator".into(),
                pid: coordinator,
                peak_rss_kib: kib,
            });
        }
        for (index, pid) in children_of(coordinator).into_iter().enumerate() {
            if let Some(kib) = peak_rss_kib(pid) {
                out.push(ProcessMemory {
                    role: format!("executor {}", index + 1),
                    pid,
                    peak_rss_kib: kib,
                });
            }
        }
        out
    }

    pub fn coordinator_pid(&self) -> Option<u32> {
        self.process.as_ref().map(Child::id)
    }

    fn log_tail(&self) -> String {
        let Some(path) = &self.log else {
            return String::new();
        };
        let text = fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(40)..];
        format!("--- {} ---\n{}", path.display(), tail.join("\n"))
    }

    /// SIGTERM, then SIGKILL to the process group if it does not exit in time.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.process.take() else {
            return;
        };
        let pid = child.id();
        let _ = signal(&pid.to_string(), "TERM");
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = signal(&format!("-{pid}"), "KILL");
        let _ = child.wait();
    }
}

impl Drop for BasinServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = signal(&format!("-{}", child.id()), "KILL");
            let _ = child.wait();
        }
    }
}

/// kill(1): the workspace forbids the `unsafe` a direct kill(2) needs.
pub(crate) fn signal(target: &str, signal: &str) -> std::io::Result<()> {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(target)
        .stderr(Stdio::null())
        .status()
        .map(drop)
}

/// `VmHWM` of `pid` in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// Live processes whose parent is `parent`, in pid order.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut children: Vec<u32> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    // The command name may hold spaces and parentheses: fields follow the last ')'.
                    let rest = stat.rsplit_once(')')?.1;
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(parent)
        })
        .collect();
    children.sort_unstable();
    children
}

/// One connection to Basin, speaking the simple query protocol so every value arrives as the
/// text Postgres would print.
pub struct BasinClient {
    client: Client,
    connection: tokio::task::JoinHandle<()>,
}

impl BasinClient {
    pub async fn connect(config: &Config) -> anyhow::Result<Self> {
        let (client, connection) = config.connect(NoTls).await.context("connect to basin")?;
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self { client, connection })
    }

    pub async fn exec(&self, sql: &str) -> anyhow::Result<()> {
        self.client.batch_execute(sql).await.map_err(pg_error)
    }

    pub async fn rows(&self, sql: &str) -> anyhow::Result<Rows> {
        let messages = self.client.simple_query(sql).await.map_err(pg_error)?;
        Ok(messages
            .into_iter()
            .filter_map(|message| match message {
                SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_owned))
                        .collect(),
                ),
                _ => None,
            })
            .collect())
    }

    /// Runs a query to its last row, timed around the round trip; `keep` returns the rows.
    pub async fn query(&self, sql: &str, keep: bool) -> anyhow::Result<PeerRun> {
        let started = Instant::now();
        let rows = self.rows(sql).await?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(PeerRun {
            ms,
            row_count: rows.len(),
            rows: keep.then_some(rows),
        })
    }
}

impl Drop for BasinClient {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// The server's message (and SQLSTATE), not tokio-postgres's generic "db error".
pub(crate) fn pg_error(err: tokio_postgres::Error) -> anyhow::Error {
    match err.as_db_error() {
        Some(db) => anyhow::anyhow!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => anyhow::Error::new(err),
    }
}
