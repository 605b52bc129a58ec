//! `basin-oracle`: a typed SQL generator driving metamorphic oracles over Basin's pgwire (issue 9
//! item 3). See `docs/sql-oracle.md`.
//!
//! A seed generates tables (`schema`), then rounds of checks (`checks`): pairs of queries that
//! must return the same multiset of rows (TLP on WHERE, DISTINCT, GROUP BY, HAVING and
//! aggregates; NoREC), each also run under a configuration variant (`runner::VARIANTS`) and, when
//! asked, on a second cluster of another shape (single node vs distributed). Every mismatch is
//! written as its statement list and as a `.slt` regression file (`report`).
//!
//! Like the rest of this crate it reaches Basin only through the `basin` binary and pgwire.

mod checks;
mod compare;
mod expr;
mod known;
mod report;
mod rng;
mod runner;
mod schema;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{BasinCluster, Error, Result};
use compare::Outcome;
use rng::Rng;
use runner::{Connection, Shared};
use schema::Schema;

pub use known::{KNOWN, Known};

/// Names of the configuration variants, as reported.
pub static VARIANTS_NAMES: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| {
        runner::VARIANTS
            .iter()
            .map(|variant| variant.name)
            .collect()
    });

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    pub binary: PathBuf,
    pub seed: u64,
    /// Stop taking new rounds once this many checks are done.
    pub checks: u64,
    /// Executor processes of the cluster under test.
    pub executors: u32,
    /// A second cluster with this many executors, run the same queries for comparison.
    pub reference_executors: Option<u32>,
    /// Concurrent sessions (each with its own rounds).
    pub jobs: usize,
    /// Independent sets of tables; round `r` uses set `r % schemas`.
    pub schemas: usize,
    /// Replay this one round only.
    pub round: Option<u64>,
    pub skip_known: bool,
    /// Where `.slt` files of mismatches go (`sql-tests/slt/oracle/`).
    pub slt_dir: PathBuf,
    /// Where statement lists of mismatches go.
    pub out_dir: PathBuf,
    /// Mismatches written out at most (all are counted).
    pub max_reports: usize,
    /// Show a statement for each SQLSTATE in the summary.
    pub verbose: bool,
}

/// Checks and outcomes of one oracle (or configuration, or cluster pair).
#[derive(Clone, Debug, Default)]
pub struct OracleStats {
    /// Pairs compared (both sides answered, or exactly one failed).
    pub checks: u64,
    pub mismatches: u64,
    /// Pairs where both sides failed: not compared.
    pub both_failed: u64,
    /// Mismatches attributed to a known bug under `--skip-known` (not in `mismatches`).
    pub known: u64,
}

/// Queries that failed with one SQLSTATE.
#[derive(Clone, Debug, Default)]
pub struct ErrorStats {
    pub count: u64,
    pub message: String,
    pub sql: String,
}

/// Everything a run counted.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub per_oracle: BTreeMap<String, OracleStats>,
    /// Failed queries by SQLSTATE, with the first message and statement seen.
    pub errors: BTreeMap<String, ErrorStats>,
    /// Mismatches attributed to each known bug under `--skip-known`.
    pub known: BTreeMap<String, u64>,
    /// Panics attributed to each known bug under `--skip-known`.
    pub known_panics: BTreeMap<String, u64>,
    /// `SET` statements Basin refused.
    pub refused_settings: BTreeSet<String>,
    pub rounds: u64,
    pub reported: usize,
    /// What was written for each reported mismatch.
    pub reports: Vec<String>,
    /// Failures other than mismatches: panics, dead processes, hangs.
    pub failures: Vec<String>,
}

impl Stats {
    fn observe(&mut self, outcome: &Outcome, sql: &str, skip_known: bool) {
        if let Outcome::Error { sqlstate, message } = outcome {
            let entry = self
                .errors
                .entry(sqlstate.clone())
                .or_insert_with(|| ErrorStats {
                    count: 0,
                    message: message.clone(),
                    sql: sql.to_string(),
                });
            entry.count += 1;
            if message.contains("panicked") || message.contains("panic") {
                match known::known_panic(message) {
                    Some(name) if skip_known => {
                        *self.known_panics.entry(name.to_string()).or_default() += 1;
                    }
                    _ => self.failures.push(format!(
                        "panic reported as {sqlstate}: {message}\n  in: {sql}"
                    )),
                }
            }
        }
    }

