//! The command line. Every option can also come from a `BASIN_*` environment variable or the
//! TOML file given by `--config`; flags win over the environment, the environment over the file,
//! the file over built-in defaults. Options are therefore `Option`s here: `None` means "not on
//! the command line or in the environment", and [`crate::config`] falls back to the file.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::byte_size::ByteSize;

const AFTER_HELP: &str = "\
Precedence: flags > BASIN_* environment variables > the --config TOML file > defaults.

Users for password (SCRAM-SHA-256) authentication come from [[users]] tables in the config file
(name = \"...\", password = \"...\") or from BASIN_USERS=\"user:password,user2:password2\", which
replaces the file's list. With no users, connections on loopback addresses are trusted.

See docs/configuration.md for the full reference.";

const EXECUTOR_AFTER_HELP: &str = "\
Precedence: flags > BASIN_* environment variables > the --config TOML file ([executor] table) >
defaults. See docs/configuration.md for the full reference.";

/// Basin: a distributed SQL analytics engine that speaks the Postgres wire protocol.
///
/// Without a subcommand, runs `standalone`.
#[derive(Debug, Parser)]
#[command(name = "basin", version, after_help = AFTER_HELP)]
pub(crate) struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "BASIN_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    #[command(subcommand)]
    pub(crate) command: Option<Command>,

    /// Options of the default `standalone` mode.
    #[command(flatten)]
    pub(crate) standalone: StandaloneArgs,
}

impl Cli {
    /// Parses the process's arguments and environment, exiting with usage on error.
    pub(crate) fn parse_or_exit() -> Self {
        Self::try_parse_args(std::env::args_os()).unwrap_or_else(|err| err.exit())
    }

    /// Like [`Parser::try_parse_from`], and also rejects standalone options placed before a
    /// subcommand (`basin --pg-listen X coordinator`), which clap would otherwise silently give
    /// to the default mode and drop.
    pub(crate) fn try_parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let mut command = Self::command();
        let matches = command.try_get_matches_from_mut(args)?;
        if matches.subcommand().is_some() {
            let misplaced = matches.ids().find(|id| {
                id.as_str() != "config"
                    && matches.value_source(id.as_str()) == Some(ValueSource::CommandLine)
            });
            if let Some(id) = misplaced {
                let flag = command
                    .get_arguments()
                    .find(|arg| arg.get_id() == id)
                    .and_then(|arg| arg.get_long())
                    .unwrap_or(id.as_str())
                    .to_owned();
                return Err(command.error(
                    ErrorKind::ArgumentConflict,
                    format!("--{flag} must come after the subcommand"),
                ));
            }
        }
        Self::from_arg_matches(&matches)
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Coordinator plus N executor processes on this machine (the default).
    #[command(after_help = AFTER_HELP)]
    Standalone(StandaloneArgs),
    /// Coordinator only: Postgres front end, HTTP API, control plane; executors join it.
    #[command(after_help = AFTER_HELP)]
    Coordinator(CoordinatorArgs),
    /// Executor only: joins the coordinator at --coordinator and runs the work it is given.
    #[command(after_help = EXECUTOR_AFTER_HELP)]
    Executor(ExecutorArgs),
    /// Generate benchmark data sets.
    #[command(subcommand)]
    Datagen(Datagen),
    /// Run TPC-H/TPC-DS over the Postgres wire next to DuckDB and DataFusion, or pgbench next to
    /// PostgreSQL, and write JSON, Markdown and SVG reports.
    Bench(basin_benchmarks::cli::BenchArgs),
}

#[derive(Debug, Clone, Default, Args)]
pub(crate) struct CoordinatorArgs {
    /// Postgres wire protocol listen address [default: 127.0.0.1:5433].
    #[arg(long, env = "BASIN_PG_LISTEN", value_name = "ADDR")]
    pub(crate) pg_listen: Option<SocketAddr>,

    /// HTTP API listen address (/health, /v1/cluster) [default: 127.0.0.1:8080].
    #[arg(long, env = "BASIN_HTTP_LISTEN", value_name = "ADDR")]
    pub(crate) http_listen: Option<SocketAddr>,

    /// Control-plane gRPC listen address executors register with [default: 127.0.0.1:50050].
    #[arg(long, env = "BASIN_CONTROL_LISTEN", value_name = "ADDR")]
    pub(crate) control_listen: Option<SocketAddr>,

    /// Directory holding the catalog and Basin-managed tables [default: ./basin-data].
    #[arg(long, env = "BASIN_DATA_DIR", value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,

    /// Keep Basin-managed tables and streaming-table lakes in object storage instead of the
    /// data directory, e.g. s3://bucket/basin (the catalog and logs stay in --data-dir).
    #[arg(long, env = "BASIN_DATA_URL", value_name = "URL")]
    pub(crate) data_url: Option<String>,

    /// Allow connections without a password on a non-loopback --pg-listen when no users are
    /// configured. `--insecure-no-auth` alone means true [default: false].
    #[arg(
        long,
        env = "BASIN_INSECURE_NO_AUTH",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    pub(crate) insecure_no_auth: Option<bool>,

