//! The options of `basin bench` and of `cargo run -p basin-benchmarks`: one definition, used by
//! both binaries.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Suite {
    /// The 22 TPC-H queries.
    Tpch,
    /// The 99 TPC-DS queries.
    Tpcds,
    /// pgbench against Basin and a local PostgreSQL.
    Pgbench,
    /// TPC-H, TPC-DS and pgbench, one after the other.
    All,
}

/// Runs TPC-H/TPC-DS over the Postgres wire against Basin, timed side by side with DuckDB and
/// single-node DataFusion on the same Parquet files, checks every answer, and writes JSON,
/// Markdown and an SVG chart to --output. `pgbench` compares protocol throughput with a local
/// PostgreSQL.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Which benchmark to run.
    #[arg(value_enum)]
    pub suite: Suite,

    /// Scale factor of the generated data (1 is about 1 GB of raw data per benchmark).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,

    /// Timed runs per query and engine, after one warm-up; the report shows their median.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,

    /// Timed runs per TPC-DS query [default: --runs].
    #[arg(long)]
    pub tpcds_runs: Option<usize>,

    /// Only these queries, by number (`1,6,q15`) [default: all].
    #[arg(long, value_delimiter = ',')]
    pub queries: Vec<String>,

    /// Only these TPC-DS queries, by number [default: all 99].
    #[arg(long, value_delimiter = ',')]
    pub tpcds_queries: Vec<String>,

    /// Generated data is kept here (`tpch-sf1/`, `tpcds-sf1/`) and reused
    /// [default: <repo>/benchmarks/data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,

    /// Where the reports go [default: <repo>/benchmarks/results].
    #[arg(long)]
    pub output: Option<PathBuf>,

    /// The `basin` binary to start [default: `basin` next to this executable].
    #[arg(long, env = "BASIN_BIN")]
    pub basin_bin: Option<PathBuf>,

    /// Use a running Basin at host:port instead of starting one (its memory is then not
    /// reported).
    #[arg(long)]
    pub connect: Option<String>,

    /// Executor processes of the started cluster.
    #[arg(long, default_value_t = 2)]
    pub executors: usize,

    /// Threads DuckDB and DataFusion use [default: the machine's cores].
    #[arg(long)]
    pub threads: Option<usize>,

    /// Postgres port of the started Basin; the next two ports take HTTP and control.
    #[arg(long, default_value_t = 48433)]
    pub port: u16,

    /// Port of the local PostgreSQL the pgbench suite starts.
    #[arg(long, default_value_t = 48532)]
    pub postgres_port: u16,

    /// Seconds per pgbench measurement.
    #[arg(long, default_value_t = 10)]
    pub pgbench_secs: u64,

    /// pgbench client counts.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    pub pgbench_clients: Vec<usize>,

    /// pgbench scripts: select1, point, aggregate.
    #[arg(long, value_delimiter = ',', default_value = "select1,point,aggregate")]
    pub pgbench_scripts: Vec<String>,

    /// Directory of PostgreSQL's initdb/pg_ctl [default: the newest /usr/lib/postgresql/*/bin].
    #[arg(long)]
    pub postgres_bin: Option<PathBuf>,

    /// Python virtualenv with DuckDB and tpcgen-cli; made when missing [default: <repo>/.venv].
    #[arg(long)]
    pub venv: Option<PathBuf>,

    /// A build log ending in `rc=N secs=S` (the cold release build) to quote in the report.
    #[arg(long)]
    pub build_log: Option<PathBuf>,

    /// A query running longer than this on one engine fails there.
    #[arg(long, default_value_t = 600)]
    pub query_timeout_secs: u64,
}
