//! The benchmark run: prepare the data, start Basin (or connect to it), the DuckDB worker and the
//! in-process DataFusion session, then for each query run its setup, one warm-up and N timed
//! runs interleaved across the engines (Basin, DuckDB, DataFusion, Basin, ...), check Basin's
//! warm-up answer against both peers, and hand the results to [`crate::report`].

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;

use crate::cli::{BenchArgs, Suite};
use crate::cluster::{BasinClient, BasinServer, ProcessMemory, peak_rss_kib};
use crate::compare::{Rows, Verdict, compare};
use crate::datafusion_peer::DataFusionPeer;
use crate::duckdb_peer::{DuckDbPeer, PeerRun, Venv};
use crate::machine::{BuildCost, Machine};
use crate::progress::Progress;
use crate::queries::{self, Query};
use crate::{pgbench, report};

/// The engines, in the order each query runs on them.
pub const ENGINES: [&str; 3] = ["basin", "duckdb", "datafusion"];

/// Everything a run needs, resolved from the command line.
pub struct RunContext {
    pub args: BenchArgs,
    pub repo: PathBuf,
    pub data_dir: PathBuf,
    pub output: PathBuf,
    pub threads: usize,
    pub machine: Machine,
    pub build: Option<BuildCost>,
    pub venv: Venv,
}

/// Entry point of `basin bench` and `basin-benchmarks`.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let repo = repo_root();
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let context = RunContext {
        data_dir: args
            .data_dir
            .clone()
            .unwrap_or_else(|| repo.join("benchmarks").join("data")),
        output: args
            .output
            .clone()
            .unwrap_or_else(|| repo.join("benchmarks").join("results")),
        machine: Machine::describe(&repo),
        build: args.build_log.as_deref().and_then(BuildCost::read),
        venv: Venv::ensure(&args.venv.clone().unwrap_or_else(|| repo.join(".venv")))?,
        threads,
        repo,
        args,
    };
    std::fs::create_dir_all(&context.output)
        .with_context(|| format!("create {}", context.output.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(2))
        .enable_all()
        .build()
        .context("start the Tokio runtime")?;
    runtime.block_on(run_suites(&context))
}

async fn run_suites(context: &RunContext) -> anyhow::Result<()> {
    let started = Instant::now();
    let suites: &[Suite] = match context.args.suite {
        Suite::All => &[Suite::Tpch, Suite::Tpcds, Suite::Pgbench],
        Suite::Tpch => &[Suite::Tpch],
        Suite::Tpcds => &[Suite::Tpcds],
        Suite::Pgbench => &[Suite::Pgbench],
    };
    let mut failures = Vec::new();
    for suite in suites {
        let outcome = match suite {
            Suite::Tpch => run_tpch(context).await,
            Suite::Tpcds => run_tpcds(context).await,
            Suite::Pgbench => pgbench::run(context).await,
            Suite::All => Ok(()),
        };
        if let Err(err) = outcome {
            eprintln!("[bench] {suite:?} failed: {err:#}");
            failures.push(format!("{suite:?}: {err:#}"));
        }
    }
    eprintln!(
        "[bench] done in {:.0}s; reports in {}",
        started.elapsed().as_secs_f64(),
        context.output.display()
    );
    if !failures.is_empty() {
        bail!("{}", failures.join("\n"));
    }
    Ok(())
}

/// The repository the binary was built from, when it is still there; else the working
/// directory.
pub fn repo_root() -> PathBuf {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if built.join("benchmarks").is_dir() {
        built.canonicalize().unwrap_or(built)
    } else {
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
    }
}

pub fn scale_name(scale: f64) -> String {
    format!("sf{scale}")
}

/// `<data>/tpch-sf<scale>/`, generated unless a previous run completed it.
pub fn tpch_data(context: &RunContext) -> anyhow::Result<(Vec<(String, PathBuf)>, f64)> {
    let dir = context
        .data_dir
        .join(format!("tpch-{}", scale_name(context.args.scale)));
    let marker = dir.join("_complete");
    let mut secs = 0.0;
    if !marker.is_file() {
        eprintln!(
            "[bench] generating TPC-H {} into {}",
            scale_name(context.args.scale),
            dir.display()
        );
        let started = Instant::now();
        crate::tpch::generate(context.args.scale, &dir)?;
        secs = started.elapsed().as_secs_f64();
        std::fs::write(&marker, "ok\n").context("mark TPC-H data complete")?;
    }
    let tables = crate::tpch::TABLES
        .iter()
        .map(|t| (t.to_string(), absolute(&dir.join(format!("{t}.parquet")))))
        .collect();
    Ok((tables, secs))
}