    fn merge(&mut self, other: &Stats) {
        for (name, stats) in &other.per_oracle {
            let entry = self.per_oracle.entry(name.clone()).or_default();
            entry.checks += stats.checks;
            entry.mismatches += stats.mismatches;
            entry.both_failed += stats.both_failed;
            entry.known += stats.known;
        }
        for (sqlstate, error) in &other.errors {
            self.errors
                .entry(sqlstate.clone())
                .or_insert_with(|| ErrorStats {
                    count: 0,
                    ..error.clone()
                })
                .count += error.count;
        }
        for (name, count) in &other.known {
            *self.known.entry(name.clone()).or_default() += count;
        }
        for (name, count) in &other.known_panics {
            *self.known_panics.entry(name.clone()).or_default() += count;
        }
        self.refused_settings
            .extend(other.refused_settings.iter().cloned());
        self.failures.extend(other.failures.iter().cloned());
    }

    pub fn total_checks(&self) -> u64 {
        self.per_oracle.values().map(|stats| stats.checks).sum()
    }

    pub fn total_mismatches(&self) -> u64 {
        self.per_oracle.values().map(|stats| stats.mismatches).sum()
    }
}

/// What a run found.
#[derive(Debug)]
pub struct Summary {
    pub stats: Stats,
    pub elapsed: Duration,
    /// Time spent starting clusters and creating tables, included in `elapsed`.
    pub setup: Duration,
}

/// The tables of a run: `schemas` independent sets generated from the seed.
fn schemas(seed: u64, count: usize) -> Vec<Schema> {
    (0..count)
        .map(|index| {
            let mut rng = Rng::fork(seed, u64::MAX - index as u64);
            let prefix = if count == 1 {
                String::new()
            } else {
                format!("s{index}_")
            };
            Schema::generate(&mut rng, &prefix)
        })
        .collect()
}

async fn create_tables(cluster: &BasinCluster, schemas: &[Schema]) -> Result<()> {
    let config = cluster.endpoint().borrow().clone();
    let connection = Connection::open(&config).await?;
    for statement in schemas.iter().flat_map(|schema| &schema.setup) {
        match connection.run(statement).await {
            Ok(Outcome::Rows(_)) => {}
            Ok(Outcome::Error { sqlstate, message }) => {
                return Err(Error::new(format!(
                    "setup statement failed: {sqlstate}: {message}\n{statement}"
                )));
            }
            Err(fatal) => return Err(Error::new(fatal.0)),
        }
    }
    connection.close().await;
    Ok(())
}

/// Whether the cluster still answers with all its executors live; an error says what is wrong.
async fn still_healthy(cluster: &BasinCluster, executors: u32) -> Result<(), String> {
    let config = cluster.endpoint().borrow().clone();
    let connection = Connection::open(&config)
        .await
        .map_err(|err| format!("basin no longer accepts connections: {err}"))?;
    let outcome = connection
        .run("SELECT count(*) FROM basin.executors WHERE state = 'live'")
        .await
        .map_err(|fatal| fatal.0)?;
    connection.close().await;
    match outcome {
        Outcome::Rows(rows) => {
            let live = rows
                .first()
                .and_then(|row| row.first().cloned().flatten())
                .unwrap_or_default();
            if live == executors.to_string() {
                Ok(())
            } else {
                Err(format!(
                    "{live} of {executors} executors live after the run"
                ))
            }
        }
        Outcome::Error { sqlstate, message } => Err(format!(
            "basin fails a health query after the run: {sqlstate}: {message}"
        )),
    }
}