    /// Shared secret executors must present on the control plane (where they receive
    /// object-store credentials); required there unless --control-listen is loopback. Give it
    /// in the environment or the config file, not on a command line others can read.
    #[arg(
        long,
        env = "BASIN_CLUSTER_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub(crate) cluster_secret: Option<String>,

    /// Largest message a client may send after startup; bytes or a size such as 64MiB
    /// [default: 64MiB].
    #[arg(long, env = "BASIN_MAX_MESSAGE_BYTES", value_name = "SIZE")]
    pub(crate) max_message_bytes: Option<ByteSize>,

    /// Default number of partitions a query is split into (0 = number of cores) [default: 0].
    #[arg(long, env = "BASIN_TARGET_PARTITIONS", value_name = "N")]
    pub(crate) target_partitions: Option<usize>,

    /// Memory pool of the coordinator's own work (single-node queries, the head stage of
    /// distributed ones); bytes or a size such as 2GiB [default: 25% of the machine's memory].
    #[arg(long, env = "BASIN_COORDINATOR_MEMORY_LIMIT", value_name = "SIZE")]
    pub(crate) coordinator_memory_limit: Option<ByteSize>,

    /// Queries reading fewer bytes than this from files run on the coordinator alone; larger
    /// ones are spread over the executors [default: 64MiB; 1GiB for `standalone`, whose
    /// executors share the coordinator's cores].
    #[arg(long, env = "BASIN_DISTRIBUTE_MIN_BYTES", value_name = "SIZE")]
    pub(crate) distribute_min_bytes: Option<ByteSize>,

    /// File bytes per partition when a scan is split over executors; smaller gives more tasks
    /// [default: 16MiB].
    #[arg(long, env = "BASIN_SCAN_BYTES_PER_PARTITION", value_name = "SIZE")]
    pub(crate) scan_bytes_per_partition: Option<ByteSize>,

    /// Distributed queries running at once; more wait in line [default: 8].
    #[arg(long, env = "BASIN_MAX_CONCURRENT_QUERIES", value_name = "N")]
    pub(crate) max_concurrent_queries: Option<usize>,

    /// Times a distributed query is re-planned and re-run after losing an executor before its
    /// first row [default: 2].
    #[arg(long, env = "BASIN_QUERY_RETRIES", value_name = "N")]
    pub(crate) query_retries: Option<u32>,

    /// Milliseconds per epoch: how often materialized views are brought up to date and
    /// committed together [default: 100].
    #[arg(long, env = "BASIN_EPOCH_MS", value_name = "MS")]
    pub(crate) epoch_ms: Option<u64>,

    /// Milliseconds between checkpoints of materialized-view state [default: 10000].
    #[arg(long, env = "BASIN_CHECKPOINT_INTERVAL_MS", value_name = "MS")]
    pub(crate) checkpoint_interval_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Args)]
pub(crate) struct StandaloneArgs {
    #[command(flatten)]
    pub(crate) coordinator: CoordinatorArgs,

    /// Executor processes to start next to the coordinator [default: 2].
    #[arg(long, env = "BASIN_EXECUTORS", value_name = "N")]
    pub(crate) executors: Option<usize>,

    /// Memory pool of each executor; bytes or a size such as 4GiB [default: 45% of the
    /// machine's memory, split between the executors].
    #[arg(long, env = "BASIN_MEMORY_LIMIT", value_name = "SIZE")]
    pub(crate) memory_limit: Option<ByteSize>,
}

#[derive(Debug, Clone, Default, Args)]
pub(crate) struct ExecutorArgs {
    /// Control-plane URL of the coordinator [default: http://127.0.0.1:50050].
    #[arg(
        long = "coordinator",
        env = "BASIN_COORDINATOR_URL",
        value_name = "URL"
    )]
    pub(crate) coordinator_url: Option<String>,

    /// Listen address of the executor's gRPC service; port 0 picks a free port
    /// [default: 127.0.0.1:0].
    #[arg(long, env = "BASIN_EXECUTOR_LISTEN", value_name = "ADDR")]
    pub(crate) listen: Option<SocketAddr>,

    /// URL the coordinator reaches this executor at; required when --listen is 0.0.0.0 or [::]
    /// [default: http://<bound listen address>].
    #[arg(long, env = "BASIN_ADVERTISE_URL", value_name = "URL")]
    pub(crate) advertise_url: Option<String>,

    /// Memory pool size; bytes or a size such as 4GiB [default: 70% of the machine's memory].
    #[arg(long, env = "BASIN_MEMORY_LIMIT", value_name = "SIZE")]
    pub(crate) memory_limit: Option<ByteSize>,

    /// Directory sorts, aggregates and joins spill to when the memory pool is full
    /// [default: the OS temp directory].
    #[arg(long, env = "BASIN_SPILL_DIR", value_name = "DIR")]
    pub(crate) spill_dir: Option<PathBuf>,

    /// The executor's own data directory: streaming-table shards live there, and it keeps the
    /// executor's node identity across restarts. Without it the executor hosts no shards.
    #[arg(long, env = "BASIN_EXECUTOR_DATA_DIR", value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,

    /// The coordinator's cluster secret, sent with every control-plane call. Give it in the
    /// environment or the config file, not on a command line others can read.
    #[arg(
        long,
        env = "BASIN_CLUSTER_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub(crate) cluster_secret: Option<String>,

    /// Shut down when standard input closes. `basin standalone` sets it on the executors it
    /// starts so they never outlive it.
    #[arg(long, env = "BASIN_EXIT_WITH_PARENT")]
    pub(crate) exit_with_parent: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Datagen {
    /// TPC-H: writes <table>.parquet for the eight TPC-H tables.
    Tpch(TpchArgs),
}

