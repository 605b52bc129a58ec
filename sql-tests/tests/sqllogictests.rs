//! Runs the `.slt` corpus in `sql-tests/slt/` over pgwire, one fresh Basin cluster per file and
//! cluster shape: by default every file runs on `basin standalone --executors N` for N = 0 (every
//! query on the coordinator, the single-node path) and 1, 2 and 3 executor processes, with every
//! query that reads files distributed; choose with `--executors 0,2` or `BASIN_TEST_EXECUTORS`.
//!
//! ```text
//! cargo test -p basin-sql-tests --test sqllogictests                         # everything
//! cargo test -p basin-sql-tests --test sqllogictests -- types/ errors        # path filters
//! cargo test -p basin-sql-tests --test sqllogictests -- --complete tpch/q01  # rewrite expected output
//! cargo test -p basin-sql-tests --test sqllogictests -- --postgres 'host=127.0.0.1 user=basin dbname=basin'
//! ```
//!
//! Filters are substrings of the path under `slt/` (several may be given; a file runs if any
//! matches). `--postgres <conninfo or URL>` runs the files marked `# pg_compat` against a real
//! PostgreSQL server instead, which is how their expected output is checked independently (with
//! `--complete`, PostgreSQL writes it). That server's `public` schema is dropped and recreated
//! before each file: use a scratch database, user `basin`, database `basin`. Other libtest flags
//! (`--list`, `--exact`, `--test-threads`, `--nocapture`, ...) work as usual. The `basin` binary
//! must be built first (`cargo build -p basin`; `BASIN_BIN` overrides its path).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use basin_sql_tests::{FileOptions, Target, paths, run_file, tpch};
use sqllogictest::harness::{Arguments, Failed, Trial};

/// Marks a file whose expected output also holds on PostgreSQL.
const PG_COMPAT_MARKER: &str = "# pg_compat";

/// Cluster shapes every file runs on unless `--executors` or `BASIN_TEST_EXECUTORS` says
/// otherwise: executor processes next to the coordinator (0: queries run in the coordinator, so
/// single-node and distributed answers are held to the same expected output).
const DEFAULT_EXECUTORS: &str = "0,1,2,3";

struct Cli {
    complete: bool,
    postgres: Option<String>,
    executors: Vec<u32>,
    filters: Vec<String>,
    libtest: Arguments,
}

fn parse_cli() -> Result<Cli> {
    let mut complete = false;
    let mut postgres = None;
    let mut executors =
        std::env::var("BASIN_TEST_EXECUTORS").unwrap_or_else(|_| DEFAULT_EXECUTORS.to_string());
    let mut filters = Vec::new();
    let mut passthrough = vec![std::env::args().next().unwrap_or_default()];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--complete" => complete = true,
            "--postgres" => postgres = Some(args.next().context("--postgres needs a value")?),
            _ if arg.starts_with("--postgres=") => {
                postgres = Some(arg["--postgres=".len()..].to_string());
            }
            "--executors" => executors = args.next().context("--executors needs a value")?,
            _ if arg.starts_with("--executors=") => {
                executors = arg["--executors=".len()..].to_string();
            }
            // libtest options that take a value.
            "--test-threads" | "--format" | "--logfile" | "--skip" | "--color" | "-Z" => {
                passthrough.push(arg);
                passthrough.extend(args.next());
            }
            _ if arg.starts_with('-') => passthrough.push(arg),
            _ => filters.push(arg),
        }
    }
    let mut libtest = Arguments::from_iter(passthrough);
    if complete || postgres.is_some() {
        // Rewriting files reads better one file at a time, and on PostgreSQL all files share one
        // database whose `public` schema is reset before each file.
        libtest.test_threads = Some(1);
    }
    let mut executors = executors
        .split(',')
        .map(|count| count.trim().parse::<u32>())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("--executors wants counts like 0,2, got {executors:?}"))?;
    if executors.is_empty() || complete {
        // One shape is enough to rewrite a file.
        executors.truncate(1);
        if executors.is_empty() {
            executors.push(0);
        }
    }
    Ok(Cli {
        complete,
        postgres,
        executors,
        filters,
        libtest,
    })
}

