//! `basin-oracle`: metamorphic SQL testing of Basin over pgwire (TLP, NoREC, configuration and
//! cluster-shape differentials). See `docs/sql-oracle.md`.
//!
//! ```text
//! cargo run -p basin-sql-tests --bin basin-oracle -- --seed 1 --checks 20000 --executors 0
//! cargo run -p basin-sql-tests --bin basin-oracle -- --seed 1 --long --executors 2
//! cargo run -p basin-sql-tests --bin basin-oracle -- --seed 1 --round 17     # replay one round
//! ```
//!
//! Exits 0 when every check agreed and nothing failed, 1 on a mismatch or a failure (a dead or
//! panicking server, a hang), 2 on bad arguments or when the cluster would not start.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use basin_sql_tests::oracle::{self, KNOWN, Options, Summary};
use basin_sql_tests::paths;

const USAGE: &str = "usage: basin-oracle [--seed N] [--checks N | --long] [--executors N] \
[--reference-executors N | --no-reference] [--basin PATH] [--jobs N] [--schemas N] [--round R] \
[--skip-known] [--slt-dir DIR] [--out DIR] [--max-reports N] [--list-known] [--print-round R] [--verbose]";

/// Checks of the CI tier and of the long tier (`--long`).
const CI_CHECKS: u64 = 20_000;
const LONG_CHECKS: u64 = 150_000;

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => return ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("basin-oracle: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("basin-oracle: build tokio runtime: {err}");
            return ExitCode::from(2);
        }
    };
    let described = describe(&options);
    let verbose = options.verbose;
    match runtime.block_on(oracle::run(options)) {
        Ok(summary) => {
            let failed = summary.stats.total_mismatches() > 0 || !summary.stats.failures.is_empty();
            let mut stdout = std::io::stdout().lock();
            let _ = print_summary(&mut stdout, &described, &summary, verbose);
            if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(err) => {
            eprintln!("basin-oracle: {err}");
            ExitCode::from(2)
        }
    }
}

fn describe(options: &Options) -> String {
    format!(
        "seed {}, {} checks wanted, cluster with {} executors{}, {} sessions, {} table sets{}",
        options.seed,
        options.checks,
        options.executors,
        options
            .reference_executors
            .map(|n| format!(" compared with a cluster with {n}"))
            .unwrap_or_default(),
        options.jobs,
        options.schemas,
        options
            .round
            .map(|round| format!(", round {round} only"))
            .unwrap_or_default()
    )
}

