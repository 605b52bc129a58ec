//! DuckDB as a peer engine: `peers/duckdb_worker.py` (compiled into the binary, written to a
//! temporary file) runs in the repository's `.venv` and answers JSON lines over a pipe. The
//! worker times each query itself, so pipe and JSON costs stay out of the numbers. Also the
//! source of the 99 TPC-DS query texts, and home of the virtualenv set-up the runner needs.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::compare::Rows;

const WORKER: &str = include_str!("../peers/duckdb_worker.py");
const REQUIREMENTS: &str = include_str!("../peers/requirements.txt");

/// The Python virtualenv the peers and generators run from (`<repo>/.venv`).
#[derive(Debug, Clone)]
pub struct Venv {
    root: PathBuf,
}

impl Venv {
    /// Uses `root` (normally `<repo>/.venv`, which `scripts/setup.sh` also makes), creating it
    /// and installing `peers/requirements.txt` when DuckDB, its TPC-DS extension or
    /// `tpcgen-cli` is missing.
    pub fn ensure(root: &Path) -> anyhow::Result<Self> {
        let venv = Self {
            root: root.to_owned(),
        };
        if venv.ready() {
            return Ok(venv);
        }
        if !venv.python().is_file() {
            eprintln!("[bench] creating virtualenv {}", root.display());
            run(Command::new("python3").arg("-m").arg("venv").arg(root))?;
        }
        let requirements = tempfile::NamedTempFile::new().context("write requirements file")?;
        std::fs::write(requirements.path(), REQUIREMENTS).context("write requirements file")?;
        eprintln!(
            "[bench] installing DuckDB and tpcgen-cli into {}",
            root.display()
        );
        run(Command::new(venv.python())
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(requirements.path()))?;
        if !venv.ready() {
            bail!(
                "{} still lacks duckdb or tpcgen-cli after pip install",
                root.display()
            );
        }
        Ok(venv)
    }

    fn ready(&self) -> bool {
        self.tool("tpcgen-cli").is_file()
            && Command::new(self.python())
                .args([
                    "-c",
                    "import duckdb, duckdb_extensions, duckdb_extension_tpcds",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
    }

    pub fn python(&self) -> PathBuf {
        self.tool("python")
    }

    /// An executable installed into the virtualenv's `bin/`.
    pub fn tool(&self, name: &str) -> PathBuf {
        self.root.join("bin").join(name)
    }
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("run {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

/// What one query did on a peer.
#[derive(Debug, Clone)]
pub struct PeerRun {
    pub ms: f64,
    pub row_count: usize,
    /// The rows as text, when asked to keep them.
    pub rows: Option<Rows>,
}

/// The running worker process.
pub struct DuckDbPeer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    _script: tempfile::NamedTempFile,
}

impl DuckDbPeer {
    /// Starts the worker with `threads` threads and a view per `(name, parquet path)`.
    pub fn start(
        venv: &Venv,
        threads: usize,
        tables: &[(String, PathBuf)],
    ) -> anyhow::Result<Self> {
        let script = tempfile::Builder::new()
            .prefix("duckdb_worker")
            .suffix(".py")
            .tempfile()
            .context("write the DuckDB worker script")?;
        std::fs::write(script.path(), WORKER).context("write the DuckDB worker script")?;
        let mut child = Command::new(venv.python())
            .arg(script.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("start the DuckDB worker")?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            bail!("DuckDB worker has no pipes");
        };
        let mut peer = Self {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            _script: script,
        };
        let tables: Vec<Value> = tables
            .iter()
            .map(|(name, path)| json!([name, path.display().to_string()]))
            .collect();
        peer.request(&json!({"op": "setup", "threads": threads, "tables": tables}))?;
        Ok(peer)
    }

    pub fn version(&mut self) -> anyhow::Result<String> {
        let response = self.request(&json!({"op": "version"}))?;
        Ok(response["version"].as_str().unwrap_or("unknown").to_owned())
    }

    /// The 99 TPC-DS query texts of DuckDB's TPC-DS extension, as `(number, text)`.
    pub fn tpcds_queries(&mut self) -> anyhow::Result<Vec<(u32, String)>> {
        let response = self.request(&json!({"op": "tpcds_queries"}))?;
        let Some(list) = response["queries"].as_array() else {
            bail!("DuckDB worker sent no query list");
        };
        list.iter()
            .map(|item| {
                let number = item[0].as_u64().and_then(|n| u32::try_from(n).ok());
                match (number, item[1].as_str()) {
                    (Some(number), Some(text)) => Ok((number, text.to_owned())),
                    _ => bail!("malformed TPC-DS query entry {item}"),
                }
            })
            .collect()
    }

    /// Runs a statement, untimed.
    pub fn exec(&mut self, sql: &str) -> anyhow::Result<()> {
        self.request(&json!({"op": "exec", "sql": sql})).map(drop)
    }

    /// Runs a query, timed by the worker; `keep` returns its rows for checking.
    pub fn query(&mut self, sql: &str, keep: bool) -> anyhow::Result<PeerRun> {
        let response = self.request(&json!({"op": "query", "sql": sql, "keep": keep}))?;
        let ms = response["ms"]
            .as_f64()
            .context("DuckDB worker sent no time")?;
        let row_count = response["row_count"]
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0);
        let rows = match response.get("rows") {
            Some(Value::Array(rows)) => Some(
                rows.iter()
                    .map(|row| {
                        row.as_array()
                            .map(|cells| {
                                cells
                                    .iter()
                                    .map(|cell| cell.as_str().map(str::to_owned))
                                    .collect()
                            })
                            .unwrap_or_default()
                    })
                    .collect(),
            ),
            _ => None,
        };
        Ok(PeerRun {
            ms,
            row_count,
            rows,
        })
    }

    fn request(&mut self, request: &Value) -> anyhow::Result<Value> {
        writeln!(self.stdin, "{request}").context("send to the DuckDB worker")?;
        self.stdin.flush().context("send to the DuckDB worker")?;
        let mut line = String::new();
        let read = self
            .stdout
            .read_line(&mut line)
            .context("read from the DuckDB worker")?;
        if read == 0 {
            bail!("the DuckDB worker exited");
        }
        let response: Value =
            serde_json::from_str(&line).context("parse the DuckDB worker's answer")?;
        if response["ok"].as_bool() != Some(true) {
            bail!(
                "{}",
                response["error"].as_str().unwrap_or("DuckDB worker failed")
            );
        }
        Ok(response)
    }

    /// The worker's peak resident set (VmHWM), when it is still running.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for DuckDbPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