/// `<data>/tpcds-sf<scale>/` written by `tpcgen-cli`, unless a previous run completed it.
fn tpcds_data(context: &RunContext) -> anyhow::Result<(Vec<(String, PathBuf)>, f64)> {
    let dir = context
        .data_dir
        .join(format!("tpcds-{}", scale_name(context.args.scale)));
    let marker = dir.join("_complete");
    let mut secs = 0.0;
    if !marker.is_file() {
        eprintln!(
            "[bench] generating TPC-DS {} into {}",
            scale_name(context.args.scale),
            dir.display()
        );
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let started = Instant::now();
        let status = std::process::Command::new(context.venv.tool("tpcgen-cli"))
            .args(["tpcds", "parquet", "-s"])
            .arg(context.args.scale.to_string())
            .arg("-o")
            .arg(&dir)
            .status()
            .context("run tpcgen-cli")?;
        if !status.success() {
            bail!("tpcgen-cli failed with {status}");
        }
        secs = started.elapsed().as_secs_f64();
        std::fs::write(&marker, "ok\n").context("mark TPC-DS data complete")?;
    }
    let mut tables: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .with_context(|| format!("list {}", dir.display()))?
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let name = path.file_stem()?.to_str()?.to_owned();
            (path.extension()? == "parquet" && name != "dbgen_version")
                .then(|| (name, absolute(&path)))
        })
        .collect();
    tables.sort();
    Ok((tables, secs))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

async fn run_tpch(context: &RunContext) -> anyhow::Result<()> {
    let (tables, datagen_secs) = tpch_data(context)?;
    let queries = queries::select(queries::tpch()?, &context.args.queries);
    let result = run_queries(
        context,
        "tpch",
        &tables,
        Source::Fixed(queries),
        context.args.runs,
        datagen_secs,
    )
    .await?;
    report::write_suite(context, &result)
}

async fn run_tpcds(context: &RunContext) -> anyhow::Result<()> {
    let (tables, datagen_secs) = tpcds_data(context)?;
    let runs = context.args.tpcds_runs.unwrap_or(context.args.runs);
    let result = run_queries(context, "tpcds", &tables, Source::Tpcds, runs, datagen_secs).await?;
    report::write_suite(context, &result)
}

enum Source {
    Fixed(Vec<Query>),
    /// DuckDB's 99 TPC-DS texts, filtered by `--tpcds-queries`.
    Tpcds,
}

/// One engine's numbers for one query.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EngineResult {
    pub warmup_ms: Option<f64>,
    pub runs_ms: Vec<f64>,
    pub median_ms: Option<f64>,
    pub rows: Option<usize>,
    pub error: Option<String>,
}

/// Basin's answer against each peer, and the peers against each other.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Check {
    pub basin_vs_duckdb: Option<String>,
    pub basin_vs_datafusion: Option<String>,
    pub duckdb_vs_datafusion: Option<String>,
}

impl Check {
    /// Compared with at least one peer.
    pub fn basin_checked(&self) -> bool {
        self.basin_vs_duckdb.is_some() || self.basin_vs_datafusion.is_some()
    }