fn selected(name: &str, cli: &Cli) -> bool {
    let filtered = cli.filters.is_empty()
        || cli.filters.iter().any(|filter| {
            if cli.libtest.exact {
                name == filter
            } else {
                name.contains(filter.as_str())
            }
        });
    filtered
        && !cli
            .libtest
            .skip
            .iter()
            .any(|skip| name.contains(skip.as_str()))
}

fn main() -> ExitCode {
    match try_main() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("sqllogictests: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn try_main() -> Result<ExitCode> {
    let cli = parse_cli()?;
    let files: Vec<_> = paths::slt_files(&paths::corpus_dir())?
        .into_iter()
        .filter(|(name, _)| selected(name, &cli))
        .collect();
    if files.is_empty() {
        bail!(
            "no .slt file under {} matches {:?}",
            paths::corpus_dir().display(),
            cli.filters
        );
    }

    let binary = if cli.postgres.is_some() || cli.libtest.list {
        PathBuf::new()
    } else {
        paths::basin_binary()?
    };
    let targets: Vec<Target> = match &cli.postgres {
        Some(conninfo) => {
            let mut config = tokio_postgres::Config::from_str(conninfo)
                .with_context(|| format!("parse --postgres {conninfo:?}"))?;
            if config.get_application_name().is_none() {
                // What the harness sends to Basin too; session/ files expect it.
                config.application_name("basin-sql-tests");
            }
            vec![Target::Postgres {
                config: Box::new(config),
            }]
        }
        None => cli
            .executors
            .iter()
            .map(|&executors| Target::Basin {
                binary: binary.clone(),
                executors,
            })
            .collect(),
    };

    let mut variables = BTreeMap::new();
    variables.insert(
        "TPCH_DIR".to_string(),
        tpch::data_dir().display().to_string(),
    );
    variables.insert(
        "TESTDATA".to_string(),
        paths::testdata_dir().display().to_string(),
    );

    if cli.postgres.is_none() && !cli.libtest.list {
        // Parsing expands `include`s, so a file that only includes the TPC-H tables counts.
        let needs_tpch = files.iter().any(|(_, path)| {
            sqllogictest::parse_file::<sqllogictest::DefaultColumnType>(path).is_ok_and(|records| {
                records.iter().any(|record| {
                    !matches!(record, sqllogictest::Record::Injected(_))
                        && record.to_string().contains("TPCH_DIR")
                })
            })
        });
        if needs_tpch {
            tpch::ensure_data(&binary, &tpch::data_dir()).context("generate TPC-H data")?;
        }
    }

    let options = FileOptions {
        complete: cli.complete,
        variables,
        ..FileOptions::default()
    };
    let mut trials = Vec::new();
    for target in &targets {
        for (name, path) in &files {
            let (name, runs_here) = match target {
                Target::Basin { executors: 0, .. } => (name.clone(), true),
                Target::Basin { executors, .. } => {
                    (format!("{name} [{executors} executors]"), true)
                }
                Target::Postgres { .. } => (
                    name.clone(),
                    std::fs::read_to_string(path)
                        .is_ok_and(|text| text.lines().any(|line| line.trim() == PG_COMPAT_MARKER)),
                ),
            };
            let (path, target, options) = (path.clone(), target.clone(), options.clone());
            trials.push(
                Trial::test(name, move || run_one(&path, &target, &options))
                    .with_ignored_flag(!runs_here),
            );
        }
    }

    // Filtering is done above (several filters, path substrings); libtest-mimic must not redo it.
    let mut libtest = cli.libtest;
    libtest.filter = None;
    libtest.skip.clear();
    libtest.exact = false;
    if cli.postgres.is_some() {
        // Files that do not hold on PostgreSQL are reported as ignored, never run.
        libtest.ignored = false;
        libtest.include_ignored = false;
    }
    Ok(
        match sqllogictest::harness::run(&libtest, trials).has_failed() {
            true => ExitCode::FAILURE,
            false => ExitCode::SUCCESS,
        },
    )
}

fn run_one(path: &Path, target: &Target, options: &FileOptions) -> Result<(), Failed> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| Failed::from(format!("build tokio runtime: {err}")))?;
    runtime
        .block_on(run_file(path, target, options))
        .map_err(|err| Failed::from(err.to_string()))
}