/// The statements of round `round` of `seed` without running anything: the setup of its tables,
/// then each check's two queries and the configuration variant.
pub fn describe_round(seed: u64, schema_count: usize, round: u64) -> String {
    use std::fmt::Write as _;
    let schemas = schemas(seed, schema_count.max(1));
    let (schema, checks, variants) = runner::round_plan(seed, round, &schemas);
    let mut out = String::new();
    for statement in &schemas[schema].setup {
        let _ = writeln!(out, "{statement};");
    }
    for check in checks {
        let _ = writeln!(
            out,
            "-- {}\n{};\n{};",
            check.oracle, check.left.sql, check.right.sql
        );
    }
    for variant in variants {
        let _ = writeln!(out, "-- then under config {}", VARIANTS_NAMES[variant]);
    }
    out
}

/// Whether a server log shows a panic that is not a known bug's (under `--skip-known`); the
/// panic message is on the line after `panicked at`.
fn unknown_panic_in(log: &str, skip_known: bool) -> bool {
    let lines: Vec<&str> = log.lines().collect();
    lines.iter().enumerate().any(|(i, line)| {
        line.contains("panicked")
            && !(skip_known
                && [Some(*line), lines.get(i + 1).copied()]
                    .into_iter()
                    .flatten()
                    .any(|text| known::known_panic(text).is_some()))
    })
}

/// Starts the cluster(s), creates the tables, runs checks until `options.checks` are done.
pub async fn run(options: Options) -> Result<Summary> {
    let started = Instant::now();
    let main = BasinCluster::start(options.binary.clone(), options.executors).await?;
    let reference = match options.reference_executors {
        Some(executors) => Some(BasinCluster::start(options.binary.clone(), executors).await?),
        None => None,
    };
    let schemas = schemas(options.seed, options.schemas.max(1));
    create_tables(&main, &schemas).await?;
    if let Some(reference) = &reference {
        create_tables(reference, &schemas).await?;
    }
    let setup = started.elapsed();

    let shared = Arc::new(Shared {
        options: options.clone(),
        schemas,
        stats: Mutex::new(Stats::default()),
        next_round: AtomicU64::new(0),
        checks_done: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let main_config = main.endpoint().borrow().clone();
    let reference_config = reference
        .as_ref()
        .map(|cluster| cluster.endpoint().borrow().clone());
    let workers: Vec<_> = (0..options.jobs.max(1))
        .map(|_| {
            tokio::spawn(runner::worker(
                Arc::clone(&shared),
                main_config.clone(),
                reference_config.clone(),
            ))
        })
        .collect();
    let mut failures = Vec::new();
    for worker in workers {
        match worker.await {
            Ok(Ok(())) => {}
            Ok(Err(fatal)) => failures.push(fatal.0),
            Err(join) => failures.push(format!("worker panicked: {join}")),
        }
    }
    shared.stop.store(true, Ordering::Relaxed);

    for (cluster, executors) in [(Some(&main), options.executors)].into_iter().chain(
        reference
            .as_ref()
            .map(|cluster| (Some(cluster), options.reference_executors.unwrap_or(0))),
    ) {
        let Some(cluster) = cluster else { continue };
        if let Err(problem) = still_healthy(cluster, executors).await {
            failures.push(format!("{problem}\n{}", cluster.log_tail()));
        } else if unknown_panic_in(&cluster.log_tail(), options.skip_known) {
            failures.push(format!(
                "the server log shows a panic\n{}",
                cluster.log_tail()
            ));
        }
    }
    if !failures.is_empty() {
        // The log tail of the cluster under test explains most failures.
        failures.push(format!("server log:\n{}", main.log_tail()));
    }

    let mut stats = shared
        .stats
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    stats.failures.extend(failures);
    Ok(Summary {
        stats,
        elapsed: started.elapsed(),
        setup,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_is_a_function_of_seed_and_round() {
        assert_eq!(describe_round(7, 4, 3), describe_round(7, 4, 3));
        assert_ne!(describe_round(7, 4, 3), describe_round(7, 4, 4));
        assert_ne!(describe_round(7, 4, 3), describe_round(8, 4, 3));
    }

    #[test]
    fn generated_queries_use_every_oracle() {
        let text: String = (0..40).map(|round| describe_round(1, 4, round)).collect();
        for oracle in checks::ORACLES {
            assert!(
                text.contains(&format!("-- {oracle}\n")),
                "{oracle} never generated"
            );
        }
    }
}
