//! `basin-df-slt`: DataFusion's own sqllogictest files (crate `datafusion-sqllogictest` 55.2.0,
//! as data) over Basin's pgwire. See `docs/testing.md`, "DataFusion's corpus".
//!
//! ```text
//! basin-df-slt                                   # every file not on the skip list
//! basin-df-slt aggregate array/                  # files whose path contains a filter
//! basin-df-slt --report sql-tests/df-slt         # also write results.md and passing.txt
//! basin-df-slt --files-from sql-tests/df-slt/passing.txt   # the regression gate
//! ```
//!
//! Exits 0 when every file that ran passed, 1 when one did not, 2 on bad arguments or when the
//! cluster would not start.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use basin_sql_tests::df_slt::corpus::{self, SkipList};
use basin_sql_tests::df_slt::report::{self, Summary};
use basin_sql_tests::df_slt::{Options, Status, run};
use basin_sql_tests::paths;

const USAGE: &str = "usage: basin-df-slt [--corpus DIR] [--basin PATH] [--executors N] \
[--skip-list FILE] [--files-from FILE] [--report DIR] [--file-timeout SECS] \
[--statement-timeout SECS] [--verbose] [FILTER...]";

struct Cli {
    corpus: PathBuf,
    basin: Option<PathBuf>,
    executors: u32,
    skip_list: PathBuf,
    files_from: Option<PathBuf>,
    report: Option<PathBuf>,
    file_timeout: Duration,
    statement_timeout: Duration,
    verbose: bool,
    filters: Vec<String>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Cli>, String> {
    let mut cli = Cli {
        corpus: corpus::default_dir(),
        basin: None,
        executors: 0,
        skip_list: paths::crate_dir().join("df-slt").join("skip.toml"),
        files_from: None,
        report: None,
        file_timeout: Duration::from_secs(300),
        statement_timeout: Duration::from_secs(60),
        verbose: false,
        filters: Vec::new(),
    };
    let secs = |value: Option<String>, flag: &str| -> Result<Duration, String> {
        value
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs)
            .ok_or_else(|| format!("{flag} wants a number of seconds"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                let _ = writeln!(std::io::stdout(), "{USAGE}");
                return Ok(None);
            }
            "--corpus" => cli.corpus = args.next().ok_or("--corpus wants a directory")?.into(),
            "--basin" => cli.basin = Some(args.next().ok_or("--basin wants a path")?.into()),
            "--executors" => {
                cli.executors = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--executors wants a count")?;
            }
            "--skip-list" => {
                cli.skip_list = args.next().ok_or("--skip-list wants a file")?.into();
            }
            "--files-from" => {
                cli.files_from = Some(args.next().ok_or("--files-from wants a file")?.into());
            }
            "--report" => {
                cli.report = Some(args.next().ok_or("--report wants a directory")?.into())
            }
            "--file-timeout" => cli.file_timeout = secs(args.next(), "--file-timeout")?,
            "--statement-timeout" => {
                cli.statement_timeout = secs(args.next(), "--statement-timeout")?;
            }
            "--verbose" => cli.verbose = true,
            _ if arg.starts_with('-') => return Err(format!("unknown option {arg}")),
            _ => cli.filters.push(arg),
        }
    }
    Ok(Some(cli))
}

fn main() -> ExitCode {
    let cli = match parse(std::env::args().skip(1)) {
        Ok(Some(cli)) => cli,
        Ok(None) => return ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("basin-df-slt: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match options(&cli) {
        Ok(options) => execute(&cli, &options),
        Err(message) => {
            eprintln!("basin-df-slt: {message}");
            ExitCode::from(2)
        }
    }
}

fn options(cli: &Cli) -> Result<Options, String> {
    let binary = match &cli.basin {
        Some(path) => path.clone(),
        None => paths::basin_binary().map_err(|err| err.to_string())?,
    };
    let binary =
        std::path::absolute(&binary).map_err(|err| format!("{}: {err}", binary.display()))?;
    let corpus_dir = std::path::absolute(&cli.corpus)
        .map_err(|err| format!("{}: {err}", cli.corpus.display()))?;
    let mut files = corpus::discover(&corpus_dir).map_err(|err| err.to_string())?;
    if let Some(list) = &cli.files_from {
        let text = std::fs::read_to_string(list)
            .map_err(|err| format!("read {}: {err}", list.display()))?;
        let wanted: std::collections::BTreeSet<&str> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect();
        let missing: Vec<&&str> = wanted
            .iter()
            .filter(|name| !files.iter().any(|(file, _)| file == *name))
            .collect();
        if !missing.is_empty() {
            return Err(format!("not in the corpus: {missing:?}"));
        }
        files.retain(|(name, _)| wanted.contains(name.as_str()));
    }
    if !cli.filters.is_empty() {
        files.retain(|(name, _)| {
            cli.filters
                .iter()
                .any(|filter| name.contains(filter.as_str()))
        });
    }
    let skip = SkipList::load(&cli.skip_list).map_err(|err| err.to_string())?;
    Ok(Options {
        binary,
        corpus_dir,
        executors: cli.executors,
        files,
        skip,
        file_timeout: cli.file_timeout,
        statement_timeout: cli.statement_timeout,
    })
}

fn execute(cli: &Cli, options: &Options) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("basin-df-slt: build tokio runtime: {err}");
            return ExitCode::from(2);
        }
    };
    let verbose = cli.verbose;
    let results = runtime.block_on(run(options, |result| {
        let mut stderr = std::io::stderr().lock();
        if matches!(result.status, Status::Skipped(_)) && !verbose {
            return;
        }
        let _ = writeln!(
            stderr,
            "{:<8} {:<55} {:>5} passed {:>4} failed {:>6.1}s",
            result.status.label(),
            result.name,
            result.counts.passed,
            result.counts.failed,
            result.elapsed.as_secs_f64()
        );
        if verbose || cli.files_from.is_some() {
            for failure in &result.failures {
                let _ = writeln!(stderr, "    {}: {}", failure.location, failure.detail);
            }
        }
    }));
    let results = match results {
        Ok(results) => results,
        Err(err) => {
            eprintln!("basin-df-slt: {err}");
            return ExitCode::from(2);
        }
    };
    if let Some(dir) = &cli.report
        && let Err(err) = report::write(dir, &results, options.executors)
    {
        eprintln!("basin-df-slt: {err}");
        return ExitCode::from(2);
    }
    let summary = Summary::of(&results);
    let records = &summary.records;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "records: {} passed, {} failed, {} skipped; error records with DataFusion's message: {} \
         of {}",
        records.passed,
        records.failed,
        records.skipped,
        records.error_text_matched,
        records.error_text_matched + records.error_text_differs
    );
    let _ = writeln!(
        stdout,
        "df-slt files: {} passed, {} failed, {} skipped",
        summary.passed,
        summary.not_passed(),
        summary.skipped
    );
    if summary.not_passed() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