    /// Agrees with every peer it was compared with, or with DataFusion where DuckDB and
    /// DataFusion disagree with each other (DuckDB's own reading of the text).
    pub fn basin_correct(&self) -> bool {
        let is_match = |v: &Option<String>| v.as_deref() == Some("match");
        self.basin_checked()
            && (is_match(&self.basin_vs_datafusion) || self.basin_vs_datafusion.is_none())
            && (is_match(&self.basin_vs_duckdb)
                || self.basin_vs_duckdb.is_none()
                || (is_match(&self.basin_vs_datafusion) && !is_match(&self.duckdb_vs_datafusion)))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct QueryResult {
    pub name: String,
    pub basin: EngineResult,
    pub duckdb: EngineResult,
    pub datafusion: EngineResult,
    pub check: Check,
}

impl QueryResult {
    pub fn engine(&self, engine: &str) -> &EngineResult {
        match engine {
            "basin" => &self.basin,
            "duckdb" => &self.duckdb,
            _ => &self.datafusion,
        }
    }

    fn engine_mut(&mut self, engine: &str) -> &mut EngineResult {
        match engine {
            "basin" => &mut self.basin,
            "duckdb" => &mut self.duckdb,
            _ => &mut self.datafusion,
        }
    }
}

/// A finished suite: what [`crate::report`] turns into files.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteResult {
    pub suite: String,
    pub scale: f64,
    pub runs: usize,
    pub threads: usize,
    pub executors: Option<usize>,
    pub started_at: String,
    pub total_secs: f64,
    pub datagen_secs: f64,
    pub machine: Machine,
    pub build: Option<BuildCost>,
    pub versions: Versions,
    pub memory: Vec<ProcessMemory>,
    pub queries: Vec<QueryResult>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Versions {
    pub basin: String,
    pub duckdb: String,
    pub datafusion: String,
}

struct Engines {
    basin: BasinClient,
    duckdb: DuckDbPeer,
    datafusion: DataFusionPeer,
    timeout: Duration,
}

impl Engines {
    async fn exec(&mut self, engine: &str, sql: &str) -> anyhow::Result<()> {
        match engine {
            "basin" => self.basin.exec(sql).await,
            "duckdb" => tokio::task::block_in_place(|| self.duckdb.exec(sql)),
            _ => self.datafusion.exec(sql).await,
        }
    }

    async fn query(&mut self, engine: &str, sql: &str, keep: bool) -> anyhow::Result<PeerRun> {
        match engine {
            "basin" => self.basin.query(sql, keep).await,
            "duckdb" => tokio::task::block_in_place(|| self.duckdb.query(sql, keep)),
            _ => tokio::time::timeout(self.timeout, self.datafusion.query(sql, keep))
                .await
                .unwrap_or_else(|_| bail!("timed out after {:?}", self.timeout)),
        }
    }
}

async fn run_queries(
    context: &RunContext,
    suite: &str,
    tables: &[(String, PathBuf)],
    source: Source,
    runs: usize,
    datagen_secs: f64,
) -> anyhow::Result<SuiteResult> {
    let started = Instant::now();
    let started_at = chrono::Utc::now()
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string();
    let mut server = match &context.args.connect {
        Some(address) => BasinServer::connect(address)?,
        None => {
            BasinServer::start(
                &basin_binary(context)?,
                context.args.executors,
                context.args.port,
            )
            .await?
        }
    };
    let outcome = async {
        let basin = server.client().await?;
        basin
            .exec(&format!(
                "SET statement_timeout = '{}s'",
                context.args.query_timeout_secs
            ))
            .await?;
        for (name, path) in tables {
            basin
                .exec(&format!(
                    "CREATE EXTERNAL TABLE IF NOT EXISTS {name} STORED AS PARQUET LOCATION '{}'",
                    path.display()
                ))
                .await
                .with_context(|| format!("register {name} in basin"))?;
        }
        let basin_version = basin
            .rows("SELECT version()")
            .await
            .ok()
            .and_then(|rows| rows.first()?.first()?.clone())
            .unwrap_or_else(|| "unknown".into());
        let mut duckdb = tokio::task::block_in_place(|| {
            DuckDbPeer::start(&context.venv, context.threads, tables)
        })?;
        let duckdb_version = duckdb.version()?;
        let queries = match source {
            Source::Fixed(queries) => queries,
            Source::Tpcds => queries::select(
                queries::tpcds(duckdb.tpcds_queries()?),
                &context.args.tpcds_queries,
            ),
        };
        let datafusion = DataFusionPeer::new(context.threads, tables).await?;
        let mut engines = Engines {
            basin,
            duckdb,
            datafusion,
            timeout: Duration::from_secs(context.args.query_timeout_secs),
        };
        let mut progress = Progress::new(suite, queries.len() * ENGINES.len() * (runs + 1));
        let mut results = Vec::with_capacity(queries.len());
        for query in &queries {
            results.push(run_query(&mut engines, query, runs, &mut progress).await);
        }
        progress.finish();
        let mut memory = server.peak_memory();
        memory.push(ProcessMemory {
            role: "duckdb worker".into(),
            pid: engines.duckdb.pid(),
            peak_rss_kib: peak_rss_kib(engines.duckdb.pid()).unwrap_or(0),
        });
        memory.push(ProcessMemory {
            role: "runner (in-process DataFusion)".into(),
            pid: std::process::id(),
            peak_rss_kib: peak_rss_kib(std::process::id()).unwrap_or(0),
        });
        anyhow::Ok(SuiteResult {
            suite: suite.to_owned(),
            scale: context.args.scale,
            runs,
            threads: context.threads,
            executors: context
                .args
                .connect
                .is_none()
                .then_some(context.args.executors),
            started_at,
            total_secs: started.elapsed().as_secs_f64(),
            datagen_secs,
            machine: context.machine.clone(),
            build: context.build.clone(),
            versions: Versions {
                basin: basin_version,
                duckdb: duckdb_version,
                datafusion: datafusion::DATAFUSION_VERSION.to_owned(),
            },
            memory,
            queries: results,
        })
    }
    .await;
    server.stop().await;
    outcome
}

/// The `basin` binary: `--basin-bin`/`BASIN_BIN`, else `basin` next to this executable.
pub fn basin_binary(context: &RunContext) -> anyhow::Result<PathBuf> {
    if let Some(path) = &context.args.basin_bin {
        return Ok(path.clone());
    }
    let exe = std::env::current_exe().context("locate this executable")?;
    let sibling = exe.with_file_name("basin");
    if sibling.is_file() {
        return Ok(sibling);
    }
    bail!(
        "no basin binary next to {}: pass --basin-bin",
        exe.display()
    )
}

async fn run_query(
    engines: &mut Engines,
    query: &Query,
    runs: usize,
    progress: &mut Progress,
) -> QueryResult {
    let mut result = QueryResult {
        name: query.name.clone(),
        basin: EngineResult::default(),
        duckdb: EngineResult::default(),
        datafusion: EngineResult::default(),
        check: Check::default(),
    };
    for engine in ENGINES {
        for statement in &query.setup {
            if let Err(err) = engines.exec(engine, statement).await {
                result.engine_mut(engine).error = Some(format!("setup: {err:#}"));
            }
        }
    }
    let mut answers: [Option<Rows>; 3] = [None, None, None];
    for pass in 0..=runs {
        for (index, engine) in ENGINES.into_iter().enumerate() {
            let step = if pass == 0 {
                format!("{} {engine} warm-up", query.name)
            } else {
                format!("{} {engine} run {pass}/{runs}", query.name)
            };
            progress.step(&step);
            if result.engine(engine).error.is_some() {
                progress.advance();
                continue;
            }
            match engines.query(engine, &query.sql, pass == 0).await {
                Ok(run) => {
                    let entry = result.engine_mut(engine);
                    if pass == 0 {
                        entry.warmup_ms = Some(run.ms);
                        entry.rows = Some(run.row_count);
                        answers[index] = run.rows;
                    } else {
                        entry.runs_ms.push(run.ms);
                    }
                }
                Err(err) => {
                    let message = format!("{err:#}");
                    let first_line = message.lines().next().unwrap_or_default();
                    result.engine_mut(engine).error = Some(first_line.chars().take(300).collect());
                }
            }
            progress.advance();
        }
    }
    for engine in ENGINES {
        for statement in &query.teardown {
            let _ = engines.exec(engine, statement).await;
        }
        let entry = result.engine_mut(engine);
        entry.median_ms = median(&entry.runs_ms);
    }
    let verdict = |a: &Option<Rows>, b: &Option<Rows>| match (a, b) {
        (Some(a), Some(b)) => Some(match compare(a, b) {
            Verdict::Match => "match".to_owned(),
            Verdict::Mismatch(detail) => format!("mismatch: {detail}"),
        }),
        _ => None,
    };
    result.check = Check {
        basin_vs_duckdb: verdict(&answers[0], &answers[1]),
        basin_vs_datafusion: verdict(&answers[0], &answers[2]),
        duckdb_vs_datafusion: verdict(&answers[1], &answers[2]),
    };
    let shown = |e: &EngineResult| match (&e.error, e.median_ms) {
        (Some(_), _) => "error".to_owned(),
        (None, Some(ms)) => format!("{ms:.0}ms"),
        (None, None) => "-".to_owned(),
    };
    progress.note(&format!(
        "{}: basin {} duckdb {} datafusion {} answer {}",
        query.name,
        shown(&result.basin),
        shown(&result.duckdb),
        shown(&result.datafusion),
        if result.check.basin_correct() {
            "ok"
        } else if result.check.basin_checked() {
            "MISMATCH"
        } else {
            "unchecked"
        }
    ));
    result
}

pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    })
}