#[derive(Debug, Args)]
pub(crate) struct TpchArgs {
    /// Scale factor: 1 is about 1 GB of raw data (6 million lineitem rows).
    #[arg(
        long,
        env = "BASIN_DATAGEN_SCALE",
        value_name = "N",
        default_value_t = 1.0
    )]
    pub(crate) scale: f64,

    /// Directory to write the Parquet files into; created if missing.
    #[arg(long, env = "BASIN_DATAGEN_OUTPUT", value_name = "DIR")]
    pub(crate) output: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_args(std::iter::once("basin").chain(args.iter().copied()))
            .unwrap_or_else(|err| panic!("{args:?} should parse: {err}"))
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_means_standalone_with_top_level_flags() {
        let cli = parse(&["--pg-listen", "127.0.0.1:6000", "--executors", "2"]);
        assert!(cli.command.is_none());
        assert_eq!(
            cli.standalone.coordinator.pg_listen,
            Some(SocketAddr::from(([127, 0, 0, 1], 6000)))
        );
        assert_eq!(cli.standalone.executors, Some(2));
    }

    #[test]
    fn config_is_global() {
        let cli = parse(&["coordinator", "--config", "basin.toml"]);
        assert_eq!(cli.config, Some(PathBuf::from("basin.toml")));
        let cli = parse(&["--config", "basin.toml", "executor"]);
        assert_eq!(cli.config, Some(PathBuf::from("basin.toml")));
        assert!(matches!(cli.command, Some(Command::Executor(_))));
    }

    #[test]
    fn insecure_no_auth_is_tri_state() {
        let flag = |args: &[&str]| match parse(args).command {
            Some(Command::Coordinator(args)) => args.insecure_no_auth,
            other => panic!("expected coordinator, got {other:?}"),
        };
        assert_eq!(flag(&["coordinator"]), None);
        assert_eq!(flag(&["coordinator", "--insecure-no-auth"]), Some(true));
        assert_eq!(
            flag(&["coordinator", "--insecure-no-auth=false"]),
            Some(false)
        );
    }

    #[test]
    fn executor_flags() {
        let cli = parse(&[
            "executor",
            "--coordinator",
            "http://10.0.0.1:50050",
            "--listen",
            "0.0.0.0:50051",
            "--advertise-url",
            "http://10.0.0.2:50051",
            "--memory-limit",
            "4GiB",
        ]);
        let Some(Command::Executor(args)) = cli.command else {
            panic!("expected executor subcommand");
        };
        assert_eq!(
            args.coordinator_url.as_deref(),
            Some("http://10.0.0.1:50050")
        );
        assert_eq!(args.memory_limit, Some(ByteSize(4 << 30)));
        assert!(!args.exit_with_parent);
    }

    #[test]
    fn datagen_tpch() {
        let cli = parse(&["datagen", "tpch", "--scale", "0.01", "--output", "data"]);
        let Some(Command::Datagen(Datagen::Tpch(args))) = cli.command else {
            panic!("expected datagen tpch");
        };
        assert!((args.scale - 0.01).abs() < f64::EPSILON);
        assert_eq!(args.output, PathBuf::from("data"));
    }

    #[test]
    fn bench_takes_the_runner_options() {
        let cli = parse(&[
            "bench",
            "tpch",
            "--scale",
            "0.01",
            "--runs",
            "1",
            "--queries",
            "1,6",
        ]);
        let Some(Command::Bench(args)) = cli.command else {
            panic!("expected bench");
        };
        assert_eq!(args.suite, basin_benchmarks::cli::Suite::Tpch);
        assert_eq!(args.runs, 1);
        assert_eq!(args.queries, ["1", "6"]);
        assert_eq!(args.pgbench_clients, [1, 8, 32]);
    }

    #[test]
    fn rejects_unknown_flags_and_bad_values() {
        for args in [
            &["--no-such-flag"][..],
            &["coordinator", "--pg-listen", "localhost"],
            &["executor", "--memory-limit", "lots"],
            &["coordinator", "--executors", "2"],
            &["--pg-listen", "127.0.0.1:1", "coordinator"],
        ] {
            let result = Cli::try_parse_args(std::iter::once("basin").chain(args.iter().copied()));
            assert!(result.is_err(), "{args:?} should be rejected");
        }
    }
}