fn parse(args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut args = args.peekable();
    let mut seed = 1;
    let mut checks = CI_CHECKS;
    let mut executors = 0;
    let mut reference: Option<Option<u32>> = None;
    let mut binary = None;
    let mut jobs = 3;
    let mut schemas = 4;
    let mut round = None;
    let mut skip_known = false;
    let mut slt_dir = paths::corpus_dir().join("oracle");
    let mut out_dir = paths::target_dir().join("basin-oracle");
    let mut max_reports = 20;
    let mut verbose = false;
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_string(), Some(value.to_string()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        fn number<T: std::str::FromStr>(name: &str, text: String) -> Result<T, String> {
            text.parse()
                .map_err(|_| format!("{name} wants a number, got {text:?}"))
        }
        match flag.as_str() {
            "--seed" => seed = number("--seed", value("--seed")?)?,
            "--checks" => checks = number("--checks", value("--checks")?)?,
            "--long" => checks = LONG_CHECKS,
            "--executors" => executors = number("--executors", value("--executors")?)?,
            "--reference-executors" => {
                reference = Some(Some(number(
                    "--reference-executors",
                    value("--reference-executors")?,
                )?));
            }
            "--no-reference" => reference = Some(None),
            "--basin" => binary = Some(PathBuf::from(value("--basin")?)),
            "--jobs" => jobs = number("--jobs", value("--jobs")?)?,
            "--schemas" => schemas = number("--schemas", value("--schemas")?)?,
            "--round" => round = Some(number("--round", value("--round")?)?),
            "--skip-known" => skip_known = true,
            "--verbose" => verbose = true,
            "--slt-dir" => slt_dir = PathBuf::from(value("--slt-dir")?),
            "--out" => out_dir = PathBuf::from(value("--out")?),
            "--max-reports" => max_reports = number("--max-reports", value("--max-reports")?)?,
            "--print-round" => {
                let round = number("--print-round", value("--print-round")?)?;
                let _ = write!(
                    std::io::stdout().lock(),
                    "{}",
                    oracle::describe_round(seed, schemas, round)
                );
                return Ok(None);
            }
            "--list-known" => {
                let mut stdout = std::io::stdout().lock();
                for known in KNOWN {
                    let _ = writeln!(stdout, "{}: {}", known.name, known.reason);
                }
                return Ok(None);
            }
            "-h" | "--help" => {
                let _ = writeln!(std::io::stdout().lock(), "{USAGE}");
                return Ok(None);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let binary = match binary {
        Some(path) if path.is_absolute() => path,
        Some(path) => std::env::current_dir()
            .map_err(|err| format!("current directory: {err}"))?
            .join(path),
        None => paths::basin_binary().map_err(|err| err.to_string())?,
    };
    if !binary.is_file() {
        return Err(format!("no basin binary at {}", binary.display()));
    }
    // A distributed cluster is compared with a single node unless told otherwise.
    let reference_executors = match reference {
        Some(choice) => choice,
        None if executors > 0 => Some(0),
        None => None,
    };
    Ok(Some(Options {
        binary,
        seed,
        checks,
        executors,
        reference_executors,
        jobs,
        schemas,
        round,
        skip_known,
        slt_dir,
        out_dir,
        max_reports,
        verbose,
    }))
}

fn print_summary(
    out: &mut impl Write,
    described: &str,
    summary: &Summary,
    verbose: bool,
) -> std::io::Result<()> {
    let stats = &summary.stats;
    writeln!(out, "basin-oracle: {described}")?;
    writeln!(
        out,
        "{:<44} {:>9} {:>10} {:>6} {:>11}",
        "oracle", "checks", "mismatches", "known", "both failed"
    )?;
    for (name, oracle) in &stats.per_oracle {
        writeln!(
            out,
            "{name:<44} {:>9} {:>10} {:>6} {:>11}",
            oracle.checks, oracle.mismatches, oracle.known, oracle.both_failed
        )?;
    }
    let elapsed = summary.elapsed.as_secs_f64();
    let running = (summary.elapsed - summary.setup).as_secs_f64().max(0.001);
    writeln!(
        out,
        "total: {} checks, {} mismatches in {} rounds",
        stats.total_checks(),
        stats.total_mismatches(),
        stats.rounds,
    )?;
    for (name, count) in &stats.known {
        writeln!(out, "known bug {name}: {count} mismatches (--skip-known)")?;
    }
    for (name, count) in &stats.known_panics {
        writeln!(out, "known bug {name}: {count} panics (--skip-known)")?;
    }
    writeln!(
        out,
        "elapsed: {elapsed:.1} s ({:.1} s starting clusters and creating tables; {:.0} checks/s after)",
        summary.setup.as_secs_f64(),
        stats.total_checks() as f64 / running
    )?;
    if !stats.errors.is_empty() {
        writeln!(out, "errors by SQLSTATE (queries Basin refused):")?;
        for (sqlstate, error) in &stats.errors {
            let message: String = error.message.chars().take(160).collect();
            writeln!(out, "  {sqlstate} {:>7}  e.g. {message}", error.count)?;
            if verbose {
                writeln!(out, "          from: {}", error.sql)?;
            }
        }
    }
    for refused in &stats.refused_settings {
        writeln!(out, "refused setting: {refused}")?;
    }
    if !stats.reports.is_empty() {
        writeln!(out, "mismatches written ({} shown):", stats.reports.len())?;
        for report in &stats.reports {
            writeln!(out, "  {report}")?;
        }
    }
    for failure in &stats.failures {
        writeln!(out, "FAILURE: {failure}")?;
    }
    Ok(())
}
